"""LODA: lightweight on-line detector of anomalies (Pevný 2016)."""


from __future__ import annotations

import math
from typing import Any

import numpy as np

from detectors.base import Detector

__all__ = ["LODA"]


class LODA(Detector):
    """Average negative log-density over histograms of sparse random projections.

    ``backend="numpy"`` (default): fixed-width histograms over a range set by the first
    batch (widened by ``margin``; values outside fall in a floor-density tail), counts
    decayed by ``decay`` per sample so the model follows drift; vectorised over batches.
    ``backend="river"``: wraps ``river.anomaly.LODA`` (adaptive-width streaming histograms,
    pure Python, one sample at a time: ~50x slower, kept for comparison); its state is
    pickled on save (see :mod:`detectors.persistence`).

    Parameters
    ----------
    n_projections
        Number of random projections (each uses ``ceil(sqrt(d))`` features).
    n_bins
        Bins per histogram (numpy backend).
    decay
        Per-sample forgetting of histogram counts, 0 = never forget.
    margin
        Fractional widening of each projection's learned range.
    backend
        ``"numpy"`` or ``"river"``.
    random_state
        Seed of the projections.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = LODA(random_state=0).learn_many(rng.normal(size=(1000, 3)))
    >>> det.score_one([0, 0, 0]) < det.score_one([5, 5, -5])
    True
    """

    name = "loda"
    online = True

    def __init__(self, n_projections: int = 100, n_bins: int = 30, decay: float = 0.0,
                 margin: float = 0.5, backend: str = "numpy",
                 random_state: int | None = 0) -> None:
        self.n_projections = n_projections
        self.n_bins = n_bins
        self.decay = decay
        self.margin = margin
        self.backend = backend
        self.random_state = random_state

    @property
    def json_state(self) -> bool:  # type: ignore[override]
        return self.backend == "numpy"

    def _learn(self, X: np.ndarray) -> None:
        if self.backend == "river":
            self._learn_river(X)
            return
        if self.backend != "numpy":
            raise ValueError("backend must be 'numpy' or 'river'")
        d = X.shape[1]
        if not hasattr(self, "projections_"):
            rng = np.random.default_rng(self.random_state)
            k = max(1, math.ceil(math.sqrt(d)))
            proj = np.zeros((self.n_projections, d))
            for i in range(self.n_projections):
                cols = rng.choice(d, size=k, replace=False)
                proj[i, cols] = rng.normal(size=k)
            z = X @ proj.T
            lo, hi = z.min(axis=0), z.max(axis=0)
            width = np.maximum(hi - lo, 1e-6 * np.maximum(np.abs(hi), 1.0))
            self.projections_ = proj
            self.lo_ = lo - self.margin * width
            self.hi_ = hi + self.margin * width
            self.counts_ = np.zeros((self.n_projections, self.n_bins))
            self.total_ = 0.0
        z = X @ self.projections_.T
        bins = self._bins(z)
        if self.decay > 0:
            # Decay once per batch by the batch's length: equal to per-sample decay up to
            # the order within the batch.
            factor = (1 - self.decay) ** len(X)
            self.counts_ *= factor
            self.total_ *= factor
        rows = np.repeat(np.arange(self.n_projections)[None, :], len(X), axis=0)
        inside = bins >= 0
        np.add.at(self.counts_, (rows[inside], bins[inside]), 1.0)
        self.total_ += float(len(X))

    def _bins(self, z: np.ndarray) -> np.ndarray:
        pos = (z - self.lo_) / (self.hi_ - self.lo_) * self.n_bins
        b = np.floor(pos).astype(np.int64)
        return np.where((b < 0) | (b >= self.n_bins), -1, b)

    def _learn_river(self, X: np.ndarray) -> None:
        from river import anomaly

        if not hasattr(self, "river_model_"):
            self.river_model_ = anomaly.LODA(
                n_bins=self.n_bins, n_random_cuts=self.n_projections, seed=self.random_state
            )
        for row in X:
            self.river_model_.learn_one(dict(enumerate(row.tolist())))

    def score_many(self, X: Any) -> np.ndarray:
        X = self._check_input(X)
        if self.backend == "river":
            return np.array([self.river_model_.score_one(dict(enumerate(r.tolist()))) for r in X])
        z = X @ self.projections_.T
        bins = self._bins(z)
        width = (self.hi_ - self.lo_) / self.n_bins
        total = max(self.total_, 1e-12)
        counts = np.take_along_axis(
            np.broadcast_to(self.counts_, (len(X), *self.counts_.shape)),
            np.maximum(bins, 0)[:, :, None], axis=2,
        )[:, :, 0]
        # Laplace-smoothed density; the tail outside the range gets the empty-bin density
        # divided by the distance (in bin widths) beyond the range, so farther = rarer.
        dens = (counts + 0.5) / (total + 0.5 * self.n_bins) / width
        over = np.maximum(self.lo_ - z, z - self.hi_) / width
        tail = (0.5 / (total + 0.5 * self.n_bins) / width) / (1.0 + np.maximum(over, 0.0))
        dens = np.where(bins < 0, tail, dens)
        return -np.log(dens).mean(axis=1)
