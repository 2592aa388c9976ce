"""Common base of the batch detectors: standardise, then model."""


from __future__ import annotations

from typing import Any

import numpy as np

from detectors.base import Detector
from detectors.batch._scaling import fit_standardiser

__all__ = ["BatchDetector"]


class BatchDetector(Detector):
    """A batch detector that standardises features with the training mean / std first.

    Subclasses implement ``_fit_scaled(Z)`` and ``_score_scaled(Z)`` on standardised data.
    """

    online = False

    def _fit(self, X: np.ndarray) -> None:
        self.mean_, self.scale_ = fit_standardiser(X)
        self._fit_scaled((X - self.mean_) / self.scale_)

    def _scaled(self, X: Any) -> np.ndarray:
        X = self._check_input(X)
        return (X - self.mean_) / self.scale_

    def score_many(self, X: Any) -> np.ndarray:
        Z = self._scaled(X)
        if not len(Z):
            return np.zeros(0)
        return np.asarray(self._score_scaled(Z), dtype=np.float64)

    def _fit_scaled(self, Z: np.ndarray) -> None:
        raise NotImplementedError

    def _score_scaled(self, Z: np.ndarray) -> np.ndarray:
        raise NotImplementedError
