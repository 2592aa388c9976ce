"""The detector protocol every anomstream detector follows.

A detector turns feature vectors into anomaly scores, higher = more anomalous.

* batch detectors implement :meth:`Detector.fit`;
* online detectors implement :meth:`Detector.learn_many` (and get ``learn_one`` for free);
* every detector implements :meth:`Detector.score_many` (vectorised), and gets
  ``score_one`` for free.

Learned state lives in attributes whose names end with ``_`` (scikit-learn's habit), so
``is_fitted`` can tell a fresh detector from a trained one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

__all__ = ["Detector", "NotFittedError", "check_matrix"]


class NotFittedError(RuntimeError):
    """Raised when a detector is asked to score before it has learned anything."""


def check_matrix(X: Any, n_features: int | None = None) -> np.ndarray:
    """Return ``X`` as a 2-D float64 array, or raise ``ValueError`` saying what is wrong.

    >>> check_matrix([[1, 2], [3, 4]]).shape
    (2, 2)
    >>> check_matrix([1.0, 2.0]).shape
    (2, 1)
    >>> check_matrix([[1, 2]], n_features=3)
    Traceback (most recent call last):
    ...
    ValueError: expected 3 features per row, got 2
    """
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D array (n_samples, n_features), got {arr.ndim}-D")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"expected {n_features} features per row, got {arr.shape[1]}")
    if not np.isfinite(arr).all():
        raise ValueError("input contains NaN or infinite values")
    return arr


class Detector(ABC):
    """Base class: parameters in ``__init__``, learned state in ``*_`` attributes.

    Subclasses set ``name`` (the registry key) and ``online`` (True if the detector can
    learn one sample at a time).
    """

    name: ClassVar[str] = ""
    online: ClassVar[bool] = False

    feature_names_: list[str]
    n_features_in_: int

    # -- learning -------------------------------------------------------------------------
    def fit(self, X: Any, feature_names: Sequence[str] | None = None) -> Detector:
        """Learn from a batch of (mostly) normal samples. Online detectors reset, then learn."""
        self.reset()
        return self.learn_many(X, feature_names=feature_names)

    def learn_many(self, X: Any, feature_names: Sequence[str] | None = None) -> Detector:
        """Update with a batch of samples (online detectors)."""
        raise NotImplementedError(f"{type(self).__name__} is batch-only: use fit()")

    def learn_one(self, x: Any) -> Detector:
        """Update with one sample."""
        return self.learn_many(np.asarray(x, dtype=np.float64).reshape(1, -1))

    def reset(self) -> None:
        """Forget everything learned (drop every ``*_`` attribute)."""
        for key in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
            delattr(self, key)

    # -- scoring --------------------------------------------------------------------------
    @abstractmethod
    def score_many(self, X: Any) -> np.ndarray:
        """One raw score per row, higher = more anomalous."""

    def score_one(self, x: Any) -> float:
        """Score of one sample."""
        return float(self.score_many(np.asarray(x, dtype=np.float64).reshape(1, -1))[0])

    def explain(self, X: Any) -> np.ndarray:
        """Per-feature contributions to the score, shape ``(n_samples, n_features)``."""
        raise NotImplementedError(f"{type(self).__name__} does not explain its scores")

    # -- helpers --------------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "n_features_in_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} has not learned anything yet")

    def _set_features(self, X: np.ndarray, feature_names: Sequence[str] | None) -> None:
        if feature_names is not None and len(feature_names) != X.shape[1]:
            raise ValueError(
                f"{len(feature_names)} feature names for {X.shape[1]} features"
            )
        self.n_features_in_ = X.shape[1]
        self.feature_names_ = (
            list(feature_names) if feature_names is not None
            else [f"x{i}" for i in range(X.shape[1])]
        )

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters (public attributes not ending with ``_``)."""
        return {k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_")}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"
