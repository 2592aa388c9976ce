"""Feature extraction for the evaluation harness.

STOPGAP: ``windowing`` will provide the sensor and connection feature pipelines the stream
uses; the harness must then call those so it measures what runs in production. Until then
these two small transforms stand in for them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from streams.evaluation.kdd_categories import SYMBOLIC_COLUMNS

__all__ = ["SENSOR_FEATURES", "NumericScaler", "sensor_features", "time_features"]

#: Sensor feature modes: first differences (stationary), raw level, both, or the first
#: difference followed by hour-of-day and day-of-week on the circle (sin, cos each).
SENSOR_FEATURES = ("diff", "level", "diff+level", "diff+time")

_DAY_S = 86400.0


def time_features(timestamps: np.ndarray) -> np.ndarray:
    """``hour_sin, hour_cos, dow_sin, dow_cos`` of naive timestamps (taken as local time).

    >>> time_features(np.array(["1970-01-01T06:00"], dtype="datetime64[ns]")).round(3).tolist()
    [[1.0, 0.0, 0.223, -0.975]]
    """
    secs = np.asarray(timestamps, dtype="datetime64[ns]").astype(np.int64) / 1e9
    day_frac = np.mod(secs, _DAY_S) / _DAY_S
    # 1970-01-01 was a Thursday (Monday = 0 → 3).
    dow = np.mod(np.floor(secs / _DAY_S) + 3, 7) + day_frac
    two_pi = 2 * np.pi
    return np.column_stack(
        [
            np.sin(two_pi * day_frac),
            np.cos(two_pi * day_frac),
            np.sin(two_pi * dow / 7),
            np.cos(two_pi * dow / 7),
        ]
    )


def sensor_features(
    values: np.ndarray, mode: str = "diff", timestamps: np.ndarray | None = None
) -> tuple[np.ndarray, list[str]]:
    """Causal per-row features of a univariate series.

    ``diff`` is ``x[t] - x[t-1]`` (0 for the first row): a level shift becomes one spike and
    slow trends disappear, so a windowed robust z-score sees a stationary input.

    >>> mat, names = sensor_features(np.array([1.0, 3.0, 2.0]), "diff+level")
    >>> mat.tolist(), names
    ([[0.0, 1.0], [2.0, 3.0], [-1.0, 2.0]], ['diff', 'level'])
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    diff = np.r_[0.0, np.diff(x)] if x.size else x
    if mode == "diff":
        return diff.reshape(-1, 1), ["diff"]
    if mode == "level":
        return x.reshape(-1, 1), ["level"]
    if mode == "diff+level":
        return np.column_stack([diff, x]), ["diff", "level"]
    if mode == "diff+time":
        if timestamps is None:
            raise ValueError("feature mode 'diff+time' needs timestamps")
        return np.column_stack([diff, time_features(timestamps)]), [
            "diff",
            "hour_sin",
            "hour_cos",
            "dow_sin",
            "dow_cos",
        ]
    raise ValueError(f"unknown sensor feature mode {mode!r}; known: {', '.join(SENSOR_FEATURES)}")


class NumericScaler:
    """Numeric columns only, ``log1p`` on heavy-tailed counts, standardised on fit rows.

    Fitted on normal training rows; symbolic columns (``protocol_type``, ``service``,
    ``flag`` for KDD) are dropped, because a z-score detector has no sensible distance for
    them.
    """

    def __init__(self, drop: Sequence[str] = SYMBOLIC_COLUMNS, min_std: float = 1e-6) -> None:
        self.drop = tuple(drop)
        self.min_std = min_std

    def _numeric(self, df: pd.DataFrame) -> pd.DataFrame:
        return df.drop(columns=[c for c in self.drop if c in df.columns]).select_dtypes(
            include=["number", "bool"]
        )

    def fit(self, df: pd.DataFrame) -> NumericScaler:
        num = self._numeric(df)
        self.columns_ = list(num.columns)
        mat = num.to_numpy(dtype=np.float64)
        # Byte and packet counts span orders of magnitude; rates live in [0, 1].
        self.log_ = (mat.min(axis=0) >= 0) & (mat.max(axis=0) > 1.0)
        mat = self._log(mat)
        self.mean_ = mat.mean(axis=0)
        self.std_ = np.maximum(mat.std(axis=0), self.min_std)
        return self

    def _log(self, mat: np.ndarray) -> np.ndarray:
        mat = mat.copy()
        mat[:, self.log_] = np.log1p(np.maximum(mat[:, self.log_], 0.0))
        return mat

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        mat = df[self.columns_].to_numpy(dtype=np.float64)
        return (self._log(mat) - self.mean_) / self.std_
