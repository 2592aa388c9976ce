"""Drift of the calibrated score stream: Page-Hinkley on standardised block means of probits.

A calibrated score ``s`` in [0, 1] is the model's tail probability ``1 - P(S >= s)``: while
the model is right about its data it is close to uniform, and ``z = probit(s)`` close to
N(0, 1). Drift moves it — more surprising inputs push ``z`` up, a model that has become
too lax pushes it down, a variance change in the input does either, depending on the
detector.

:class:`ScoreDriftMonitor` averages ``z`` over blocks of ``block_size`` events (block means
are near-Gaussian whatever the scores' ties and bounds, and much less autocorrelated than
the scores), takes the first ``reference_size`` events after a start / ``reset()`` as the
reference, standardises block means by the reference's mean and block standard deviation,
and runs :class:`~retrain.page_hinkley.PageHinkley` (river-equivalent, no forgetting) on
them, reference blocks included so its running mean starts from the reference. Its
reference value is ``delta = shift / 2`` (tuned for a change of ``shift`` block standard
deviations) and its threshold the one whose in-control ARL (Siegmund) is
``budget_events / block_size`` blocks.

The block standard deviation is the larger of two reference estimates: the sample
standard deviation of the reference block means (any dependence within a block), and the
one implied by the events' variance and lag-1 autocorrelation (an AR(1) model: precise
when it holds). When the reference block means are themselves significantly
autocorrelated (slow cycles, long memory), it is inflated by ``(1 + r) / (1 - r)``.

After a report the monitor starts over with a new reference, so a lasting change is
reported once.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special

from retrain.drift import DriftReport
from retrain.page_hinkley import PageHinkley, threshold_for_arl

__all__ = ["ScoreDriftMonitor", "probit_scores"]

# probit(1 - 1e-12) = 7.03: an exact 1.0 (a tie at the top of the calibrator's scale)
# counts as a very surprising score, not as infinity.
_EPS = 1e-12


def probit_scores(scores: Any) -> np.ndarray:
    """``Phi^-1(s)`` of calibrated scores, ``s`` clipped to ``[1e-12, 1 - 1e-12]``.

    >>> probit_scores([0.5, 0.975, 1.0]).round(2).tolist()
    [0.0, 1.96, 7.03]
    """
    s = np.clip(np.asarray(scores, dtype=np.float64), _EPS, 1.0 - _EPS)
    return special.ndtri(s)


def _ar1_block_var(var: float, rho: float, b: int) -> float:
    """Variance of the mean of ``b`` consecutive AR(1) values of variance ``var``."""
    if b == 1 or rho == 0.0:
        return var / b
    k = np.arange(1, b)
    return var / b * (1.0 + 2.0 * float(np.sum((1.0 - k / b) * rho**k)))


class ScoreDriftMonitor:
    """Page-Hinkley test on block means of probit-transformed calibrated scores.

    Parameters
    ----------
    budget_events
        Expected events between false alarms on a stationary stream.
    block_size
        Events averaged into one block mean (the test's unit of time).
    reference_size
        Events in the reference (rounded down to whole blocks; at least 16 blocks).
    shift
        Change of the block mean, in reference block standard deviations, the test is
        tuned for (Page-Hinkley ``delta = shift / 2``); smaller changes are found later,
        larger ones sooner.
    mode
        ``"both"``, ``"up"`` (only scores becoming more surprising) or ``"down"``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> mon = ScoreDriftMonitor(budget_events=1e6)
    >>> mon.update_many(rng.uniform(size=50_000))
    []
    >>> from scipy.stats import norm
    >>> drifted = norm.cdf(rng.normal(0.3, 1.0, size=5_000))  # probits shifted by 0.3
    >>> report = mon.update_many(drifted)[0]
    >>> report.monitor, report.details["direction"], report.event_count - 50_000 < 2000
    ('score_ph', 'up', True)
    """

    name = "score_ph"

    def __init__(
        self,
        budget_events: float = 1_000_000,
        block_size: int = 32,
        reference_size: int = 4096,
        shift: float = 1.0,
        mode: str = "both",
        scale_margin: float = 2.0,
    ) -> None:
        if block_size < 1 or reference_size < 16 * block_size:
            raise ValueError("block_size >= 1 and reference_size >= 16 * block_size")
        if shift <= 0:
            raise ValueError("shift must be > 0")
        self.budget_events = float(budget_events)
        self.block_size = block_size
        self.reference_size = reference_size
        self.shift = shift
        self.mode = mode
        self.scale_margin = scale_margin
        self.reference_blocks = reference_size // block_size
        self.delta = shift / 2.0
        arl_blocks = max(budget_events / block_size, 2.0)
        self.ph_threshold = threshold_for_arl(arl_blocks, self.delta, two_sided=mode == "both")
        self.n_seen = 0
        self.reset()

    # -- lifecycle ------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the reference: the next ``reference_size`` events are the new one."""
        self.ready = False
        self._ph = PageHinkley(
            min_instances=self.reference_blocks + 1,
            delta=self.delta,
            threshold=self.ph_threshold,
            alpha=1.0,
            mode=self.mode,
        )
        self._start = self.n_seen  # position of the reference's first event
        self._ref_end = self.n_seen
        # The block being filled: count, sum, sum of squares, sum of lag-1 products
        # within the block, first and last value.
        self._part = [0, 0.0, 0.0, 0.0, 0.0, 0.0]
        # Reference accumulators over whole blocks (same fields) and the block means.
        self._ref_acc = [0, 0.0, 0.0, 0.0, 0.0, 0.0]
        self._ref_means: list[float] = []
        self._center = 0.0
        self._scale = 1.0
        self._blocks = 0  # blocks given to Page-Hinkley since the start
        # Block index (since the start) after which each one-sided sum was lowest: the
        # change-point estimate.
        self._argmin_up = 0
        self._argmin_down = 0

    # -- updates --------------------------------------------------------------------------
    def update(self, score: float) -> DriftReport | None:
        """One calibrated score; a report if the block it completed signalled a change."""
        reports = self.update_many([score])
        return reports[0] if reports else None

    def update_many(self, scores: Any) -> list[DriftReport]:
        """Calibrated scores in event order; the reports in event order."""
        s = np.asarray(scores, dtype=np.float64).ravel()
        keep = ~np.isnan(s)
        positions = self.n_seen + np.flatnonzero(keep)
        z = probit_scores(s[keep])
        self.n_seen += s.size
        reports: list[DriftReport] = []
        i, total, b = 0, z.size, self.block_size
        while i < total:
            need = b - self._part[0]
            k = min(need, total - i)
            self._absorb(z[i : i + k])
            i += k
            if self._part[0] == b:
                report = self._block_done(int(positions[i - 1]))
                if report is not None:
                    reports.append(report)
        return reports

    def _absorb(self, z: np.ndarray) -> None:
        part = self._part
        if z.size == 0:
            return
        if part[0] == 0:
            part[4] = float(z[0])
        else:
            part[3] += part[5] * float(z[0])
        part[0] += z.size
        part[1] += float(z.sum())
        part[2] += float(np.dot(z, z))
        part[3] += float(np.dot(z[1:], z[:-1]))
        part[5] = float(z[-1])

    def _block_done(self, position: int) -> DriftReport | None:
        count, total, sumsq, lag, first, last = self._part
        self._part = [0, 0.0, 0.0, 0.0, 0.0, 0.0]
        mean = total / count
        if not self.ready:
            acc = self._ref_acc
            if acc[0] > 0:
                acc[3] += acc[5] * first  # the lag-1 product across the block boundary
            else:
                acc[4] = first
            acc[0] += count
            acc[1] += total
            acc[2] += sumsq
            acc[3] += lag
            acc[5] = last
            self._ref_means.append(mean)
            if len(self._ref_means) == self.reference_blocks:
                self._complete_reference(position + 1)
            return None
        return self._test((mean - self._center) / self._scale, position)

    def _complete_reference(self, end: int) -> None:
        self._ref_end = end
        n, total, sumsq, lag, first, last = self._ref_acc
        mu = total / n
        var = max(sumsq / n - mu * mu, 0.0)
        # Lag-1 autocovariance from the sums: sum (z_t - mu)(z_{t-1} - mu) over t >= 2.
        cov = lag - mu * (2 * total - first - last) + (n - 1) * mu * mu
        rho = float(np.clip(cov / ((n - 1) * var), 0.0, 0.99)) if var > 0 else 0.0
        means = np.asarray(self._ref_means)
        block_var = max(float(means.var(ddof=1)), _ar1_block_var(var, rho, self.block_size))
        centred = means - means.mean()
        denom = float(np.dot(centred, centred))
        r = float(np.dot(centred[1:], centred[:-1]) / denom) if denom > 0 else 0.0
        # Only a significant block autocorrelation inflates: a noisy estimate of zero
        # would otherwise cost power on every independent stream.
        if r > 2.0 / math.sqrt(means.size):
            block_var *= (1.0 + min(r, 0.9)) / (1.0 - min(r, 0.9))
        self._center = float(means.mean())
        # An underestimated scale costs far more false alarms than an overestimated one
        # costs delay (the ARL is exponential in threshold / scale): use an upper bound.
        margin = 1.0 + self.scale_margin / math.sqrt(2.0 * (means.size - 1))
        self._scale = margin * math.sqrt(block_var) if block_var > 0 else 1.0
        self.ready = True
        for m in means:
            self._feed((float(m) - self._center) / self._scale)
        self._ref_means = []

    def _feed(self, y: float) -> bool:
        ph = self._ph
        before_min, before_max = ph.min_increase, ph.max_decrease
        fired = ph.update(y)
        self._blocks += 1
        if ph.min_increase != before_min:
            self._argmin_up = self._blocks
        if ph.max_decrease != before_max:
            self._argmin_down = self._blocks
        return fired

    def _test(self, y: float, position: int) -> DriftReport | None:
        if not self._feed(y):
            return None
        ph = self._ph
        up = ph.test_increase > ph.threshold and self.mode != "down"
        direction = "up" if up else "down"
        statistic = ph.test_increase if up else ph.test_decrease
        change_block = self._argmin_up if up else self._argmin_down
        change_start = self._start + change_block * self.block_size
        report = DriftReport(
            monitor=self.name,
            statistic=float(statistic),
            statistic_name="page_hinkley",
            threshold=float(ph.threshold),
            p_value=None,
            features=(),
            reference=(self._start, self._ref_end),
            current=(min(change_start, position), position + 1),
            event_count=position + 1,
            budget_events=self.budget_events,
            details={
                "direction": direction,
                "block_size": self.block_size,
                "delta": self.delta,
                "reference_mean_probit": self._center,
                "reference_block_sd": self._scale,
                "running_mean_standardised": float(ph.mean),
            },
        )
        # Start over after the alarm: the events after it are the next reference.
        self.reset_from(position + 1)
        return report

    def reset_from(self, position: int) -> None:
        """:meth:`reset` with the new reference starting at event ``position``."""
        self.reset()
        self._start = position
        self._ref_end = position

    # -- state ----------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        return {
            "budget_events": self.budget_events,
            "block_size": self.block_size,
            "reference_size": self.reference_size,
            "shift": self.shift,
            "mode": self.mode,
            "scale_margin": self.scale_margin,
        }

    def to_state(self) -> dict[str, Any]:
        """JSON-able state; :meth:`from_state` continues with identical decisions."""
        return {
            "params": self.get_params(),
            "n_seen": self.n_seen,
            "ready": self.ready,
            "ph": self._ph.to_state(),
            "start": self._start,
            "ref_end": self._ref_end,
            "part": list(self._part),
            "ref_acc": list(self._ref_acc),
            "ref_means": list(self._ref_means),
            "center": self._center,
            "scale": self._scale,
            "blocks": self._blocks,
            "argmin_up": self._argmin_up,
            "argmin_down": self._argmin_down,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ScoreDriftMonitor:
        mon = cls(**state["params"])
        mon.n_seen = int(state["n_seen"])
        mon.ready = bool(state["ready"])
        mon._ph = PageHinkley.from_state(state["ph"])
        mon._start = int(state["start"])
        mon._ref_end = int(state["ref_end"])
        mon._part = [int(state["part"][0]), *map(float, state["part"][1:])]
        mon._ref_acc = [int(state["ref_acc"][0]), *map(float, state["ref_acc"][1:])]
        mon._ref_means = [float(v) for v in state["ref_means"]]
        mon._center = float(state["center"])
        mon._scale = float(state["scale"])
        mon._blocks = int(state["blocks"])
        mon._argmin_up = int(state["argmin_up"])
        mon._argmin_down = int(state["argmin_down"])
        return mon

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"
