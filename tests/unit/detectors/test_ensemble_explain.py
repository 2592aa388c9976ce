"""Ensembles (default per source, online per-entity state) and alert explanations."""


from __future__ import annotations

import json

import numpy as np
import pytest

import detectors
from detectors import Ensemble, default_ensemble, top_k_contributions
from detectors.batch import PCAReconstruction
from detectors.online import EWGaussian, RobustZScore


def sensor_features(values: np.ndarray, start_hour: float = 0.0,
                    step_minutes: float = 5.0) -> np.ndarray:
    """[first difference, hour sin/cos, dow sin/cos] as windowing produces them."""
    t_hours = start_hour + np.arange(len(values)) * step_minutes / 60
    hour, dow = t_hours % 24, (t_hours // 24) % 7
    diff = np.r_[0.0, np.diff(values)]
    return np.column_stack([diff, np.sin(2 * np.pi * hour / 24), np.cos(2 * np.pi * hour / 24),
                            np.sin(2 * np.pi * dow / 7), np.cos(2 * np.pi * dow / 7)])


def daily_series(rng: np.random.Generator, n: int) -> np.ndarray:
    t = np.arange(n) * 5 / 60
    return 20 + 3 * np.sin(2 * np.pi * t / 24) + 0.2 * rng.normal(size=n)


def test_default_sensor_ensemble_online_one_reading_at_a_time(rng: np.random.Generator) -> None:
    values = daily_series(rng, 3000)
    values[2500] += 4.0  # a spike
    X = sensor_features(values)
    ens = default_ensemble("sensors")
    assert ens.online and ens.json_state
    scores = []
    for x in X:
        if ens.is_fitted:
            scores.append(ens.score_one(x))
        else:
            scores.append(0.0)
        ens.learn_one(x)
    scores = np.asarray(scores)
    assert ((scores >= 0) & (scores <= 1)).all()
    assert scores[2500] > 0.999
    assert np.argmax(scores[1000:]) + 1000 in (2500, 2501)
    assert np.mean(scores[1000:2400] > 0.999) < 0.02
    names = [n for n, _, _ in top_k_contributions(ens, X[2500], k=1)]
    assert names == ["x0"]


def test_sensor_ensemble_json_state_resumes_identically(rng: np.random.Generator) -> None:
    X = sensor_features(daily_series(rng, 1200))
    ens = default_ensemble("sensors")
    for x in X[:800]:
        ens.learn_one(x)
    blob = json.dumps(ens.to_state())
    restored = detectors.Detector.from_state(json.loads(blob))
    assert isinstance(restored, Ensemble)
    a, b = [], []
    for x in X[800:]:
        a.append(ens.score_one(x))
        b.append(restored.score_one(x))
        ens.learn_one(x)
        restored.learn_one(x)
    np.testing.assert_array_equal(a, b)
    assert len(blob) < 400_000  # per-sensor checkpoint stays small


def test_sensor_ensemble_without_time_columns(rng: np.random.Generator) -> None:
    ens = default_ensemble("sensors", time_columns=None)
    ens.learn_many(rng.normal(size=(300, 1)))
    assert ens.score_one([8.0]) > ens.score_one([0.0])


def test_default_connection_ensemble(rng: np.random.Generator, tmp_path) -> None:
    X = rng.normal(size=(3000, 6))
    ens = default_ensemble("connections").fit(X)
    s = ens.score_many(np.vstack([X[:200], X[:5] + 8]))
    assert s[-5:].min() > np.quantile(s[:200], 0.95)
    ens.save(tmp_path / "conn")
    np.testing.assert_array_equal(detectors.load(tmp_path / "conn").score_many(X[:20]),
                                  ens.score_many(X[:20]))
    with pytest.raises(ValueError):
        default_ensemble("printers")


@pytest.mark.parametrize("method", ["mean", "max", "min_p", "fisher", "rank", "weighted"])
def test_combination_methods(method: str, rng: np.random.Generator) -> None:
    X = rng.normal(size=(600, 3))
    ens = Ensemble(method=method, calibration={"window": 300}).learn_many(X)
    s = ens.score_many(np.vstack([X[:50], [[6, -6, 6]]]))
    assert ((s >= 0) & (s <= 1)).all()
    assert s[-1] >= s[:-1].max()
    with pytest.raises(ValueError):
        Ensemble(method="median").learn_many(X)


def test_batch_ensemble_fit_weights_and_columns(rng: np.random.Generator) -> None:
    X = rng.normal(size=(800, 4))
    ens = Ensemble(members=[
        {"detector": PCAReconstruction(n_components=2), "name": "pca"},
        {"detector": RobustZScore(), "columns": [3], "name": "z3"},
    ]).fit(X)
    assert not ens.online
    assert ens.member_names_ == ["pca", "z3"]
    assert ens.member_scores(X[:4], calibrated=False).shape == (4, 2)
    # Anomalies only in feature 3: the member watching column 3 earns the weight.
    Xv = rng.normal(size=(400, 4))
    y = np.zeros(400, dtype=int)
    y[:40] = 1
    Xv[:40, 3] += 6
    ens.fit_weights(Xv, y, metric="roc_auc")
    assert ens.weights_[1] > ens.weights_[0]
    assert set(ens.members_) == {"pca", "z3"}
    with pytest.raises(ValueError):
        Ensemble(members=[{"detector": RobustZScore(), "columns": [9]}]).fit(X)
    with pytest.raises(TypeError):
        Ensemble(members=["zscore"]).fit(X)


def test_gate_keeps_anomalies_out_of_the_model(rng: np.random.Generator) -> None:
    X = rng.normal(size=(500, 2))
    gated = Ensemble(gate=0.999, calibration={"window": 500}).learn_many(X)
    open_ = Ensemble(calibration={"window": 500}).learn_many(X)
    burst = np.full((50, 2), 7.0)
    gated.learn_many(burst)
    open_.learn_many(burst)
    assert gated.n_samples_seen_ == open_.n_samples_seen_  # counted, but...
    assert gated.detectors_[0].buffer_.max() < 7.0         # ...not learned
    assert open_.detectors_[0].buffer_.max() == 7.0


def test_top_k_contributions_for_reconstruction_and_gaussian(rng: np.random.Generator) -> None:
    t = rng.normal(size=(1000, 1))
    X = np.hstack([t, 2 * t, -t, rng.normal(size=(1000, 1))])
    names = ["a", "b", "c", "d"]
    pca = PCAReconstruction(n_components=2).fit(X, feature_names=names)
    x = np.array([1.0, 2.0, 4.0, 0.0])  # c breaks the a/b/c relation
    top = top_k_contributions(pca, x, k=2)
    assert top[0][0] == "c" and top[0][2] > 10
    assert len(top[0]) == 3
    gauss = EWGaussian().learn_many(X, feature_names=names)
    top = top_k_contributions(gauss, [0.0, 0.0, 0.0, 7.0], k=1, reference=X[:200])
    assert top[0][0] == "d" and top[0][2] > 10
    with pytest.raises(NotImplementedError):
        top_k_contributions(detectors.IsolationForest(n_estimators=10).fit(X), x)


def test_calibration_gate_keeps_anomalies_out_of_the_reference(rng: np.random.Generator) -> None:
    X = rng.normal(size=(600, 1))
    burst = np.full((50, 1), 8.0)
    gated = Ensemble(calibration={"window": 500}, calibration_gate=0.99).learn_many(X)
    open_ = Ensemble(calibration={"window": 500}).learn_many(X)
    gated.learn_many(burst)
    open_.learn_many(burst)
    # The members learned the burst in both; only the ungated reference now holds it,
    # so there the next extreme value looks ordinary.
    assert gated.n_samples_seen_ == open_.n_samples_seen_
    assert gated.score_many([[9.0]])[0] > 0.95
    assert open_.score_many([[9.0]])[0] < gated.score_many([[9.0]])[0]


def test_min_p_is_weighted_bonferroni_and_fisher_adds_up() -> None:
    ens = Ensemble(members=[{"detector": RobustZScore(), "name": "a", "weight": 3.0},
                            {"detector": RobustZScore(), "name": "b", "weight": 1.0}],
                   method="min_p")
    cal = np.array([[0.999, 0.5], [0.5, 0.999], [0.2, 0.3]])
    ens._init_members(1)
    # p / share: a has 3/4 of the weight, b 1/4.
    np.testing.assert_allclose(ens._combine(cal), [1 - 0.001 / 0.75, 1 - 0.001 / 0.25, 0.0])
    ens.weights_ = np.array([1.0, 0.0])  # a member without weight has no say
    np.testing.assert_allclose(ens._combine(cal), cal[:, 0])
    ens.method = "fisher"
    from scipy import stats

    both = ens._combine(np.array([[0.99, 0.99]]))[0]
    assert both == pytest.approx(stats.chi2.cdf(-4 * np.log(0.01), 4))
    assert both > 0.998  # two members each 1-in-100 sure: 1 in 1,000 together


def test_externally_driven_ensemble_matches_its_own_scoring(rng: np.random.Generator) -> None:
    ens = default_ensemble("connections")
    X = np.abs(rng.normal(size=(1500, 4)))
    ens.learn_members(X[:1000], feature_names=list("abcd"))
    assert ens.member_names_ == ["marginal_tail", "half_space_trees"]
    ens.fit_calibration(ens.member_scores(X[1000:1400], calibrated=False))
    probe = np.vstack([X[1400:], [[9.0, 9.0, 9.0, 9.0]]])
    raw = ens.member_scores(probe, calibrated=False)
    np.testing.assert_array_equal(ens.combine(raw), ens.score_many(probe))
    assert ens.combine(raw)[-1] > 0.999 > np.median(ens.combine(raw)[:-1])
    # Body-tail calibrators: a reference polluted by a few extreme scores keeps its tail.
    before = ens.combine(raw)[-1]
    ens.learn_calibration(np.vstack([raw[:-1], np.full((20, 2), 1e6)]))
    assert ens.combine(raw)[-1] == pytest.approx(before, abs=1e-3)
    with pytest.raises(ValueError, match="shape"):
        ens.combine(raw[:, :1])
    with pytest.raises(ValueError, match="kind"):
        Ensemble(calibration={"kind": "isotonic"}).learn_many(X)


def test_learning_with_known_raw_scores_is_learning_without_them(
    rng: np.random.Generator,
) -> None:
    X = sensor_features(daily_series(rng, 900))
    a, b = default_ensemble("sensors"), default_ensemble("sensors")
    for lo in range(0, len(X), 8):
        chunk = X[lo : lo + 8]
        raw = b.member_scores(chunk, calibrated=False) if b.is_fitted else None
        if a.is_fitted:
            np.testing.assert_array_equal(a.score_many(chunk), b.score_many(chunk))
        a.learn_many(chunk)
        b.learn_many(chunk, raw_scores=raw)
    assert json.dumps(a.to_state()) == json.dumps(b.to_state())
    with pytest.raises(ValueError, match="raw_scores"):
        b.learn_many(X[:8], raw_scores=np.zeros((8, 1)))
