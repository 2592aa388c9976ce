"""Per-feature tail surprise against a slowly refreshed reference histogram.

A row is scored by how rare each of its values is among the reference rows, feature by
feature (HBOS-like, but with tail probabilities and extrapolation beyond the largest value
seen):

* ``s_j(x) = -ln P_j(X >= x)``, the surprise of value ``x`` in feature ``j``, with
  ``P_j(X >= x) = (W_j(>= x) + prior) / (W + prior)`` inside the reference range
  (``W_j(>= x)``: reference weight at or above ``x``, ``W``: total weight), and
  ``prior / (W + prior) * exp(-(x - max_j) / scale_j)`` beyond the largest reference value,
  so "far beyond anything seen" keeps growing instead of saturating at ``1 / W``;
  ``scale_j`` is the mean excess of the reference over its ``tail_quantile`` (the scale of
  an exponential tail), floored at ``min_scale`` (``constant_scale`` for a feature that
  was constant);
* features that measure the same thing (``groups``) count once: the score of a row is the
  sum over groups of the largest surprise in the group, in nats. A row whose three
  least likely groups each have probability 1e-3 scores about 20.7.

The reference is a histogram per feature (values rounded to ``resolution``), so its size
does not grow with the stream. It first accumulates rows with weight 1 up to
``capacity``; from then on each learned row replaces an equal share of the old weight
(exponential forgetting with a half-life of ``half_life`` rows), so the total weight, and
with it the scale of the scores, stays constant. Choose what to learn (for instance only
rows that were not alarming) outside: the detector learns every row it is given.

Explanations are the per-feature surprises (``explain``), comparable across features:
nats of "how many reference rows were at least this extreme".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from detectors.base import Detector
from detectors.registry import register

__all__ = ["MarginalTail"]

_TAILS = ("upper", "both")


class MarginalTail(Detector):
    """Sum over feature groups of the largest per-feature tail surprise (nats).

    Parameters
    ----------
    groups
        Column indices grouped by what they measure; the score adds the largest surprise
        of each group. Columns in no group are ignored. ``None``: every column is its own
        group.
    tails
        ``"upper"``: only values above the reference are unusual (counts, error rates,
        one-hot indicators); ``"both"``: low values too.
    resolution
        Values are rounded to multiples of this before they enter the histogram.
    prior
        Pseudo-weight of "a value beyond everything seen" (``P >= prior / (W + prior)``).
    capacity
        Total reference weight: rows are added with weight 1 until it is reached, then
        old weight is forgotten as new rows come in.
    half_life
        Rows after which the weight of older rows has halved, once ``capacity`` is reached.
    tail_quantile
        The extrapolation scale is the mean excess above this reference quantile.
    min_scale
        Floor of the extrapolation scale, in feature units (discrete features whose tail
        is a single value).
    constant_scale
        Extrapolation scale of a feature whose reference is constant (no spread to measure:
        how many feature units beyond the one value seen make one more nat of surprise).
    rescale_every
        Learned rows between re-estimations of the extrapolation scales (the histograms
        themselves are updated with every row).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = MarginalTail(groups=[[0], [1, 2]]).learn_many(rng.normal(size=(2000, 3)))
    >>> normal, far, farther = det.score_many([[0.0, 0.0, 0.0], [6.0, 0.0, 0.0],
    ...                                        [9.0, 0.0, 0.0]])
    >>> bool(normal < 3.0 < far < farther)
    True
    >>> det.explain([[6.0, 0.0, 0.0]]).argmax()
    np.int64(0)
    """

    name = "marginal_tail"
    online = True

    def __init__(self, groups: Sequence[Sequence[int]] | None = None, tails: str = "both",
                 resolution: float = 1e-3, prior: float = 1.0, capacity: float = 10_000.0,
                 half_life: float = 100_000.0, tail_quantile: float = 0.9,
                 min_scale: float = 0.02, constant_scale: float = 0.1,
                 rescale_every: int = 256) -> None:
        self.groups = None if groups is None else [[int(c) for c in g] for g in groups]
        self.tails = tails
        self.resolution = resolution
        self.prior = prior
        self.capacity = capacity
        self.half_life = half_life
        self.tail_quantile = tail_quantile
        self.min_scale = min_scale
        self.constant_scale = constant_scale
        self.rescale_every = rescale_every

    # -- layout ---------------------------------------------------------------------------
    def _check_params(self, d: int) -> None:
        if self.tails not in _TAILS:
            raise ValueError(f"tails must be one of {', '.join(_TAILS)}, got {self.tails!r}")
        if not (self.resolution > 0 and self.prior > 0 and self.capacity >= 1
                and self.half_life > 0 and 0 < self.tail_quantile < 1 and self.min_scale > 0
                and self.constant_scale > 0):
            raise ValueError("resolution, prior, half_life, min_scale, constant_scale must be > 0, "
                             "capacity >= 1 and tail_quantile in (0, 1)")
        if self.groups is not None:
            flat = [c for g in self.groups for c in g]
            if not self.groups or any(not g for g in self.groups) or len(set(flat)) != len(flat):
                raise ValueError("groups must be non-empty and must not share columns")
            if any(c < 0 or c >= d for c in flat):
                raise ValueError(f"group column out of range for {d} features")

    def _layout(self, d: int) -> tuple[np.ndarray, np.ndarray]:
        """Tracked columns (group by group) and where each group starts in that order."""
        groups = [[c] for c in range(d)] if self.groups is None else self.groups
        cols = np.array([c for g in groups for c in g], dtype=np.int64)
        starts = np.cumsum([0, *[len(g) for g in groups[:-1]]]).astype(np.int64)
        return cols, starts

    # -- learning -------------------------------------------------------------------------
    def _row_weights(self, m: int) -> tuple[np.ndarray, float, float]:
        """Final weight of each new row, the factor on the old weight, and the new total."""
        mass = float(getattr(self, "mass_", 0.0))
        cap = float(self.capacity)
        w_full = cap * math.log(2) / self.half_life
        weights = np.empty(m)
        decays = np.empty(m)
        for i in range(m):
            if mass + 1.0 <= cap:
                weights[i], decays[i] = 1.0, 1.0
                mass += 1.0
            else:
                w = min(w_full, cap)
                decay = min(max(cap - w, 0.0) / mass, 1.0) if mass > 0 else 0.0
                weights[i], decays[i] = w, decay
                mass = mass * decay + w
        # Row i is decayed by every later row of the batch.
        later = np.append(np.cumprod(decays[::-1])[::-1][1:], 1.0)
        return weights * later, float(np.prod(decays)), mass

    def _learn(self, X: np.ndarray) -> None:
        d = X.shape[1]
        if not hasattr(self, "mass_"):
            self._check_params(d)
            self.columns_, self.group_starts_ = self._layout(d)
            k = len(self.columns_)
            self.offsets_ = np.zeros(k + 1, dtype=np.int64)
            self.values_ = np.zeros(0)
            self.weights_ = np.zeros(0)
            self.mass_ = 0.0
            self.n_rows_ = 0
        # The tail scales are re-estimated after every ``rescale_every`` rows: split the
        # batch there, so the model does not depend on how the stream was batched.
        every = max(1, int(self.rescale_every))
        start = 0
        while start < len(X):
            stop = min(len(X), start + every - self.n_rows_ % every)
            self._add(X[start:stop])
            self.n_rows_ += stop - start
            if self.n_rows_ % every == 0:
                self.scales_ = self._scales()
            start = stop
        self._cache = None

    def _add(self, X: np.ndarray) -> None:
        """Fold rows into the histograms (old weight decayed once the capacity is full)."""
        row_w, old_factor, self.mass_ = self._row_weights(len(X))
        Q = np.rint(X[:, self.columns_] / self.resolution)
        floor = 1e-9 * self.capacity
        values, weights, offsets = [], [], [0]
        for k in range(len(self.columns_)):
            lo, hi = self.offsets_[k], self.offsets_[k + 1]
            v = np.concatenate([self.values_[lo:hi], Q[:, k]])
            w = np.concatenate([self.weights_[lo:hi] * old_factor, row_w])
            uniq, inv = np.unique(v, return_inverse=True)
            wsum = np.bincount(inv, weights=w, minlength=len(uniq))
            keep = wsum > floor  # forgotten values leave the histogram
            values.append(uniq[keep])
            weights.append(wsum[keep])
            offsets.append(offsets[-1] + int(keep.sum()))
        self.values_ = np.concatenate(values)
        self.weights_ = np.concatenate(weights)
        self.offsets_ = np.asarray(offsets, dtype=np.int64)

    def _restore_state(self, state: dict[str, Any]) -> None:
        super()._restore_state(state)
        self._cache = None

    # -- reference summaries ------------------------------------------------------------------
    def _column(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.offsets_[k], self.offsets_[k + 1]
        return self.values_[lo:hi] * self.resolution, self.weights_[lo:hi]

    def _scales(self) -> np.ndarray:
        """Upper and lower extrapolation scale of every tracked column, shape ``(2, k)``."""
        out = np.ones((2, len(self.columns_)))  # the lower row is unused with "upper" tails
        for k in range(len(self.columns_)):
            v, w = self._column(k)
            out[0, k] = self._scale(v, w, upper=True)
            if self.tails == "both":
                out[1, k] = self._scale(v, w, upper=False)
        return out

    def _tables(self) -> list[tuple[Any, ...]]:
        """Per tracked column: values (feature units), weight at or above each value (and a
        trailing 0), weight at or below, largest / smallest value, extrapolation scales
        (those of the last re-estimation; before the first, of the current histogram)."""
        cache = getattr(self, "_cache", None)
        if cache is not None:
            return cache  # type: ignore[no-any-return]
        scales = getattr(self, "scales_", None)
        if scales is None:
            scales = self._scales()
        out = []
        for k in range(len(self.columns_)):
            v, w = self._column(k)
            ge = np.append(np.cumsum(w[::-1])[::-1], 0.0)
            le = np.concatenate([[0.0], np.cumsum(w)])
            out.append((v, ge, le, float(v[-1]), float(v[0]), scales[0, k], scales[1, k]))
        self._cache = out
        return out

    def _scale(self, v: np.ndarray, w: np.ndarray, upper: bool) -> float:
        """Scale of the exponential tail beyond the largest reference value.

        The mean excess above the ``tail_quantile`` when at least 10 rows' weight lies
        above it; otherwise (a discrete feature: mostly one value, a few others) the mean
        excess above the median, i.e. the spread of the few values seen; for a constant
        reference (no spread to measure) ``constant_scale``.
        """
        if not upper:
            v, w = -v[::-1], w[::-1]
        cum = np.cumsum(w) / w.sum()
        for q, need in ((self.tail_quantile, 10.0), (0.5, 0.0)):
            u = v[min(int(np.searchsorted(cum, q, side="left")), len(v) - 1)]
            above = v > u
            mass = float(w[above].sum())
            if mass > need:
                return max(float((w[above] * (v[above] - u)).sum() / mass), self.min_scale)
        return float(self.constant_scale)

    # -- scoring --------------------------------------------------------------------------
    def _surprise(self, X: np.ndarray) -> np.ndarray:
        """Per tracked column surprise (nats), shape ``(n, len(columns_))``."""
        tables = self._tables()
        total = self.mass_ + self.prior
        S = np.empty((len(X), len(self.columns_)))
        for k, (v, ge, le, vmax, vmin, s_up, s_low) in enumerate(tables):
            x = X[:, self.columns_[k]]
            xq = np.rint(x / self.resolution) * self.resolution
            # Compare on the histogram's grid; extrapolate with the exact distance.
            idx = np.searchsorted(v, xq - 0.5 * self.resolution, side="left")
            s = -np.log((ge[idx] + self.prior) / total)
            s += np.maximum(x - vmax, 0.0) / s_up * (xq > vmax)
            if self.tails == "both":
                idx_le = np.searchsorted(v, xq + 0.5 * self.resolution, side="right")
                s_lo = -np.log((le[idx_le] + self.prior) / total)
                s_lo += np.maximum(vmin - x, 0.0) / s_low * (xq < vmin)
                s = np.maximum(s, s_lo)
            S[:, k] = np.maximum(s, 0.0)
        return S

    def score_many(self, X: Any) -> np.ndarray:
        X = self._check_input(X)
        if len(X) == 0:
            return np.zeros(0)
        S = self._surprise(X)
        return np.maximum.reduceat(S, self.group_starts_, axis=1).sum(axis=1)

    def explain(self, X: Any) -> np.ndarray:
        """Surprise of every feature (0 for columns in no group), shape ``(n, d)``."""
        X = self._check_input(X)
        out = np.zeros(X.shape)
        if len(X):
            out[:, self.columns_] = self._surprise(X)
        return out

    def normal_contribution(self) -> np.ndarray | None:
        """Mean surprise of each feature over its own reference (0 for ignored columns)."""
        if not self.is_fitted:
            return None
        out = np.zeros(self.n_features_in_)
        total = self.mass_ + self.prior
        for k, (_, ge, _, _, _, _, _) in enumerate(self._tables()):
            w = -np.diff(ge)
            out[self.columns_[k]] = float((w * -np.log((ge[:-1] + self.prior) / total)).sum()
                                          / max(w.sum(), 1e-12))
        return out

    def feature_reference(self, column: int) -> tuple[np.ndarray, np.ndarray]:
        """(values, weights) of one column's reference histogram (for inspection)."""
        self._check_fitted()
        k = int(np.flatnonzero(self.columns_ == column)[0])
        lo, hi = self.offsets_[k], self.offsets_[k + 1]
        return self.values_[lo:hi] * self.resolution, self.weights_[lo:hi].copy()


register(MarginalTail)
