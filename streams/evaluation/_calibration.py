"""Raw detector scores → [0, 1] as a tail probability under reference scores.

STOPGAP: ``detectors/calibration.py`` owns calibration for the stream. Until it lands the
harness needs *some* mapping to [0, 1] (NAB's result files and corpus-wide threshold demand
comparable scores across series), so this module does the design's rule in its simplest
form: ``score = 1 - P(reference >= raw)``, with the reference being the recent raw scores
(online) or held-out normal training scores (batch).

Above the largest reference score the empirical tail is extended exponentially with the
mean excess over the reference's upper decile, so that events beyond anything seen before
are still ordered among themselves instead of tying at ``1 - 1/(n+1)``.
"""

from __future__ import annotations

import bisect
import math
from collections import deque

import numpy as np

__all__ = ["ReferenceCalibrator", "RunningCalibrator", "tail_score"]

_TAIL_FRACTION = 0.1


def _tail_scale(sorted_ref: np.ndarray) -> float:
    n = sorted_ref.size
    top = sorted_ref[int(n * (1 - _TAIL_FRACTION)) :]
    scale = float(np.mean(top - top[0])) if top.size else 0.0
    # A flat reference (all equal) has no tail to measure: fall back to a relative epsilon.
    return max(scale, 1e-9 * (abs(float(sorted_ref[-1])) + 1.0))


def tail_score(sorted_ref: np.ndarray, raw: np.ndarray, scale: float | None = None) -> np.ndarray:
    """``1 - p_tail`` of ``raw`` under the sorted reference sample (mid-rank for ties).

    >>> ref = np.arange(99.0)
    >>> tail_score(ref, np.array([-1.0, 49.0, 98.0, 1e6])).round(4).tolist()
    [0.0, 0.495, 0.985, 1.0]
    """
    raw = np.asarray(raw, dtype=np.float64)
    n = sorted_ref.size
    if n == 0:
        return np.zeros_like(raw)
    below = np.searchsorted(sorted_ref, raw, side="left")
    upto = np.searchsorted(sorted_ref, raw, side="right")
    p_tail = (n - 0.5 * (below + upto) + 1.0) / (n + 1.0)
    beyond = raw > sorted_ref[-1]
    if beyond.any():
        s = _tail_scale(sorted_ref) if scale is None else scale
        p_tail = np.where(beyond, np.exp(-(raw - sorted_ref[-1]) / s) / (n + 1.0), p_tail)
    return np.clip(1.0 - p_tail, 0.0, 1.0)


class ReferenceCalibrator:
    """Tail probability under a fixed reference sample (e.g. held-out normal rows)."""

    def __init__(self, reference: np.ndarray) -> None:
        ref = np.asarray(reference, dtype=np.float64).reshape(-1)
        self.reference_ = np.sort(ref[np.isfinite(ref)])
        self.scale_ = _tail_scale(self.reference_) if self.reference_.size else 1.0

    def transform(self, raw: np.ndarray) -> np.ndarray:
        return tail_score(self.reference_, raw, self.scale_)


class RunningCalibrator:
    """Tail probability under the last ``window`` raw scores, never the current one.

    ``step(raw)`` calibrates against the history, *then* adds ``raw`` to it: no look-ahead.
    Until ``min_history`` scores are in, or for a NaN raw score (detector not ready), the
    calibrated score is 0.
    """

    def __init__(self, window: int = 2000, min_history: int = 30) -> None:
        self.window = window
        self.min_history = min_history
        self._fifo: deque[float] = deque()
        self._sorted: list[float] = []

    def step(self, raw: float) -> float:
        if not np.isfinite(raw):
            return 0.0
        out = self._calibrate(raw) if len(self._sorted) >= self.min_history else 0.0
        bisect.insort(self._sorted, raw)
        self._fifo.append(raw)
        if len(self._fifo) > self.window:
            old = self._fifo.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, old)]
        return out

    def _calibrate(self, raw: float) -> float:
        # tail_score() for one value, in plain Python: converting the history to an array
        # on every event would dominate the replay time.
        s = self._sorted
        n = len(s)
        if raw > s[-1]:
            top = s[int(n * (1 - _TAIL_FRACTION)) :]
            scale = max(sum(top) / len(top) - top[0], 1e-9 * (abs(s[-1]) + 1.0))
            p_tail = math.exp(-(raw - s[-1]) / scale) / (n + 1.0)
        else:
            mid = 0.5 * (bisect.bisect_left(s, raw) + bisect.bisect_right(s, raw))
            p_tail = (n - mid + 1.0) / (n + 1.0)
        return min(max(1.0 - p_tail, 0.0), 1.0)

    def run(self, raw: np.ndarray) -> np.ndarray:
        """Calibrate a whole sequence in order (equivalent to calling :meth:`step` per row)."""
        return np.fromiter((self.step(float(r)) for r in raw), dtype=np.float64, count=len(raw))
