"""Multivariate Gaussian density (batch maximum likelihood, shrunk covariance)."""


from __future__ import annotations

from typing import Any

import numpy as np

from detectors.batch._scaling import subsample
from detectors.batch.base import BatchDetector

__all__ = ["GaussianDensity"]


class GaussianDensity(BatchDetector):
    """Squared Mahalanobis distance (or negative log-likelihood) under a fitted Gaussian.

    Covariance is Ledoit-Wolf shrunk (well-conditioned with collinear or one-hot features),
    or with ``robust=True`` the minimum covariance determinant (ignores a polluted minority,
    on a subsample of ``max_samples`` rows).

    Parameters
    ----------
    output
        ``"mahalanobis"`` or ``"nll"``.
    robust
        Use MinCovDet instead of Ledoit-Wolf.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = GaussianDensity().fit(rng.normal(size=(500, 3)))
    >>> det.score_one([0, 0, 0]) < det.score_one([0, 5, 0])
    True
    >>> int(det.explain([[0, 5, 0]]).argmax())
    1
    """

    name = "gaussian"

    def __init__(self, output: str = "mahalanobis", robust: bool = False,
                 max_samples: int = 20000, random_state: int | None = 0) -> None:
        self.output = output
        self.robust = robust
        self.max_samples = max_samples
        self.random_state = random_state

    def _fit_scaled(self, Z: np.ndarray) -> None:
        from sklearn.covariance import LedoitWolf, MinCovDet

        if self.output not in ("mahalanobis", "nll"):
            raise ValueError("output must be 'mahalanobis' or 'nll'")
        if self.robust and len(Z) > Z.shape[1] + 1:
            est = MinCovDet(random_state=self.random_state).fit(
                subsample(Z, self.max_samples, self.random_state))
            loc, cov = est.location_, est.covariance_
            cov = cov + 1e-6 * np.eye(len(cov))
        else:
            est = LedoitWolf().fit(Z)
            loc, cov = est.location_, est.covariance_ + 1e-9 * np.eye(Z.shape[1])
        self.location_ = loc
        self.precision_ = np.linalg.pinv(cov, hermitian=True)
        self.logdet_ = float(np.linalg.slogdet(cov)[1])

    def explain(self, X: Any) -> np.ndarray:
        """``diff_j * (P diff)_j``: terms that sum to the squared Mahalanobis distance."""
        diff = self._scaled(X) - self.location_
        return diff * (diff @ self.precision_)

    def normal_contribution(self) -> np.ndarray | None:
        return np.ones(self.n_features_in_) if self.is_fitted else None

    def _score_scaled(self, Z: np.ndarray) -> np.ndarray:
        diff = Z - self.location_
        d2 = np.maximum((diff * (diff @ self.precision_)).sum(axis=1), 0.0)
        if self.output == "mahalanobis":
            return d2
        return 0.5 * (d2 + self.logdet_ + Z.shape[1] * np.log(2 * np.pi))
