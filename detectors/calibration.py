"""Raw score -> [0, 1]: tail probability against recent scores of normal data.

Every detector has its own scale (a squared Mahalanobis distance, a reconstruction error,
an isolation depth...). :class:`ScoreCalibrator` keeps the last ``window`` scores of data
believed normal and maps a new raw score ``s`` to ``1 - P(S >= s)``: the empirical CDF in
the body, and beyond the ``tail_quantile`` a generalised Pareto tail fitted to the
exceedances (peaks over threshold), so extreme scores stay ordered instead of all hitting
``1 - 1/n``. Calibrated scores are comparable across detectors, which is what ensembles and
thresholds need.

An empirical reference cannot say "rarer than 1 in 10,000" before it holds 10,000 scores,
so a calibrator may start from an analytic ``prior`` (a known null distribution of the raw
score, e.g. ``"half_normal"`` for a z-score magnitude) and switch to its empirical
reference once it holds ``prior_until`` scores: alert-ready from the first readings, then
adapted to the data's own tails.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import special

from detectors.base import NotFittedError
from detectors.persistence import register_stateful

__all__ = [
    "PRIORS",
    "BodyTailCalibrator",
    "PassThroughCalibrator",
    "ScoreCalibrator",
    "fit_gpd",
    "gpd_survival",
    "half_normal_tail",
]


def half_normal_tail(z: Any) -> np.ndarray:
    """``P(|N(0, 1)| >= |z|)``: the tail probability of a z-score magnitude.

    >>> (1 - half_normal_tail([0.0, 1.96, 4.0])).round(5).tolist()
    [0.0, 0.95, 0.99994]
    """
    z = np.abs(np.asarray(z, dtype=np.float64).ravel())
    return special.erfc(z / math.sqrt(2.0))


#: Analytic null distributions a :class:`ScoreCalibrator` can start from, by name: each
#: maps raw scores to their tail probability ``P(S >= s)``.
PRIORS: dict[str, Callable[[Any], np.ndarray]] = {"half_normal": half_normal_tail}


def fit_gpd(excesses: Any) -> tuple[float, float]:
    """Shape ``xi`` and scale ``sigma`` of a generalised Pareto fit to positive excesses.

    Probability-weighted moments (Hosking & Wallis 1987): closed form, robust for small
    samples, no optimiser (cheap enough to refit on every update). The shape is clipped to
    ``[-0.5, 0.9]``; with fewer than 10 excesses the tail is exponential (``xi = 0``).

    >>> rng = np.random.default_rng(0)
    >>> xi, sigma = fit_gpd(rng.exponential(2.0, size=5000))
    >>> abs(xi) < 0.05, round(sigma, 1)
    (True, 2.0)
    """
    y = np.sort(np.asarray(excesses, dtype=np.float64))
    y = y[y > 0]
    n = len(y)
    if n == 0:
        return 0.0, 1.0
    if n < 10:
        return 0.0, float(max(y.mean(), 1e-12))
    p = (np.arange(n) + 0.65) / n
    a0 = y.mean()
    a1 = np.mean((1 - p) * y)
    denom = a0 - 2 * a1
    if denom <= 0:
        return 0.0, float(max(a0, 1e-12))
    k = a0 / denom - 2
    sigma = 2 * a0 * a1 / denom
    xi = float(np.clip(-k, -0.5, 0.9))
    return xi, float(max(sigma, 1e-12))


def gpd_survival(y: Any, xi: float, sigma: float) -> np.ndarray:
    """``P(Y > y)`` under a GPD(xi, sigma), 0 beyond a bounded support.

    >>> float(gpd_survival(1.0, 0.0, 1.0)[0]) == float(np.exp(-1))
    True
    """
    y = np.maximum(np.atleast_1d(np.asarray(y, dtype=np.float64)), 0.0)
    if abs(xi) < 1e-9:
        return np.exp(-y / sigma)
    base = 1 + xi * y / sigma
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = np.where(base > 0, np.power(np.maximum(base, 1e-300), -1 / xi), 0.0)
    return out


@register_stateful
class ScoreCalibrator:
    """Empirical CDF + GPD tail over a sliding window of reference scores.

    Parameters
    ----------
    window
        Reference scores kept (the most recent ones).
    tail_quantile
        Where the fitted tail takes over from the empirical CDF.
    min_tail
        Exceedances needed before a GPD is fitted (below: empirical CDF only).
    min_shape
        Floor of the fitted GPD shape. The default 0 (exponential tail at the lightest)
        refuses the bounded tails a negative shape implies: a score past such a fitted
        endpoint would get probability 0, and every later one would tie at 1.0.
    prior
        Name in :data:`PRIORS` of the raw score's analytic null distribution, used until
        the reference holds ``prior_until`` scores (``None``: empirical from the start).
    prior_until
        Reference scores after which the empirical CDF replaces the prior.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> cal = ScoreCalibrator(window=1000).fit(rng.normal(size=1000))
    >>> p = cal.transform([-3.0, 0.0, 3.0, 6.0])
    >>> bool(p[0] < 0.01 and 0.4 < p[1] < 0.6 and p[2] > 0.99 and p[3] > p[2])
    True

    With a prior it is usable before it has seen anything:

    >>> ScoreCalibrator(prior="half_normal").transform([1.96]).round(3).tolist()
    [0.95]
    """

    def __init__(self, window: int = 2000, tail_quantile: float = 0.95,
                 min_tail: int = 20, min_shape: float = 0.0, prior: str | None = None,
                 prior_until: int = 400) -> None:
        if prior is not None and prior not in PRIORS:
            raise ValueError(f"prior must be one of {sorted(PRIORS)} or None, not {prior!r}")
        self.window = window
        self.tail_quantile = tail_quantile
        self.min_tail = min_tail
        self.min_shape = min_shape
        self.prior = prior
        self.prior_until = prior_until
        self._cache: tuple[Any, ...] | None = None

    # -- learning -------------------------------------------------------------------------
    def fit(self, scores: Any) -> ScoreCalibrator:
        """Forget, then learn ``scores``."""
        for key in ("scores_", "count_"):
            self.__dict__.pop(key, None)
        return self.learn_many(scores)

    def learn_many(self, scores: Any) -> ScoreCalibrator:
        """Add scores of (believed) normal data to the reference window."""
        s = np.asarray(scores, dtype=np.float64).ravel()
        s = s[np.isfinite(s)]
        if not hasattr(self, "scores_"):
            self.scores_ = np.zeros(self.window)
            self.count_ = 0
        n = len(s)
        skip = max(n - self.window, 0)  # only the last `window` of a long batch survive
        idx = (self.count_ + skip + np.arange(n - skip)) % self.window
        self.scores_[idx] = s[skip:]
        self.count_ += n
        self._cache = None
        return self

    def learn_one(self, score: float) -> ScoreCalibrator:
        return self.learn_many([score])

    @property
    def is_fitted(self) -> bool:
        """True once it can map scores: it has reference scores, or a prior."""
        return self.prior is not None or getattr(self, "count_", 0) > 0

    @property
    def empirical(self) -> bool:
        """True once the reference, not the prior, decides."""
        count = getattr(self, "count_", 0)
        return count > 0 and (self.prior is None or count >= self.prior_until)

    def _reference(self) -> tuple[np.ndarray, float, int, float, float]:
        if self._cache is not None:
            return self._cache  # type: ignore[return-value]
        if not getattr(self, "count_", 0):
            raise NotFittedError("ScoreCalibrator has no reference scores yet")
        ref = np.sort(self.scores_[: min(self.count_, self.window)])
        u = float(np.quantile(ref, self.tail_quantile))
        exc = ref[ref > u] - u
        xi, sigma = fit_gpd(exc) if len(exc) >= self.min_tail else (np.nan, np.nan)
        xi = max(xi, self.min_shape) if np.isfinite(xi) else xi
        self._cache = (ref, u, len(exc), xi, sigma)
        return self._cache

    # -- mapping --------------------------------------------------------------------------
    def tail_probability(self, scores: Any) -> np.ndarray:
        """``P(S >= s)`` under the reference distribution (small = unusual)."""
        s = np.asarray(scores, dtype=np.float64).ravel()
        if self.prior is not None and not self.empirical:
            return np.clip(np.nan_to_num(PRIORS[self.prior](s), nan=1.0), 0.0, 1.0)
        ref, u, n_u, xi, sigma = self._reference()
        n = len(ref)
        ge = n - np.searchsorted(ref, s, side="left")
        p = (ge + 1.0) / (n + 1.0)
        if np.isfinite(xi):
            tail = s > u
            p = np.where(tail, (n_u / n) * gpd_survival(s - u, xi, sigma), p)
        return np.clip(np.nan_to_num(p, nan=1.0), 0.0, 1.0)

    def transform(self, scores: Any) -> np.ndarray:
        """Calibrated score ``1 - P(S >= s)`` in [0, 1], higher = more anomalous."""
        return 1.0 - self.tail_probability(scores)

    def surprise(self, scores: Any) -> np.ndarray:
        """``-log10 P(S >= s)``: unbounded, keeps extreme scores apart."""
        return -np.log10(np.maximum(self.tail_probability(scores), 1e-300))

    # -- state ----------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        return {"window": self.window, "tail_quantile": self.tail_quantile,
                "min_tail": self.min_tail, "min_shape": self.min_shape,
                "prior": self.prior, "prior_until": self.prior_until}

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable parameters + reference window (oldest first)."""
        state: dict[str, Any] = {"params": self.get_params()}
        if getattr(self, "count_", 0):
            n = min(self.count_, self.window)
            start = self.count_ % self.window if self.count_ > self.window else 0
            ordered = np.roll(self.scores_, -start)[:n]
            state["scores"] = ordered.tolist()
            state["count"] = int(self.count_)
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ScoreCalibrator:
        cal = cls(**state["params"])
        if "scores" in state:
            cal.learn_many(state["scores"])
            cal.count_ = max(int(state.get("count", cal.count_)), cal.count_)
            # Re-align the ring so the next write overwrites the oldest score.
            n = min(cal.count_, cal.window)
            ordered = np.asarray(state["scores"], dtype=np.float64)[-n:]
            buf = np.zeros(cal.window)
            start = cal.count_ % cal.window if cal.count_ > cal.window else 0
            buf[(start + np.arange(n)) % cal.window] = ordered
            cal.scores_ = buf
            cal._cache = None
        return cal

    def __repr__(self) -> str:
        prior = "" if self.prior is None else f", prior={self.prior!r}"
        return (f"ScoreCalibrator(window={self.window}, tail_quantile={self.tail_quantile}"
                f"{prior})")


@register_stateful
class BodyTailCalibrator:
    """Raw score -> ``1 - P(S >= s)``, with a tail extrapolated from the body only.

    Below the ``anchor`` quantile of the reference scores, ``P(S >= s)`` is empirical; above
    it, an exponential tail ``(1 - anchor) * exp(-(s - q_anchor) / beta)`` whose scale
    comes from the spacing of two body quantiles,
    ``beta = (q_anchor - q_base) / ln((1 - base) / (1 - anchor))`` (the exponential tail
    through both). No reference score above ``q_anchor`` is used: anomalies that slipped
    into the reference do not fatten the tail (the next anomaly still stands out), and
    keeping alarming rows out of the reference (a learning gate) does not thin it either
    (no feedback loop between the gate and the calibration). Probabilities go far below
    ``1 / window``.

    Parameters
    ----------
    window
        Reference scores kept (a ring: the oldest is replaced).
    anchor, base
        Quantile levels of the tail's anchor and of the second body quantile.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> cal = BodyTailCalibrator(window=2000).fit(rng.exponential(2.0, size=2000))
    >>> p = cal.tail_probability([0.0, 2 * np.log(100), 2 * np.log(1e6)])
    >>> [round(float(x), 2) for x in p[:2]], bool(5e-7 < p[2] < 2e-6)
    ([1.0, 0.01], True)
    """

    def __init__(self, window: int = 2000, anchor: float = 0.9, base: float = 0.5) -> None:
        if not 0 < base < anchor < 1:
            raise ValueError("need 0 < base < anchor < 1")
        self.window = window
        self.anchor = anchor
        self.base = base
        self._cache: tuple[Any, ...] | None = None

    def fit(self, scores: Any) -> BodyTailCalibrator:
        """Forget, then learn ``scores``."""
        self.__dict__.pop("scores_", None)
        return self.learn_many(scores)

    def learn_many(self, scores: Any) -> BodyTailCalibrator:
        """Add reference scores (of data believed normal)."""
        s = np.asarray(scores, dtype=np.float64).ravel()
        s = s[np.isfinite(s)]
        old = getattr(self, "scores_", np.zeros(0))
        self.scores_ = np.concatenate([old, s])[-self.window :]
        self._cache = None
        return self

    @property
    def is_fitted(self) -> bool:
        return len(getattr(self, "scores_", ())) > 0

    def _reference(self) -> tuple[np.ndarray, float, float]:
        if self._cache is None:
            if not self.is_fitted:
                raise NotFittedError("BodyTailCalibrator has no reference scores yet")
            ref = np.sort(self.scores_)
            q_base, q_anchor = np.quantile(ref, [self.base, self.anchor])
            beta = (q_anchor - q_base) / math.log((1 - self.base) / (1 - self.anchor))
            spread = float(np.quantile(ref, 0.75) - np.quantile(ref, 0.25))
            self._cache = (ref, float(q_anchor), max(float(beta), 1e-6 * max(spread, 1.0)))
        return self._cache

    def tail_probability(self, scores: Any) -> np.ndarray:
        """``P(S >= s)`` under the reference (small = unusual)."""
        s = np.asarray(scores, dtype=np.float64).ravel()
        ref, q_anchor, beta = self._reference()
        n = len(ref)
        body = (n - np.searchsorted(ref, s, side="left") + 1.0) / (n + 1.0)
        tail = (1 - self.anchor) * np.exp(-np.maximum(s - q_anchor, 0.0) / beta)
        return np.clip(np.where(s > q_anchor, tail, body), 0.0, 1.0)

    def transform(self, scores: Any) -> np.ndarray:
        """Calibrated score ``1 - P(S >= s)`` in [0, 1], higher = more anomalous."""
        return 1.0 - self.tail_probability(scores)

    def surprise(self, scores: Any) -> np.ndarray:
        """``-log10 P(S >= s)``: unbounded, keeps extreme scores apart."""
        return -np.log10(np.maximum(self.tail_probability(scores), 1e-300))

    def to_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"params": {"window": self.window, "anchor": self.anchor,
                                            "base": self.base}}
        if self.is_fitted:
            state["scores"] = self.scores_.tolist()
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> BodyTailCalibrator:
        cal = cls(**state["params"])
        if "scores" in state:
            cal.learn_many(state["scores"])
        return cal

    def __repr__(self) -> str:
        return f"BodyTailCalibrator(window={self.window}, anchor={self.anchor})"


@register_stateful
class PassThroughCalibrator:
    """For detectors whose score already is a calibrated ``1 - P(S >= s)`` in [0, 1].

    Keeps the score as it is (clipped to [0, 1]); learns nothing. A detector that judges
    its own raw scores against their history (an anomaly likelihood) loses its
    comparability across series when a second, empirical calibration is stacked on it.

    >>> cal = PassThroughCalibrator()
    >>> cal.transform([0.5, 0.999, 1.5]).tolist(), cal.tail_probability([0.75]).tolist()
    ([0.5, 0.999, 1.0], [0.25])
    """

    is_fitted = True

    def fit(self, scores: Any) -> PassThroughCalibrator:
        return self

    def learn_many(self, scores: Any) -> PassThroughCalibrator:
        return self

    def learn_one(self, score: float) -> PassThroughCalibrator:
        return self

    def transform(self, scores: Any) -> np.ndarray:
        """The scores, clipped to [0, 1]."""
        return np.clip(np.asarray(scores, dtype=np.float64).ravel(), 0.0, 1.0)

    def tail_probability(self, scores: Any) -> np.ndarray:
        """``1 - score``."""
        return 1.0 - self.transform(scores)

    def surprise(self, scores: Any) -> np.ndarray:
        """``-log10(1 - score)``."""
        return -np.log10(np.maximum(self.tail_probability(scores), 1e-300))

    def get_params(self) -> dict[str, Any]:
        return {}

    def to_state(self) -> dict[str, Any]:
        return {"params": {}}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PassThroughCalibrator:
        return cls()

    def __repr__(self) -> str:
        return "PassThroughCalibrator()"
