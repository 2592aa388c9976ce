"""Page-Hinkley change detection with a JSON state, and its threshold for a target ARL.

:class:`PageHinkley` is river's ``drift.PageHinkley`` (river 0.26) re-implemented line for
line: the same parameters, the same arithmetic in the same order, so the same inputs give
the same detections (``tests/unit/retrain/test_drift.py`` checks it against river on
random streams and parameters). It exists because a river detector's state is not JSON
(and river's ADWIN keeps its window in a Rust object that only pickles), while a
monitor's state goes into the stream's JSON checkpoints.

With ``alpha = 1`` (no forgetting) the test is a two-sided CUSUM of the deviations from
the running mean: ``max_j sum_{i=j..t} (x_i - mean_i - delta) > threshold`` (and the
mirror image for decreases). For standardised Gaussian input that is Page's CUSUM with
reference value ``k = delta``, whose in-control average run length (ARL: values between
false alarms) Siegmund's approximation gives; :func:`threshold_for_arl` inverts it.
river's defaults (``delta=0.005``, ``threshold=50``, ``alpha=1 - 1e-4``) are tuned for
nothing in particular: on standard Gaussian noise they fire every few thousand values.
"""

from __future__ import annotations

import math
from typing import Any

from scipy import optimize

__all__ = ["PageHinkley", "cusum_arl", "threshold_for_arl"]

_MODES = ("up", "down", "both")
# Siegmund's correction for the overshoot of a Gaussian random walk over the boundary.
_OVERSHOOT = 1.166


class PageHinkley:
    """Page-Hinkley test for a change in the mean (river-equivalent, JSON state).

    Parameters
    ----------
    min_instances
        Values seen before a change can be signalled.
    delta
        Magnitude of change tolerated (the CUSUM reference value ``k``).
    threshold
        Detection threshold ``lambda`` on the cumulative deviation.
    alpha
        Forgetting factor of the cumulative sums (1: none).
    mode
        ``"up"`` (increases), ``"down"`` (decreases) or ``"both"``.

    Examples
    --------
    The example of river's documentation, same answer:

    >>> import random
    >>> rng = random.Random(12345)
    >>> ph = PageHinkley()
    >>> stream = rng.choices([0, 1], k=1000) + rng.choices(range(4, 8), k=1000)
    >>> [i for i, v in enumerate(stream) if ph.update(v)]
    [1006]
    """

    def __init__(
        self,
        min_instances: int = 30,
        delta: float = 0.005,
        threshold: float = 50.0,
        alpha: float = 1 - 0.0001,
        mode: str = "both",
    ) -> None:
        if mode not in _MODES:
            raise ValueError(f"Invalid 'mode'. Valid values are: {list(_MODES)}")
        self.min_instances = min_instances
        self.delta = delta
        self.threshold = threshold
        self.alpha = alpha
        self.mode = mode
        self._reset()

    def _reset(self) -> None:
        self.drift_detected = False
        self.n = 0.0  # river's stats.Mean counts weights as floats
        self.mean = 0.0
        self.sum_increase = 0.0
        self.sum_decrease = 0.0
        self.min_increase = math.inf
        # river starts the maximum at -1, not -inf; kept for identical decisions.
        self.max_decrease = -1.0

    def reset(self) -> None:
        """Forget everything, as after a detection."""
        self._reset()

    @property
    def test_increase(self) -> float:
        """The statistic for an increase (compared with ``threshold``)."""
        return self.sum_increase - self.min_increase

    @property
    def test_decrease(self) -> float:
        """The statistic for a decrease (compared with ``threshold``)."""
        return self.max_decrease - self.sum_decrease

    def update(self, x: float) -> bool:
        """Add ``x``; True if it signals a change (the next update starts afresh)."""
        if self.drift_detected:
            self._reset()
        self.n += 1.0
        self.mean += (1.0 / self.n) * (x - self.mean)
        dev = x - self.mean
        self.sum_increase = self.alpha * self.sum_increase + dev - self.delta
        self.sum_decrease = self.alpha * self.sum_decrease + dev + self.delta
        if self.sum_increase < self.min_increase:
            self.min_increase = self.sum_increase
        if self.sum_decrease > self.max_decrease:
            self.max_decrease = self.sum_decrease
        if self.n >= self.min_instances:
            up = self.test_increase > self.threshold
            down = self.test_decrease > self.threshold
            if self.mode == "up":
                self.drift_detected = up
            elif self.mode == "down":
                self.drift_detected = down
            else:
                self.drift_detected = up or down
        return self.drift_detected

    def get_params(self) -> dict[str, Any]:
        return {
            "min_instances": self.min_instances,
            "delta": self.delta,
            "threshold": self.threshold,
            "alpha": self.alpha,
            "mode": self.mode,
        }

    def to_state(self) -> dict[str, Any]:
        """JSON-able state (``min_increase`` may be ``inf``: stored as ``None``)."""
        return {
            "params": self.get_params(),
            "drift_detected": self.drift_detected,
            "n": self.n,
            "mean": self.mean,
            "sum_increase": self.sum_increase,
            "sum_decrease": self.sum_decrease,
            "min_increase": None if math.isinf(self.min_increase) else self.min_increase,
            "max_decrease": self.max_decrease,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PageHinkley:
        ph = cls(**state["params"])
        ph.drift_detected = bool(state["drift_detected"])
        ph.n = float(state["n"])
        ph.mean = float(state["mean"])
        ph.sum_increase = float(state["sum_increase"])
        ph.sum_decrease = float(state["sum_decrease"])
        mi = state["min_increase"]
        ph.min_increase = math.inf if mi is None else float(mi)
        ph.max_decrease = float(state["max_decrease"])
        return ph

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


def _log_arl(k: float, h: float, two_sided: bool) -> float:
    # log of Siegmund's formula, safe where exp(2 k b) overflows.
    x = 2 * k * (h + _OVERSHOOT)
    log_num = x + math.log1p(-(x + 1) * math.exp(-x)) if x > 1e-6 else math.log(x * x / 2)
    return log_num - math.log(2 * k * k) - (math.log(2) if two_sided else 0.0)


def cusum_arl(k: float, h: float, two_sided: bool = True) -> float:
    """Siegmund's in-control ARL of a CUSUM on N(0, 1) values, reference k > 0, threshold h.

    ``(exp(2 k b) - 2 k b - 1) / (2 k^2)`` with ``b = h + 1.166``; two one-sided charts
    together alarm twice as often.

    >>> round(cusum_arl(0.5, 4.0, two_sided=False))  # exact (Markov chain): 336
    338
    """
    return math.exp(_log_arl(k, h, two_sided))


def threshold_for_arl(arl: float, k: float, two_sided: bool = True) -> float:
    """Threshold ``h`` whose :func:`cusum_arl` is ``arl`` values between false alarms.

    >>> h = threshold_for_arl(10_000, 0.5)
    >>> round(h, 2), round(cusum_arl(0.5, h))
    (8.05, 10000)
    """
    if arl <= 1 or k <= 0:
        raise ValueError("arl must be > 1 and k > 0")
    target = math.log(arl)
    return float(optimize.brentq(lambda h: _log_arl(k, h, two_sided) - target, 0.0, 1e6))
