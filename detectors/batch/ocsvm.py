"""One-class SVM with an RBF kernel (Schölkopf et al. 2001) via scikit-learn."""


from __future__ import annotations

from typing import Any

import numpy as np

from detectors.batch._scaling import subsample
from detectors.batch.base import BatchDetector

__all__ = ["OneClassSVM"]


class OneClassSVM(BatchDetector):
    """Kernel one-class SVM; score = ``-decision_function`` (positive outside the support).

    Training is quadratic in the number of samples, so at most ``max_samples`` rows (drawn
    with ``random_state``) are used. After fitting only the support vectors, dual
    coefficients, intercept and ``gamma`` are kept (plain arrays; no pickle on save), and
    scoring evaluates the RBF expansion in numpy, chunked.

    Parameters
    ----------
    nu
        Upper bound on the fraction of training outliers.
    gamma
        RBF width on standardised features; ``"scale"`` = ``1 / (d * var)`` as scikit-learn.
    max_samples
        Training subsample size.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = OneClassSVM().fit(rng.normal(size=(300, 2)))
    >>> det.score_one([0, 0]) < det.score_one([4, 4])
    True
    """

    name = "ocsvm"

    def __init__(self, nu: float = 0.05, gamma: float | str = "scale",
                 max_samples: int = 5000, random_state: int | None = 0) -> None:
        self.nu = nu
        self.gamma = gamma
        self.max_samples = max_samples
        self.random_state = random_state

    @classmethod
    def fast_params(cls) -> dict[str, Any]:
        return {"max_samples": 300}

    def _fit_scaled(self, Z: np.ndarray) -> None:
        from sklearn.svm import OneClassSVM as SkOneClassSVM

        Z = subsample(Z, self.max_samples, self.random_state)
        model = SkOneClassSVM(nu=self.nu, gamma=self.gamma, kernel="rbf").fit(Z)
        self.support_vectors_ = np.asarray(model.support_vectors_, dtype=np.float64)
        self.dual_coef_ = np.asarray(model.dual_coef_, dtype=np.float64).ravel()
        self.intercept_ = float(model.intercept_[0])
        self.gamma_ = float(model._gamma)

    def _score_scaled(self, Z: np.ndarray) -> np.ndarray:
        sv, coef = self.support_vectors_, self.dual_coef_
        sv_sq = (sv**2).sum(axis=1)
        out = np.empty(len(Z))
        for start in range(0, len(Z), 4096):
            chunk = Z[start : start + 4096]
            d2 = (chunk**2).sum(axis=1)[:, None] + sv_sq[None, :] - 2 * chunk @ sv.T
            out[start : start + 4096] = np.exp(-self.gamma_ * np.maximum(d2, 0.0)) @ coef
        return -(out + self.intercept_)
