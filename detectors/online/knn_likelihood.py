"""Nearest-past-window novelty, judged by an anomaly likelihood, with rest after an alarm.

Three stages, one pass, score-then-learn, per reading:

1. **Raw novelty** (after KNN-CAD): the last ``window`` readings form a vector; its raw
   score is the Euclidean distance to the nearest of the windows ending in the last
   ``memory`` readings, raised to ``power`` (< 1 tempers the heavy tail of distances). A
   spike, a level never seen, a flat stretch where a daily wave should be, all make
   windows unlike any seen before.
2. **Anomaly likelihood** (after HTM's post-processing): an exponentially weighted
   average of the raw scores (weight ``smoothing`` on the newest) is compared with the
   long-term distribution of that average (exponentially weighted mean and variance,
   half-life ``half_life`` readings) as a Gaussian upper tail probability ``p``. A series
   whose windows are always somewhat novel (a noisy sensor) gets used to it; a run of
   novel windows in a calm series does not.
3. **Rest** (episode logic): once ``p < alarm`` the episode is open, and its scores are
   capped at ``rest_score`` (below ``1 - alarm``) until at least ``rest`` readings have
   passed *and* the last ``quiet`` readings were calm (``p > calm``): one alarm per
   episode, as NAB credits only the earliest detection in a window and charges every
   detection outside one.

The score is ``1 - p`` (``p`` floored at ``min_tail``, so never exactly 1.0).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from detectors.base import Detector, check_matrix

__all__ = ["KNNLikelihood"]

_SQRT2 = math.sqrt(2.0)


class KNNLikelihood(Detector):
    """Nearest-past-window distance -> anomaly likelihood -> rest after an alarm.

    Parameters
    ----------
    window
        Readings per window (the pattern length compared).
    memory
        Past windows the current one is compared with (the most recent ones).
    min_neighbours
        Past windows needed before a raw score is computed (0 before).
    power
        Exponent applied to the nearest-window distance.
    smoothing
        Weight of the newest raw score in the short-term average that is judged
        (HTM averages its raw scores over a short window for the same reason).
    half_life
        Half-life, in readings, of the long-term mean and variance of that average (until
        then, plain running mean and variance).
    learn_period
        Readings before the likelihood speaks (score 0 until then).
    alarm
        Tail probability below which an episode opens.
    rest, quiet, calm
        An episode lasts at least ``rest`` readings and until ``quiet`` readings in a row
        had ``p > calm``.
    rest_score
        Highest score during an episode after its first reading (below ``1 - alarm``, so
        nothing alarms again; lower scores are left as they are, which keeps the share of
        scores above a level honest).
    resolution
        Relative precision of the readings: the part of a window's distance below
        ``resolution`` times the window's largest magnitude is measurement noise, not
        novelty (a flat sensor's last-digit wiggle is not an anomaly).
    rel_floor
        Floor of the long-term spread, relative to the long-term mean (and at least
        ``1e-9``): a perfectly steady score does not make the next wobble infinitely rare.
    min_tail
        Smallest tail probability reported (keeps the score below 1.0).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> t = np.arange(1200)
    >>> x = np.sin(2 * np.pi * t / 50) + 0.05 * rng.normal(size=t.size)
    >>> det = KNNLikelihood(memory=400).learn_many(x[:1000, None])
    >>> normal = det.score_learn(x[1000:, None])  # score each reading, then learn it
    >>> odd = det.score_one([3.0])  # a reading far from the wave
    >>> bool(normal.max() < 0.99 < odd < 1.0)
    True
    """

    name = "knn_likelihood"
    online = True

    def __init__(
        self,
        window: int = 8,
        memory: int = 1500,
        min_neighbours: int = 10,
        power: float = 0.7,
        smoothing: float = 0.2,
        half_life: float = 10_000.0,
        learn_period: int = 150,
        alarm: float = 5e-4,
        rest: int = 200,
        quiet: int = 50,
        calm: float = 0.01,
        rest_score: float = 0.99,
        resolution: float = 1e-5,
        rel_floor: float = 1e-3,
        min_tail: float = 1e-12,
    ) -> None:
        self.window = window
        self.memory = memory
        self.min_neighbours = min_neighbours
        self.power = power
        self.smoothing = smoothing
        self.half_life = half_life
        self.learn_period = learn_period
        self.alarm = alarm
        self.rest = rest
        self.quiet = quiet
        self.calm = calm
        self.rest_score = rest_score
        self.resolution = resolution
        self.rel_floor = rel_floor
        self.min_tail = min_tail

    @classmethod
    def fast_params(cls) -> dict[str, Any]:
        return {"memory": 200, "learn_period": 50, "rest": 0, "quiet": 0}

    # -- the one-pass recursion -----------------------------------------------------------
    def _check_params(self) -> None:
        if self.window < 1 or self.memory < 1:
            raise ValueError("window and memory must be at least 1")
        if not 0 < self.smoothing <= 1 or self.power <= 0:
            raise ValueError("smoothing must be in (0, 1] and power > 0")
        if self.half_life <= 0 or not 0 < self.alarm < 1:
            raise ValueError("half_life must be > 0 and alarm in (0, 1)")
        if self.rest_score >= 1 - self.alarm:
            raise ValueError("rest_score must be below 1 - alarm")

    def _fresh(self, d: int) -> dict[str, Any]:
        return {
            "history": np.empty((0, d)),
            "avg": 0.0,
            "count": 0,
            "mean": 0.0,
            "var": 0.0,
            "hold": 0,
            "quiet": 0,
            "resting": False,
        }

    def _state(self) -> dict[str, Any]:
        if not hasattr(self, "history_"):
            return self._fresh(self.n_features_in_)
        return {
            "history": self.history_,
            "avg": self.avg_,
            "count": self.count_,
            "mean": self.lik_mean_,
            "var": self.lik_var_,
            "hold": self.hold_,
            "quiet": self.quiet_,
            "resting": bool(self.resting_),
        }

    def _nearest(self, hist: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The window ending at ``hist``'s last row and its nearest earlier window, or
        None while there are too few earlier windows."""
        w, end = self.window, len(hist)
        lo = max(0, end - self.memory - w)  # oldest row a past window may start on
        if end - w - lo < self.min_neighbours:  # past windows hist[j:j+w], lo <= j < end-w
            return None
        cur = hist[end - w :]
        past = np.lib.stride_tricks.sliding_window_view(hist[lo : end - 1], w, axis=0)
        diff = past - cur.T[None]  # (n_past, d, w)
        best = int(np.einsum("ijk,ijk->i", diff, diff).argmin())
        return cur, past[best].T

    def _novelty(self, cur: np.ndarray, near: np.ndarray, axis: int | None = None) -> Any:
        """Distance of ``cur`` to ``near`` (per column with ``axis=0``), less the readings'
        precision, raised to ``power``."""
        # Readings near the float limit overflow to an infinite distance: maximal novelty.
        with np.errstate(over="ignore"):
            dist = np.sqrt(((cur - near) ** 2).sum(axis=axis))
        tol = self.resolution * float(np.abs(cur).max())
        return np.maximum(dist - tol, 0.0) ** self.power

    def _raw(self, hist: np.ndarray) -> float:
        """Novelty of the window ending at ``hist``'s last row (0 with too few before it)."""
        pair = self._nearest(hist)
        return 0.0 if pair is None else float(self._novelty(*pair))

    def _step(self, st: dict[str, Any], x: np.ndarray) -> tuple[float, float, dict[str, Any]]:
        """Score, tail probability and the state after reading ``x``, from state ``st``."""
        keep = self.memory + self.window - 1
        hist = np.vstack([st["history"][-keep:], x[None]])
        raw = self._raw(hist)
        count, mean, var = st["count"], st["mean"], st["var"]
        avg = raw if count == 0 else st["avg"] + self.smoothing * (raw - st["avg"])
        p = 1.0
        if count >= self.learn_period:
            spread = max(math.sqrt(max(var, 0.0)), self.rel_floor * abs(mean), 1e-9)
            p = 0.5 * math.erfc((avg - mean) / spread / _SQRT2)
        p = max(p, self.min_tail)
        hold, quiet, resting = st["hold"], st["quiet"], st["resting"]
        if resting:
            score = min(1.0 - p, self.rest_score)
            hold = max(hold - 1, 0)
            quiet = quiet + 1 if p > self.calm else 0
            resting = not (hold == 0 and quiet >= self.quiet)
        else:
            score = 1.0 - p
            if p < self.alarm:
                resting, hold, quiet = True, self.rest, 0
        count += 1
        rate = max(1.0 - 0.5 ** (1.0 / self.half_life), 1.0 / count)
        delta = avg - mean
        mean += rate * delta
        var = (1.0 - rate) * (var + rate * delta * delta)
        new = {
            "history": hist[-keep:],
            "avg": avg,
            "count": count,
            "mean": mean,
            "var": var,
            "hold": hold,
            "quiet": quiet,
            "resting": resting,
        }
        return score, p, new

    # -- protocol -------------------------------------------------------------------------
    def _learn(self, X: np.ndarray) -> None:
        self._check_params()
        pending = getattr(self, "_pending", None)
        if len(X) == 1 and pending is not None and pending[0] == X.tobytes():
            st = pending[1]
        else:
            st = self._state()
            for x in X:
                st = self._step(st, x)[2]
        self._pending = None
        self.history_ = np.array(st["history"], dtype=np.float64)
        self.avg_ = float(st["avg"])
        self.count_ = int(st["count"])
        self.lik_mean_ = float(st["mean"])
        self.lik_var_ = float(st["var"])
        self.hold_ = int(st["hold"])
        self.quiet_ = int(st["quiet"])
        self.resting_ = bool(st["resting"])

    def _scores_and_tails(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        X = self._check_input(X)
        self._check_params()
        st = self._state()
        out = [self._step(st, x) for x in X]
        # Streams learn the reading they just scored: keep its state for learn_many.
        self._pending = (X.tobytes(), out[0][2]) if len(X) == 1 else None
        return (
            np.array([o[0] for o in out], dtype=np.float64),
            np.array([o[1] for o in out], dtype=np.float64),
        )

    def explain(self, X: Any) -> np.ndarray:
        """Per-column novelty of each row's window against its nearest earlier window (in
        the raw score's units: the distance of that column's readings, to the ``power``)."""
        X = self._check_input(X)
        keep = self.memory + self.window - 1
        history = self._state()["history"][-keep:]
        out = np.zeros_like(X)
        for i, x in enumerate(X):
            pair = self._nearest(np.vstack([history, x[None]]))
            if pair is not None:
                out[i] = self._novelty(*pair, axis=0)
        return out

    def normal_contribution(self) -> np.ndarray | None:
        """The long-term mean of the smoothed raw score, for every column: an alert's
        ``ratio_to_normal`` says how many times more novel than usual its window is."""
        if not self.is_fitted:
            return None
        usual = max(getattr(self, "lik_mean_", 0.0), 1e-12)
        return np.full(self.n_features_in_, usual)

    def score_many(self, X: Any) -> np.ndarray:
        """Score of each row as the next reading after those learned (rows independent)."""
        return self._scores_and_tails(X)[0]

    def tail_probabilities(self, X: Any) -> np.ndarray:
        """The likelihood's tail probability ``p`` of each row (before the rest damping)."""
        return self._scores_and_tails(X)[1]

    def score_learn(self, X: Any) -> np.ndarray:
        """Score each row, then learn it, in order (one pass over a stream)."""
        X = check_matrix(X, self.n_features_in_ if self.is_fitted else None)
        out = np.empty(len(X))
        for i in range(len(X)):
            row = X[i : i + 1]
            out[i] = self.score_many(row)[0] if self.is_fitted else 0.0
            self.learn_many(row)
        return out

    def reset(self) -> None:
        super().reset()
        self._pending = None

    def _restore_state(self, state: dict[str, Any]) -> None:
        super()._restore_state(state)
        if hasattr(self, "history_"):  # a member template of an ensemble has none
            self.history_ = np.asarray(self.history_, dtype=np.float64).reshape(
                -1, self.n_features_in_
            )
        self._pending = None
