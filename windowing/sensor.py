"""The per-sensor feature pipeline: readings in, stationary named feature vectors out.

For every reading of one sensor, in event-time order, :class:`SensorFeaturePipeline`

1. places it on the sensor's cadence grid and marks gaps (:mod:`windowing.resample`);
2. per channel (``value`` and any extra channels), takes the first difference per cadence
   step and, if a season is configured, the seasonal difference
   (:mod:`windowing.differencing`);
3. decides per channel whether differencing is needed (ADF + KPSS on a warm-up window,
   re-checked periodically; :mod:`windowing.stationarity`);
4. standardises the chosen representation robustly over a sliding window, score-then-learn
   (:mod:`windowing.scaling`) — one scaler per representation is kept warm, so a changed
   decision switches representation without a cold start;
5. appends local hour-of-day / day-of-week features (:mod:`windowing.calendar`).

Features (``names``): ``value_z``, ``<channel>_z`` …, then the calendar features
(``hour_sin``, ``hour_cos``, ``dow_sin``, ``dow_cos`` last). ``<c>_z`` is the robust z-score
of the representation chosen for channel ``c`` at that reading:

=====================  =====================  ==========================================
differencing decided   season configured and  ``<c>_z`` is the z-score of
                       reading one season ago
=====================  =====================  ==========================================
no                     no                     the level ``x[t]``
yes                    no                     the step difference ``(x[t]-x[t-1])/steps``
no                     yes                    ``x[t] - x[t-season]``
yes                    yes                    ``d[t] - d[t-season]``
=====================  =====================  ==========================================

Meta per row: ``value`` (raw), ``aligned_timestamp``, ``gap``, ``missing``, ``warm``, and for
the main channel ``differenced``, ``seasonal_differenced``, ``stationarity`` (verdict),
``adf_pvalue``, ``kpss_pvalue``; extra channels get the same keys prefixed ``<c>_`` (raw
value as ``<c>_raw``).

Two paths with identical results: :meth:`SensorFeaturePipeline.update_one` (one reading,
raises :class:`~windowing.schemas.RejectedEvent` for late/duplicate readings and leaves the
state untouched) and :meth:`SensorFeaturePipeline.update_many` (arrays, vectorised; refused
rows are listed in ``FeatureBatch.rejected``). Both continue from the current state, which
``to_state`` / ``from_state`` round-trip through JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from windowing.calendar import CalendarFeatures
from windowing.differencing import Differencer, SeasonalDifferencer
from windowing.features import FeatureBatch, FeatureVector
from windowing.resample import CadenceAligner, order_mask
from windowing.scaling import RobustScaler
from windowing.schemas import RejectedEvent, RejectReason, SensorReading
from windowing.stationarity import StationarityDecision, StationarityMonitor

__all__ = ["SensorFeaturePipeline"]

STATE_VERSION = 1
MAIN = "value"
_REPRESENTATIONS = ("level", "diff", "slevel", "sdiff")


def _meta_keys(channel: str) -> dict[str, str]:
    prefix = "" if channel == MAIN else f"{channel}_"
    return {
        "raw": MAIN if channel == MAIN else f"{channel}_raw",
        "differenced": f"{prefix}differenced",
        "seasonal": f"{prefix}seasonal_differenced",
        "verdict": f"{prefix}stationarity",
        "adf": f"{prefix}adf_pvalue",
        "kpss": f"{prefix}kpss_pvalue",
    }


class _Channel:
    """Everything one channel of one sensor remembers."""

    def __init__(self, name: str, cfg: dict[str, Any], seasonal: bool) -> None:
        self.name = name
        self.keys = _meta_keys(name)
        self.differencer = Differencer()
        self.monitor = StationarityMonitor(
            cfg["warmup"],
            cfg["test_window"],
            cfg["recheck_every"],
            alpha=cfg["alpha"],
            difference=cfg["difference"],
            name=f"{cfg['sensor_id']}/{name}",
        )
        reps = _REPRESENTATIONS if seasonal else _REPRESENTATIONS[:2]
        self.scalers = {
            rep: RobustScaler(cfg["scaler_window"], cfg["scaler_refresh"], cfg["scaler_method"])
            for rep in reps
        }
        self.seasonal_level: SeasonalDifferencer | None = None
        self.seasonal_diff: SeasonalDifferencer | None = None

    def ensure_seasonal(self, lag: int) -> None:
        if self.seasonal_level is None:
            self.seasonal_level = SeasonalDifferencer(lag)
            self.seasonal_diff = SeasonalDifferencer(lag)

    # -- one reading --------------------------------------------------------------------
    def update_one(self, x: float, steps: int, slot: int | None, meta: dict[str, Any]) -> float:
        d = self.differencer.update(x, steps)
        decision = self.monitor.update(x)
        z_level = self.scalers["level"].update_one(x)
        z_diff = None if d is None else self.scalers["diff"].update_one(d)
        z_slevel = z_sdiff = None
        if slot is not None and self.seasonal_level is not None:
            assert self.seasonal_diff is not None
            s_level = self.seasonal_level.update(x, slot)
            s_diff = self.seasonal_diff.update(math.nan if d is None else d, slot)
            if s_level is not None:
                z_slevel = self.scalers["slevel"].update_one(s_level)
            if s_diff is not None:
                z_sdiff = self.scalers["sdiff"].update_one(s_diff)
        use_diff = decision.difference and z_diff is not None
        base, seasonal = (z_diff, z_sdiff) if use_diff else (z_level, z_slevel)
        keys = self.keys
        meta[keys["raw"]] = x
        meta[keys["differenced"]] = bool(use_diff)
        meta[keys["seasonal"]] = seasonal is not None
        meta[keys["verdict"]] = decision.verdict
        meta[keys["adf"]] = decision.adf_pvalue
        meta[keys["kpss"]] = decision.kpss_pvalue
        assert base is not None
        return float(seasonal if seasonal is not None else base)

    # -- many readings ------------------------------------------------------------------
    def update_many(
        self, x: np.ndarray, steps: np.ndarray, slots: np.ndarray, meta: dict[str, np.ndarray]
    ) -> np.ndarray:
        d = self.differencer.update_many(x, steps)
        decisions, which = self.monitor.update_many(x)
        z_level = self.scalers["level"].update_many(x)
        z_diff = self.scalers["diff"].update_many(d)
        z_slevel = np.full(x.size, np.nan)
        z_sdiff = np.full(x.size, np.nan)
        known = ~np.isnan(slots)
        if self.seasonal_level is not None and known.any():
            assert self.seasonal_diff is not None
            s_level = np.full(x.size, np.nan)
            s_diff = np.full(x.size, np.nan)
            s_level[known] = self.seasonal_level.update_many(x[known], slots[known])
            s_diff[known] = self.seasonal_diff.update_many(d[known], slots[known])
            z_slevel = self.scalers["slevel"].update_many(s_level)
            z_sdiff = self.scalers["sdiff"].update_many(s_diff)
        flags = np.array([dec.difference for dec in decisions], dtype=bool)[which]
        use_diff = flags & ~np.isnan(z_diff)
        base = np.where(use_diff, z_diff, z_level)
        seasonal = np.where(use_diff, z_sdiff, z_slevel)
        has_seasonal = ~np.isnan(seasonal)
        keys = self.keys
        meta[keys["raw"]] = x
        meta[keys["differenced"]] = use_diff
        meta[keys["seasonal"]] = has_seasonal
        meta[keys["verdict"]] = np.array([dec.verdict for dec in decisions], dtype=object)[which]
        meta[keys["adf"]] = np.array(
            [np.nan if dec.adf_pvalue is None else dec.adf_pvalue for dec in decisions]
        )[which]
        meta[keys["kpss"]] = np.array(
            [np.nan if dec.kpss_pvalue is None else dec.kpss_pvalue for dec in decisions]
        )[which]
        return np.where(has_seasonal, seasonal, base)

    def to_state(self) -> dict[str, Any]:
        return {
            "differencer": self.differencer.to_state(),
            "monitor": self.monitor.to_state(),
            "scalers": {rep: sc.to_state() for rep, sc in self.scalers.items()},
            "seasonal_level": None
            if self.seasonal_level is None
            else self.seasonal_level.to_state(),
            "seasonal_diff": None if self.seasonal_diff is None else self.seasonal_diff.to_state(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.differencer = Differencer.from_state(state["differencer"])
        self.monitor = StationarityMonitor.from_state(state["monitor"])
        self.scalers = {rep: RobustScaler.from_state(s) for rep, s in state["scalers"].items()}
        if state["seasonal_level"] is not None:
            self.seasonal_level = SeasonalDifferencer.from_state(state["seasonal_level"])
            self.seasonal_diff = SeasonalDifferencer.from_state(state["seasonal_diff"])


class SensorFeaturePipeline:
    """Online, stateful, stationarity-aware features for one sensor.

    Parameters
    ----------
    sensor_id
        The entity the feature vectors belong to.
    channels
        Extra channels besides ``value``; ``None`` adopts those of the first reading.
        A later reading lacking one is refused (``missing_field``); unknown extra channels
        of a reading are ignored.
    cadence
        Seconds between readings; ``None`` infers it from the first ``infer_cadence_from``
        intervals.
    seasonal_period
        Season length in seconds (e.g. ``86400``) for the seasonal difference; ``None``
        for none. Needs the cadence (``lag = round(period / cadence)`` slots).
    difference
        ``True``/``False`` forces the differencing decision; ``None`` tests.
    warmup, test_window, recheck_every, alpha
        Stationarity test schedule and level (see
        :class:`~windowing.stationarity.StationarityMonitor`).
    scaler_window, scaler_refresh, scaler_method
        Robust scaler (see :class:`~windowing.scaling.RobustScaler`).
    tz, one_hot, day_of_week
        Calendar features (see :class:`~windowing.calendar.CalendarFeatures`).

    >>> pipe = SensorFeaturePipeline("t1", cadence=60, warmup=30, tz="Europe/Paris")
    >>> pipe.names
    ('value_z', 'hour_sin', 'hour_cos', 'dow_sin', 'dow_cos')
    >>> fv = pipe.update_one(SensorReading("t1", 0.0, 20.0))
    >>> fv.meta["stationarity"], fv.meta["differenced"], fv.meta["gap"]
    ('pending', False, False)
    >>> fv = pipe.update_one(SensorReading("t1", 300.0, 21.0))  # four readings missing
    >>> fv.meta["gap"], fv.meta["missing"]
    (True, 4)
    >>> batch = pipe.update_many(np.arange(6, 100) * 60.0, np.linspace(21, 40, 94))
    >>> batch.row(-1).meta["stationarity"], batch.row(-1).meta["differenced"]
    ('unit_root', True)
    >>> SensorFeaturePipeline.from_state(pipe.to_state()).n_seen
    96
    """

    def __init__(
        self,
        sensor_id: str = "sensor",
        *,
        channels: Sequence[str] | None = None,
        cadence: float | None = None,
        infer_cadence_from: int = 8,
        seasonal_period: float | None = None,
        difference: bool | None = None,
        warmup: int = 256,
        test_window: int = 512,
        recheck_every: int | None = 1024,
        alpha: float = 0.05,
        scaler_window: int = 256,
        scaler_refresh: int = 16,
        scaler_method: str = "mad",
        tz: str = "UTC",
        one_hot: bool = False,
        day_of_week: bool = True,
    ) -> None:
        if channels is not None and MAIN in channels:
            raise ValueError(f"{MAIN!r} is the main channel; do not list it in channels")
        self.config: dict[str, Any] = {
            "sensor_id": sensor_id,
            "channels": None if channels is None else list(channels),
            "cadence": cadence,
            "infer_cadence_from": infer_cadence_from,
            "seasonal_period": seasonal_period,
            "difference": difference,
            "warmup": warmup,
            "test_window": test_window,
            "recheck_every": recheck_every,
            "alpha": alpha,
            "scaler_window": scaler_window,
            "scaler_refresh": scaler_refresh,
            "scaler_method": scaler_method,
            "tz": tz,
            "one_hot": one_hot,
            "day_of_week": day_of_week,
        }
        self.sensor_id = sensor_id
        self.aligner = CadenceAligner(cadence, infer_from=infer_cadence_from)
        self.calendar = CalendarFeatures(tz, one_hot=one_hot, day_of_week=day_of_week)
        self.n_seen = 0
        self._channels: dict[str, _Channel] = {}
        self._extra: tuple[str, ...] | None = None
        if channels is not None:
            self._set_channels(tuple(channels))

    # -- configuration ----------------------------------------------------------------------
    def _set_channels(self, extra: tuple[str, ...]) -> None:
        self._extra = extra
        seasonal = self.config["seasonal_period"] is not None
        self._channels = {c: _Channel(c, self.config, seasonal) for c in (MAIN, *extra)}

    @property
    def channels(self) -> tuple[str, ...]:
        """All channels, ``value`` first (extra ones known after the first reading)."""
        return (MAIN, *(self._extra or ()))

    @property
    def names(self) -> tuple[str, ...]:
        """Feature names, in ``values`` order."""
        # Unscaled level features keep the channel's own name: they are not z-scores.
        suffix = "" if self.config["scaler_method"] == "none" else "_z"
        return (*(f"{c}{suffix}" for c in self.channels), *self.calendar.names)

    @property
    def decisions(self) -> dict[str, StationarityDecision]:
        """The stationarity decision currently in force, per channel."""
        return {c: ch.monitor.decision for c, ch in self._channels.items()}

    def _seasonal_lag(self) -> int | None:
        period = self.config["seasonal_period"]
        cadence = self.aligner.cadence
        if period is None or cadence is None:
            return None
        return max(1, round(period / cadence))

    def _prepare_seasonal(self) -> None:
        lag = self._seasonal_lag()
        if lag is not None:
            for ch in self._channels.values():
                ch.ensure_seasonal(lag)

    # -- one reading ------------------------------------------------------------------------
    def update_one(self, reading: SensorReading) -> FeatureVector:
        """Features of one reading (then learn from it).

        Raises :class:`~windowing.schemas.RejectedEvent` (``duplicate``, ``out_of_order``,
        ``missing_field``) without changing the state.
        """
        if self._extra is None:
            self._set_channels(tuple(sorted(reading.channels)))
        assert self._extra is not None
        for c in self._extra:
            if c not in reading.channels:
                raise RejectedEvent(
                    RejectReason.MISSING_FIELD,
                    f"channel {c!r} missing; sensor {self.sensor_id} has {', '.join(self._extra)}",
                )
        self.aligner.check(reading.timestamp)
        placed = self.aligner.update(reading.timestamp)
        self._prepare_seasonal()
        meta: dict[str, Any] = {
            "aligned_timestamp": placed.aligned_timestamp,
            "gap": placed.gap,
            "missing": placed.missing,
        }
        z = [
            self._channels[c].update_one(
                reading.value if c == MAIN else reading.channels[c],
                placed.steps,
                placed.slot,
                meta,
            )
            for c in self.channels
        ]
        meta["warm"] = self._channels[MAIN].monitor.decision.decided
        self.n_seen += 1
        values = np.concatenate([z, self.calendar.transform_one(reading.timestamp)])
        return FeatureVector(self.sensor_id, reading.timestamp, values, self.names, meta)

    # -- many readings ----------------------------------------------------------------------
    def update_many(
        self,
        timestamps: Any,
        values: Any,
        channels: Mapping[str, Any] | None = None,
    ) -> FeatureBatch:
        """Features of many readings of this sensor, vectorised; same as repeated
        :meth:`update_one`.

        Rows with a NaN/inf value (``not_finite``), a NaN time (``bad_timestamp``), or a time
        not after every earlier one (``duplicate`` / ``out_of_order``) produce no row and are
        listed in ``rejected``.
        """
        ts = np.asarray(timestamps, dtype=np.float64).reshape(-1)
        x = np.asarray(values, dtype=np.float64).reshape(-1)
        given = {
            k: np.asarray(v, dtype=np.float64).reshape(-1) for k, v in (channels or {}).items()
        }
        if x.size != ts.size or any(v.size != ts.size for v in given.values()):
            raise ValueError("timestamps, values and channels must have the same length")
        if self._extra is None:
            self._set_channels(tuple(sorted(given)))
        missing = [c for c in self.channels[1:] if c not in given]
        if missing:
            raise ValueError(f"channels missing from the batch: {', '.join(missing)}")
        reasons = np.full(ts.size, "", dtype=object)
        finite = np.isfinite(x)
        for c in self.channels[1:]:
            finite &= np.isfinite(given[c])
        reasons[~finite] = RejectReason.NOT_FINITE.value
        reasons[np.isnan(ts) | np.isinf(ts)] = RejectReason.BAD_TIMESTAMP.value
        ok = reasons == ""
        accepted, order_reasons = order_mask(np.where(ok, ts, -np.inf), self.aligner.last)
        accepted &= ok
        reasons[ok & ~accepted] = order_reasons[ok & ~accepted]
        rows = np.flatnonzero(accepted)
        rejected = tuple((int(i), str(reasons[i])) for i in np.flatnonzero(~accepted))
        ts_ok = ts[rows]
        aligned = self.aligner.update_many(ts_ok)
        self._prepare_seasonal()
        meta: dict[str, np.ndarray] = {
            "aligned_timestamp": aligned.aligned_timestamp,
            "gap": aligned.gap,
            "missing": aligned.missing,
        }
        z = [
            self._channels[c].update_many(
                (x if c == MAIN else given[c])[rows], aligned.steps, aligned.slot, meta
            )
            for c in self.channels
        ]
        meta["warm"] = meta["stationarity"] != "pending"
        self.n_seen += rows.size
        feats = (
            np.column_stack([*z, self.calendar.transform_many(ts_ok)])
            if rows.size
            else (np.empty((0, len(self.names))))
        )
        return FeatureBatch(self.sensor_id, ts_ok, feats, self.names, meta, rows, rejected)

    def update_readings(self, readings: Sequence[SensorReading]) -> FeatureBatch:
        """:meth:`update_many` over validated readings (a micro-batch of this sensor).

        Readings lacking a configured channel are refused with ``missing_field``.
        """
        if self._extra is None and readings:
            self._set_channels(tuple(sorted(readings[0].channels)))
        extra = self.channels[1:]
        complete = [all(c in r.channels for c in extra) for r in readings]
        keep = [r for r, ok in zip(readings, complete, strict=True) if ok]
        batch = self.update_many(
            [r.timestamp for r in keep],
            [r.value for r in keep],
            {c: [r.channels[c] for r in keep] for c in extra},
        )
        positions = np.flatnonzero(complete)
        dropped = [
            (int(i), RejectReason.MISSING_FIELD.value) for i, ok in enumerate(complete) if not ok
        ]
        index = positions[batch.index] if batch.index is not None else None
        rejected = sorted([*((int(positions[i]), r) for i, r in batch.rejected), *dropped])
        return FeatureBatch(
            batch.entity,
            batch.timestamps,
            batch.values,
            batch.names,
            batch.meta,
            index,
            tuple(rejected),
        )

    # -- checkpointing ----------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """JSON-able state (configuration included); :meth:`from_state` resumes exactly."""
        return {
            "version": STATE_VERSION,
            "config": dict(self.config),
            "extra_channels": None if self._extra is None else list(self._extra),
            "n_seen": self.n_seen,
            "aligner": self.aligner.to_state(),
            "channels": {c: ch.to_state() for c, ch in self._channels.items()},
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SensorFeaturePipeline:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported sensor pipeline state version {state.get('version')}")
        cfg = dict(state["config"])
        sensor_id = cfg.pop("sensor_id")
        cfg["channels"] = state["extra_channels"]
        pipe = cls(sensor_id, **cfg)
        pipe.config["channels"] = state["config"]["channels"]
        pipe.n_seen = int(state["n_seen"])
        pipe.aligner = CadenceAligner.from_state(state["aligner"])
        for c, ch_state in state["channels"].items():
            pipe._channels[c].load_state(ch_state)
        return pipe
