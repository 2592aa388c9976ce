"""Isolation Forest (Liu, Ting & Zhou 2008) via scikit-learn."""


from __future__ import annotations

from typing import Any

import numpy as np

from detectors.batch.base import BatchDetector

__all__ = ["IsolationForest"]


class IsolationForest(BatchDetector):
    """Average path length to isolate a point in random trees; short path = anomalous.

    Wraps ``sklearn.ensemble.IsolationForest``; the score is ``-score_samples`` (about 0.3-0.5
    for normal points, towards 1 for isolated ones). The fitted forest is pickled on save,
    and unpickled only after its sha256 matched the manifest.

    Parameters
    ----------
    n_estimators, max_samples, max_features
        As in scikit-learn.
    random_state
        Seed.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = IsolationForest(n_estimators=50).fit(rng.normal(size=(300, 2)))
    >>> det.score_one([0, 0]) < det.score_one([6, 6])
    True
    """

    name = "isolation_forest"
    json_state = False

    def __init__(self, n_estimators: int = 200, max_samples: int | str = 256,
                 max_features: float = 1.0, random_state: int | None = 0) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.max_features = max_features
        self.random_state = random_state

    @classmethod
    def fast_params(cls) -> dict[str, Any]:
        return {"n_estimators": 30, "max_samples": 64}

    def _fit_scaled(self, Z: np.ndarray) -> None:
        from sklearn.ensemble import IsolationForest as SkIsolationForest

        max_samples = self.max_samples
        if isinstance(max_samples, int) and max_samples > len(Z):
            max_samples = len(Z)  # scikit-learn would warn and do the same
        self.model_ = SkIsolationForest(
            n_estimators=self.n_estimators, max_samples=max_samples,
            max_features=self.max_features, random_state=self.random_state, n_jobs=1,
        ).fit(Z)

    def _score_scaled(self, Z: np.ndarray) -> np.ndarray:
        return -self.model_.score_samples(Z)
