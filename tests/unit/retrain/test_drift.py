"""Drift monitors: false alarms within budget, detections that name the right thing,
identical decisions after a JSON round trip, and the building blocks against their
references (scipy's KS test, statsmodels' corrections, river's Page-Hinkley).

Synthetic, seeded data only; no assertion on wall-clock time.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from scipy import signal, special, stats

from retrain import (
    DriftReport,
    DriftSettings,
    ExceedanceMonitor,
    FeatureDriftMonitor,
    ModelDriftMonitors,
    PageHinkley,
    ScoreDriftMonitor,
    cusum_arl,
    threshold_for_arl,
)
from retrain.drift import DriftMonitor
from retrain.two_sample import (
    benjamini_hochberg,
    holm,
    ks_distance,
    ks_pvalue,
    lag1_autocorrelation,
)


def calibrated(x: np.ndarray) -> np.ndarray:
    """A perfectly calibrated two-sided score of standard normal values: ``P(|Z| < |x|)``."""
    return 1.0 - special.erfc(np.abs(x) / np.sqrt(2.0))


def ar1(rng: np.random.Generator, n: int, d: int, phi: float) -> np.ndarray:
    """Unit-variance AR(1) columns."""
    e = rng.normal(size=(n, d)) * np.sqrt(1.0 - phi**2)
    return signal.lfilter([1.0], [1.0, -phi], e, axis=0)


def roundtrip(mon: Any) -> Any:
    return type(mon).from_state(json.loads(json.dumps(mon.to_state())))


# -- building blocks --------------------------------------------------------------------------
def test_ks_distance_matches_scipy_with_ties() -> None:
    rng = np.random.default_rng(1)
    ref = np.round(rng.normal(size=(4, 700)), 1)  # many ties, within and across samples
    cur = np.round(rng.normal(0.2, 1.3, size=(4, 400)), 1)
    d = ks_distance(np.sort(ref, axis=1), cur)
    expected = [stats.ks_2samp(ref[j], cur[j]).statistic for j in range(4)]
    np.testing.assert_allclose(d, expected, rtol=0, atol=1e-12)


def test_ks_pvalue_close_to_scipy_asymptotic() -> None:
    rng = np.random.default_rng(2)
    for shift in (0.0, 0.1, 0.2, 0.3):
        a, b = rng.normal(size=2000), rng.normal(shift, 1.0, size=1000)
        res = stats.ks_2samp(a, b, method="asymp")
        p = float(ks_pvalue(res.statistic, 2000, 1000)[0])
        # Same answer to a few per cent of log p, down to p ~ 1e-12.
        assert abs(np.log(p) - np.log(res.pvalue)) < 0.05 * max(1.0, -np.log(res.pvalue))


def test_corrections_match_statsmodels() -> None:
    from statsmodels.stats.multitest import multipletests

    p = np.random.default_rng(3).uniform(0, 0.2, size=12)
    np.testing.assert_allclose(holm(p), multipletests(p, method="holm")[1])
    np.testing.assert_allclose(benjamini_hochberg(p), multipletests(p, method="fdr_bh")[1])


def test_lag1_autocorrelation_recovers_ar1() -> None:
    x = ar1(np.random.default_rng(4), 20_000, 3, 0.0)
    x[:, 1] = ar1(np.random.default_rng(5), 20_000, 1, 0.5)[:, 0]
    x[:, 2] = 7.0  # constant: no information, not "perfectly correlated"
    rho = lag1_autocorrelation(x)
    assert abs(rho[0]) < 0.03 and abs(rho[1] - 0.48) < 0.05 and rho[2] == 0.0


@pytest.mark.parametrize("seed", range(6))
def test_page_hinkley_is_rivers(seed: int) -> None:
    from river import drift

    rng = np.random.default_rng(seed)
    params = {
        "min_instances": int(rng.integers(1, 60)),
        "delta": float(rng.uniform(0.0, 0.5)),
        "threshold": float(rng.uniform(2.0, 40.0)),
        "alpha": float(rng.choice([1.0, 1 - 1e-4, 0.99])),
        "mode": str(rng.choice(["up", "down", "both"])),
    }
    x = np.concatenate([rng.normal(size=2000), rng.normal(rng.uniform(-1, 1), 1.5, size=2000)])
    theirs, ours = drift.PageHinkley(**params), PageHinkley(**params)
    got_theirs, got_ours = [], []
    for i, v in enumerate(x.tolist()):
        theirs.update(v)
        if theirs.drift_detected:
            got_theirs.append(i)
        if ours.update(v):
            got_ours.append(i)
        if i == 1500:  # a checkpoint in the middle changes nothing
            ours = roundtrip(ours)
    assert got_ours == got_theirs
    assert got_ours  # the comparison saw detections, not only silence


def test_page_hinkley_matches_rivers_doc_example() -> None:
    rng = random.Random(12345)
    ph = PageHinkley()
    data = rng.choices([0, 1], k=1000) + rng.choices(range(4, 8), k=1000)
    assert [i for i, v in enumerate(data) if ph.update(v)] == [1006]


def test_threshold_for_arl_inverts_siegmund() -> None:
    for arl in (1e3, 1e5, 3e7):
        for k in (0.25, 0.5, 1.0):
            h = threshold_for_arl(arl, k)
            assert cusum_arl(k, h) == pytest.approx(arl, rel=1e-6)


def test_cusum_arl_close_to_simulation() -> None:
    # Siegmund's approximation against a direct simulation of the one-sided CUSUM.
    rng = np.random.default_rng(6)
    k, h = 0.5, 3.0
    runs = []
    for _ in range(400):
        s, t = 0.0, 0
        while True:
            t += 1
            s = max(0.0, s + rng.normal() - k)
            if s > h:
                break
        runs.append(t)
    assert np.mean(runs) == pytest.approx(cusum_arl(k, h, two_sided=False), rel=0.15)


def test_report_json_round_trip() -> None:
    r = DriftReport("feature_ks", 0.2, "ks_d", 1e-4, 3e-6, ("x3",), (0, 2000), (9000, 10000),
                    10000, 1e6, {"per_feature": {"x3": {"ks_d": 0.2}}})
    assert DriftReport.from_dict(json.loads(json.dumps(r.to_dict()))) == r


# -- false alarms -----------------------------------------------------------------------------
def test_feature_monitor_silent_on_long_stationary_stream() -> None:
    rng = np.random.default_rng(10)
    mon = FeatureDriftMonitor(budget_events=1e7)  # <= 0.03 expected alarms in 300k events
    assert mon.update_many(rng.normal(size=(300_000, 5))) == []
    assert mon.n_seen == 300_000


def test_feature_monitor_spends_at_most_its_budget() -> None:
    # Budget 1e4 over 300k events: at most 30 false alarms expected; none at all would
    # mean the monitor is deaf, not careful.
    rng = np.random.default_rng(11)
    mon = FeatureDriftMonitor(budget_events=1e4)
    alarms = len(mon.update_many(rng.standard_t(3, size=(300_000, 5))))
    assert 1 <= alarms <= 30


def test_feature_monitor_autocorrelation_correction_keeps_budget() -> None:
    X = ar1(np.random.default_rng(12), 300_000, 3, 0.8)
    naive = FeatureDriftMonitor(budget_events=1e5, autocorrelation=False)
    corrected = FeatureDriftMonitor(budget_events=1e5)
    assert len(naive.update_many(X)) > 30  # i.i.d. p-values on AR(1): ten times the budget
    assert len(corrected.update_many(X)) <= 3


def test_score_monitor_silent_on_long_stationary_stream() -> None:
    rng = np.random.default_rng(13)
    mon = ScoreDriftMonitor(budget_events=1e7)
    assert mon.update_many(calibrated(rng.normal(size=2_000_000))) == []


@pytest.mark.parametrize(
    "make",
    [
        lambda rng, n: calibrated(rng.normal(size=n)),
        lambda rng, n: calibrated(rng.standard_t(3, size=n) / np.sqrt(3.0)),  # miscalibrated
        lambda rng, n: calibrated(ar1(rng, n, 1, 0.7)[:, 0]),
    ],
    ids=["gaussian", "t3", "ar1"],
)
def test_score_monitor_spends_at_most_its_budget(
    make: Callable[[np.random.Generator, int], np.ndarray],
) -> None:
    rng = np.random.default_rng(14)
    alarms = len(ScoreDriftMonitor(budget_events=1e4).update_many(make(rng, 1_000_000)))
    assert 1 <= alarms <= 100


def test_exceedance_monitor_within_budget() -> None:
    rng = np.random.default_rng(15)
    quiet = ExceedanceMonitor(0.9995, budget_events=1e7)
    assert quiet.update_many(rng.uniform(size=3_000_000)) == []
    busy = ExceedanceMonitor(0.999, budget_events=1e4, window_size=20_000)
    assert len(busy.update_many(rng.uniform(size=1_000_000))) <= 100


# -- detections -------------------------------------------------------------------------------
def test_two_sigma_shift_on_one_feature_of_ten_is_named() -> None:
    rng = np.random.default_rng(20)
    names = [f"f{j}" for j in range(10)]
    mon = FeatureDriftMonitor(names, budget_events=1e6)
    assert mon.update_many(rng.normal(size=(10_000, 10))) == []
    after = rng.normal(size=(5_000, 10))
    after[:, 3] += 2.0
    reports = mon.update_many(after)
    assert reports, "a 2 sigma shift went unnoticed"
    r = reports[0]
    assert r.features == ("f3",)
    assert 10_000 < r.event_count <= 10_000 + 400  # window 1000, test every 100
    assert r.p_value is not None and r.p_value < r.threshold == pytest.approx(1e-4)
    assert r.reference == (0, 2000) and r.current == (r.event_count - 1000, r.event_count)
    detail = r.details["per_feature"]["f3"]
    assert detail["current_median"] > detail["reference_median"]  # shifted up
    json.dumps(r.to_dict())


def test_feature_report_names_every_drifted_feature_with_bh() -> None:
    rng = np.random.default_rng(21)
    mon = FeatureDriftMonitor(correction="bh", budget_events=1e6)
    X = rng.normal(size=(12_000, 6))
    # A variance change on two features, from the first event after the reference: the
    # first test sees a window that has drifted entirely.
    X[2000:, [1, 4]] *= 3.0
    r = mon.update_many(X)[0]
    assert r.event_count == 3000
    assert set(r.features) == {"x1", "x4"}


def test_score_monitor_detects_a_variance_change() -> None:
    rng = np.random.default_rng(22)
    x = np.concatenate([rng.normal(size=50_000), rng.normal(0.0, np.sqrt(2.0), size=20_000)])
    scores = calibrated(x)  # the model still believes in unit variance
    reports = ScoreDriftMonitor(budget_events=1e6).update_many(scores)
    assert reports and reports[0].details["direction"] == "up"
    assert 50_000 < reports[0].event_count <= 50_000 + 1000
    # The change-point estimate lands near the change.
    assert abs(reports[0].current[0] - 50_000) <= 256
    exceed = ExceedanceMonitor(0.999, budget_events=1e6).update_many(scores)
    assert exceed and 50_000 < exceed[0].event_count <= 52_000


def test_score_monitor_detects_scores_becoming_too_low() -> None:
    rng = np.random.default_rng(23)
    x = np.concatenate([rng.normal(size=20_000), rng.normal(0.0, 0.6, size=20_000)])
    reports = ScoreDriftMonitor(budget_events=1e6).update_many(calibrated(x))
    assert reports and reports[0].details["direction"] == "down"


def test_model_monitors_split_budget_and_debounce() -> None:
    rng = np.random.default_rng(24)
    settings = DriftSettings(budget_events=1e6, debounce_events=50_000)
    mons = ModelDriftMonitors(settings, alert_threshold=0.999, watch_scores=False)
    assert mons.exceedance is not None and mons.exceedance.budget_events == 1e6
    drifted = rng.uniform(0.0, 1.003, size=200_000)  # 4 times the promised share, for good
    reports = mons.update_many(None, drifted)
    # It keeps firing (its reference is the promised share, which does not move); the
    # debounce keeps that to one record per 50,000 events.
    assert {r.monitor for r in reports} == {"score_exceedance"}
    assert 2 <= len(reports) <= 4 and mons.suppressed > 0
    assert min(np.diff([r.event_count for r in reports])) >= 50_000
    both = ModelDriftMonitors(settings, ["a"], watch_scores=True, alert_threshold=0.999)
    assert {m.budget_events for m in both.monitors} == {3e6}


# -- one at a time, batches, checkpoints ------------------------------------------------------
def _drifting_features(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(9_000, 4))
    X[4000:, 2] += 1.0
    X[7000:, 0] *= 2.0
    X[[100, 2500, 5000], 1] = np.nan
    return X


def _drifting_scores(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.concatenate(
        [rng.normal(size=15_000), rng.normal(0.7, 1.0, size=15_000), rng.normal(size=30_000)]
    )
    s = calibrated(x)
    s[[10, 20_000]] = np.nan
    return s


MONITORS: list[tuple[str, Callable[[], DriftMonitor], Callable[[int], np.ndarray]]] = [
    (
        "features",
        lambda: FeatureDriftMonitor(reference_size=500, window_size=300, check_every=37,
                                    budget_events=1e5),
        _drifting_features,
    ),
    ("scores", lambda: ScoreDriftMonitor(budget_events=1e5, block_size=10,
                                         reference_size=1000), _drifting_scores),
    ("exceedance", lambda: ExceedanceMonitor(0.99, budget_events=1e5, window_size=5000,
                                             check_every=250), _drifting_scores),
]


@pytest.mark.parametrize("make, data", [m[1:] for m in MONITORS], ids=[m[0] for m in MONITORS])
def test_state_round_trip_gives_identical_decisions(
    make: Callable[[], DriftMonitor], data: Callable[[int], np.ndarray]
) -> None:
    stream = data(30)
    whole = [r.to_dict() for r in make().update_many(stream)]
    assert len(whole) >= 2  # the split points below fall between decisions
    for cut in (1, 777, 4321, len(stream) // 2 + 3):
        first = make()
        got = [r.to_dict() for r in first.update_many(stream[:cut])]
        restored = roundtrip(first)
        assert json.dumps(restored.to_state(), sort_keys=True) == json.dumps(
            first.to_state(), sort_keys=True
        )
        got += [r.to_dict() for r in restored.update_many(stream[cut:])]
        assert got == whole, f"cut at {cut}"


@pytest.mark.parametrize("make, data", [m[1:] for m in MONITORS], ids=[m[0] for m in MONITORS])
def test_one_at_a_time_equals_batches(
    make: Callable[[], DriftMonitor], data: Callable[[int], np.ndarray]
) -> None:
    stream = data(31)
    whole = [r.to_dict() for r in make().update_many(stream)]
    mon = make()
    singles = []
    for row in stream[:3000]:
        r = mon.update(row)
        if r is not None:
            singles.append(r.to_dict())
    uneven = 3000
    for size in (1, 5, 999, 10_000, 100_000):
        singles += [r.to_dict() for r in mon.update_many(stream[uneven : uneven + size])]
        uneven += size
    assert singles == whole
    assert isinstance(mon, DriftMonitor)


def test_model_monitors_round_trip() -> None:
    rng = np.random.default_rng(32)
    X = rng.normal(size=(30_000, 3))
    X[20_000:, 1] += 1.5
    s = calibrated(rng.normal(size=30_000))
    s[25_000:] = calibrated(rng.normal(0.0, 2.0, size=5_000))
    settings = DriftSettings(debounce_events=1000, exceedance_window_events=10_000)

    def make() -> ModelDriftMonitors:
        return ModelDriftMonitors(settings, ["a", "b", "c"], alert_threshold=0.999)

    whole = [r.to_dict() for r in make().update_many(X, s)]
    assert {r["monitor"] for r in whole} == {"feature_ks", "score_ph", "score_exceedance"}
    first = make()
    got = [r.to_dict() for r in first.update_many(X[:22_222], s[:22_222])]
    restored = ModelDriftMonitors.from_state(json.loads(json.dumps(first.to_state())))
    got += [r.to_dict() for r in restored.update_many(X[22_222:], s[22_222:])]
    assert got == whole


def test_reset_takes_a_new_reference() -> None:
    rng = np.random.default_rng(33)
    mon = FeatureDriftMonitor(reference_size=500, window_size=200, budget_events=1e6)
    mon.update_many(rng.normal(size=(3000, 2)))
    mon.reset()  # a model swap: the new regime is the new normal
    assert mon.update_many(rng.normal(5.0, 1.0, size=(3000, 2))) == []
    mon.update_many(rng.normal(5.0, 1.0, size=(10, 2)))
    state = mon.to_state()
    assert state["ref_range"] == [3000, 3500]


def test_wrong_width_is_refused() -> None:
    mon = FeatureDriftMonitor(["a", "b"])
    with pytest.raises(ValueError, match="expected 2 features"):
        mon.update_many(np.zeros((3, 3)))
