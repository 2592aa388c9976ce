"""Distance to the nearest k-means centroid."""


from __future__ import annotations

from typing import Any

import numpy as np

from detectors.batch._scaling import subsample
from detectors.batch.base import BatchDetector

__all__ = ["KMeansDistance"]


class KMeansDistance(BatchDetector):
    """Euclidean distance (standardised units) to the nearest centroid, per cluster radius.

    With ``normalize=True`` the distance is divided by the cluster's median member
    distance, so a tight cluster does not hide a point just outside it behind a wide one.

    Parameters
    ----------
    n_clusters
        Number of clusters (capped at the number of distinct training rows).
    normalize
        Divide by the cluster radius.
    random_state
        Seed of k-means++.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(size=(200, 2)), rng.normal(size=(200, 2)) + 8])
    >>> det = KMeansDistance(n_clusters=2).fit(X)
    >>> det.score_one([8, 8]) < det.score_one([4, 4])
    True
    """

    name = "kmeans"

    def __init__(self, n_clusters: int = 8, normalize: bool = True,
                 max_samples: int = 50000, random_state: int | None = 0) -> None:
        self.n_clusters = n_clusters
        self.normalize = normalize
        self.max_samples = max_samples
        self.random_state = random_state

    @classmethod
    def fast_params(cls) -> dict[str, Any]:
        return {"n_clusters": 3}

    def _fit_scaled(self, Z: np.ndarray) -> None:
        from sklearn.cluster import KMeans

        Z = subsample(Z, self.max_samples, self.random_state)
        k = max(1, min(self.n_clusters, len(np.unique(Z, axis=0))))
        km = KMeans(n_clusters=k, n_init=3, random_state=self.random_state).fit(Z)
        self.centers_ = km.cluster_centers_
        dist, label = self._nearest(Z)
        radius = np.ones(k)
        for c in range(k):
            members = dist[label == c]
            if len(members):
                radius[c] = np.median(members)
        floor = max(float(np.median(dist)), 1e-6)
        self.radius_ = np.maximum(radius, 0.1 * floor)

    def _nearest(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = self.centers_
        d2 = (Z**2).sum(axis=1)[:, None] + (c**2).sum(axis=1)[None, :] - 2 * Z @ c.T
        label = d2.argmin(axis=1)
        return np.sqrt(np.maximum(d2[np.arange(len(Z)), label], 0.0)), label

    def _score_scaled(self, Z: np.ndarray) -> np.ndarray:
        out = np.empty(len(Z))
        for start in range(0, len(Z), 8192):
            dist, label = self._nearest(Z[start : start + 8192])
            out[start : start + 8192] = dist / self.radius_[label] if self.normalize else dist
        return out
