"""MarginalTail (grouped per-feature tail surprise) and BodyTailCalibrator."""

from __future__ import annotations

import inspect
import json
import math
from typing import Any

import numpy as np
import pytest

import detectors
from detectors import Detector, NotFittedError
from detectors.calibration import BodyTailCalibrator, ScoreCalibrator
from detectors.marginal_tail import MarginalTail
from tests.unit.detectors import test_conformance as conformance

# The module registers itself on import; the conformance module lists the registry when it
# is collected, which may be before this import, so its checks are run here explicitly.
_CHECKS = [
    f
    for name, f in vars(conformance).items()
    if name.startswith("test_")
    and "name" in inspect.signature(f).parameters
    and name != "test_batch_detectors_refuse_learn_many"  # online detector
]


@pytest.mark.parametrize("check", _CHECKS, ids=lambda f: f.__name__)
def test_conformance(check: Any, tmp_path: Any) -> None:
    assert "marginal_tail" in detectors.available()
    if "tmp_path" in inspect.signature(check).parameters:
        check("marginal_tail", tmp_path)
    else:
        check("marginal_tail")


def test_surprise_is_minus_log_tail_probability() -> None:
    X = np.arange(100, dtype=float).reshape(-1, 1)  # 0 .. 99, one row each
    det = MarginalTail(tails="upper", resolution=1.0, prior=1.0).fit(X)
    # 10 reference rows at or above 90: P = (10 + 1) / (100 + 1).
    assert det.score_one([90.0]) == pytest.approx(-math.log(11 / 101))
    assert det.score_one([0.0]) == pytest.approx(0.0)


def test_extrapolates_beyond_the_largest_value() -> None:
    rng = np.random.default_rng(0)
    det = MarginalTail(tails="upper").fit(rng.exponential(1.0, size=(5000, 1)))
    top = det.feature_reference(0)[0].max()
    scores = det.score_many([[top + 1.0], [top + 2.0], [top + 4.0]])
    steps = np.diff(scores)
    # Exponential tail: each unit beyond the max adds about one nat (mean excess ~ 1).
    assert steps == pytest.approx([1.0, 2.0], rel=0.25)
    assert det.score_one([top + 4.0]) > -math.log(1 / 5001)


def test_upper_tail_ignores_low_values_and_groups_count_once() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, 3))
    det = MarginalTail(groups=[[0, 1]], tails="upper").fit(X)
    assert det.score_one([-8.0, 0.0, 0.0]) < 1.0  # low is not unusual
    assert det.score_one([0.0, 0.0, 50.0]) < 1.0  # column 2 is in no group
    both = det.score_one([6.0, 6.0, 0.0])
    one = det.score_one([6.0, 0.0, 0.0])
    assert both == pytest.approx(one, rel=0.1)  # same group: the larger surprise only
    contrib = det.explain([[6.0, 6.0, 50.0]])[0]
    assert contrib[2] == 0.0 and contrib[0] > 5 and contrib[1] > 5
    two = MarginalTail(groups=[[0], [1]], tails="upper").fit(X)
    assert two.score_one([6.0, 6.0, 0.0]) == pytest.approx(2 * one, rel=0.1)


def test_constant_feature_uses_constant_scale() -> None:
    X = np.zeros((999, 1))
    det = MarginalTail(constant_scale=0.5).fit(X)
    # Never seen: -ln(1 / 1000), plus (value - 0) / constant_scale.
    assert det.score_one([1.0]) == pytest.approx(math.log(1000) + 2.0)


def test_capacity_keeps_the_total_weight_and_forgets_with_the_half_life() -> None:
    det = MarginalTail(capacity=100, half_life=1000, resolution=1.0)
    det.learn_many(np.zeros((100, 1)))
    det.learn_many(np.ones((1000, 1)))
    values, weights = det.feature_reference(0)
    assert det.mass_ == pytest.approx(100.0)
    assert weights.sum() == pytest.approx(100.0)
    # After one half-life, the first rows hold half of the weight.
    assert dict(zip(values.tolist(), weights.tolist(), strict=True))[0.0] == pytest.approx(
        50.0, rel=1e-3
    )


def test_batching_does_not_change_the_model() -> None:
    rng = np.random.default_rng(2)
    X = rng.lognormal(size=(1300, 3))
    whole = MarginalTail(capacity=500, half_life=2000, rescale_every=256).fit(X)
    parts = MarginalTail(capacity=500, half_life=2000, rescale_every=256)
    for lo in range(0, len(X), 97):
        parts.learn_many(X[lo : lo + 97])
    probe = rng.lognormal(size=(50, 3)) * 3
    np.testing.assert_allclose(parts.score_many(probe), whole.score_many(probe), rtol=1e-9)
    restored = Detector.from_state(json.loads(json.dumps(parts.to_state())))
    np.testing.assert_array_equal(restored.score_many(probe), parts.score_many(probe))


def test_rejects_bad_groups() -> None:
    with pytest.raises(ValueError, match="share"):
        MarginalTail(groups=[[0, 1], [1]]).fit(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="out of range"):
        MarginalTail(groups=[[5]]).fit(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="tails"):
        MarginalTail(tails="lower").fit(np.zeros((5, 2)))


def test_body_tail_calibrator_extrapolates_from_the_body() -> None:
    rng = np.random.default_rng(3)
    scores = rng.exponential(2.0, size=5000)
    cal = BodyTailCalibrator(window=5000).fit(scores)
    # Exponential scores: the tail from the 50th-90th percentile spacing is the true one.
    for p in (1e-2, 1e-4, 1e-6):
        assert cal.tail_probability([2.0 * math.log(1 / p)])[0] == pytest.approx(p, rel=0.4)
    grid = np.linspace(-1.0, 60.0, 500)
    assert (np.diff(cal.transform(grid)) >= -1e-12).all()
    assert ((cal.transform(grid) >= 0) & (cal.transform(grid) <= 1)).all()


def test_body_tail_calibrator_ignores_its_upper_tail() -> None:
    rng = np.random.default_rng(4)
    clean = rng.exponential(1.0, size=4900)
    polluted = np.concatenate([clean, np.full(100, 500.0)])  # 2 % attacks slipped in
    probe = [5.0, 10.0]
    p_clean = BodyTailCalibrator(window=5000).fit(clean).tail_probability(probe)
    p_polluted = BodyTailCalibrator(window=5000).fit(polluted).tail_probability(probe)
    # The anomalies only shift the body quantiles a little: the next one still stands out,
    # where a tail fitted to the top of the reference would take them for the tail.
    assert (p_polluted < 3 * p_clean).all()
    fitted = ScoreCalibrator(window=5000, tail_quantile=0.95).fit(polluted)
    assert fitted.tail_probability(probe)[1] > 30 * p_polluted[1]


def test_body_tail_calibrator_window_and_state() -> None:
    cal = BodyTailCalibrator(window=100)
    with pytest.raises(NotFittedError):
        cal.transform([1.0])
    cal.learn_many(np.arange(250.0))
    assert len(cal.scores_) == 100 and cal.scores_[0] == 150.0
    restored = BodyTailCalibrator.from_state(json.loads(json.dumps(cal.to_state())))
    probe = np.linspace(100, 400, 20)
    np.testing.assert_array_equal(restored.transform(probe), cal.transform(probe))
    with pytest.raises(ValueError):
        BodyTailCalibrator(anchor=0.5, base=0.9)
