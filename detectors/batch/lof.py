"""Local Outlier Factor in novelty mode (Breunig et al. 2000) via scikit-learn."""


from __future__ import annotations

from typing import Any

import numpy as np

from detectors.batch._scaling import subsample
from detectors.batch.base import BatchDetector

__all__ = ["LOFNovelty"]


class LOFNovelty(BatchDetector):
    """Local density of a new point relative to its training neighbours' densities.

    Score = ``-score_samples`` (about 1 inside clusters, larger in sparse places). The model
    keeps (a subsample of) the training set; it is pickled on save and unpickled only after
    its sha256 matched the manifest.

    Parameters
    ----------
    n_neighbors
        Neighbourhood size.
    max_samples
        Training subsample size (memory and query time grow with it).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = LOFNovelty(n_neighbors=10).fit(rng.normal(size=(300, 2)))
    >>> det.score_one([0, 0]) < det.score_one([5, 5])
    True
    """

    name = "lof"
    json_state = False

    def __init__(self, n_neighbors: int = 20, max_samples: int = 20000,
                 random_state: int | None = 0) -> None:
        self.n_neighbors = n_neighbors
        self.max_samples = max_samples
        self.random_state = random_state

    @classmethod
    def fast_params(cls) -> dict[str, Any]:
        return {"n_neighbors": 10}

    def _fit_scaled(self, Z: np.ndarray) -> None:
        from sklearn.neighbors import LocalOutlierFactor

        Z = subsample(Z, self.max_samples, self.random_state)
        self.model_ = LocalOutlierFactor(
            n_neighbors=min(self.n_neighbors, max(len(Z) - 1, 1)), novelty=True, n_jobs=1
        ).fit(Z)

    def _score_scaled(self, Z: np.ndarray) -> np.ndarray:
        return -self.model_.score_samples(Z)
