"""Feature rows for the replay: the stream's own :mod:`windowing` pipelines, nothing else.

* Sensor series go through :class:`windowing.SensorFeaturePipeline` (one fresh pipeline per
  series, as the stream keeps one per sensor), with its vectorised ``update_many``:
  stationarity decision (ADF + KPSS), first / step difference when needed, robust z-score
  over the last 256 values, and hour / weekday on the circle. Readings the pipeline refuses
  (``out_of_order``, ``duplicate``, ``not_finite``, ``bad_timestamp``) produce no feature
  row; :func:`fill_refused` gives their input rows a score afterwards, because NAB's layout
  needs one score per input row.
* Connections go through :class:`windowing.ConnectionFeaturePipeline`, fitted on normal
  training connections (log1p of heavy-tailed fields, min-max on training rows, clipped;
  one-hot protocol / service / flag with an ``other`` bucket).

What a detector is given (``FeatureMode``): the ``<channel>_z`` columns, plus with
``+time`` the ``hour_sin, hour_cos, dow_sin, dow_cos`` columns, in that order. That is what
``detectors.ensemble.default_ensemble("sensors")`` expects (column 0 the stationary value,
then the four time columns).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from windowing import (
    NUMERIC_FIELDS,
    TRAFFIC_FIELDS,
    ConnectionFeaturePipeline,
    FeatureBatch,
    SensorFeaturePipeline,
    TrafficFeatureExtractor,
)

__all__ = [
    "DIFFERENCING",
    "TIME_NAMES",
    "ConnectionFeatures",
    "FeatureMode",
    "SensorFeatures",
    "connection_features",
    "fill_refused",
    "parse_sensor_mode",
    "rejection_summary",
    "sensor_features",
]

#: Differencing choices: the pipeline's own stationarity test, or forced either way.
DIFFERENCING = {"auto": None, "diff": True, "level": False}
_ALIASES = {"raw": "level"}  # the old CSV mode name
#: The calendar columns, in the order the pipeline (and the sensor ensemble) use.
TIME_NAMES = ("hour_sin", "hour_cos", "dow_sin", "dow_cos")


@dataclass(frozen=True)
class FeatureMode:
    """How a sensor series becomes detector input: differencing decision and time columns.

    >>> parse_sensor_mode("diff+time", default_time=False)
    FeatureMode(differencing='diff', time=True)
    >>> parse_sensor_mode(None, default_time=True).label
    'auto+time'
    """

    differencing: str
    time: bool

    @property
    def label(self) -> str:
        return self.differencing + ("+time" if self.time else "")


def parse_sensor_mode(mode: str | None, *, default_time: bool) -> FeatureMode:
    """``auto`` / ``diff`` / ``level``, optionally ``+time``; ``None`` = ``auto`` (+ time
    when ``default_time``)."""
    if mode is None:
        return FeatureMode("auto", default_time)
    base, plus, rest = mode.strip().lower().partition("+")
    base = _ALIASES.get(base, base)
    if base not in DIFFERENCING or (plus and rest != "time"):
        known = ", ".join(f"{b}, {b}+time" for b in DIFFERENCING)
        raise ValueError(f"unknown sensor features {mode!r}; known: {known}")
    return FeatureMode(base, bool(plus))


@dataclass
class SensorFeatures:
    """The feature rows of one series (accepted input rows only, in input order)."""

    matrix: np.ndarray
    names: list[str]
    index: np.ndarray
    rejected: tuple[tuple[int, str], ...]
    n_input: int
    n_value_columns: int
    differenced: np.ndarray
    verdicts: np.ndarray

    @property
    def time_columns(self) -> tuple[int, ...] | None:
        """Positions of the time columns in :attr:`matrix` (``None`` without them)."""
        cols = tuple(self.names.index(t) for t in TIME_NAMES if t in self.names)
        return cols or None

    def stationarity(self) -> dict[str, Any]:
        """Share of rows the pipeline differenced, and its verdicts (rows per verdict)."""
        n = int(self.differenced.size)
        return {
            "rows": n,
            "differenced_share": float(self.differenced.mean()) if n else None,
            "verdicts": dict(Counter(str(v) for v in self.verdicts)),
            "final_verdict": str(self.verdicts[-1]) if n else None,
        }


def sensor_features(
    timestamps: Any,
    values: Any,
    channels: Mapping[str, Any] | None = None,
    *,
    mode: FeatureMode,
    sensor_id: str = "sensor",
) -> SensorFeatures:
    """Run one series through a fresh :class:`~windowing.SensorFeaturePipeline`.

    ``timestamps`` are epoch seconds (``windowing.epoch_seconds``). The pipeline's defaults
    are the stream's defaults (cadence inferred, stationarity tested on the first 256
    readings, no seasonal difference, UTC calendar).

    >>> t = np.arange(300) * 300.0
    >>> fx = sensor_features(t, np.sin(t / 3600), mode=FeatureMode("auto", True))
    >>> fx.names, fx.matrix.shape, fx.time_columns
    (['value_z', 'hour_sin', 'hour_cos', 'dow_sin', 'dow_cos'], (300, 5), (1, 2, 3, 4))
    >>> t[10] = t[9]  # a duplicate reading is refused, the rest goes on
    >>> sensor_features(t, np.sin(t / 3600), mode=FeatureMode("auto", False)).rejected
    ((10, 'duplicate'),)
    """
    pipe = SensorFeaturePipeline(sensor_id, difference=DIFFERENCING[mode.differencing])
    batch: FeatureBatch = pipe.update_many(timestamps, values, channels)
    names = list(batch.names)
    value_names = [f"{c}_z" for c in pipe.channels]
    keep = value_names + (list(TIME_NAMES) if mode.time else [])
    cols = [names.index(c) for c in keep]
    n = len(batch)
    index = batch.index if batch.index is not None else np.arange(n)
    return SensorFeatures(
        matrix=np.ascontiguousarray(batch.values[:, cols]),
        names=keep,
        index=np.asarray(index, dtype=np.int64),
        rejected=tuple(batch.rejected),
        n_input=int(np.asarray(values).reshape(-1).size),
        n_value_columns=len(value_names),
        differenced=np.asarray(batch.meta.get("differenced", np.zeros(n, bool)), dtype=bool),
        verdicts=np.asarray(batch.meta.get("stationarity", np.full(n, "")), dtype=object),
    )


def fill_refused(scores: np.ndarray, index: np.ndarray, n: int, *, carry: bool) -> np.ndarray:
    """Scores of the accepted rows (at input positions ``index``) spread over ``n`` rows.

    A refused row gets the score of the last accepted row before it (``carry``; 0 if there
    is none), or 0 (not ``carry``).

    >>> fill_refused(np.array([0.5, 0.9]), np.array([1, 3]), 5, carry=True).tolist()
    [0.0, 0.5, 0.5, 0.9, 0.9]
    >>> fill_refused(np.array([0.5, 0.9]), np.array([1, 3]), 5, carry=False).tolist()
    [0.0, 0.5, 0.0, 0.9, 0.0]
    """
    out = np.zeros(n)
    if index.size == 0:
        return out
    out[index] = scores
    if carry:
        last = np.full(n, -1, dtype=np.int64)
        last[index] = index
        last = np.maximum.accumulate(last)
        out = np.where(last >= 0, out[np.maximum(last, 0)], 0.0)
    return out


def rejection_summary(
    per_series: Mapping[str, tuple[tuple[int, str], ...]], fill: str, max_positions: int = 100
) -> dict[str, Any]:
    """The ``rejected`` entry of the result: counts by reason, per series, and the policy.

    >>> rejection_summary({"a.csv": ((3, "duplicate"),), "b.csv": ()}, "0")["reasons"]
    {'duplicate': 1}
    """
    total: Counter[str] = Counter()
    series: dict[str, Any] = {}
    for name, rejected in per_series.items():
        if not rejected:
            continue
        reasons = Counter(r for _, r in rejected)
        total.update(reasons)
        series[name] = {
            "rows": len(rejected),
            "reasons": dict(reasons),
            "positions": [int(i) for i, _ in rejected[:max_positions]],
        }
    return {"rows": sum(total.values()), "reasons": dict(total), "score": fill, "series": series}


# -- connections ----------------------------------------------------------------------------
@dataclass
class ConnectionFeatures:
    """Fitted pipeline and the feature rows of the fit, calibration and test connections."""

    pipeline: ConnectionFeaturePipeline
    names: list[str]
    fit: np.ndarray
    calibration: np.ndarray
    test: FeatureBatch
    train_rejected: tuple[tuple[int, str], ...]


def with_traffic(frame: pd.DataFrame, horizon_s: float = 2.0, last_n: int = 100) -> pd.DataFrame:
    """``frame`` with the 19 KDD traffic fields, derived over the whole frame if absent.

    A raw training file must get its traffic fields from *all* its connections in order
    (attacks included: they are part of the traffic a normal connection sees) before its
    normal rows are picked; KDD-format frames are returned as they are.
    """
    if all(f in frame for f in TRAFFIC_FIELDS):
        return frame
    derived = TrafficFeatureExtractor(horizon_s, last_n).update_frame(frame)
    out = frame.copy()
    out[list(TRAFFIC_FIELDS)] = derived
    return out


def connection_features(
    train: pd.DataFrame,
    fit_rows: np.ndarray,
    calibration_rows: np.ndarray,
    test: pd.DataFrame,
    **pipeline_options: Any,
) -> ConnectionFeatures:
    """Fit a :class:`~windowing.ConnectionFeaturePipeline` on ``train.iloc[fit_rows]``
    (normal connections), then featurise the fit, calibration and test rows.

    Training rows the pipeline refuses (missing or out-of-domain fields) are dropped and the
    pipeline is refitted without them. The test rows are featurised with fresh traffic
    windows (raw test connections derive their traffic fields from the test stream only).
    """
    pipe = ConnectionFeaturePipeline(**pipeline_options)
    train = with_traffic(train, pipe.horizon_s, pipe.last_n)
    if "dst_host" in train:
        # Traffic fields are in the frame now: the training rows must not move the
        # pipeline's own windows (they are a random subset, out of time order).
        train = train.drop(columns="dst_host")
    fit_frame = train.iloc[fit_rows]
    pipe.fit(fit_frame)
    fit_batch = pipe.update_many(fit_frame)
    rejected = [(int(fit_rows[i]), r) for i, r in fit_batch.rejected]
    if fit_batch.rejected:
        fit_frame = fit_frame.iloc[np.asarray(fit_batch.index)]
        if len(fit_frame) == 0:
            raise ValueError("every normal training connection was refused by the pipeline")
        pipe = ConnectionFeaturePipeline(**pipeline_options).fit(fit_frame)
        fit_batch = pipe.update_many(fit_frame)
    cal_batch = pipe.update_many(train.iloc[calibration_rows])
    rejected += [(int(calibration_rows[i]), r) for i, r in cal_batch.rejected]
    test_batch = pipe.update_many(test)
    names = list(pipe.names)
    assert names[: len(NUMERIC_FIELDS)] == list(NUMERIC_FIELDS)
    return ConnectionFeatures(
        pipe, names, fit_batch.values, cal_batch.values, test_batch, tuple(sorted(rejected))
    )
