"""PCA reconstruction error (Shyu et al. 2003 style, residual subspace)."""


from __future__ import annotations

from typing import Any

import numpy as np

from detectors.batch.base import BatchDetector

__all__ = ["PCAReconstruction"]


class PCAReconstruction(BatchDetector):
    """Squared distance of a standardised row to the principal subspace of the training data.

    Parameters
    ----------
    n_components
        Number of components, or a fraction of variance to keep (0 < value < 1).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> t = rng.normal(size=(500, 1))
    >>> X = np.hstack([t, 2 * t]) + 0.01 * rng.normal(size=(500, 2))
    >>> det = PCAReconstruction(n_components=1).fit(X)
    >>> det.score_one([1.0, 2.0]) < det.score_one([1.0, -2.0])
    True
    >>> det.explain([[1.0, -2.0]]).shape
    (1, 2)
    """

    name = "pca"

    def __init__(self, n_components: float = 0.95) -> None:
        self.n_components = n_components

    def _fit_scaled(self, Z: np.ndarray) -> None:
        _, s, vt = np.linalg.svd(Z - Z.mean(axis=0), full_matrices=False)
        var = s**2
        if 0 < self.n_components < 1:
            frac = np.cumsum(var) / max(var.sum(), 1e-300)
            k = int(np.searchsorted(frac, self.n_components) + 1)
        else:
            k = int(self.n_components)
        k = max(1, min(k, Z.shape[1]))
        self.center_ = Z.mean(axis=0)
        self.components_ = vt[:k]
        self.normal_contribution_ = self._residual(Z).mean(axis=0) + 1e-12

    def _residual(self, Z: np.ndarray) -> np.ndarray:
        C = Z - self.center_
        return (C - (C @ self.components_.T) @ self.components_) ** 2

    def explain(self, X: Any) -> np.ndarray:
        """Squared residual per feature (standardised units)."""
        return self._residual(self._scaled(X))

    def _score_scaled(self, Z: np.ndarray) -> np.ndarray:
        return self._residual(Z).sum(axis=1)
