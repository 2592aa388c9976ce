"""Scaling: robust online standardisation (sensors) and training-range scaling (connections).

:class:`RobustScaler` — ``z = (x - median) / (1.4826 · MAD)`` over the last ``window``
values, **score then learn** (a value never scales itself). Forgetting is the sliding
window: a level shift stops being "anomalous" once it fills the window. The median and
MAD are recomputed every ``refresh_every`` values (and after each of the first
``refresh_every``), which bounds the cost per reading and lets the vectorised path compute
exactly the same numbers as the one-at-a-time path; :func:`rolling_robust_scale` is the
plain batch reference of the same definition.

When the window has no spread (MAD = 0: a flat signal or mostly repeated values) the scale
falls back to 1.2533 × the mean absolute deviation, then to 1.0, so ``z`` stays finite;
``z`` is also clipped to ``±clip``.

:class:`RangeScaler` — bounds learned from training data (min/max or quantiles), values
mapped to [0, 1], clipped, with a per-value "out of training range" mask.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "RangeScaler",
    "RobustScaler",
    "robust_location_scale",
    "rolling_robust_scale",
]

#: MAD × this estimates σ for Gaussian data.
MAD_TO_SIGMA = 1.482602218505602
#: Mean absolute deviation × this estimates σ for Gaussian data (sqrt(pi / 2)).
MEAN_AD_TO_SIGMA = 1.2533141373155001
#: IQR × this estimates σ for Gaussian data.
IQR_TO_SIGMA = 0.7413011092528009

_METHODS = ("mad", "iqr", "none")
# Windows per chunk in the vectorised path: bounds the temporary (chunk, window) matrix.
_CHUNK = 4096


def robust_location_scale(window: Any, method: str = "mad") -> tuple[Any, Any]:
    """Median and robust σ of each row of ``window`` (last axis), with the flat fallbacks.

    >>> robust_location_scale([1.0, 2.0, 3.0, 4.0, 100.0])
    (3.0, 1.482602218505602)
    >>> robust_location_scale([5.0, 5.0, 5.0, 9.0])  # MAD is 0: mean-AD fallback
    (5.0, 1.2533141373155001)
    >>> robust_location_scale([5.0, 5.0])
    (5.0, 1.0)

    ``method="none"`` keeps values in their own units (centre 0, scale 1), for detectors
    that learn the scale of their input themselves:

    >>> robust_location_scale([1.0, 2.0, 300.0], method="none")
    (0.0, 1.0)
    """
    w = np.asarray(window, dtype=np.float64)
    if method == "none":
        if w.ndim == 1:
            return 0.0, 1.0
        return np.zeros(w.shape[:-1]), np.ones(w.shape[:-1])
    center = np.median(w, axis=-1)
    dev = np.abs(w - center[..., None]) if w.ndim > 1 else np.abs(w - center)
    if method == "mad":
        spread = MAD_TO_SIGMA * np.median(dev, axis=-1)
    elif method == "iqr":
        q75, q25 = np.quantile(w, [0.75, 0.25], axis=-1)
        spread = IQR_TO_SIGMA * (q75 - q25)
    else:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(_METHODS)}")
    spread = np.where(spread > 0, spread, MEAN_AD_TO_SIGMA * np.mean(dev, axis=-1))
    spread = np.where(spread > 0, spread, 1.0)
    if w.ndim == 1:
        return float(center), float(spread)
    return center, spread


def _refresh_counts(first: int, last: int, every: int) -> np.ndarray:
    """Counts in ``[first, last]`` after which the parameters are recomputed."""
    if last < first:
        return np.empty(0, dtype=np.int64)
    early = np.arange(max(first, 1), min(last, every) + 1, dtype=np.int64)
    start = max(first, every + 1)
    k0 = -(-start // every) * every
    periodic = np.arange(k0, last + 1, every, dtype=np.int64)
    return np.concatenate([early, periodic])


class RobustScaler:
    """Online robust standardisation over a sliding window.

    Parameters
    ----------
    window
        Values remembered (the forgetting horizon).
    refresh_every
        Values between recomputations of median and spread.
    method
        ``"mad"`` (median absolute deviation), ``"iqr"`` (inter-quartile range) or
        ``"none"`` (no scaling: ``z`` is the value itself, the first one included, not
        clipped).
    clip
        ``|z|`` is clipped here so downstream arithmetic stays finite (not with
        ``method="none"``: a finite value is its own bound).

    >>> sc = RobustScaler(window=5, refresh_every=2)
    >>> [round(sc.update_one(x), 3) for x in (10.0, 11.0, 12.0, 11.0, 30.0)]
    [0.0, 1.0, 2.023, 0.674, 25.631]
    >>> sc2 = RobustScaler(window=5, refresh_every=2)
    >>> sc2.update_many([10.0, 11.0, 12.0, 11.0, 30.0]).round(3).tolist()
    [0.0, 1.0, 2.023, 0.674, 25.631]
    """

    def __init__(
        self,
        window: int = 256,
        refresh_every: int = 16,
        method: str = "mad",
        clip: float = 1e6,
    ) -> None:
        if window < 1 or refresh_every < 1:
            raise ValueError("window and refresh_every must be >= 1")
        if method not in _METHODS:
            raise ValueError(f"unknown method {method!r}; known: {', '.join(_METHODS)}")
        self.window = window
        self.refresh_every = refresh_every
        self.method = method
        self.clip = clip
        self.n_seen = 0
        self.center = 0.0
        self.scale = 1.0
        # Unscaled values need no history: a state holds none, which keeps the checkpoint
        # of a sensor fed to a level detector small.
        self._buffer: deque[float] = deque(maxlen=0 if method == "none" else window)

    @property
    def _limit(self) -> float:
        return math.inf if self.method == "none" else self.clip

    def _z(self, x: float) -> float:
        if self.n_seen == 0 and self.method != "none":
            return 0.0
        z = (x - self.center) / self.scale
        return min(self._limit, max(-self._limit, z))

    def transform_one(self, x: float) -> float:
        """``z`` of ``x`` under the current parameters (0.0 before anything was learned)."""
        return self._z(float(x))

    def learn_one(self, x: float) -> None:
        """Add ``x`` to the window; recompute the parameters if due."""
        self._buffer.append(float(x))
        self.n_seen += 1
        if self.method == "none":
            return
        if self.n_seen <= self.refresh_every or self.n_seen % self.refresh_every == 0:
            self.center, self.scale = robust_location_scale(
                np.fromiter(self._buffer, np.float64), self.method
            )

    def update_one(self, x: float) -> float:
        """Score, then learn."""
        z = self.transform_one(x)
        self.learn_one(x)
        return z

    def update_many(self, values: Any) -> np.ndarray:
        """:meth:`update_one` over an array, vectorised. NaN inputs give NaN and are not learned."""
        x = np.asarray(values, dtype=np.float64)
        out = np.full(x.shape, np.nan)
        valid = ~np.isnan(x)
        if not valid.all():
            out[valid] = self.update_many(x[valid])
            return out
        m = x.size
        if m == 0:
            return out
        if self.method == "none":
            self.n_seen += m
            return x.copy()
        n0 = self.n_seen
        buffered = np.fromiter(self._buffer, np.float64)
        combined = np.concatenate([buffered, x])
        offset = buffered.size - n0  # combined index of the value number `count` is count+offset-1
        refresh = _refresh_counts(n0 + 1, n0 + m, self.refresh_every)
        centers = np.empty(refresh.size)
        scales = np.empty(refresh.size)
        ends = refresh + offset
        starts = ends - self.window
        ragged = np.flatnonzero(starts < 0)
        for k in ragged:
            centers[k], scales[k] = robust_location_scale(combined[: ends[k]], self.method)
        full = np.flatnonzero(starts >= 0)
        if full.size:
            views = sliding_window_view(combined, self.window)
            for chunk in range(0, full.size, _CHUNK):
                rows = full[chunk : chunk + _CHUNK]
                c, s = robust_location_scale(views[starts[rows]], self.method)
                centers[rows], scales[rows] = c, s
        counts_before = np.arange(n0, n0 + m)
        which = np.searchsorted(refresh, counts_before, side="right") - 1
        # Rows before the batch's first refresh use the parameters already in force.
        centers = np.concatenate([[self.center], centers])
        scales = np.concatenate([[self.scale], scales])
        center, scale = centers[which + 1], scales[which + 1]
        # A huge value over a tiny scale overflows to ±inf: the clip is what it means.
        with np.errstate(over="ignore"):
            out = np.clip((x - center) / scale, -self._limit, self._limit)
        if n0 == 0 and self.method != "none":
            out[0] = 0.0
        self.center, self.scale = float(centers[-1]), float(scales[-1])
        self._buffer.extend(x[-self.window :].tolist())
        self.n_seen = n0 + m
        return out

    def to_state(self) -> dict[str, Any]:
        """JSON-able state; :meth:`from_state` resumes exactly."""
        return {
            "window": self.window,
            "refresh_every": self.refresh_every,
            "method": self.method,
            "clip": self.clip,
            "n_seen": self.n_seen,
            "center": self.center,
            "scale": self.scale,
            "buffer": list(self._buffer),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RobustScaler:
        sc = cls(state["window"], state["refresh_every"], state["method"], state["clip"])
        sc.n_seen = int(state["n_seen"])
        sc.center = float(state["center"])
        sc.scale = float(state["scale"])
        sc._buffer.extend(float(v) for v in state["buffer"])
        return sc


def rolling_robust_scale(
    values: Any,
    window: int = 256,
    refresh_every: int = 16,
    method: str = "mad",
    clip: float = 1e6,
) -> np.ndarray:
    """Batch reference of :class:`RobustScaler`: a direct loop over the definition.

    ``z[t]`` uses the median/spread of ``x[max(0, r - window) : r]`` where ``r`` is the last
    refresh count ``<= t`` (``r <= refresh_every`` or a multiple of it); ``z[0] = 0``
    (``method="none"``: ``z = x``, unclipped).

    >>> rolling_robust_scale([10.0, 11.0, 12.0, 11.0, 30.0], window=5, refresh_every=2).round(3)
    array([ 0.   ,  1.   ,  2.023,  0.674, 25.631])
    """
    x = np.asarray(values, dtype=np.float64)
    if method == "none":
        return x.copy()
    out = np.zeros(x.size)
    for t in range(1, x.size):
        r = t if t <= refresh_every else t - t % refresh_every
        center, scale = robust_location_scale(x[max(0, r - window) : r], method)
        with np.errstate(over="ignore"):  # ±inf is clipped, as in the online scaler
            out[t] = min(clip, max(-clip, (x[t] - center) / scale))
    return out


class RangeScaler:
    """Scale each column to [0, 1] with bounds learned from training data; clip; flag.

    Parameters
    ----------
    quantiles
        ``(low, high)`` quantiles of the training data used as bounds; ``(0, 1)`` is
        min/max. Narrower bounds (e.g. ``(0.001, 0.999)``) ignore training outliers.

    >>> sc = RangeScaler().fit(np.array([[0.0, 5.0], [10.0, 5.0]]))
    >>> scaled, outside = sc.transform(np.array([[5.0, 5.0], [20.0, 4.0]]))
    >>> scaled.tolist(), outside.tolist()
    ([[0.5, 0.0], [1.0, 0.0]], [[False, False], [True, True]])
    """

    def __init__(self, quantiles: tuple[float, float] = (0.0, 1.0)) -> None:
        low, high = quantiles
        if not 0.0 <= low < high <= 1.0:
            raise ValueError(f"quantiles must satisfy 0 <= low < high <= 1, got {quantiles}")
        self.quantiles = (float(low), float(high))

    def fit(self, data: Any) -> RangeScaler:
        """Learn per-column bounds from the rows of ``data``."""
        arr = np.asarray(data, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[0] == 0:
            raise ValueError("fit needs a non-empty 2-D array")
        if self.quantiles == (0.0, 1.0):
            self.low_, self.high_ = arr.min(axis=0), arr.max(axis=0)
        else:
            self.low_, self.high_ = np.quantile(arr, self.quantiles, axis=0)
        return self

    @property
    def span_(self) -> np.ndarray:
        span = self.high_ - self.low_
        # A column constant in training: any other value is out of range, and the unclipped
        # scaled value is simply its distance from the training value.
        return np.where(span > 0, span, 1.0)

    def scale(self, data: Any) -> np.ndarray:
        """Scaled but not clipped: how far outside the training range a value is."""
        return (np.asarray(data, dtype=np.float64) - self.low_) / self.span_

    def transform(self, data: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(clipped scaled values, out-of-training-range mask)``."""
        arr = np.asarray(data, dtype=np.float64)
        scaled = self.scale(arr)
        outside = (arr < self.low_) | (arr > self.high_)
        return np.clip(scaled, 0.0, 1.0), outside

    def to_state(self) -> dict[str, Any]:
        return {
            "quantiles": list(self.quantiles),
            "low": self.low_.tolist(),
            "high": self.high_.tolist(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RangeScaler:
        sc = cls(tuple(state["quantiles"]))  # type: ignore[arg-type]
        sc.low_ = np.asarray(state["low"], dtype=np.float64)
        sc.high_ = np.asarray(state["high"], dtype=np.float64)
        return sc
