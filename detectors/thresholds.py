"""Turning scores into alarms: unsupervised and label-driven thresholds.

Without labels: :class:`QuantileThreshold`, :class:`MeanStdThreshold` and the streaming
extreme-value :class:`SPOT` (peaks over threshold, Siffer et al. KDD 2017) for a target
false-alarm rate. With labels: :class:`SupervisedThreshold` (best F-beta, best accuracy or
minimum cost of missed anomalies vs false alarms), computed by :mod:`detectors.metrics`.
Every threshold alarms on ``score >= threshold_``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from detectors.base import NotFittedError
from detectors.calibration import fit_gpd
from detectors.persistence import register_stateful

__all__ = [
    "SPOT",
    "MeanStdThreshold",
    "QuantileThreshold",
    "SupervisedThreshold",
    "best_accuracy_threshold",
    "best_fbeta_threshold",
    "min_cost_threshold",
]


class _Threshold:
    threshold_: float

    def predict(self, scores: Any) -> np.ndarray:
        """``score >= threshold_`` per score."""
        if not hasattr(self, "threshold_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted")
        return np.asarray(scores, dtype=np.float64).ravel() >= self.threshold_

    def get_params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.endswith("_")
                and not k.startswith("_")}

    def to_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"params": self.get_params()}
        for k, v in vars(self).items():
            if k.endswith("_") and not k.startswith("_"):
                state[k] = v.tolist() if isinstance(v, np.ndarray) else v
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Any:
        obj = cls(**state["params"])
        for k, v in state.items():
            if k != "params":
                setattr(obj, k, v)
        return obj

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


@register_stateful
class QuantileThreshold(_Threshold):
    """The ``q`` quantile of scores of normal data (false-alarm rate ~ ``1 - q``).

    >>> QuantileThreshold(0.9).fit(np.arange(101)).threshold_
    90.0
    """

    def __init__(self, q: float = 0.99) -> None:
        self.q = q

    def fit(self, scores: Any) -> QuantileThreshold:
        self.threshold_ = float(np.quantile(np.asarray(scores, dtype=np.float64), self.q))
        return self


@register_stateful
class MeanStdThreshold(_Threshold):
    """``mean + k * std`` of scores of normal data.

    >>> MeanStdThreshold(k=2).fit([0.0, 2.0]).threshold_
    3.0
    """

    def __init__(self, k: float = 3.0) -> None:
        self.k = k

    def fit(self, scores: Any) -> MeanStdThreshold:
        s = np.asarray(scores, dtype=np.float64)
        self.threshold_ = float(s.mean() + self.k * s.std())
        return self


@register_stateful
class SPOT(_Threshold):
    """Streaming peaks-over-threshold: the score exceeded with probability ``risk``.

    Initialise with :meth:`fit` on a calibration stream (``level`` quantile = initial
    threshold ``t``, a GPD fitted to the peaks above it); then :meth:`update` one score at
    a time: a score above ``threshold_`` is an alarm and is **not** learned (so an attack
    does not raise the bar), one between ``t`` and ``threshold_`` is a new peak and the GPD
    is refitted, anything else only counts. ``max_peaks`` bounds memory (oldest dropped).

    Parameters
    ----------
    risk
        Target probability of a normal score exceeding the threshold (false-alarm rate).
    level
        Quantile of the initial batch used as the peak threshold ``t``.
    max_peaks
        Peaks kept.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> spot = SPOT(risk=1e-3).fit(rng.exponential(size=5000))
    >>> 5.0 < spot.threshold_ < 9.5          # exp(1): P(S > 6.9) = 1e-3
    True
    >>> spot.update(0.5), spot.update(20.0)
    (False, True)
    """

    def __init__(self, risk: float = 1e-4, level: float = 0.98, max_peaks: int = 5000) -> None:
        self.risk = risk
        self.level = level
        self.max_peaks = max_peaks

    def fit(self, scores: Any) -> SPOT:
        s = np.asarray(scores, dtype=np.float64).ravel()
        if len(s) < 10:
            raise ValueError("SPOT needs at least 10 initial scores")
        self.t_ = float(np.quantile(s, self.level))
        self.peaks_ = (s[s > self.t_] - self.t_).tolist()[-self.max_peaks :]
        self.n_ = len(s)
        self._refit()
        return self

    def _refit(self) -> None:
        peaks = np.asarray(self.peaks_, dtype=np.float64)
        xi, sigma = fit_gpd(peaks)
        self.xi_, self.sigma_ = xi, sigma
        # Quantile of the tail: P(S > z) = (n_peaks / n) * P_GPD(S - t > z - t) = risk.
        r = self.risk * self.n_ / max(len(peaks), 1)
        if abs(xi) < 1e-9:
            z = self.t_ - sigma * np.log(r)
        else:
            z = self.t_ + sigma / xi * (r ** (-xi) - 1)
        self.threshold_ = float(max(z, self.t_))

    def update(self, score: float) -> bool:
        """Process one score; ``True`` when it is an alarm."""
        if not hasattr(self, "threshold_"):
            raise NotFittedError("SPOT needs fit() on an initial batch first")
        if score >= self.threshold_:
            return True
        self.n_ += 1
        if score > self.t_:
            self.peaks_.append(float(score - self.t_))
            if len(self.peaks_) > self.max_peaks:
                self.peaks_.pop(0)
            self._refit()
        return False

    def run(self, scores: Any) -> np.ndarray:
        """:meth:`update` over a sequence; the alarm flags."""
        return np.array([self.update(float(s)) for s in np.asarray(scores).ravel()], dtype=bool)


# -- supervised -------------------------------------------------------------------------------
def best_fbeta_threshold(y: Any, scores: Any, beta: float = 1.0) -> tuple[float, float]:
    """``(threshold, F-beta)`` maximising F-beta (delegates to :mod:`detectors.metrics`)."""
    from detectors import metrics

    return metrics.best_fbeta_threshold(y, scores, beta=beta)


def best_accuracy_threshold(y: Any, scores: Any) -> tuple[float, float]:
    """``(threshold, accuracy)`` maximising accuracy (use with care on rare anomalies)."""
    from detectors import metrics

    return metrics.best_accuracy_threshold(y, scores)


def min_cost_threshold(y: Any, scores: Any, cost_fn: float, cost_fp: float
                       ) -> tuple[float, float]:
    """``(threshold, total cost)`` minimising ``cost_fn * misses + cost_fp * false alarms``."""
    from detectors import metrics

    return metrics.min_cost_threshold(y, scores, cost_fn=cost_fn, cost_fp=cost_fp)


@register_stateful
class SupervisedThreshold(_Threshold):
    """Threshold chosen on labelled scores.

    Parameters
    ----------
    objective
        ``"fbeta"`` (with ``beta``), ``"accuracy"`` or ``"cost"`` (with ``cost_fn``, the cost
        of a missed anomaly, and ``cost_fp``, the cost of a false alarm).

    After :meth:`fit`, ``value_`` is the objective's value at ``threshold_`` and
    ``report_`` the full :func:`detectors.metrics.classification_report` there (precision,
    recall, F1, F2, ROC AUC, average precision...).
    """

    def __init__(self, objective: str = "fbeta", beta: float = 1.0, cost_fn: float = 10.0,
                 cost_fp: float = 1.0) -> None:
        self.objective = objective
        self.beta = beta
        self.cost_fn = cost_fn
        self.cost_fp = cost_fp

    def fit(self, scores: Any, y: Any) -> SupervisedThreshold:
        from detectors import metrics

        if self.objective == "fbeta":
            t, v = best_fbeta_threshold(y, scores, beta=self.beta)
        elif self.objective == "accuracy":
            t, v = best_accuracy_threshold(y, scores)
        elif self.objective == "cost":
            t, v = min_cost_threshold(y, scores, self.cost_fn, self.cost_fp)
        else:
            raise ValueError("objective must be 'fbeta', 'accuracy' or 'cost'")
        self.threshold_, self.value_ = float(t), float(v)
        self.report_ = metrics.classification_report(y, scores, self.threshold_)
        return self
