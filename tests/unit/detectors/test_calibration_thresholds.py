"""Calibration (ECDF + GPD tail) and thresholds (quantile, k-sigma, SPOT, supervised)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from detectors import NotFittedError
from detectors.calibration import ScoreCalibrator, fit_gpd, gpd_survival
from detectors.thresholds import (
    SPOT,
    MeanStdThreshold,
    QuantileThreshold,
    SupervisedThreshold,
    best_fbeta_threshold,
    min_cost_threshold,
)


def test_gpd_fit_recovers_pareto_shape(rng: np.random.Generator) -> None:
    xi, sigma = 0.3, 2.0
    u = rng.uniform(size=20000)
    y = sigma / xi * (u ** (-xi) - 1)  # inverse survival of GPD(xi, sigma)
    xi_hat, sigma_hat = fit_gpd(y)
    assert xi_hat == pytest.approx(xi, abs=0.05)
    assert sigma_hat == pytest.approx(sigma, rel=0.1)
    assert gpd_survival(0.0, xi_hat, sigma_hat)[0] == pytest.approx(1.0)
    assert gpd_survival(-1.0 / -0.5 + 1.0, -0.5, 1.0)[0] == 0.0  # beyond bounded support


def test_calibrator_is_monotone_and_in_unit_interval(rng: np.random.Generator) -> None:
    cal = ScoreCalibrator(window=3000).fit(rng.lognormal(size=3000))
    grid = np.linspace(-5, 1e4, 2000)
    p = cal.transform(grid)
    assert ((p >= 0) & (p <= 1)).all()
    assert (np.diff(p) >= -1e-12).all()
    # The fitted tail keeps extreme scores apart instead of saturating at 1 - 1/n.
    assert cal.surprise([100.0])[0] < cal.surprise([1000.0])[0]


def test_calibrated_scores_are_uniform_on_normal_data(rng: np.random.Generator) -> None:
    cal = ScoreCalibrator(window=5000).fit(rng.normal(size=5000))
    p = cal.transform(rng.normal(size=20000))
    # Tail probability of normal data is uniform: 1 % of fresh normal scores above 0.99.
    assert np.mean(p > 0.99) == pytest.approx(0.01, abs=0.004)
    assert np.mean(p > 0.5) == pytest.approx(0.5, abs=0.03)


def test_calibrator_sliding_window_and_json_round_trip(rng: np.random.Generator) -> None:
    cal = ScoreCalibrator(window=100)
    with pytest.raises(NotFittedError):
        cal.transform([1.0])
    cal.learn_many(rng.normal(size=250))
    for s in rng.normal(size=7):
        cal.learn_one(float(s))
    assert cal.count_ == 257
    restored = ScoreCalibrator.from_state(json.loads(json.dumps(cal.to_state())))
    probe = np.linspace(-4, 4, 50)
    np.testing.assert_array_equal(restored.transform(probe), cal.transform(probe))
    # Both forget the same oldest score next.
    cal.learn_one(10.0)
    restored.learn_one(10.0)
    np.testing.assert_array_equal(restored.transform(probe), cal.transform(probe))
    # Drift: after a shift the old scores leave the window.
    cal.learn_many(rng.normal(5.0, 1.0, size=100))
    assert cal.transform([5.0])[0] == pytest.approx(0.5, abs=0.15)


def test_unsupervised_thresholds(rng: np.random.Generator) -> None:
    s = rng.normal(size=10000)
    q = QuantileThreshold(0.99).fit(s)
    assert np.mean(q.predict(rng.normal(size=10000))) == pytest.approx(0.01, abs=0.005)
    k = MeanStdThreshold(3).fit(s)
    assert k.threshold_ == pytest.approx(3.0, abs=0.1)
    assert QuantileThreshold.from_state(json.loads(json.dumps(q.to_state()))).threshold_ == \
        q.threshold_
    with pytest.raises(NotFittedError):
        QuantileThreshold().predict([1.0])


def test_spot_reaches_target_false_alarm_rate(rng: np.random.Generator) -> None:
    spot = SPOT(risk=1e-3, level=0.98).fit(rng.standard_exponential(size=5000))
    alarms = spot.run(rng.standard_exponential(size=50000))
    # Alarms are not learned, so the tail is slightly underestimated: same order as risk.
    assert 3e-4 < np.mean(alarms) < 3e-3
    # Attacks are flagged and not learned, so the bar does not rise with them.
    before = spot.threshold_
    assert spot.run(np.full(100, 50.0)).all()
    assert spot.threshold_ == before
    restored = SPOT.from_state(json.loads(json.dumps(spot.to_state())))
    assert restored.threshold_ == spot.threshold_
    with pytest.raises(ValueError):
        SPOT().fit([1.0, 2.0])


def test_supervised_thresholds_use_metrics() -> None:
    y = np.array([0, 0, 0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.2, 0.15, 0.3, 0.8, 0.7, 0.6, 0.9])
    t, f1 = best_fbeta_threshold(y, s)
    assert (t, f1) == (0.7, 1.0)
    t_cost, cost = min_cost_threshold(y, s, cost_fn=10, cost_fp=1)
    assert cost == 0.0 and t_cost <= 0.7
    st = SupervisedThreshold("fbeta", beta=2.0).fit(s, y)
    assert st.report_["recall"] == 1.0
    assert {"precision", "recall", "f1", "f2", "roc_auc", "average_precision"} <= set(st.report_)
    acc = SupervisedThreshold("accuracy").fit(s, y)
    assert acc.value_ == 1.0
    cost_t = SupervisedThreshold("cost", cost_fn=1.0, cost_fp=100.0).fit(s, y)
    assert cost_t.predict(s).sum() <= 3
    with pytest.raises(ValueError):
        SupervisedThreshold("auc").fit(s, y)


def test_prior_until_enough_reference_then_empirical(rng: np.random.Generator) -> None:
    from detectors.calibration import half_normal_tail

    cal = ScoreCalibrator(window=1000, prior="half_normal", prior_until=300)
    assert cal.is_fitted and not cal.empirical
    z = np.array([0.5, 2.0, 4.0])
    np.testing.assert_allclose(cal.tail_probability(z), half_normal_tail(z))
    # Student-t z-scores: far heavier tails than the prior assumes.
    heavy = np.abs(rng.standard_t(2, size=299))
    cal.learn_many(heavy)
    np.testing.assert_allclose(cal.tail_probability(z), half_normal_tail(z))
    cal.learn_many(np.abs(rng.standard_t(2, size=1)))
    assert cal.empirical
    # Against its own heavy-tailed reference, z = 4 is no longer a 1-in-16,000 event.
    assert cal.tail_probability([4.0])[0] > 100 * half_normal_tail([4.0])[0]
    again = ScoreCalibrator.from_state(json.loads(json.dumps(cal.to_state())))
    assert again.prior == "half_normal" and again.empirical
    np.testing.assert_array_equal(again.transform(z), cal.transform(z))
    with pytest.raises(ValueError, match="prior"):
        ScoreCalibrator(prior="laplace")
