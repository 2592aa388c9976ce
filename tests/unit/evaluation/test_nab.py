"""The NAB scorer on hand-built cases, and against a literal row-by-row re-implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation import nab

N = 1000  # probation = 150 rows
WIN = np.array([[400, 499]])  # width 100
STD = nab.get_profile("standard")


def sig(x: float) -> float:
    """NAB's scaled sigmoid, written out independently of the module under test."""
    return -1.0 if x >= 3.0 else 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0


def series(
    detect: list[int], n: int = N, windows: np.ndarray = WIN, name: str = "s"
) -> nab.LabeledSeries:
    s = np.zeros(n)
    s[detect] = 1.0
    return nab.LabeledSeries(name, s, windows)


def raw_at(ls: nab.LabeledSeries, profile: str = "standard", threshold: float = 0.5) -> float:
    return nab.score_at_threshold(nab.sweep_series(ls, profile), threshold, profile)["raw_score"]


# -- rules, one at a time -----------------------------------------------------------------
def test_probation_length() -> None:
    assert nab.probation_length(100) == 15
    assert nab.probation_length(4032) == 604
    assert nab.probation_length(5000) == 750
    assert nab.probation_length(22695) == 750  # capped


def test_scaled_sigmoid_landmarks() -> None:
    assert nab.scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert nab.scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)
    assert nab.scaled_sigmoid(0.0) == 0.0
    assert nab.scaled_sigmoid(3.0) == -1.0
    assert nab.scaled_sigmoid(2.99) == pytest.approx(-1.0, abs=1e-6)


def test_detection_on_the_left_edge_earns_the_full_tp_weight() -> None:
    assert raw_at(series([400])) == pytest.approx(STD.tp_weight)


def test_late_detection_earns_almost_nothing() -> None:
    raw = raw_at(series([499]))
    assert 0.0 < raw < 0.03
    assert raw == pytest.approx(sig(-1 / 100) / sig(-1.0))


def test_mid_window_detection_follows_the_sigmoid() -> None:
    assert raw_at(series([450])) == pytest.approx(sig(-0.5) / sig(-1.0))


def test_only_the_earliest_detection_in_a_window_counts() -> None:
    assert raw_at(series([400, 420, 499])) == pytest.approx(1.0)
    assert raw_at(series([450, 460])) == pytest.approx(raw_at(series([450])))


def test_missed_window_costs_the_fn_weight() -> None:
    assert raw_at(series([])) == -1.0
    assert raw_at(series([]), "reward_low_FN") == -2.0


def test_false_positive_just_after_a_window_costs_little() -> None:
    cost = raw_at(series([400, 500])) - 1.0
    assert -0.01 < cost < 0.0
    assert cost == pytest.approx(STD.fp_weight * sig(1 / 99))


def test_false_positive_far_after_a_window_costs_the_full_fp_weight() -> None:
    assert raw_at(series([400, 900])) - 1.0 == pytest.approx(-STD.fp_weight)
    assert raw_at(series([400, 900]), "reward_low_FP") - 1.0 == pytest.approx(-0.22)


def test_false_positive_before_any_window_costs_the_full_fp_weight() -> None:
    assert raw_at(series([200])) == pytest.approx(-1.0 - STD.fp_weight)


def test_probation_rows_are_ignored() -> None:
    assert raw_at(series([10, 100, 149])) == raw_at(series([]))
    res = nab.score_at_threshold(nab.sweep_series(series([100])), 0.5, "standard")
    assert res["fp"] == 0 and res["detections"].size == 0


def test_window_partly_in_probation_counts_only_its_scored_rows() -> None:
    win = np.array([[100, 199]])
    assert raw_at(series([120], windows=win)) == -1.0  # detection still in probation
    assert raw_at(series([150], windows=win)) == pytest.approx(sig(-0.5) / sig(-1.0))


def test_window_entirely_in_probation_is_not_scored() -> None:
    ls = series([], windows=np.array([[10, 50], [400, 499]]))
    res = nab.score_at_threshold(nab.sweep_series(ls), 0.5, "standard")
    assert res["windows"] == 1 and res["raw_score"] == -1.0


def test_rows_with_equal_scores_are_detected_together() -> None:
    s = np.zeros(N)
    s[[450, 460]] = 0.7  # same score: threshold 0.7 detects both, nothing in between
    curve = nab.score_by_threshold([nab.sweep_series(nab.LabeledSeries("s", s, WIN))], "standard")
    assert curve.threshold[:2].tolist() == [1.1, 0.7]
    assert curve.tp[1] == 2


# -- corpus threshold and normalisation ----------------------------------------------------
def _two_series() -> list[nab.LabeledSeries]:
    a = np.zeros(N)
    a[400], a[900] = 0.9, 0.95  # early TP, far FP scored higher
    b = np.zeros(N)
    b[450], b[700] = 0.7, 0.8  # mid TP, far FP scored higher
    return [nab.LabeledSeries("a", a, WIN), nab.LabeledSeries("b", b, WIN)]


def test_threshold_optimisation_picks_the_best_corpus_threshold() -> None:
    items = _two_series()
    sweeps = [nab.sweep_series(s, "standard") for s in items]
    # Hand-computed totals: 1.1 → -2; 0.95 → -2.11 (row 900 is > 3 widths after the
    # window); 0.9 → -0.11; 0.8 → also b's FP at row 700, 201/99 widths after (≈ -0.11);
    # 0.7 → plus b's mid-window TP; 0 → every other row a false positive.
    fp_700 = STD.fp_weight * sig(201 / 99)
    expect_07 = -STD.fp_weight + fp_700 + 1.0 + sig(-0.5) / sig(-1.0)
    curve = nab.score_by_threshold(sweeps, "standard")
    got = dict(zip(curve.threshold.tolist(), curve.score.tolist(), strict=True))
    assert got[1.1] == pytest.approx(-2.0)
    assert got[0.95] == pytest.approx(-2.11)
    assert got[0.9] == pytest.approx(-0.11)
    assert got[0.8] == pytest.approx(-0.11 + fp_700)
    assert got[0.7] == pytest.approx(expect_07)
    assert got[0.0] < -50
    threshold, best = nab.optimize_threshold(sweeps, "standard")
    assert threshold == 0.7 and best == pytest.approx(expect_07)
    # Brute force over every candidate agrees.
    brute = {
        t: sum(nab.score_at_threshold(sw, t, "standard")["raw_score"] for sw in sweeps)
        for t in (1.1, 0.95, 0.9, 0.8, 0.7, 0.0)
    }
    assert max(brute, key=brute.get) == 0.7


def test_score_corpus_normalises_between_null_and_perfect() -> None:
    res = nab.score_corpus(_two_series())
    std = res["standard"]
    assert std.null_score == -2.0 and std.perfect_score == 2.0
    assert std.score == pytest.approx(100 * (std.raw_score + 2.0) / 4.0)
    assert res["reward_low_FN_rate"].null_score == -4.0
    # Per-series scores at the corpus threshold add up to the corpus score.
    assert sum(d["raw_score"] for d in std.series.values()) == pytest.approx(std.raw_score)
    assert std.to_dict()["series"]["a"]["windows_detected"] == 1


def test_perfect_detector_scores_100_and_null_detector_0() -> None:
    items = [series([400], name="a"), series([400], name="b")]
    assert nab.score_corpus(items, ["standard"])["standard"].score == pytest.approx(100.0)
    nulls = [nab.LabeledSeries(s.name, np.full(N, 0.5), s.windows) for s in items]
    assert nab.score_corpus(nulls, ["standard"])["standard"].score == pytest.approx(0.0)


def test_corpus_without_windows_has_no_normalised_score() -> None:
    res = nab.score_corpus([series([], windows=np.empty((0, 2), dtype=int))], ["standard"])
    assert math.isnan(res["standard"].score) and res["standard"].to_dict()["score"] is None


# -- against a literal re-implementation of the rules --------------------------------------
def _reference_series_score(
    scores: np.ndarray, windows: np.ndarray, thr: float, prof: nab.NABProfile
) -> float:
    n = len(scores)
    prob = min(math.floor(0.15 * n), 0.15 * 5000)
    total = 0.0
    inside = np.zeros(n, dtype=bool)
    for left, right in windows:
        inside[left : right + 1] = True
        rows = [i for i in range(left, right + 1) if i >= prob]
        if not rows:
            continue
        hits = [i for i in rows if scores[i] >= thr]
        if hits:
            total += sig(-(right - hits[0] + 1) / (right - left + 1)) * prof.tp_weight / sig(-1.0)
        else:
            total -= prof.fn_weight
    for i in range(n):
        if i < prob or inside[i] or scores[i] < thr:
            continue
        before = [w for w in windows if w[1] < i]
        if not before:
            total -= prof.fp_weight
        else:
            left, right = before[-1]
            total += sig(abs(right - i) / (right - left)) * prof.fp_weight
    return total


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("profile", list(nab.PROFILES))
def test_vectorised_sweep_equals_reference(seed: int, profile: str) -> None:
    rng = np.random.default_rng(seed)
    prof = nab.get_profile(profile)
    items = []
    for k in range(3):
        n = int(rng.integers(120, 300))
        scores = rng.random(n)
        if seed % 2:
            scores = np.round(scores, 1)  # many ties
        cuts = np.sort(
            rng.choice(np.arange(5, n - 5), size=2 * int(rng.integers(0, 4)), replace=False)
        )
        windows = cuts.reshape(-1, 2)
        items.append(nab.LabeledSeries(f"s{k}", scores, windows))
    sweeps = [nab.sweep_series(s, prof) for s in items]
    curve = nab.score_by_threshold(sweeps, prof)
    for thr, total in zip(curve.threshold, curve.score, strict=True):
        ref = sum(_reference_series_score(s.scores, s.windows, thr, prof) for s in items)
        assert total == pytest.approx(ref, abs=1e-9)


def test_windows_from_nab_timestamps() -> None:
    stamps = np.array(
        ["2014-04-10 16:10:00", "2014-04-10 16:15:00", "2014-04-10 16:20:00", "2014-04-10 16:25:00"]
    )
    win = [
        ["2014-04-10 16:15:00.000000", "2014-04-10 16:20:00.000000"],
        ["2015-01-01 00:00:00", "2015-01-02 00:00:00"],
    ]
    assert nab.windows_to_indices(stamps, win).tolist() == [[1, 2]]


def test_invalid_windows_are_rejected() -> None:
    with pytest.raises(ValueError, match="overlap"):
        nab.sweep_series(nab.LabeledSeries("s", np.zeros(100), np.array([[10, 30], [20, 40]])))
    with pytest.raises(ValueError, match="window rows"):
        nab.sweep_series(nab.LabeledSeries("s", np.zeros(100), np.array([[90, 120]])))
    with pytest.raises(KeyError, match="unknown NAB profile"):
        nab.get_profile("lenient")
