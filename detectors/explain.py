"""Turning per-feature contributions into the top-k list an alert carries."""

from __future__ import annotations

from typing import Any

import numpy as np

from detectors.base import Detector

__all__ = ["top_k_contributions"]


def top_k_contributions(detector: Detector, x: Any, k: int = 3,
                        reference: Any = None) -> list[tuple[str, float, float]]:
    """The ``k`` features that contributed most to the score of one sample ``x``.

    Returns ``[(feature_name, contribution, ratio_to_normal), ...]``, largest first:
    ``contribution`` is the detector's own per-feature term (squared reconstruction error,
    Mahalanobis term, robust z...), ``ratio_to_normal`` that term's magnitude divided by the
    feature's typical term on normal data — from ``reference`` rows when given, else from
    the detector's ``normal_contribution()`` (learned at fit time or known in theory); NaN
    when neither is available, and then features are ranked by ``|contribution|``.

    >>> from detectors.online import EWGaussian
    >>> rng = np.random.default_rng(0)
    >>> det = EWGaussian().learn_many(rng.normal(size=(500, 3)), ["cpu", "mem", "disk"])
    >>> [name for name, _, _ in top_k_contributions(det, [0.1, 6.0, -3.0], k=2)]
    ['mem', 'disk']
    """
    row = np.asarray(x, dtype=np.float64).reshape(1, -1)
    contrib = detector.explain(row)[0]
    if reference is not None:
        normal = np.abs(detector.explain(reference)).mean(axis=0)
    else:
        normal = detector.normal_contribution()
    if normal is not None:
        ratio = np.abs(contrib) / np.maximum(np.asarray(normal, dtype=np.float64), 1e-12)
        order = np.argsort(-ratio, kind="stable")
    else:
        ratio = np.full(len(contrib), np.nan)
        order = np.argsort(-np.abs(contrib), kind="stable")
    names = detector.feature_names_
    return [(names[i], float(contrib[i]), float(ratio[i])) for i in order[: max(k, 0)]]
