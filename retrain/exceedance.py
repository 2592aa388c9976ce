"""Share of events at or above the alert threshold, against the share calibration promises.

A calibrated score is at or above ``threshold`` with probability ``1 - threshold`` on the
data the model was calibrated for (less when the calibrator's ties round down). More
often than that means the model pages more than it should: the data drifted, or the
calibration did.

:class:`ExceedanceMonitor` counts exceedances per block of ``check_every`` events over the
last ``window_size`` events and, after every block, tests the count against
``Binomial(events, expected_share)`` (one-sided, more exceedances). It reports when the
p-value is below ``alpha = check_every / budget_events``; with an exact binomial p-value
the expected number of false alarms per event is at most ``1 / budget_events``, the
discreteness only lowers it. After a report the window starts empty.

The window has to hold enough expected exceedances to see anything: at ``threshold =
0.9995`` a 100,000-event window expects 50, and a doubling of the share is found within
about one window; at ``0.99999`` it expects 1, and only a many-fold increase is.
Exceedances of an autocorrelated score come in small clusters, which makes the binomial
p-value slightly too small (measured in ``docs/drift.md``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from retrain.drift import DriftReport, check_alpha

__all__ = ["ExceedanceMonitor"]


class ExceedanceMonitor:
    """Binomial test of the share of calibrated scores at or above the alert threshold.

    Parameters
    ----------
    threshold
        The alert threshold on the calibrated score (an event is an exceedance when
        ``score >= threshold``).
    budget_events
        Expected events between false alarms on a stationary stream.
    window_size
        Events in the sliding window (a multiple of ``check_every``).
    check_every
        Events between tests.
    expected_share
        Share of exceedances without drift; default ``1 - threshold``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> mon = ExceedanceMonitor(threshold=0.999, budget_events=1e6, window_size=20_000)
    >>> mon.update_many(rng.uniform(size=200_000))
    []
    >>> report = mon.update_many(rng.uniform(0.0, 1.002, size=20_000))[0]  # share x3
    >>> report.event_count - 200_000 <= 20_000, round(report.details["expected_share"], 6)
    (True, 0.001)
    """

    name = "score_exceedance"

    def __init__(
        self,
        threshold: float,
        budget_events: float = 1_000_000,
        window_size: int = 100_000,
        check_every: int = 1000,
        expected_share: float | None = None,
    ) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError("threshold must be in (0, 1)")
        if check_every < 1 or window_size < check_every or window_size % check_every:
            raise ValueError("window_size must be a positive multiple of check_every")
        self.threshold = float(threshold)
        self.budget_events = float(budget_events)
        self.window_size = window_size
        self.check_every = check_every
        self.expected_share = 1.0 - self.threshold if expected_share is None else expected_share
        if not 0.0 < self.expected_share < 1.0:
            raise ValueError("expected_share must be in (0, 1)")
        self.alpha = check_alpha(budget_events, check_every)
        self.n_seen = 0
        self.reset()

    def reset(self) -> None:
        """Empty the window."""
        slots = self.window_size // self.check_every
        self._counts = np.zeros(slots, dtype=np.int64)  # exceedances per completed block
        self._sizes = np.zeros(slots, dtype=np.int64)  # scored events per completed block
        self._head = 0
        self._filled = 0
        self._block_events = 0  # events (NaN included) in the block being filled
        self._block_scored = 0
        self._block_hits = 0
        self._start = self.n_seen  # position of the window's first event after a reset

    def update(self, score: float) -> DriftReport | None:
        """One calibrated score; a report if it completed a block whose test fired."""
        reports = self.update_many([score])
        return reports[0] if reports else None

    def update_many(self, scores: Any) -> list[DriftReport]:
        """Calibrated scores in event order; the reports in event order."""
        s = np.asarray(scores, dtype=np.float64).ravel()
        scored = ~np.isnan(s)
        hits = s >= self.threshold  # NaN compares False
        base = self.n_seen
        self.n_seen += s.size
        reports: list[DriftReport] = []
        i = 0
        while i < s.size:
            k = min(self.check_every - self._block_events, s.size - i)
            self._block_events += k
            self._block_scored += int(scored[i : i + k].sum())
            self._block_hits += int(hits[i : i + k].sum())
            i += k
            if self._block_events == self.check_every:
                report = self._close_block(base + i)
                if report is not None:
                    reports.append(report)
        return reports

    def _close_block(self, end: int) -> DriftReport | None:
        slots = self._counts.size
        self._counts[self._head] = self._block_hits
        self._sizes[self._head] = self._block_scored
        self._head = (self._head + 1) % slots
        self._filled = min(self._filled + 1, slots)
        self._block_events = self._block_scored = self._block_hits = 0
        n = int(self._sizes.sum())
        k = int(self._counts.sum())
        if n == 0 or k == 0:
            return None
        p = float(stats.binom.sf(k - 1, n, self.expected_share))
        if p >= self.alpha:
            return None
        # Blocks are contiguous: a full window is exactly the last window_size events.
        first = self._start if self._filled < slots else end - self.window_size
        report = DriftReport(
            monitor=self.name,
            statistic=float(k),
            statistic_name="exceedances",
            threshold=self.alpha,
            p_value=p,
            features=(),
            # No reference window: the reference is the share calibration promises.
            reference=(first, first),
            current=(first, end),
            event_count=end,
            budget_events=self.budget_events,
            details={
                "alert_threshold": self.threshold,
                "expected_share": self.expected_share,
                "observed_share": k / n,
                "expected_exceedances": n * self.expected_share,
                "window_events": n,
            },
        )
        self.reset()
        self._start = end
        return report

    def get_params(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "budget_events": self.budget_events,
            "window_size": self.window_size,
            "check_every": self.check_every,
            "expected_share": self.expected_share,
        }

    def to_state(self) -> dict[str, Any]:
        """JSON-able state; :meth:`from_state` continues with identical decisions."""
        return {
            "params": self.get_params(),
            "n_seen": self.n_seen,
            "counts": self._counts.tolist(),
            "sizes": self._sizes.tolist(),
            "head": self._head,
            "filled": self._filled,
            "block": [self._block_events, self._block_scored, self._block_hits],
            "start": self._start,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ExceedanceMonitor:
        mon = cls(**state["params"])
        mon.n_seen = int(state["n_seen"])
        mon._counts = np.asarray(state["counts"], dtype=np.int64)
        mon._sizes = np.asarray(state["sizes"], dtype=np.int64)
        mon._head = int(state["head"])
        mon._filled = int(state["filled"])
        mon._block_events, mon._block_scored, mon._block_hits = map(int, state["block"])
        mon._start = int(state["start"])
        return mon

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"
