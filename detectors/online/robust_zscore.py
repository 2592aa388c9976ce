"""Per-feature robust z-score against a sliding window of recent values."""


from __future__ import annotations

from typing import Any

import numpy as np

from detectors.base import Detector

__all__ = ["RobustZScore"]

# Scales the MAD to the standard deviation of a normal distribution.
_MAD_TO_SIGMA = 1.4826


class RobustZScore(Detector):
    """``|x - median| / (1.4826 * MAD)`` per feature over the last ``window`` samples.

    The score of a row is the largest per-feature robust z-score: one feature far out is
    enough to be anomalous. Median and MAD ignore the outliers they are looking for, unlike
    a mean and a standard deviation.

    Parameters
    ----------
    window
        How many recent samples the median and MAD are computed over.
    min_scale
        Floor of the scale, so a perfectly flat history does not give infinite scores.

    Examples
    --------
    >>> det = RobustZScore(window=100)
    >>> rng = np.random.default_rng(0)
    >>> _ = det.learn_many(rng.normal(size=(100, 1)))
    >>> float(det.score_one([0.0])) < 1.0
    True
    >>> float(det.score_one([8.0])) > 5.0
    True
    """

    name = "robust_zscore"
    online = True

    def __init__(self, window: int = 288, min_scale: float = 1e-9) -> None:
        self.window = window
        self.min_scale = min_scale

    def _learn(self, X: np.ndarray) -> None:
        if not hasattr(self, "buffer_"):
            self.buffer_ = np.empty((0, X.shape[1]))
        self.buffer_ = np.vstack([self.buffer_, X])[-self.window :]

    def _center_scale(self) -> tuple[np.ndarray, np.ndarray]:
        center = np.median(self.buffer_, axis=0)
        mad = np.median(np.abs(self.buffer_ - center), axis=0)
        return center, np.maximum(_MAD_TO_SIGMA * mad, self.min_scale)

    def explain(self, X: Any) -> np.ndarray:
        X = self._check_input(X)
        center, scale = self._center_scale()
        return np.abs(X - center) / scale

    def score_many(self, X: Any) -> np.ndarray:
        return self.explain(X).max(axis=1)

    def normal_contribution(self) -> np.ndarray | None:
        # E|Z| for a standard normal: what a typical feature contributes on normal data.
        return np.full(self.n_features_in_, np.sqrt(2 / np.pi)) if self.is_fitted else None

    @property
    def n_seen(self) -> int:
        """Samples currently in the window."""
        return len(self.buffer_) if self.is_fitted else 0

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable learned state (for stream checkpoints).

        Keeps the original compact layout (``params``, ``feature_names``, ``buffer``) that
        stream checkpoints already use.
        """
        if not self.is_fitted:
            return {"params": self.get_params()}
        return {
            "params": self.get_params(),
            "feature_names": self.feature_names_,
            "buffer": self.buffer_.tolist(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RobustZScore:
        if "detector" in state:  # generic form (e.g. nested inside an ensemble)
            return super().from_state(state)  # type: ignore[return-value]
        det = cls(**state["params"])
        if "buffer" in state:
            buf = np.asarray(state["buffer"], dtype=np.float64).reshape(
                -1, len(state["feature_names"])
            )
            det._set_features(buf, state["feature_names"])
            det.buffer_ = buf
            if len(buf):
                det._observe(buf)
        return det
