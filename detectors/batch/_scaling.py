"""Standardisation shared by the batch and deep detectors."""


from __future__ import annotations

import numpy as np

__all__ = ["fit_standardiser", "subsample"]


def fit_standardiser(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and a floored standard deviation per feature (constant features get scale 1)."""
    mean = X.mean(axis=0)
    std = X.std(axis=0)
    return mean, np.where(std > 1e-12 * np.maximum(np.abs(mean), 1.0), std, 1.0)


def subsample(X: np.ndarray, max_samples: int | None, random_state: int | None) -> np.ndarray:
    """At most ``max_samples`` rows, drawn without replacement (order kept)."""
    if max_samples is None or len(X) <= max_samples:
        return X
    rng = np.random.default_rng(random_state)
    return X[np.sort(rng.choice(len(X), size=max_samples, replace=False))]
