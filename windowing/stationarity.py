"""Stationarity-aware differencing: decide per series whether to difference, and say why.

Differencing a series that is already stationary costs little but adds noise; *not*
differencing a trending one makes every late value look anomalous. So each sensor channel
gets a decision from two complementary tests on a warm-up window, re-checked periodically:

* **ADF** (augmented Dickey-Fuller), null hypothesis "unit root" — a small p-value says
  the series is stationary;
* **KPSS**, null hypothesis "level-stationary" — a small p-value says it is not.

* ADF rejects, KPSS does not — ``stationary``: leave alone;
* ADF does not reject, KPSS rejects — ``unit_root``: difference;
* both reject — ``difference_stationary``: difference;
* neither rejects — ``trend_stationary`` (or too little evidence): difference, which also
  removes a deterministic trend.

So the series is left alone only when both tests agree it is stationary. A constant window
is ``constant`` (leave alone). Before the first test the verdict is ``pending``: the
pipeline differences provisionally (differencing never makes a series less stationary).

:class:`StationarityDecision` records the outcome (p-values, reason, when); the pipelines
put it in every feature vector's meta, and :class:`StationarityMonitor` logs each change on
the ``windowing.stationarity`` logger.
"""

from __future__ import annotations

import inspect
import logging
import math
import warnings
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from statsmodels.tsa.adfvalues import mackinnonp
from statsmodels.tsa.stattools import kpss

__all__ = [
    "VERDICTS",
    "StationarityDecision",
    "StationarityMonitor",
    "adf_test",
    "check_stationarity",
]

log = logging.getLogger(__name__)

VERDICTS = (
    "pending",
    "configured",
    "constant",
    "stationary",
    "unit_root",
    "difference_stationary",
    "trend_stationary",
)

#: Fewer observations than this and the tests say nothing useful.
MIN_OBSERVATIONS = 20

# statsmodels >= 0.15 warns unless asked for its tuple result explicitly; older ones do not
# know the keyword. Decide once.
_TUPLE_RESULT: dict[str, Any] = (
    {"result_object": False} if "result_object" in inspect.signature(kpss).parameters else {}
)


@dataclass(frozen=True, slots=True)
class StationarityDecision:
    """Whether to difference a series, and the evidence.

    Attributes
    ----------
    difference
        Apply the first difference.
    verdict
        One of :data:`VERDICTS`.
    adf_pvalue, kpss_pvalue
        The tests' p-values (``None`` if not run). KPSS p-values are interpolated from a
        table and clipped to [0.01, 0.1].
    reason
        One human sentence, for logs and score records.
    n_obs
        Observations the tests saw.
    at_count
        Readings the series had when the decision was taken.
    """

    difference: bool
    verdict: str
    adf_pvalue: float | None = None
    kpss_pvalue: float | None = None
    reason: str = ""
    n_obs: int = 0
    at_count: int = 0

    @property
    def decided(self) -> bool:
        """Whether this is a real decision (not the provisional one of the warm-up)."""
        return self.verdict != "pending"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> StationarityDecision:
        return cls(**obj)


PENDING = StationarityDecision(
    True, "pending", reason="warm-up: differencing provisionally until the first test"
)


def _schwert_lag(n: int) -> int:
    # Schwert's rule of thumb: a fixed lag keeps the test cheap (one regression instead of
    # an AIC search over every lag) and deterministic.
    return max(0, min(int(12 * (n / 100.0) ** 0.25), n // 2 - 2))


def adf_test(values: Any, lag: int | None = None) -> tuple[float, float]:
    """ADF statistic and MacKinnon p-value, constant only, ``lag`` lagged differences.

    The same numbers as ``statsmodels.tsa.stattools.adfuller(x, maxlag=lag, autolag=None,
    regression="c")``, computed with one small normal-equation solve: statsmodels' OLS goes
    through an SVD pseudo-inverse that costs 10-30x more, which matters when every sensor
    re-checks its decision. ``lag`` defaults to Schwert's rule ``12 (n/100)^(1/4)``.

    >>> rng = np.random.default_rng(0)
    >>> stat, p = adf_test(rng.normal(size=300))
    >>> bool(stat < -3), bool(p < 0.01)
    (True, True)
    """
    x = np.asarray(values, dtype=np.float64)
    lag = _schwert_lag(x.size) if lag is None else lag
    dx = np.diff(x)
    nobs = dx.size - lag
    if nobs < lag + 3:
        raise ValueError(f"{x.size} observations are too few for {lag} lags")
    # Regress d[t] on x[t-1], d[t-1..t-lag] and a constant. Centring the regressors absorbs
    # the constant and scaling them keeps X'X well conditioned; neither changes the
    # t-statistic of x[t-1].
    regressors = np.column_stack(
        [x[lag : lag + nobs], *(dx[lag - i : lag - i + nobs] for i in range(1, lag + 1))]
    )
    regressors = regressors - regressors.mean(axis=0)
    spread = regressors.std(axis=0)
    if spread[0] == 0.0:
        raise ValueError("constant series")
    regressors = regressors / np.where(spread > 0, spread, 1.0)
    target = dx[lag:] - dx[lag:].mean()
    inverse = np.linalg.inv(regressors.T @ regressors)
    beta = inverse @ (regressors.T @ target)
    resid = target - regressors @ beta
    dof = nobs - (lag + 2)
    sigma2 = float(resid @ resid) / dof
    if not sigma2 > 0.0:
        raise ValueError("the regression fits exactly: deterministic series")
    stat = float(beta[0] / math.sqrt(sigma2 * inverse[0, 0]))
    return stat, float(mackinnonp(stat, regression="c", N=1))


def check_stationarity(
    values: Any, *, alpha: float = 0.05, at_count: int = 0
) -> StationarityDecision:
    """ADF + KPSS on ``values``; the decision table is in the module docstring.

    >>> rng = np.random.default_rng(0)
    >>> check_stationarity(rng.normal(size=400)).verdict
    'stationary'
    >>> walk = np.cumsum(rng.normal(size=400))
    >>> d = check_stationarity(walk)
    >>> d.difference, d.verdict
    (True, 'unit_root')
    """
    x = np.asarray(values, dtype=np.float64)
    n = int(x.size)
    if n < MIN_OBSERVATIONS:
        return StationarityDecision(
            True, "pending", reason=f"only {n} observations; need {MIN_OBSERVATIONS}", n_obs=n,
            at_count=at_count,
        )
    if np.ptp(x) == 0.0:
        return StationarityDecision(
            False, "constant", reason="constant window: nothing to difference", n_obs=n,
            at_count=at_count,
        )
    with warnings.catch_warnings():
        # KPSS warns when its p-value is clipped to the table's ends; the clipping is
        # documented on the decision, the warning would only be noise in worker logs.
        warnings.simplefilter("ignore")
        try:
            adf_p = adf_test(x)[1]
        except (ValueError, np.linalg.LinAlgError, ZeroDivisionError):
            adf_p = math.nan
        try:
            kpss_p = float(kpss(x, regression="c", nlags="auto", **_TUPLE_RESULT)[1])
        except (ValueError, np.linalg.LinAlgError, OverflowError):
            kpss_p = math.nan
    if math.isnan(kpss_p):
        return StationarityDecision(
            True, "unit_root", None if math.isnan(adf_p) else adf_p, None,
            "KPSS failed on this window; differencing to be safe", n, at_count,
        )
    if math.isnan(adf_p):
        # A noise-free window (e.g. a perfect sine) has no ADF residual: KPSS alone decides.
        diff = kpss_p < alpha
        return StationarityDecision(
            diff, "difference_stationary" if diff else "stationary", None, kpss_p,
            f"ADF undefined on a deterministic window; KPSS p={kpss_p:.3g}", n, at_count,
        )
    adf_stationary = adf_p < alpha
    kpss_stationary = kpss_p >= alpha
    ps = f"ADF p={adf_p:.3g}, KPSS p={kpss_p:.3g}, alpha={alpha:g}"
    if adf_stationary and kpss_stationary:
        verdict, diff, why = "stationary", False, "both tests say stationary"
    elif not adf_stationary and not kpss_stationary:
        verdict, diff, why = "unit_root", True, "both tests say non-stationary"
    elif adf_stationary:
        verdict, diff, why = "difference_stationary", True, "KPSS rejects level-stationarity"
    else:
        verdict, diff, why = "trend_stationary", True, "ADF keeps a unit root, KPSS does not reject"
    return StationarityDecision(diff, verdict, adf_p, kpss_p, f"{why} ({ps})", n, at_count)


class StationarityMonitor:
    """Online stationarity decision: test once after ``warmup`` readings, then every
    ``recheck_every`` readings, each time on the last ``window`` values.

    Parameters
    ----------
    warmup
        Readings before the first test.
    window
        Most recent values the tests see (bounded memory).
    recheck_every
        Readings between re-checks; ``None`` decides once.
    alpha
        Significance level of both tests.
    difference
        Force the decision (``True``/``False``) instead of testing; verdict ``configured``.
    name
        Series name for the log lines.

    >>> rng = np.random.default_rng(1)
    >>> mon = StationarityMonitor(warmup=100, window=200, recheck_every=None, name="t1")
    >>> [mon.update(v).verdict for v in rng.normal(size=100)][-2:]
    ['pending', 'stationary']
    >>> StationarityMonitor(difference=False).decision.verdict
    'configured'
    """

    def __init__(
        self,
        warmup: int = 256,
        window: int = 512,
        recheck_every: int | None = 1024,
        *,
        alpha: float = 0.05,
        difference: bool | None = None,
        name: str = "",
    ) -> None:
        if warmup < 1 or window < 1:
            raise ValueError("warmup and window must be >= 1")
        if recheck_every is not None and recheck_every < 1:
            raise ValueError("recheck_every must be >= 1 or None")
        self.warmup = warmup
        self.window = window
        self.recheck_every = recheck_every
        self.alpha = alpha
        self.forced = difference
        self.name = name
        self.n_seen = 0
        self.history: list[StationarityDecision] = []
        self._buffer: deque[float] = deque(maxlen=window)
        if difference is None:
            self.decision = PENDING
        else:
            self.decision = StationarityDecision(
                difference, "configured",
                reason=f"differencing forced {'on' if difference else 'off'} by configuration",
            )

    def _due(self, count: int) -> bool:
        if count == self.warmup:
            return True
        return (
            self.recheck_every is not None
            and count > self.warmup
            and (count - self.warmup) % self.recheck_every == 0
        )

    def _due_counts(self, first: int, last: int) -> list[int]:
        """The counts in ``[first, last]`` at which a test is due, in order."""
        due = [self.warmup] if first <= self.warmup <= last else []
        if self.recheck_every is not None:
            k = max(1, -(-(first - self.warmup) // self.recheck_every))
            count = self.warmup + k * self.recheck_every
            while count <= last:
                due.append(count)
                count += self.recheck_every
        return due

    def _decide(self, values: np.ndarray, count: int) -> StationarityDecision:
        new = check_stationarity(values, alpha=self.alpha, at_count=count)
        if new.verdict == "pending":
            return self.decision
        if new.difference != self.decision.difference or not self.decision.decided:
            log.info("stationarity of %s: %s -> difference=%s (%s)", self.name or "series",
                     new.verdict, new.difference, new.reason)
        self.history = [*self.history[-7:], new]
        return new

    def update(self, value: float) -> StationarityDecision:
        """Add one level; returns the decision that applies to it (tested if due)."""
        if self.forced is not None:
            self.n_seen += 1
            return self.decision
        self._buffer.append(float(value))
        self.n_seen += 1
        if self._due(self.n_seen):
            self.decision = self._decide(np.fromiter(self._buffer, np.float64), self.n_seen)
        return self.decision

    def update_many(self, values: Any) -> tuple[list[StationarityDecision], np.ndarray]:
        """:meth:`update` over an array.

        Returns ``(decisions, which)``: the distinct decisions in force during the batch and,
        per value, the index of its decision in that list.
        """
        x = np.asarray(values, dtype=np.float64)
        n = x.size
        n0 = self.n_seen
        decisions = [self.decision]
        which = np.zeros(n, dtype=np.int64)
        if self.forced is not None or n == 0:
            self.n_seen += n
            return decisions, which
        combined = np.concatenate([np.fromiter(self._buffer, np.float64), x])
        offset = len(self._buffer) - n0
        for count in self._due_counts(n0 + 1, n0 + n):
            end = count + offset
            self.decision = self._decide(combined[max(0, end - self.window) : end], count)
            if self.decision is not decisions[-1]:
                decisions.append(self.decision)
            which[count - n0 - 1 :] = len(decisions) - 1
        self._buffer.extend(x[-self.window :].tolist())
        self.n_seen += n
        return decisions, which

    def to_state(self) -> dict[str, Any]:
        return {
            "warmup": self.warmup,
            "window": self.window,
            "recheck_every": self.recheck_every,
            "alpha": self.alpha,
            "forced": self.forced,
            "name": self.name,
            "n_seen": self.n_seen,
            "decision": self.decision.to_dict(),
            "history": [d.to_dict() for d in self.history],
            "buffer": list(self._buffer),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> StationarityMonitor:
        mon = cls(state["warmup"], state["window"], state["recheck_every"],
                  alpha=state["alpha"], difference=state["forced"], name=state["name"])
        mon.n_seen = int(state["n_seen"])
        mon.decision = StationarityDecision.from_dict(state["decision"])
        mon.history = [StationarityDecision.from_dict(d) for d in state["history"]]
        mon._buffer.extend(float(v) for v in state["buffer"])
        return mon
