"""The detector protocol every anomstream detector follows.

A detector turns feature vectors into anomaly scores, higher = more anomalous.

* batch detectors implement ``_fit`` and are trained with :meth:`Detector.fit`;
* online detectors implement ``_learn`` and are trained with :meth:`Detector.learn_many`
  (``learn_one`` and ``fit`` come for free);
* every detector implements :meth:`Detector.score_many` (vectorised), and gets
  ``score_one`` for free; some implement :meth:`Detector.explain` (per-feature
  contributions, summing or maxing to the score).

Learned state lives in attributes whose names end with ``_`` (scikit-learn's habit), so
``is_fitted`` can tell a fresh detector from a trained one, and :meth:`Detector.save`
can write every learned attribute without per-detector code (see
:mod:`detectors.persistence` for the on-disk format and its manifest).
"""


from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
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
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot read input as a float matrix: {exc}") from None
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
    learn one sample at a time), and implement ``_fit(X)`` (batch) or ``_learn(X)``
    (online; ``fit`` then means reset + learn), plus :meth:`score_many`.

    ``X`` reaching ``_fit`` / ``_learn`` is already a checked float64 matrix, and
    ``n_features_in_``, ``feature_names_`` and the training range (``n_samples_seen_``,
    ``feature_min_``, ``feature_max_``) are already set.
    """

    name: ClassVar[str] = ""
    online: ClassVar[bool] = False
    #: True when :meth:`to_state` gives plain JSON (no pickled object inside).
    json_state: ClassVar[bool] = True

    feature_names_: list[str]
    n_features_in_: int

    # -- learning -------------------------------------------------------------------------
    def fit(self, X: Any, feature_names: Sequence[str] | None = None) -> Detector:
        """Learn from a batch of (mostly) normal samples, forgetting anything learned before."""
        X = check_matrix(X)
        if len(X) == 0:
            raise ValueError("cannot fit on zero samples")
        self.reset()
        self._set_features(X, feature_names)
        self._observe(X)
        self._fit(X)
        return self

    def _fit(self, X: np.ndarray) -> None:
        if not self.online:
            raise NotImplementedError(f"{type(self).__name__} must implement _fit")
        self._learn(X)

    def learn_many(self, X: Any, feature_names: Sequence[str] | None = None) -> Detector:
        """Update with a batch of samples (online detectors only)."""
        if not self.online:
            raise NotImplementedError(f"{type(self).__name__} is batch-only: use fit()")
        X = check_matrix(X, self.n_features_in_ if self.is_fitted else None)
        if len(X) == 0:
            return self
        if not self.is_fitted:
            self._set_features(X, feature_names)
        self._observe(X)
        self._learn(X)
        return self

    def _learn(self, X: np.ndarray) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not learn online")

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

    def normal_contribution(self) -> np.ndarray | None:
        """Typical per-feature contribution on normal data (for ratio-to-normal), if known."""
        value = getattr(self, "normal_contribution_", None)
        return None if value is None else np.asarray(value, dtype=np.float64)

    # -- persistence ----------------------------------------------------------------------
    def save(
        self,
        path: str | Path,
        *,
        time_range: tuple[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Path:
        """Write the detector to the directory ``path`` (manifest + state files).

        ``time_range`` is the event-time span of the training data (ISO strings), which
        only the caller knows; ``extra`` is any JSON-able metadata to keep in the manifest.
        """
        from detectors.persistence import save_detector

        return save_detector(self, path, time_range=time_range, extra=extra)

    @classmethod
    def load(cls, path: str | Path) -> Detector:
        """Read a detector written by :meth:`save`, after verifying its manifest.

        Called on a subclass, also checks that the saved detector is of that class.
        """
        from detectors.persistence import load_detector

        det = load_detector(path)
        if cls is not Detector and not isinstance(det, cls):
            raise TypeError(f"{path} holds a {type(det).__name__}, not a {cls.__name__}")
        return det

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable parameters + learned state (for stream checkpoints).

        Raises ``TypeError`` for detectors whose state holds opaque objects (use
        :meth:`save` for those; ``json_state`` tells which is which).
        """
        from detectors.persistence import detector_to_state

        return detector_to_state(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Detector:
        """Inverse of :meth:`to_state`."""
        from detectors.persistence import detector_from_state

        det = detector_from_state(state, cls if cls is not Detector else None)
        return det

    def _learned_state(self) -> dict[str, Any]:
        """Every learned attribute, by name (``*_``, not private)."""
        return {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}

    def _restore_state(self, state: dict[str, Any]) -> None:
        """Set learned attributes back; subclasses rebuild derived objects here."""
        for key, value in state.items():
            setattr(self, key, value)

    # -- helpers --------------------------------------------------------------------------
    @classmethod
    def fast_params(cls) -> dict[str, Any]:
        """Small, quick parameters for tests and doctests (tiny networks, few epochs)."""
        return {}

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "n_features_in_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} has not learned anything yet")

    def _check_input(self, X: Any) -> np.ndarray:
        """Fitted check + matrix check with the learned number of features."""
        self._check_fitted()
        return check_matrix(X, self.n_features_in_)

    def _set_features(self, X: np.ndarray, feature_names: Sequence[str] | None) -> None:
        if feature_names is not None and len(feature_names) != X.shape[1]:
            raise ValueError(f"{len(feature_names)} feature names for {X.shape[1]} features")
        self.n_features_in_ = X.shape[1]
        self.feature_names_ = (
            [str(f) for f in feature_names]
            if feature_names is not None
            else [f"x{i}" for i in range(X.shape[1])]
        )

    def _observe(self, X: np.ndarray) -> None:
        """Keep the training range (count, per-feature min / max) for the manifest."""
        lo, hi = X.min(axis=0), X.max(axis=0)
        if getattr(self, "n_samples_seen_", 0) and hasattr(self, "feature_min_"):
            lo = np.minimum(lo, self.feature_min_)
            hi = np.maximum(hi, self.feature_max_)
        self.n_samples_seen_ = int(getattr(self, "n_samples_seen_", 0)) + len(X)
        self.feature_min_ = lo
        self.feature_max_ = hi

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters (public attributes not ending with ``_``)."""
        return {
            k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_")
        }

    def clone(self) -> Detector:
        """A fresh, unfitted detector with the same parameters."""
        return type(self)(**self.get_params())

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"
