"""Online one-class SVM: river's SGD one-class SVM on random Fourier features."""


from __future__ import annotations

from typing import Any

import numpy as np

from detectors.base import Detector

__all__ = ["OnlineOneClassSVM"]


class OnlineOneClassSVM(Detector):
    """``river.anomaly.OneClassSVM`` behind an online standardiser and an RBF feature map.

    river's one-class SVM is linear (SGD on the hinge loss with a ``nu`` intercept), so on
    its own it can only cut space with one hyperplane. Standardising each feature with
    running mean/variance and mapping it through ``n_components`` random Fourier features
    (an approximation of the RBF kernel, Rahimi & Recht 2007) gives it a closed boundary.
    The score is ``-(w . phi(x) - b)``, higher outside the learned support. Random
    features oscillate instead of decaying far from the data, so a support guard is added:
    ``(max(0, |z| - radius))^2`` with ``radius`` the largest standardised norm learned,
    which keeps "farther out = more anomalous" beyond the training range.

    Learning is one sample at a time (river), so this detector is for modest rates; the
    river model is pickled on save (see :mod:`detectors.persistence`).

    Parameters
    ----------
    nu
        Upper bound on the fraction of training outliers.
    n_components
        Random Fourier features.
    gamma
        RBF width on standardised features (``None`` = ``1 / n_features``).
    random_state
        Seed of the feature map.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> det = OnlineOneClassSVM(random_state=0).learn_many(rng.normal(size=(500, 2)))
    >>> det.score_one([0.0, 0.0]) < det.score_one([5.0, 5.0])
    True
    """

    name = "online_ocsvm"
    online = True
    json_state = False

    def __init__(self, nu: float = 0.05, n_components: int = 64, gamma: float | None = None,
                 intercept_lr: float = 0.01, random_state: int | None = 0) -> None:
        self.nu = nu
        self.n_components = n_components
        self.gamma = gamma
        self.intercept_lr = intercept_lr
        self.random_state = random_state

    @classmethod
    def fast_params(cls) -> dict[str, Any]:
        return {"n_components": 16}

    def _features(self, X: np.ndarray) -> np.ndarray:
        std = np.sqrt(np.maximum(self.var_, 1e-12))
        Z = (X - self.mean_) / std
        return np.sqrt(2.0 / self.n_components) * np.cos(Z @ self.omega_ + self.phase_)

    def _learn(self, X: np.ndarray) -> None:
        from river import anomaly, optim

        d = X.shape[1]
        if not hasattr(self, "river_model_"):
            rng = np.random.default_rng(self.random_state)
            gamma = self.gamma if self.gamma is not None else 1.0 / d
            self.omega_ = rng.normal(scale=np.sqrt(2 * gamma), size=(d, self.n_components))
            self.phase_ = rng.uniform(0, 2 * np.pi, size=self.n_components)
            self.mean_ = np.zeros(d)
            self.var_ = np.ones(d)
            self.count_ = 0
            self.m2_ = np.zeros(d)
            self.river_model_ = anomaly.OneClassSVM(
                nu=self.nu, optimizer=optim.SGD(0.05), intercept_lr=self.intercept_lr
            )
        for x in X:
            # Welford running mean / variance: the standardiser learns with the model.
            self.count_ += 1
            delta = x - self.mean_
            self.mean_ = self.mean_ + delta / self.count_
            self.m2_ = self.m2_ + delta * (x - self.mean_)
            if self.count_ > 1:
                self.var_ = self.m2_ / (self.count_ - 1)
            z = (x - self.mean_) / np.sqrt(np.maximum(self.var_, 1e-12))
            self.radius_ = max(getattr(self, "radius_", 0.0), float(np.linalg.norm(z)))
            phi = self._features(x[None, :])[0]
            self.river_model_.learn_one(dict(enumerate(phi.tolist())))

    def score_many(self, X: Any) -> np.ndarray:
        X = self._check_input(X)
        phi = self._features(X)
        weights = self.river_model_._weights
        w = np.array([weights.get(j, 0.0) for j in range(self.n_components)])
        z = (X - self.mean_) / np.sqrt(np.maximum(self.var_, 1e-12))
        guard = np.maximum(np.linalg.norm(z, axis=1) - self.radius_, 0.0) ** 2
        return -(phi @ w - self.river_model_.intercept) + guard
