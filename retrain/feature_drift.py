"""Input-feature drift: per-feature two-sample KS tests, reference window vs sliding window.

:class:`FeatureDriftMonitor` takes the first ``reference_size`` feature vectors after it
starts (or after ``reset()``, i.e. after a model swap) as the reference, then keeps the
last ``window_size`` vectors. Once that window is full, and every ``check_every`` vectors
after, it tests each feature's window against its reference (:mod:`retrain.two_sample`:
KS distance, asymptotic p-value with sample sizes shrunk for the reference's lag-1
autocorrelation), adjusts the p-values across features (Holm or Benjamini–Hochberg) and
reports a drift when the smallest adjusted p-value is below ``alpha = check_every /
budget_events`` (:func:`retrain.drift.check_alpha`). After a report it starts over: the
next ``reference_size`` vectors are the new reference, so a drift that persists is
reported once, and the next report needs a change against the new regime.

What it cannot see: deterministic features (hour / day-of-week sin-cos, counters of time)
differ between two windows that cover different hours, so leave them out; features with a
seasonal cycle longer than the windows drift by construction (the sensor pipeline's
seasonal differencing removes the cycle, or make both windows whole periods long).

Memory is bounded: ``(reference_size + window_size) × n_features`` float32 values plus one
position per window slot; the checkpoint stores them zlib-compressed (~15 kB of JSON per
feature with the default windows). Values are kept as float32: a feature vector's last digits
decide no KS test. Rows with a NaN are counted (positions stay event positions) but not
used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from retrain.drift import DriftReport, check_alpha, pack_array, unpack_array
from retrain.two_sample import (
    CORRECTIONS,
    adjust_pvalues,
    effective_fraction,
    ks_distance,
    ks_pvalue,
    lag1_autocorrelation,
    right_ranks,
)

__all__ = ["FeatureDriftMonitor"]

_F32_MAX = float(np.finfo(np.float32).max)


class FeatureDriftMonitor:
    """Per-feature KS drift test of a sliding window against a reference window.

    Parameters
    ----------
    feature_names
        Names used in reports (default ``x0``, ``x1`` ...); fixes the number of features.
    reference_size
        Feature vectors in the reference (the first ones after a start or reset).
    window_size
        Feature vectors in the sliding current window.
    check_every
        Vectors between tests once the window is full.
    budget_events
        Expected events between false alarms on a stationary stream; sets the per-test
        level ``alpha = check_every / budget_events``.
    correction
        ``"holm"`` (any dependence between features) or ``"bh"`` (Benjamini–Hochberg:
        names more drifted features when several drifted).
    autocorrelation
        Shrink the sample sizes per feature by the variance inflation of an empirical
        CDF under AR(1) dependence with the reference's lag-1 rank autocorrelation
        (:func:`~retrain.two_sample.effective_fraction`). Without it an autocorrelated stream raises
        false alarms far beyond the budget.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> mon = FeatureDriftMonitor(["a", "b", "c"], reference_size=500, window_size=200,
    ...                           check_every=50, budget_events=1e6)
    >>> mon.update_many(rng.normal(size=(3000, 3)))
    []
    >>> shifted = rng.normal(size=(1000, 3)) + [0.0, 2.0, 0.0]
    >>> report = mon.update_many(shifted)[0]
    >>> report.features, report.reference, report.event_count - 3000 <= 100
    (('b',), (0, 500), True)
    """

    name = "feature_ks"

    def __init__(
        self,
        feature_names: Sequence[str] | None = None,
        reference_size: int = 2000,
        window_size: int = 1000,
        check_every: int = 100,
        budget_events: float = 1_000_000,
        correction: str = "holm",
        autocorrelation: bool = True,
    ) -> None:
        if reference_size < 2 or window_size < 2 or check_every < 1:
            raise ValueError("reference_size, window_size >= 2 and check_every >= 1")
        if correction not in CORRECTIONS:
            raise ValueError(f"unknown correction {correction!r}; known: {CORRECTIONS}")
        self.feature_names = None if feature_names is None else tuple(feature_names)
        self.reference_size = reference_size
        self.window_size = window_size
        self.check_every = check_every
        self.budget_events = float(budget_events)
        self.correction = correction
        self.autocorrelation = autocorrelation
        self.alpha = check_alpha(budget_events, check_every)
        self.n_seen = 0
        self.n_features: int | None = None if feature_names is None else len(feature_names)
        self._ref = np.empty((0, 0), dtype=np.float32)
        self._cur = np.empty((0, 0), dtype=np.float32)
        self._cur_pos = np.zeros(window_size, dtype=np.int64)
        self.reset()

    # -- lifecycle ------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the reference and the window: the next vectors are the new reference."""
        self.ready = False  # reference complete, window being filled / tested
        self._ref_fill = 0
        self._ref_range = (self.n_seen, self.n_seen)
        self._cur_rows = 0  # vectors added to the window since the reference completed
        self._cur_head = 0
        self._fraction = np.ones(self.n_features or 0)
        self._ref_sorted = np.empty((0, 0), dtype=np.float32)  # feature-major, once complete
        self._ranks: np.ndarray | None = None

    def _allocate(self, d: int) -> None:
        self.n_features = d
        if self.feature_names is None:
            self.feature_names = tuple(f"x{j}" for j in range(d))
        self._ref = np.empty((self.reference_size, d), dtype=np.float32)
        # Feature-major: the test reads one contiguous row per feature.
        self._cur = np.empty((d, self.window_size), dtype=np.float32)
        self._fraction = np.ones(d)

    def _complete_reference(self, end: int) -> None:
        self._ref_range = (self._ref_range[0], end)
        if self.autocorrelation:
            self._fraction = effective_fraction(lag1_autocorrelation(self._ref))
        else:
            self._fraction = np.ones(self._ref.shape[1])
        self._ref_sorted = np.ascontiguousarray(np.sort(self._ref, axis=0).T)
        self._ranks = right_ranks(self._ref_sorted)
        self.ready = True

    # -- updates --------------------------------------------------------------------------
    def update(self, x: Any) -> DriftReport | None:
        """One feature vector; a report if this vector completed a test that fired."""
        reports = self.update_many(np.asarray(x, dtype=np.float64).reshape(1, -1))
        return reports[0] if reports else None

    def update_many(self, X: Any) -> list[DriftReport]:
        """A batch of feature vectors ``(n, d)``; the reports in event order."""
        arr = np.asarray(X, dtype=np.float64)
        if arr.ndim != 2:
            raise ValueError(f"expected a (n, d) matrix, got shape {arr.shape}")
        if self._ref.shape[1] == 0 and self.n_features in (None, arr.shape[1]):
            self._allocate(arr.shape[1])
        if arr.shape[1] != self.n_features:
            raise ValueError(f"expected {self.n_features} features, got {arr.shape[1]}")
        # float32 storage: clip first so a huge value stays huge instead of becoming inf.
        rows = np.clip(arr, -_F32_MAX, _F32_MAX).astype(np.float32)
        keep = ~np.isnan(rows).any(axis=1)
        positions = self.n_seen + np.flatnonzero(keep)
        rows = rows[keep]
        self.n_seen += arr.shape[0]
        reports: list[DriftReport] = []
        i, total = 0, rows.shape[0]
        while i < total:
            if not self.ready:
                if self._ref_fill == 0:
                    self._ref_range = (int(positions[i]), int(positions[i]))
                k = min(self.reference_size - self._ref_fill, total - i)
                self._ref[self._ref_fill : self._ref_fill + k] = rows[i : i + k]
                self._ref_fill += k
                i += k
                if self._ref_fill == self.reference_size:
                    self._complete_reference(int(positions[i - 1]) + 1)
                continue
            if self._cur_rows < self.window_size:
                need = self.window_size - self._cur_rows
            else:
                need = self.check_every - (self._cur_rows - self.window_size) % self.check_every
            k = min(need, total - i)
            self._push(rows[i : i + k], positions[i : i + k])
            i += k
            if k == need:
                report = self._check(int(positions[i - 1]))
                if report is not None:
                    reports.append(report)
                    self.reset()
        return reports

    def _push(self, rows: np.ndarray, positions: np.ndarray) -> None:
        self._cur_rows += rows.shape[0]
        w = self.window_size
        if rows.shape[0] > w:
            rows, positions = rows[-w:], positions[-w:]
        idx = (self._cur_head + np.arange(rows.shape[0])) % w
        self._cur[:, idx] = rows.T
        self._cur_pos[idx] = positions
        self._cur_head = int((self._cur_head + rows.shape[0]) % w)

    # -- the test -------------------------------------------------------------------------
    def _check(self, position: int) -> DriftReport | None:
        assert self._ranks is not None
        d = ks_distance(self._ref_sorted, self._cur, self._ranks)
        n_eff = self.reference_size * self._fraction
        m_eff = self.window_size * self._fraction
        p = ks_pvalue(d, n_eff, m_eff)
        adjusted = adjust_pvalues(p, self.correction)
        if adjusted.min() >= self.alpha:
            return None
        hit = np.flatnonzero(adjusted < self.alpha)
        hit = hit[np.lexsort((-d[hit], adjusted[hit]))]
        names = self.feature_names or ()
        ref_median = self._ref_sorted[:, self.reference_size // 2]
        cur_median = np.median(self._cur, axis=1)
        per_feature = {
            names[j]: {
                "ks_d": float(d[j]),
                "p_value": float(p[j]),
                "p_adjusted": float(adjusted[j]),
                "effective_fraction": float(self._fraction[j]),
                "reference_median": float(ref_median[j]),
                "current_median": float(cur_median[j]),
            }
            for j in hit
        }
        oldest = int(self._cur_pos[self._cur_head])  # the slot about to be overwritten
        return DriftReport(
            monitor=self.name,
            statistic=float(d[hit[0]]),
            statistic_name="ks_d",
            threshold=self.alpha,
            p_value=float(adjusted[hit[0]]),
            features=tuple(names[j] for j in hit),
            reference=self._ref_range,
            current=(oldest, position + 1),
            event_count=position + 1,
            budget_events=self.budget_events,
            details={"correction": self.correction, "per_feature": per_feature},
        )

    # -- state ----------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        return {
            "feature_names": None if self.feature_names is None else list(self.feature_names),
            "reference_size": self.reference_size,
            "window_size": self.window_size,
            "check_every": self.check_every,
            "budget_events": self.budget_events,
            "correction": self.correction,
            "autocorrelation": self.autocorrelation,
        }

    def to_state(self) -> dict[str, Any]:
        """JSON-able state; :meth:`from_state` continues with identical decisions."""
        state: dict[str, Any] = {
            "params": self.get_params(),
            "n_seen": self.n_seen,
            "n_features": self.n_features,
            "ready": self.ready,
            "ref_fill": self._ref_fill,
            "ref_range": list(self._ref_range),
            "cur_rows": self._cur_rows,
            "cur_head": self._cur_head,
        }
        if self.n_features is not None and self._ref.shape[1] == self.n_features:
            # Once complete, only the sorted reference and its autocorrelation matter.
            if self.ready:
                state["ref_sorted"] = pack_array(self._ref_sorted)
            else:
                state["ref"] = pack_array(self._ref[: self._ref_fill])
            filled = min(self._cur_rows, self.window_size)
            state["cur"] = pack_array(self._cur[:, :filled])
            state["cur_pos"] = pack_array(self._cur_pos[:filled])
            state["fraction"] = self._fraction.tolist()
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FeatureDriftMonitor:
        mon = cls(**state["params"])
        mon.n_seen = int(state["n_seen"])
        n_features = state["n_features"]
        if n_features is not None and "cur" in state:
            mon._allocate(int(n_features))
            if "ref" in state:
                ref = unpack_array(state["ref"])
                mon._ref[: ref.shape[0]] = ref
            cur = unpack_array(state["cur"])
            mon._cur[:, : cur.shape[1]] = cur
            mon._cur_pos[: cur.shape[1]] = unpack_array(state["cur_pos"])
            mon._fraction = np.asarray(state["fraction"], dtype=np.float64)
        mon.n_features = n_features
        mon.ready = bool(state["ready"])
        mon._ref_fill = int(state["ref_fill"])
        mon._ref_range = (int(state["ref_range"][0]), int(state["ref_range"][1]))
        mon._cur_rows = int(state["cur_rows"])
        mon._cur_head = int(state["cur_head"])
        if mon.ready:
            mon._ref_sorted = unpack_array(state["ref_sorted"])
            mon._ranks = right_ranks(mon._ref_sorted)
        return mon

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"
