"""detectors.metrics against scikit-learn and brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from detectors import metrics


def _data(seed: int, n: int = 300, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(int)
    y[:2] = [0, 1]  # both classes always present
    s = rng.normal(size=n) + 1.2 * y
    if ties:
        s = np.round(s, 1)
    return y, s


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ties", [False, True])
def test_ranking_metrics_match_sklearn(seed: int, ties: bool) -> None:
    y, s = _data(seed, ties=ties)
    assert metrics.roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert metrics.average_precision(y, s) == pytest.approx(
        skm.average_precision_score(y, s), abs=1e-12
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.integers(0, 6)), min_size=2, max_size=40).filter(
        lambda rows: len({r[0] for r in rows}) == 2
    )
)
def test_ranking_metrics_match_sklearn_property(rows: list[tuple[bool, int]]) -> None:
    # Few distinct integer scores: ties everywhere, the case implementations get wrong.
    y = np.array([r[0] for r in rows], dtype=int)
    s = np.array([r[1] for r in rows], dtype=float)
    assert metrics.roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert metrics.average_precision(y, s) == pytest.approx(
        skm.average_precision_score(y, s), abs=1e-12
    )


def test_roc_curve_matches_sklearn() -> None:
    y, s = _data(7, ties=True)
    fpr, tpr, thr = metrics.roc_curve(y, s)
    sk_fpr, sk_tpr, sk_thr = skm.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_allclose(thr[1:], sk_thr[1:])
    assert thr[0] > s.max()


def test_precision_recall_curve_matches_sklearn() -> None:
    y, s = _data(8, ties=True)
    p, r, t = metrics.precision_recall_curve(y, s)
    sk_p, sk_r, sk_t = skm.precision_recall_curve(y, s, drop_intermediate=False)
    # scikit-learn: ascending thresholds plus a final (precision 1, recall 0) point.
    np.testing.assert_allclose(p, sk_p[:-1][::-1])
    np.testing.assert_allclose(r, sk_r[:-1][::-1])
    np.testing.assert_allclose(t, sk_t[::-1])


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("seed", range(4))
def test_precision_recall_fbeta_matches_sklearn(beta: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 200)
    pred = rng.integers(0, 2, 200)
    p, r, f = metrics.precision_recall_fbeta(y, pred, beta=beta)
    sk_p, sk_r, sk_f, _ = skm.precision_recall_fscore_support(
        y, pred, beta=beta, average="binary", zero_division=0
    )
    assert (p, r, f) == pytest.approx((sk_p, sk_r, sk_f), abs=1e-12)


def test_zero_division_is_zero_like_sklearn() -> None:
    y = np.array([1, 1, 0])
    pred = np.zeros(3, dtype=int)
    assert metrics.precision_recall_fbeta(y, pred) == (0.0, 0.0, 0.0)
    assert skm.f1_score(y, pred, zero_division=0) == 0.0


def test_confusion_counts_match_sklearn() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 100)
    pred = rng.integers(0, 2, 100).astype(bool)
    tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
    assert metrics.confusion_counts(y, pred) == {"tp": tp, "fp": fp, "tn": tn, "fn": fn}


def test_threshold_sweep_matches_brute_force_and_sklearn() -> None:
    y, s = _data(4, n=120, ties=True)
    sw = metrics.threshold_sweep(y, s, cost_fn=5.0, cost_fp=1.0)
    assert np.all(np.diff(sw["threshold"]) > 0)
    assert sw["tp"][-1] == 0 and sw["fp"][-1] == 0  # "never alert" is included
    for k, t in enumerate(sw["threshold"]):
        pred = s >= t
        c = metrics.confusion_counts(y, pred)
        assert (sw["tp"][k], sw["fp"][k], sw["tn"][k], sw["fn"][k]) == (
            c["tp"],
            c["fp"],
            c["tn"],
            c["fn"],
        )
        assert sw["precision"][k] == pytest.approx(skm.precision_score(y, pred, zero_division=0))
        assert sw["recall"][k] == pytest.approx(skm.recall_score(y, pred, zero_division=0))
        assert sw["f1"][k] == pytest.approx(skm.f1_score(y, pred, zero_division=0))
        assert sw["f2"][k] == pytest.approx(skm.fbeta_score(y, pred, beta=2, zero_division=0))
        assert sw["accuracy"][k] == pytest.approx(skm.accuracy_score(y, pred))
        assert sw["cost"][k] == 5.0 * c["fn"] + 1.0 * c["fp"]


def _candidates(s: np.ndarray) -> np.ndarray:
    return np.r_[np.unique(s), np.nextafter(s.max(), np.inf)]


@pytest.mark.parametrize("seed", range(4))
def test_best_thresholds_are_the_brute_force_optimum(seed: int) -> None:
    y, s = _data(seed, n=150, ties=seed % 2 == 0)
    cands = _candidates(s)
    f2 = [skm.fbeta_score(y, s >= t, beta=2, zero_division=0) for t in cands]
    t, v = metrics.best_fbeta_threshold(y, s, beta=2.0)
    assert v == pytest.approx(max(f2))
    assert skm.fbeta_score(y, s >= t, beta=2, zero_division=0) == pytest.approx(max(f2))

    acc = [skm.accuracy_score(y, s >= t) for t in cands]
    t, v = metrics.best_accuracy_threshold(y, s)
    assert v == pytest.approx(max(acc))

    costs = [10 * np.sum(y & ~(s >= t)) + 1 * np.sum(~y.astype(bool) & (s >= t)) for t in cands]
    t, v = metrics.min_cost_threshold(y, s, cost_fn=10, cost_fp=1)
    assert v == pytest.approx(min(costs))


def test_best_threshold_ties_prefer_fewer_alerts() -> None:
    # F1 is 2/3 both at 0.9 (1 TP, 1 FN) and at 0.6 (2 TP, 2 FP): take the quieter one.
    y = np.array([1, 0, 0, 1])
    s = np.array([0.9, 0.8, 0.7, 0.6])
    assert metrics.best_fbeta_threshold(y, s) == (0.9, pytest.approx(2 / 3))


def test_min_cost_can_mean_never_alert() -> None:
    y = np.array([0, 0, 0, 1])
    s = np.array([0.9, 0.8, 0.7, 0.6])
    t, cost = metrics.min_cost_threshold(y, s, cost_fn=1, cost_fp=100)
    assert t > s.max() and cost == 1.0


def test_classification_report() -> None:
    y, s = _data(5)
    rep = metrics.classification_report(y, s, threshold=0.5)
    pred = s >= 0.5
    assert set(rep) >= {
        "precision",
        "recall",
        "f1",
        "f2",
        "roc_auc",
        "average_precision",
        "tp",
        "fp",
        "tn",
        "fn",
        "threshold",
    }
    assert rep["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert rep["f2"] == pytest.approx(skm.fbeta_score(y, pred, beta=2))
    assert rep["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s))
    one_class = metrics.classification_report(np.zeros(5), np.arange(5.0), 2.0)
    assert np.isnan(one_class["roc_auc"]) and one_class["fp"] == 3


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="both"):
        metrics.roc_auc([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="NaN"):
        metrics.average_precision([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match="binary"):
        metrics.confusion_counts([0, 2], [0, 1])
    with pytest.raises(ValueError, match="scores"):
        metrics.threshold_sweep([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="beta"):
        metrics.fbeta_from_counts(1, 1, 1, beta=0)
