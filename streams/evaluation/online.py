"""Replay a feature matrix through a detector the way the stream does: score, then learn.

The score of row ``i`` only depends on rows ``< i`` (with ``batch_size > 1``, on rows before
its micro-batch): no look-ahead, and the detector never sees a label. Time spent scoring and
learning is accumulated separately, for the model cards.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import detectors
from detectors.base import Detector

__all__ = [
    "DEFAULT",
    "DEFAULT_ENSEMBLE",
    "ISOLATION_FOREST_NAMES",
    "ReplayResult",
    "default_detector_name",
    "is_calibrated",
    "make_detector",
    "replay_online",
    "score_in_batches",
]

#: Registry names under which an Isolation-Forest-like detector may be registered.
ISOLATION_FOREST_NAMES = ("isolation_forest", "iforest", "isolationforest")
#: ``--detector`` value (and the default) meaning "what the pipeline runs for this source".
DEFAULT = "default"
#: Name reported for ``detectors.ensemble.default_ensemble(source)``.
DEFAULT_ENSEMBLE = "default_ensemble"


def _default_ensemble_factory() -> Callable[..., Detector] | None:
    try:
        from detectors.ensemble import default_ensemble
    except ImportError:
        return None
    return default_ensemble


def default_detector_name(source: str) -> str:
    """What ``evaluate`` runs when no detector is named.

    ``default_ensemble`` when ``detectors.ensemble.default_ensemble`` exists (the pipeline's
    own choice). Otherwise the stopgap: sensors get ``robust_zscore`` (on first
    differences, see the harness); connections an Isolation-Forest-like detector when one
    is registered, else ``robust_zscore``.
    """
    if _default_ensemble_factory() is not None:
        return DEFAULT_ENSEMBLE
    if source == "connections":
        known = set(detectors.available())
        for name in ISOLATION_FOREST_NAMES:
            if name in known:
                return name
    return "robust_zscore"


def make_detector(
    name: str | None,
    params: dict[str, Any] | None = None,
    source: str = "sensors",
) -> tuple[str, Detector]:
    """``(resolved name, fresh detector)`` for a registry name, ``default`` or ``None``.

    ``default_ensemble`` is built by ``detectors.ensemble.default_ensemble(source,
    **params)``; any other name by the registry with ``params``.

    >>> make_detector("robust_zscore", {"window": 50})[1].window
    50
    """
    resolved = default_detector_name(source) if name in (None, DEFAULT) else name
    if resolved == DEFAULT_ENSEMBLE:
        factory = _default_ensemble_factory()
        if factory is None:
            raise ValueError("detectors.ensemble.default_ensemble is not available")
        return resolved, factory(source, **(params or {}))
    return resolved, detectors.create(resolved, **(params or {}))


def is_calibrated(detector: Detector) -> bool:
    """True for detectors whose scores already are tail probabilities in [0, 1] (ensembles)."""
    return getattr(type(detector), "name", "") == "ensemble"


@dataclass
class ReplayResult:
    """Raw scores (NaN while the detector was not ready) and where the time went."""

    raw: np.ndarray
    score_seconds: float
    learn_seconds: float
    n_scored: int
    n_learned: int


def replay_online(
    detector: Detector,
    x: np.ndarray,
    *,
    learn: bool = True,
    batch_size: int = 1,
    warmup: int = 30,
    feature_names: list[str] | None = None,
    progress: Callable[[int], Any] | None = None,
) -> ReplayResult:
    """Score each micro-batch with what the detector knows, then let it learn the batch.

    Rows arriving before the detector has learned ``warmup`` rows get a NaN raw score: a
    windowed z-score of 3 samples means nothing (the calibrator maps NaN to 0). A batch-only
    detector (``online = False``) is fitted once on the first ``warmup`` rows and then only
    scores.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x.reshape(-1, 1)
    n = x.shape[0]
    raw = np.full(n, np.nan)
    t_score = t_learn = 0.0
    n_scored = n_learned = 0
    can_learn = learn and getattr(detector, "online", False)
    seen = 0
    start = 0
    if not getattr(detector, "online", False) and not detector.is_fitted:
        if n <= warmup:
            return ReplayResult(raw, 0.0, 0.0, 0, 0)
        t0 = time.perf_counter()
        detector.fit(x[:warmup], feature_names=feature_names)
        t_learn += time.perf_counter() - t0
        n_learned = seen = start = warmup
    elif detector.is_fitted:
        seen = warmup
    while start < n:
        stop = min(start + batch_size, n)
        chunk = x[start:stop]
        if seen >= warmup:
            t0 = time.perf_counter()
            raw[start:stop] = detector.score_many(chunk)
            t_score += time.perf_counter() - t0
            n_scored += stop - start
        if can_learn or seen < warmup:
            t0 = time.perf_counter()
            detector.learn_many(chunk, feature_names=None if detector.is_fitted else feature_names)
            t_learn += time.perf_counter() - t0
            n_learned += stop - start
            seen += stop - start
        if progress is not None:
            progress(stop - start)
        start = stop
    return ReplayResult(raw, t_score, t_learn, n_scored, n_learned)


def score_in_batches(
    detector: Detector,
    x: np.ndarray,
    batch_size: int = 10_000,
    progress: Callable[[int], Any] | None = None,
) -> tuple[np.ndarray, float]:
    """``(scores, seconds)`` of a fitted detector over ``x`` in row order, no learning."""
    out = np.empty(x.shape[0])
    seconds = 0.0
    for start in range(0, x.shape[0], batch_size):
        stop = min(start + batch_size, x.shape[0])
        t0 = time.perf_counter()
        out[start:stop] = detector.score_many(x[start:stop])
        seconds += time.perf_counter() - t0
        if progress is not None:
            progress(stop - start)
    return out, seconds
