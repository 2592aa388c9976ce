"""Detection-quality metrics on labelled scores: ROC / PR, F-beta, cost, threshold sweeps.

Pure numpy, so ``thresholds.py``, ``ensemble.py`` and the evaluation harness share one
implementation. Conventions everywhere in this module:

* ``y`` / ``y_true`` are binary labels (1 = anomaly), ``s`` are scores (higher = more
  anomalous), ``y_pred`` are binary decisions;
* a row is *detected* at threshold ``t`` when ``s >= t``;
* undefined ratios (precision with no detection, recall with no anomaly) are 0, as
  scikit-learn's ``zero_division=0``.

The ranking metrics match scikit-learn's ``roc_auc_score`` and ``average_precision_score``
(tested against them in ``tests/unit/detectors/test_metrics.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "average_precision",
    "best_accuracy_threshold",
    "best_fbeta_threshold",
    "binary_clf_curve",
    "classification_report",
    "confusion_counts",
    "fbeta_from_counts",
    "min_cost_threshold",
    "precision_recall_curve",
    "precision_recall_fbeta",
    "roc_auc",
    "roc_curve",
    "threshold_sweep",
]


# -- input checks ---------------------------------------------------------------------------
def _labels(y: Any) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if arr.dtype == bool:
        return arr.astype(np.int8)
    if arr.size and not np.isin(arr, (0, 1)).all():
        raise ValueError("labels must be binary (0/1 or bool)")
    return arr.astype(np.int8)


def _scores(s: Any, n: int) -> np.ndarray:
    arr = np.asarray(s, dtype=np.float64).reshape(-1)
    if arr.shape[0] != n:
        raise ValueError(f"{n} labels but {arr.shape[0]} scores")
    if not np.isfinite(arr).all():
        raise ValueError("scores contain NaN or infinite values")
    return arr


def _both_classes(y: np.ndarray) -> None:
    if y.size == 0 or y.min() == y.max():
        raise ValueError("need both normal (0) and anomalous (1) rows")


def _ratio(num: np.ndarray | float, den: np.ndarray | float) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den > 0)
    return out


# -- curves ---------------------------------------------------------------------------------
def binary_clf_curve(y: Any, s: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False and true positive counts at every distinct score, highest score first.

    Returns ``(fps, tps, thresholds)``: detecting every row with ``s >= thresholds[k]``
    yields ``fps[k]`` false and ``tps[k]`` true positives.

    >>> fps, tps, thr = binary_clf_curve([0, 1, 1, 0], [0.1, 0.9, 0.4, 0.4])
    >>> thr.tolist(), tps.tolist(), fps.tolist()
    ([0.9, 0.4, 0.1], [1, 2, 2], [0, 1, 2])
    """
    y = _labels(y)
    s = _scores(s, y.shape[0])
    order = np.argsort(-s, kind="mergesort")
    s_sorted = s[order]
    y_sorted = y[order]
    # Only the last row of each run of equal scores is an operating point: ties are
    # detected together or not at all.
    last_of_run = np.r_[np.flatnonzero(np.diff(s_sorted)), y_sorted.size - 1]
    if y_sorted.size == 0:
        last_of_run = np.empty(0, dtype=np.intp)
    tps = np.cumsum(y_sorted, dtype=np.int64)[last_of_run]
    fps = (last_of_run + 1) - tps
    return fps, tps, s_sorted[last_of_run]


def roc_curve(y: Any, s: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)``, starting at ``(0, 0)`` with a threshold above every score.

    >>> fpr, tpr, _ = roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> fpr.tolist(), tpr.tolist()
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    """
    y = _labels(y)
    _both_classes(y)
    fps, tps, thr = binary_clf_curve(y, s)
    fpr = np.r_[0.0, fps / fps[-1]]
    tpr = np.r_[0.0, tps / tps[-1]]
    return fpr, tpr, np.r_[np.nextafter(thr[0], np.inf), thr]


def precision_recall_curve(y: Any, s: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(precision, recall, thresholds)`` at every distinct score, highest score first.

    Unlike scikit-learn no artificial ``(1, 0)`` end point is appended, so the three
    arrays have the same length.

    >>> p, r, t = precision_recall_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> p.round(3).tolist(), r.tolist()
    ([1.0, 0.5, 0.667, 0.5], [0.5, 0.5, 1.0, 1.0])
    """
    y = _labels(y)
    fps, tps, thr = binary_clf_curve(y, s)
    n_pos = int(y.sum())
    return _ratio(tps, tps + fps), _ratio(tps, n_pos), thr


def roc_auc(y: Any, s: Any) -> float:
    """Area under the ROC curve; ties count one half (as scikit-learn's ``roc_auc_score``).

    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    fpr, tpr, _ = roc_curve(y, s)
    return float(np.trapezoid(tpr, fpr))


def average_precision(y: Any, s: Any) -> float:
    """Average precision: ``sum_k (R_k - R_{k-1}) * P_k`` over distinct thresholds.

    This is scikit-learn's ``average_precision_score`` (no interpolation).

    >>> round(average_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 6)
    0.833333
    """
    y = _labels(y)
    _both_classes(y)
    precision, recall, _ = precision_recall_curve(y, s)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


# -- decisions ------------------------------------------------------------------------------
def confusion_counts(y_true: Any, y_pred: Any) -> dict[str, int]:
    """``{"tp", "fp", "tn", "fn"}`` counts of binary decisions.

    >>> confusion_counts([1, 0, 1, 0], [1, 1, 0, 0])
    {'tp': 1, 'fp': 1, 'tn': 1, 'fn': 1}
    """
    y = _labels(y_true).astype(bool)
    p = _labels(y_pred).astype(bool)
    if y.shape != p.shape:
        raise ValueError(f"{y.shape[0]} labels but {p.shape[0]} predictions")
    return {
        "tp": int(np.sum(y & p)),
        "fp": int(np.sum(~y & p)),
        "tn": int(np.sum(~y & ~p)),
        "fn": int(np.sum(y & ~p)),
    }


def fbeta_from_counts(tp: Any, fp: Any, fn: Any, beta: float = 1.0) -> np.ndarray:
    """F-beta from counts (arrays broadcast); 0 where precision and recall are both 0.

    >>> float(fbeta_from_counts(1, 1, 1))
    0.5
    """
    if beta <= 0:
        raise ValueError("beta must be positive")
    tp = np.asarray(tp, dtype=np.float64)
    b2 = beta * beta
    # The count form (1+b2)tp / ((1+b2)tp + b2 fn + fp) equals the harmonic form and has no
    # 0/0 when precision or recall is undefined.
    return _ratio((1 + b2) * tp, (1 + b2) * tp + b2 * np.asarray(fn) + np.asarray(fp))


def precision_recall_fbeta(
    y_true: Any, y_pred: Any, beta: float = 1.0
) -> tuple[float, float, float]:
    """Precision, recall and F-beta of binary decisions (undefined ratios are 0).

    >>> precision_recall_fbeta([1, 1, 0, 0], [1, 0, 1, 0])
    (0.5, 0.5, 0.5)
    """
    c = confusion_counts(y_true, y_pred)
    p = float(_ratio(c["tp"], c["tp"] + c["fp"]))
    r = float(_ratio(c["tp"], c["tp"] + c["fn"]))
    return p, r, float(fbeta_from_counts(c["tp"], c["fp"], c["fn"], beta))


# -- threshold sweeps -----------------------------------------------------------------------
def threshold_sweep(
    y: Any, s: Any, cost_fn: float = 1.0, cost_fp: float = 1.0
) -> dict[str, np.ndarray]:
    """Every operating point of a score, lowest threshold first.

    The thresholds are the distinct scores plus one just above the maximum (no detection
    at all), so a sweep always contains the "never alert" option.

    Returns a dict of equally long arrays: ``threshold``, ``tp``, ``fp``, ``tn``, ``fn``,
    ``precision``, ``recall``, ``f1``, ``f2``, ``accuracy``, ``fpr`` and ``cost``
    (``cost_fn * fn + cost_fp * fp``, the price of the missed anomalies plus the false alarms).

    >>> sw = threshold_sweep([0, 1, 1, 0], [0.1, 0.9, 0.4, 0.2], cost_fn=5)
    >>> sw["threshold"][:3].tolist(), sw["tp"].tolist(), sw["cost"].tolist()
    ([0.1, 0.2, 0.4], [2, 2, 2, 1, 0], [2.0, 1.0, 0.0, 5.0, 10.0])
    """
    y = _labels(y)
    fps, tps, thr = binary_clf_curve(y, s)
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    if thr.size == 0:
        raise ValueError("no rows to sweep")
    # Reverse to ascending threshold, then append the "above everything" point.
    thr = np.r_[thr[::-1], np.nextafter(thr[0], np.inf)]
    tp = np.r_[tps[::-1], 0]
    fp = np.r_[fps[::-1], 0]
    fn = n_pos - tp
    tn = n_neg - fp
    return {
        "threshold": thr,
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, n_pos),
        "f1": fbeta_from_counts(tp, fp, fn, 1.0),
        "f2": fbeta_from_counts(tp, fp, fn, 2.0),
        "accuracy": (tp + tn) / float(y.size),
        "fpr": _ratio(fp, n_neg),
        "cost": cost_fn * fn.astype(np.float64) + cost_fp * fp.astype(np.float64),
    }


def _argbest(values: np.ndarray, maximise: bool = True) -> int:
    # Sweeps are in ascending threshold order; among equally good points take the highest
    # threshold, i.e. the fewest alerts for the same quality.
    target = values.max() if maximise else values.min()
    return int(np.flatnonzero(values == target)[-1])


def best_fbeta_threshold(y: Any, s: Any, beta: float = 1.0) -> tuple[float, float]:
    """``(threshold, F-beta)`` of the threshold that maximises F-beta on these labels.

    Among equal F-beta values the highest threshold (fewest alerts) wins.

    >>> best_fbeta_threshold([0, 1, 1, 0], [0.1, 0.9, 0.4, 0.2])
    (0.4, 1.0)
    """
    sw = threshold_sweep(y, s)
    f = fbeta_from_counts(sw["tp"], sw["fp"], sw["fn"], beta)
    k = _argbest(f)
    return float(sw["threshold"][k]), float(f[k])


def best_accuracy_threshold(y: Any, s: Any) -> tuple[float, float]:
    """``(threshold, accuracy)`` maximising accuracy (rarely what you want with rare anomalies).

    >>> best_accuracy_threshold([0, 1, 1, 0], [0.1, 0.9, 0.4, 0.2])
    (0.4, 1.0)
    """
    sw = threshold_sweep(y, s)
    k = _argbest(sw["accuracy"])
    return float(sw["threshold"][k]), float(sw["accuracy"][k])


def min_cost_threshold(
    y: Any, s: Any, cost_fn: float = 1.0, cost_fp: float = 1.0
) -> tuple[float, float]:
    """``(threshold, cost)`` minimising ``cost_fn * FN + cost_fp * FP``.

    A threshold above every score (alert on nothing) is a candidate, so when false alarms
    are expensive enough the answer may be "never alert".

    >>> min_cost_threshold([0, 1, 1, 0], [0.1, 0.9, 0.4, 0.5], cost_fn=1, cost_fp=10)
    (0.9, 1.0)
    """
    sw = threshold_sweep(y, s, cost_fn=cost_fn, cost_fp=cost_fp)
    k = _argbest(sw["cost"], maximise=False)
    return float(sw["threshold"][k]), float(sw["cost"][k])


def classification_report(y: Any, s: Any, threshold: float) -> dict[str, float | int]:
    """Everything about one operating point plus the threshold-free ranking metrics.

    Keys: ``threshold``, ``precision``, ``recall``, ``f1``, ``f2``, ``accuracy``, ``fpr``,
    ``tp``, ``fp``, ``tn``, ``fn``, ``roc_auc``, ``average_precision`` (the last two are
    NaN when only one class is present).

    >>> rep = classification_report([0, 1, 1, 0], [0.1, 0.9, 0.4, 0.2], threshold=0.4)
    >>> rep["f1"], rep["tp"], rep["roc_auc"]
    (1.0, 2, 1.0)
    """
    y = _labels(y)
    s = _scores(s, y.shape[0])
    pred = s >= threshold
    c = confusion_counts(y, pred)
    one_class = y.size == 0 or y.min() == y.max()
    return {
        "threshold": float(threshold),
        "precision": float(_ratio(c["tp"], c["tp"] + c["fp"])),
        "recall": float(_ratio(c["tp"], c["tp"] + c["fn"])),
        "f1": float(fbeta_from_counts(c["tp"], c["fp"], c["fn"], 1.0)),
        "f2": float(fbeta_from_counts(c["tp"], c["fp"], c["fn"], 2.0)),
        "accuracy": float(_ratio(c["tp"] + c["tn"], y.size)),
        "fpr": float(_ratio(c["fp"], c["fp"] + c["tn"])),
        **c,
        "roc_auc": float("nan") if one_class else roc_auc(y, s),
        "average_precision": float("nan") if one_class else average_precision(y, s),
    }
