"""Exponentially weighted multivariate Gaussian: Mahalanobis distance or negative log-likelihood."""


from __future__ import annotations

from typing import Any

import numpy as np

from detectors.base import Detector

__all__ = ["EWGaussian"]


class EWGaussian(Detector):
    """Online Gaussian with exponentially weighted mean and covariance.

    The classic maximum-likelihood detector: fit ``N(mu, Sigma)`` to recent normal data and
    score ``x`` by how improbable it is. Mean and covariance forget with rate ``alpha``
    (half-life ``ln 2 / alpha`` samples), so slow drift is followed; until ``1 / alpha``
    samples have been seen the update is the plain running mean / covariance, so the first
    samples are not over-weighted.

    Parameters
    ----------
    alpha
        Forgetting rate per sample, in (0, 1].
    output
        ``"mahalanobis"`` (squared Mahalanobis distance, chi-square with d degrees of freedom
        for normal data) or ``"nll"`` (negative log-likelihood, which also penalises a wide
        covariance).
    shrinkage
        Ridge added to the covariance, relative to its diagonal (keeps it invertible when
        features are collinear or constant).
    min_var
        Absolute floor added to the diagonal.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = EWGaussian(alpha=0.01).learn_many(rng.normal(size=(500, 2)))
    >>> det.score_one([0.0, 0.0]) < 1.0 < det.score_one([4.0, -4.0])
    True
    >>> det.explain([[4.0, 0.0]]).argmax()
    np.int64(0)
    """

    name = "ew_gaussian"
    online = True

    def __init__(self, alpha: float = 0.005, output: str = "mahalanobis",
                 shrinkage: float = 1e-3, min_var: float = 1e-9) -> None:
        self.alpha = alpha
        self.output = output
        self.shrinkage = shrinkage
        self.min_var = min_var

    def _learn(self, X: np.ndarray) -> None:
        if not 0 < self.alpha <= 1:
            raise ValueError("alpha must be in (0, 1]")
        if self.output not in ("mahalanobis", "nll"):
            raise ValueError("output must be 'mahalanobis' or 'nll'")
        d = X.shape[1]
        if not hasattr(self, "mean_"):
            self.mean_ = np.zeros(d)
            self.cov_ = np.zeros((d, d))
            self.n_ = 0
        mean, cov, n = self.mean_.copy(), self.cov_.copy(), self.n_
        for x in X:
            n += 1
            a = max(self.alpha, 1.0 / n)
            diff = x - mean
            incr = a * diff
            mean += incr
            # Welford-style EW update: unbiased in the running phase, EW afterwards.
            cov = (1 - a) * (cov + np.outer(diff, incr))
        self.mean_, self.cov_, self.n_ = mean, cov, n
        self._cache = None

    def _precision(self) -> tuple[np.ndarray, float]:
        cache = getattr(self, "_cache", None)
        if cache is not None:
            return cache
        cov = self.cov_ + np.diag(self.shrinkage * np.diag(self.cov_) + self.min_var)
        # A flat feature has zero variance: give it unit scale instead of an infinite one.
        flat = np.diag(self.cov_) <= self.min_var
        cov[flat, flat] += 1.0
        _, logdet = np.linalg.slogdet(cov)
        prec = np.linalg.pinv(cov, hermitian=True)
        self._cache = (prec, float(logdet))
        return self._cache

    def _restore_state(self, state: dict[str, Any]) -> None:
        super()._restore_state(state)
        self._cache = None

    def explain(self, X: Any) -> np.ndarray:
        """``diff_j * (P diff)_j``: terms that sum to the squared Mahalanobis distance."""
        X = self._check_input(X)
        prec, _ = self._precision()
        diff = X - self.mean_
        return diff * (diff @ prec)

    def normal_contribution(self) -> np.ndarray | None:
        # Each term has expectation 1 under the fitted Gaussian.
        return np.ones(self.n_features_in_) if self.is_fitted else None

    def score_many(self, X: Any) -> np.ndarray:
        d2 = np.maximum(self.explain(X).sum(axis=1), 0.0)
        if self.output == "mahalanobis":
            return d2
        _, logdet = self._precision()
        return 0.5 * (d2 + logdet + self.n_features_in_ * np.log(2 * np.pi))
