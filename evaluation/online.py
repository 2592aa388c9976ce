"""Replay a feature matrix through a detector the way the stream does: score, then learn.

The score of row ``i`` only depends on rows ``< i`` (with ``batch_size > 1``, on rows before
its micro-batch): no look-ahead, and the detector never sees a label. Time spent scoring and
learning is accumulated separately, for the model cards.

Raw scores of detectors that do not calibrate themselves are mapped to [0, 1] by
:class:`detectors.calibration.ScoreCalibrator`, the calibrator of the stream's ensembles:
:func:`calibrate_online` against the detector's recent raw scores (prequential: a score
never calibrates itself), :func:`reference_calibrator` against held-out normal rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import detectors
from detectors.base import Detector
from detectors.calibration import ScoreCalibrator
from detectors.ensemble import default_ensemble

__all__ = [
    "DEFAULT",
    "DEFAULT_ENSEMBLE",
    "ONLINE_CALIBRATION",
    "ReplayResult",
    "calibrate_online",
    "default_detector_name",
    "is_calibrated",
    "make_detector",
    "reference_calibrator",
    "replay_online",
    "score_in_batches",
]

#: ``--detector`` value (and the default) meaning "what the pipeline runs for this source".
DEFAULT = "default"
#: Name of ``detectors.ensemble.default_ensemble(source)``, the pipeline's detector.
DEFAULT_ENSEMBLE = "default_ensemble"
#: ``ScoreCalibrator`` settings of the online replay: those the stream gives a sensor
#: detector that is not the default ensemble (``streams.scoring.make_sensor_detector``
#: wraps it in a one-member ensemble with this calibration).
ONLINE_CALIBRATION: dict[str, Any] = {"window": 1000, "tail_quantile": 0.95}


def default_detector_name(source: str) -> str:
    """What ``evaluate`` runs when no detector is named: the pipeline's default ensemble
    for ``source`` (``detectors.ensemble.default_ensemble``), for both sources."""
    if source not in ("sensors", "connections"):
        raise ValueError(f"unknown source {source!r}: 'sensors' or 'connections'")
    return DEFAULT_ENSEMBLE


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
    >>> make_detector(None)[0]
    'default_ensemble'
    """
    resolved = default_detector_name(source) if name in (None, DEFAULT) else name
    if resolved == DEFAULT_ENSEMBLE:
        return resolved, default_ensemble(source, **(params or {}))
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


def calibrate_online(
    raw: np.ndarray,
    *,
    window: int = ONLINE_CALIBRATION["window"],
    tail_quantile: float = ONLINE_CALIBRATION["tail_quantile"],
    min_history: int = 30,
    batch_size: int = 1,
) -> np.ndarray:
    """Calibrated scores in [0, 1] of a replay's raw scores, in order, without look-ahead.

    Each micro-batch is calibrated by a :class:`~detectors.calibration.ScoreCalibrator`
    holding the last ``window`` raw scores before it, then added to it (what
    :class:`~detectors.ensemble.Ensemble` does for each of its members). Until
    ``min_history`` scores are in, and for NaN raw scores (detector still warming up), the
    calibrated score is 0.

    >>> rng = np.random.default_rng(0)
    >>> raw = np.r_[np.full(10, np.nan), rng.exponential(size=600), 8.0, 12.0]
    >>> cal = calibrate_online(raw, window=500, min_history=20)
    >>> bool((cal[:30] == 0).all() and cal[30:].mean() > 0.4), bool(0.999 < cal[-2] < cal[-1])
    (True, True)
    """
    raw = np.asarray(raw, dtype=np.float64).reshape(-1)
    out = np.zeros(raw.size)
    cal = ScoreCalibrator(window=window, tail_quantile=tail_quantile)
    for start in range(0, raw.size, max(1, batch_size)):
        chunk = raw[start : start + max(1, batch_size)]
        finite = np.isfinite(chunk)
        if not finite.any():
            continue
        if cal.is_fitted and min(cal.count_, cal.window) >= min_history:
            out[start : start + chunk.size] = np.where(
                finite, cal.transform(np.where(finite, chunk, 0.0)), 0.0
            )
        cal.learn_many(chunk[finite])
    return out


def reference_calibrator(
    reference: np.ndarray, tail_quantile: float = ONLINE_CALIBRATION["tail_quantile"]
) -> ScoreCalibrator:
    """A :class:`~detectors.calibration.ScoreCalibrator` over a fixed reference sample
    (raw scores of held-out normal rows), every score of it kept.

    >>> rng = np.random.default_rng(0)
    >>> cal = reference_calibrator(rng.normal(size=2000))
    >>> p = cal.transform(rng.normal(size=2000))
    >>> bool(abs(np.mean(p >= 0.99) - 0.01) < 0.006)
    True
    """
    ref = np.asarray(reference, dtype=np.float64).reshape(-1)
    ref = ref[np.isfinite(ref)]
    if ref.size == 0:
        raise ValueError("no finite reference score to calibrate against")
    return ScoreCalibrator(window=int(ref.size), tail_quantile=tail_quantile).fit(ref)
