"""The connection feature pipeline: KDD-style events in, scaled named feature vectors out.

:class:`ConnectionFeaturePipeline`, fitted once on training connections, turns each event into

* the **38 numeric KDD fields** (file order), ``log1p``-transformed where heavy-tailed
  (:data:`~windowing.kdd.HEAVY_TAILED_FIELDS`: byte counts, durations, counts), then scaled
  to [0, 1] with the bounds seen in training and **clipped**; values outside the training
  range are flagged (meta ``out_of_range``, ``out_of_range_fields`` and the unclipped
  ``out_of_range_scaled``, e.g. ``40.0`` = forty training ranges above the training minimum);
* **one-hot** ``protocol_type=…``, ``service=…``, ``flag=…`` over the training vocabulary,
  with an ``…=other`` bucket for values never seen in training (KDD's own ``service``
  value ``other`` shares that bucket);
* optionally local hour-of-day / day-of-week features (``tz``).

For **raw** events (without the 19 derived traffic fields) the traffic fields are computed by
the pipeline's :class:`~windowing.traffic.TrafficFeatureExtractor` over the stream so far;
KDD-format events bring their own. Either way the feature vector has the same names.

Two paths with identical results: :meth:`ConnectionFeaturePipeline.update_one` (one
:class:`~windowing.schemas.ConnectionEvent`) and :meth:`ConnectionFeaturePipeline.update_many`
(a DataFrame, vectorised). State (fitted bounds, vocabulary, traffic windows) round-trips
through ``to_state`` / ``from_state``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from windowing.calendar import CalendarFeatures
from windowing.features import FeatureBatch, FeatureVector
from windowing.kdd import (
    BINARY_FIELDS,
    CATEGORICAL_FIELDS,
    HEAVY_TAILED_FIELDS,
    INTRINSIC_NUMERIC_FIELDS,
    NUMERIC_FIELDS,
    RATE_FIELDS,
    TRAFFIC_FIELDS,
)
from windowing.readers import epoch_seconds
from windowing.scaling import RangeScaler
from windowing.schemas import ConnectionEvent, RejectReason
from windowing.traffic import TrafficFeatureExtractor

__all__ = ["OTHER", "CategoryEncoder", "ConnectionFeaturePipeline"]

STATE_VERSION = 1
#: The bucket of categorical values not seen in training.
OTHER = "other"


class CategoryEncoder:
    """One-hot encoding with an ``other`` bucket.

    Parameters
    ----------
    fields
        Categorical columns.
    max_categories
        Keep at most this many most frequent values per field (the rest go to ``other``).
    min_count
        Values seen fewer times in training go to ``other``.

    >>> enc = CategoryEncoder(["proto"]).fit(pd.DataFrame({"proto": ["tcp", "udp", "tcp"]}))
    >>> enc.names
    ('proto=tcp', 'proto=udp', 'proto=other')
    >>> enc.transform_many(pd.DataFrame({"proto": ["udp", "sctp"]})).tolist()
    [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """

    def __init__(
        self,
        fields: Sequence[str] = CATEGORICAL_FIELDS,
        max_categories: int | None = None,
        min_count: int = 1,
    ) -> None:
        self.fields = tuple(fields)
        self.max_categories = max_categories
        self.min_count = min_count

    def fit(self, frame: pd.DataFrame) -> CategoryEncoder:
        """Learn the vocabulary: most frequent first, ``other`` last."""
        self.vocab_: dict[str, list[str]] = {}
        for f in self.fields:
            counts = frame[f].astype(str).value_counts()
            counts = counts[counts >= self.min_count]
            # Most frequent first, ties by name, so the layout is reproducible.
            ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            values = [v for v, _ in ordered if v != OTHER]
            if self.max_categories is not None:
                values = values[: max(0, self.max_categories - 1)]
            self.vocab_[f] = [*values, OTHER]
        self._index()
        return self

    def _index(self) -> None:
        self._lookup = {f: {v: i for i, v in enumerate(vs)} for f, vs in self.vocab_.items()}
        self.names: tuple[str, ...] = tuple(
            f"{f}={v}" for f in self.fields for v in self.vocab_[f]
        )

    def transform_one(self, values: Mapping[str, str]) -> np.ndarray:
        """One-hot of one event's categorical values."""
        parts = []
        for f in self.fields:
            row = np.zeros(len(self.vocab_[f]))
            lookup = self._lookup[f]
            row[lookup.get(str(values[f]), lookup[OTHER])] = 1.0
            parts.append(row)
        return np.concatenate(parts)

    def codes(self, column: Any, field: str) -> np.ndarray:
        """Vocabulary index of each value of ``column`` (unseen and missing -> ``other``)."""
        vocab = self.vocab_[field]
        # Look up each distinct value once: a file has millions of rows but few services.
        codes, uniques = pd.factorize(pd.Series(column), use_na_sentinel=True)
        lookup = pd.Index(vocab).get_indexer(pd.Index(uniques).astype(str)).astype(np.int64)
        other = len(vocab) - 1
        lookup[lookup < 0] = other
        return np.append(lookup, other)[codes]

    def transform_into(self, frame: pd.DataFrame, out: np.ndarray) -> None:
        """Write the one-hot block into ``out`` (shape ``(n, len(names))``, zeroed here)."""
        out[:] = 0.0
        rows = np.arange(len(frame))
        offset = 0
        for f in self.fields:
            out[rows, offset + self.codes(frame[f], f)] = 1.0
            offset += len(self.vocab_[f])

    def transform_many(self, frame: pd.DataFrame) -> np.ndarray:
        """One-hot of many events, shape ``(n, len(names))``."""
        out = np.empty((len(frame), len(self.names)))
        self.transform_into(frame, out)
        return out

    def to_state(self) -> dict[str, Any]:
        return {"fields": list(self.fields), "max_categories": self.max_categories,
                "min_count": self.min_count, "vocab": self.vocab_}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> CategoryEncoder:
        enc = cls(state["fields"], state["max_categories"], state["min_count"])
        enc.vocab_ = {f: list(v) for f, v in state["vocab"].items()}
        enc._index()
        return enc


class ConnectionFeaturePipeline:
    """Scaled, one-hot, named features of connection events.

    Parameters
    ----------
    log_fields
        Numeric fields transformed with ``log1p`` before scaling.
    quantiles
        Training quantiles used as scaling bounds (``(0, 1)`` = min/max).
    max_categories, min_category_count
        Vocabulary limits of the one-hot encoding.
    horizon_s, last_n
        Traffic windows for raw events (see :mod:`windowing.traffic`).
    tz
        Add calendar features in this time zone; ``None`` (default) adds none.

    >>> train = pd.DataFrame({name: [0.0, 1.0] for name in NUMERIC_FIELDS})
    >>> train["src_bytes"] = [100.0, 10000.0]
    >>> train = train.assign(protocol_type=["tcp", "udp"], service=["http", "ftp"],
    ...                      flag=["SF", "S0"])
    >>> pipe = ConnectionFeaturePipeline().fit(train)
    >>> len(pipe.names), pipe.names[1], pipe.names[-1]
    (47, 'src_bytes', 'flag=other')
    >>> raw = {name: 0.0 for name in INTRINSIC_NUMERIC_FIELDS}
    >>> ev = ConnectionEvent(0.0, "tcp", "telnet", "SF", {**raw, "src_bytes": 1e6},
    ...                      dst_host="10.0.0.1")
    >>> fv = pipe.update_one(ev)
    >>> fv["src_bytes"], fv["service=other"], fv.meta["out_of_range_fields"][:1]
    (1.0, 1.0, ('src_bytes',))
    """

    def __init__(
        self,
        *,
        log_fields: Sequence[str] = HEAVY_TAILED_FIELDS,
        quantiles: tuple[float, float] = (0.0, 1.0),
        max_categories: int | None = None,
        min_category_count: int = 1,
        horizon_s: float = 2.0,
        last_n: int = 100,
        tz: str | None = None,
    ) -> None:
        self.log_fields = tuple(log_fields)
        unknown = set(self.log_fields) - set(NUMERIC_FIELDS)
        if unknown:
            raise ValueError(f"not numeric KDD fields: {', '.join(sorted(unknown))}")
        self.quantiles = quantiles
        self.max_categories = max_categories
        self.min_category_count = min_category_count
        self.horizon_s = horizon_s
        self.last_n = last_n
        self.tz = tz
        self._log_mask = np.array([f in self.log_fields for f in NUMERIC_FIELDS])
        self.traffic = TrafficFeatureExtractor(horizon_s, last_n)
        self.calendar = None if tz is None else CalendarFeatures(tz)
        self.scaler: RangeScaler | None = None
        self.encoder: CategoryEncoder | None = None

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, frame: pd.DataFrame) -> ConnectionFeaturePipeline:
        """Learn scaling bounds and vocabulary from training connections.

        ``frame`` has the KDD columns; without the traffic columns they are derived first
        (on a scratch extractor: the pipeline's own windows are not touched).
        """
        if len(frame) == 0:
            raise ValueError("cannot fit on an empty frame")
        numeric = self._numeric_frame(frame, TrafficFeatureExtractor(self.horizon_s,
                                                                     self.last_n))
        self.scaler = RangeScaler(self.quantiles).fit(self._transform_numeric(numeric))
        self.encoder = CategoryEncoder(CATEGORICAL_FIELDS, self.max_categories,
                                       self.min_category_count).fit(frame)
        self._set_names()
        return self

    def _set_names(self) -> None:
        _, encoder = self._check_fitted()
        calendar = () if self.calendar is None else self.calendar.names
        self._names: tuple[str, ...] = (*NUMERIC_FIELDS, *encoder.names, *calendar)

    @property
    def is_fitted(self) -> bool:
        return self.scaler is not None and self.encoder is not None

    def _check_fitted(self) -> tuple[RangeScaler, CategoryEncoder]:
        if self.scaler is None or self.encoder is None:
            raise RuntimeError("ConnectionFeaturePipeline is not fitted: call fit(training_frame)")
        return self.scaler, self.encoder

    @property
    def names(self) -> tuple[str, ...]:
        """Feature names, in ``values`` order."""
        self._check_fitted()
        return self._names

    def _transform_numeric(self, numeric: np.ndarray) -> np.ndarray:
        out = numeric.copy()
        out[:, self._log_mask] = np.log1p(out[:, self._log_mask])
        return out

    def _numeric_frame(self, frame: pd.DataFrame, traffic: TrafficFeatureExtractor) -> np.ndarray:
        # NUMERIC_FIELDS is the intrinsic numeric block followed by the traffic block.
        if all(f in frame for f in TRAFFIC_FIELDS):
            return frame[list(NUMERIC_FIELDS)].to_numpy(dtype=np.float64)
        out = np.empty((len(frame), len(NUMERIC_FIELDS)))
        out[:, : len(INTRINSIC_NUMERIC_FIELDS)] = frame[list(INTRINSIC_NUMERIC_FIELDS)].to_numpy(
            dtype=np.float64)
        out[:, len(INTRINSIC_NUMERIC_FIELDS) :] = traffic.update_frame(frame)
        return out

    # -- one event --------------------------------------------------------------------------
    def update_one(self, event: ConnectionEvent) -> FeatureVector:
        """Features of one event. Raw events move the traffic windows; KDD-format events
        with a ``dst_host`` move them too (so a mixed stream keeps them warm) but keep their
        own traffic fields."""
        scaler, encoder = self._check_fitted()
        derived = None
        if event.dst_host is not None:
            derived = self.traffic.update_event(event)
        if event.has_traffic:
            traffic_source = "given"
            numeric = event.numeric
        else:
            assert derived is not None
            traffic_source = "derived"
            numeric = {**event.numeric, **derived}
        raw = np.array([[numeric[f] for f in NUMERIC_FIELDS]])
        transformed = self._transform_numeric(raw)
        scaled, outside = scaler.transform(transformed)
        parts = [scaled[0], encoder.transform_one(
            {"protocol_type": event.protocol_type, "service": event.service,
             "flag": event.flag})]
        if self.calendar is not None:
            parts.append(self.calendar.transform_one(event.timestamp))
        unclipped = scaler.scale(transformed)[0]
        fields = tuple(f for f, o in zip(NUMERIC_FIELDS, outside[0], strict=True) if o)
        meta: dict[str, Any] = {
            # The unscaled numeric fields, traffic included: a served model scales them
            # with its own training bounds (``transform_fields``).
            "numeric": raw[0],
            "traffic": traffic_source,
            "out_of_range": bool(fields),
            "n_out_of_range": len(fields),
            "out_of_range_fields": fields,
            "out_of_range_scaled": tuple(
                float(unclipped[NUMERIC_FIELDS.index(f)]) for f in fields),
            "src_host": event.src_host,
            "dst_host": event.dst_host,
            "label": event.label,
        }
        entity = event.src_host or event.dst_host or "connections"
        return FeatureVector(entity, event.timestamp, np.concatenate(parts), self.names, meta)

    def numeric_fields(self, frame: pd.DataFrame) -> np.ndarray:
        """The unscaled ``NUMERIC_FIELDS`` of KDD-format rows, or of raw connections (their
        traffic fields derived in row order, on a scratch extractor: this pipeline's own
        windows are not touched). Needs no fitting."""
        return self._numeric_frame(frame, TrafficFeatureExtractor(self.horizon_s, self.last_n))

    def transform_fields(
        self, numeric: np.ndarray, categories: Sequence[Mapping[str, str]]
    ) -> np.ndarray:
        """Features of events already reduced to their numeric fields (``NUMERIC_FIELDS``
        order, unscaled, traffic included, as ``update_one`` puts in ``meta["numeric"]``)
        and their categories: this pipeline's bounds and vocabulary, no traffic windows
        moved, no calendar columns. Values are scaled but not clipped to [0, 1]: how far
        beyond its training range a value lies is what a detector needs to see.

        >>> train = pd.DataFrame({name: [0.0, 10.0] for name in NUMERIC_FIELDS})
        >>> train = train.assign(protocol_type=["tcp", "udp"], service=["http", "ftp"],
        ...                      flag=["SF", "S0"])
        >>> pipe = ConnectionFeaturePipeline(log_fields=()).fit(train)
        >>> X = pipe.transform_fields(np.full((1, len(NUMERIC_FIELDS)), 5.0),
        ...                           [{"protocol_type": "tcp", "service": "ftp", "flag": "S0"}])
        >>> X.shape == (1, len(pipe.names)), float(X[0, 0])
        (True, 0.5)
        """
        scaler, encoder = self._check_fitted()
        if self.calendar is not None:
            raise ValueError("transform_fields has no event times: fit without tz")
        numeric = np.asarray(numeric, dtype=np.float64).reshape(len(categories), -1)
        scaled = scaler.scale(self._transform_numeric(numeric))
        onehot = np.vstack([encoder.transform_one(c) for c in categories]) if categories else (
            np.empty((0, len(encoder.names))))
        return np.hstack([scaled, onehot])

    # -- many events ------------------------------------------------------------------------
    def update_many(self, frame: pd.DataFrame) -> FeatureBatch:
        """Features of many events (rows of ``frame``, arrival order), vectorised.

        ``frame`` has the 22 intrinsic KDD columns and either the 19 traffic columns
        (KDD-format) or ``timestamp`` + ``dst_host`` (raw, optional ``src_port``); optional
        ``timestamp``, ``src_host``, ``dst_host``, ``label`` columns are carried into meta.
        Rows with a missing category (``missing_field``), a non-finite number
        (``not_finite``), a negative count, a rate above 1 or a binary field not 0/1
        (``out_of_range``) produce no row and are listed in ``rejected``.
        """
        scaler, encoder = self._check_fitted()
        given = all(f in frame for f in TRAFFIC_FIELDS)
        reasons = self._validate(frame, given)
        ok = reasons == ""
        rows = np.flatnonzero(ok)
        good = frame.iloc[rows] if not ok.all() else frame
        n = len(good)
        if given and "dst_host" in good and "timestamp" in good and n:
            # As update_one: KDD-format rows that name their host keep the windows warm.
            named = good["dst_host"].notna().to_numpy()
            if named.any():
                self.traffic.update_frame(good[named] if not named.all() else good)
        names = self.names
        n_numeric = len(NUMERIC_FIELDS)
        # One output matrix, filled block by block: at KDD scale (500k x 120) every
        # avoided temporary is hundreds of megabytes.
        values = np.empty((n, len(names)))
        numeric = values[:, :n_numeric]
        numeric[:] = self._numeric_frame(good, self.traffic) if n else 0.0
        for j in np.flatnonzero(self._log_mask):
            np.log1p(numeric[:, j], out=numeric[:, j])
        outside = (numeric < scaler.low_) | (numeric > scaler.high_)
        n_out = outside.sum(axis=1)
        flagged = np.flatnonzero(n_out)
        unclipped = scaler.scale(numeric[flagged])
        np.subtract(numeric, scaler.low_, out=numeric)
        np.divide(numeric, scaler.span_, out=numeric)
        np.clip(numeric, 0.0, 1.0, out=numeric)
        n_onehot = len(encoder.names)
        encoder.transform_into(good, values[:, n_numeric : n_numeric + n_onehot])
        timestamps = (epoch_seconds(good["timestamp"]) if "timestamp" in good
                      else np.full(n, np.nan))
        if self.calendar is not None:
            values[:, n_numeric + n_onehot :] = self.calendar.transform_many(timestamps)
        fields = np.empty(n, dtype=object)
        fields[:] = [()] * n
        scaled_out = np.empty(n, dtype=object)
        scaled_out[:] = [()] * n
        field_names = np.array(NUMERIC_FIELDS, dtype=object)
        for k, i in enumerate(flagged):
            mask = outside[i]
            fields[i] = tuple(field_names[mask])
            scaled_out[i] = tuple(unclipped[k][mask].tolist())
        meta: dict[str, np.ndarray] = {
            "traffic": np.full(n, "given" if given else "derived", dtype=object),
            "out_of_range": n_out > 0,
            "n_out_of_range": n_out,
            "out_of_range_fields": fields,
            "out_of_range_scaled": scaled_out,
        }
        for col in ("src_host", "dst_host", "label"):
            meta[col] = (good[col].to_numpy(dtype=object) if col in good
                         else np.full(n, None, dtype=object))
        if "src_host" in good or "dst_host" in good:
            entity = pd.Series(meta["src_host"]).fillna(pd.Series(meta["dst_host"]))
            meta["entity"] = entity.fillna("connections").to_numpy(dtype=object)
        rejected = tuple((int(i), str(reasons[i])) for i in np.flatnonzero(~ok))
        return FeatureBatch("connections", timestamps, values, names, meta, rows, rejected)

    def _validate(self, frame: pd.DataFrame, given: bool) -> np.ndarray:
        """Per-row reason code ("" = fine), same rules as ``parse_connection_event``."""
        n = len(frame)
        reasons = np.full(n, "", dtype=object)
        required = [*CATEGORICAL_FIELDS, *INTRINSIC_NUMERIC_FIELDS]
        if not given:
            required += ["timestamp", "dst_host"]
        absent = [c for c in required if c not in frame]
        if absent:
            raise ValueError(f"frame lacks columns: {', '.join(absent)}")

        def mark(mask: np.ndarray, reason: RejectReason) -> None:
            # The first problem of a row is the one reported.
            reasons[mask & (reasons == "")] = reason.value

        for c in (*CATEGORICAL_FIELDS, *(() if given else ("dst_host",))):
            # Check each distinct value once (few services, many rows).
            codes, uniques = pd.factorize(frame[c], use_na_sentinel=True)
            blank = pd.Index(uniques).astype(str).str.strip() == ""
            mark(np.append(np.asarray(blank, dtype=bool), True)[codes],
                 RejectReason.MISSING_FIELD)
        fields = [*INTRINSIC_NUMERIC_FIELDS, *(TRAFFIC_FIELDS if given else ())]
        values = frame[fields].to_numpy(dtype=np.float64)
        mark(np.isnan(values).any(axis=1), RejectReason.MISSING_FIELD)
        mark(np.isinf(values).any(axis=1), RejectReason.NOT_FINITE)
        with np.errstate(invalid="ignore"):
            bad = (values < 0).any(axis=1)
            for j, f in enumerate(fields):
                if f in RATE_FIELDS:
                    bad |= values[:, j] > 1.0
                elif f in BINARY_FIELDS:
                    bad |= (values[:, j] != 0.0) & (values[:, j] != 1.0)
        mark(bad, RejectReason.OUT_OF_RANGE)
        if "timestamp" in frame:
            ts = epoch_seconds(frame["timestamp"])
            if not given:
                mark(~np.isfinite(ts), RejectReason.BAD_TIMESTAMP)
        return reasons

    # -- checkpointing ----------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """JSON-able state (settings, fitted bounds and vocabulary, traffic windows)."""
        scaler, encoder = self._check_fitted()
        return {
            "version": STATE_VERSION,
            "config": {
                "log_fields": list(self.log_fields),
                "quantiles": list(self.quantiles),
                "max_categories": self.max_categories,
                "min_category_count": self.min_category_count,
                "horizon_s": self.horizon_s,
                "last_n": self.last_n,
                "tz": self.tz,
            },
            "scaler": scaler.to_state(),
            "encoder": encoder.to_state(),
            "traffic": self.traffic.to_state(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ConnectionFeaturePipeline:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported connection pipeline state {state.get('version')}")
        cfg = dict(state["config"])
        cfg["quantiles"] = tuple(cfg["quantiles"])
        pipe = cls(**cfg)
        pipe.scaler = RangeScaler.from_state(state["scaler"])
        pipe.encoder = CategoryEncoder.from_state(state["encoder"])
        pipe.traffic = TrafficFeatureExtractor.from_state(state["traffic"])
        pipe._set_names()
        return pipe
