"""KNNLikelihood: nearest-past-window novelty, anomaly likelihood, rest after an alarm."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import detectors
from detectors import KNNLikelihood


def _wave(n: int, seed: int = 0, noise: float = 0.05) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return (np.sin(2 * np.pi * t / 50) + noise * rng.normal(size=n)).reshape(-1, 1)


def test_registered_and_online() -> None:
    assert detectors.get("knn_likelihood") is KNNLikelihood
    assert KNNLikelihood.online and KNNLikelihood.json_state


def test_raw_novelty_is_distance_to_nearest_past_window() -> None:
    # window 2, flat history of 0s then a 3: the window (0, 3) is at distance 3 from every
    # past window (0, 0); power 0.5 makes the raw score sqrt(3).
    det = KNNLikelihood(
        window=2,
        memory=10,
        min_neighbours=1,
        power=0.5,
        smoothing=1.0,
        learn_period=0,
        rest=0,
        quiet=0,
        resolution=0.0,
    )
    det.learn_many(np.zeros((12, 1)))
    # Long-term mean of raw scores 0, spread at its floor 1e-9: any novelty is extreme.
    assert det.lik_mean_ == 0.0
    assert det.score_one([0.0]) == pytest.approx(0.5)  # avg == mean: p = 1/2
    assert det.score_one([3.0]) == pytest.approx(1 - det.min_tail)
    det.learn_one([3.0])
    assert det.avg_ == pytest.approx(math.sqrt(3.0))


def test_distance_within_the_readings_precision_is_no_novelty() -> None:
    # A flat sensor at 20.0 whose last digit wiggles by 1e-4 (5e-6 of its level).
    det = KNNLikelihood(
        window=1,
        memory=10,
        min_neighbours=1,
        power=1.0,
        smoothing=1.0,
        learn_period=0,
        rest=0,
        quiet=0,
    )
    det.learn_many(np.full((12, 1), 20.0))
    det.learn_one([20.0001])
    assert det.avg_ == 0.0
    det.learn_one([20.01])  # 5e-4 of the level: above the precision, novel
    assert det.avg_ == pytest.approx(20.01 - 20.0001 - 1e-5 * 20.01, rel=1e-9)


def test_explain_names_the_novel_column_against_its_usual_novelty() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(0, 0.1, size=(600, 2))
    det = KNNLikelihood(window=4, memory=300).learn_many(X)
    row = np.array([[0.0, 2.0]])  # the second column far from anything seen
    contrib = det.explain(row)[0]
    assert contrib[1] > 3 * contrib[0]
    usual = det.normal_contribution()
    assert usual is not None and usual.shape == (2,) and usual[0] == pytest.approx(det.lik_mean_)
    assert contrib[1] / usual[1] > 3


def test_likelihood_is_gaussian_tail_of_smoothed_raw() -> None:
    det = KNNLikelihood(
        window=1,
        memory=5,
        min_neighbours=1,
        power=1.0,
        smoothing=0.5,
        learn_period=0,
        rest=0,
        quiet=0,
        half_life=1e9,
        resolution=0.0,
    )
    det.learn_many(np.array([[0.0], [0.0], [1.0], [0.0], [1.0], [0.0]]))
    mean, sd, avg = det.lik_mean_, math.sqrt(det.lik_var_), det.avg_
    # window 1: the raw score of 0.5 is its distance to the nearest past value, 0.5.
    expected_avg = avg + 0.5 * (0.5 - avg)
    p = det.tail_probabilities([[0.5]])[0]
    assert p == pytest.approx(0.5 * math.erfc((expected_avg - mean) / sd / math.sqrt(2)))


def test_quiet_on_a_clean_wave_loud_on_a_change() -> None:
    x = _wave(2000)
    det = KNNLikelihood(memory=500)
    scores = det.score_learn(x)
    assert scores[det.learn_period :].max() < 0.999
    broken = np.vstack([x, np.full((20, 1), 2.0)])  # the wave jumps up and stops
    det2 = KNNLikelihood(memory=500)
    s2 = det2.score_learn(broken)
    assert s2[2000:].max() > 0.999


def test_rest_damps_after_an_alarm_until_calm() -> None:
    x = _wave(1000)
    det = KNNLikelihood(memory=300, rest=30, quiet=10).learn_many(x)
    spike = np.full((1, 1), 5.0)
    assert det.score_many(spike)[0] > 0.999
    det.learn_many(spike)
    assert det.resting_ and det.hold_ == 30
    # During the rest even another spike stays at rest_score (0.99).
    a = det.score_many(np.full((1, 1), 5.0))[0]
    b = det.score_many(np.full((1, 1), 50.0))[0]
    assert a == b == det.rest_score
    det.learn_many(x[:20])  # back to the wave, still resting
    assert det.resting_ and 0 < det.hold_ < 30
    probe = np.array([[0.0], [0.5], [5.0]])
    np.testing.assert_allclose(
        det.score_many(probe), np.minimum(1 - det.tail_probabilities(probe), det.rest_score)
    )
    det.learn_many(x[20:30])
    assert det.hold_ == 0
    # The rest ends once `quiet` calm readings in a row have passed.
    for row in x[30:200]:
        if not det.resting_:
            break
        det.learn_one(row)
    assert not det.resting_ and det.quiet_ >= 10
    assert det.score_many(np.full((1, 1), 50.0))[0] > 0.999


def test_rest_lasts_while_the_anomaly_does() -> None:
    x = _wave(1000)
    det = KNNLikelihood(memory=300, rest=20, quiet=10).learn_many(x)
    det.learn_many(np.full((1, 1), 5.0))
    assert det.resting_
    # A long anomaly (noise far off the wave) keeps the episode open past `rest`.
    rng = np.random.default_rng(1)
    det.learn_many(3.0 + rng.normal(size=(60, 1)))
    assert det.hold_ == 0 and det.resting_


def test_never_exactly_one() -> None:
    det = KNNLikelihood(memory=100, learn_period=20).learn_many(np.zeros((200, 1)))
    s = det.score_many([[1e300], [1e6]])
    assert (s < 1.0).all() and (s >= 1.0 - 1e-12).all()


def test_score_learn_equals_score_then_learn_one_by_one() -> None:
    x = _wave(400, seed=3)
    a = KNNLikelihood(memory=100, learn_period=50).score_learn(x)
    det = KNNLikelihood(memory=100, learn_period=50).learn_many(x[:1])
    b = [0.0]
    for row in x[1:]:
        b.append(det.score_one(row))
        det.learn_one(row)
    np.testing.assert_allclose(a, b)


def test_json_round_trip_keeps_the_stream_going() -> None:
    x = _wave(700, seed=1)
    det = KNNLikelihood(memory=200, learn_period=50).learn_many(x[:600])
    restored = KNNLikelihood.from_state(json.loads(json.dumps(det.to_state())))
    np.testing.assert_array_equal(restored.score_learn(x[600:]), det.score_learn(x[600:]))


def test_multichannel_windows() -> None:
    rng = np.random.default_rng(0)
    X = np.column_stack([_wave(800)[:, 0], 0.1 * rng.normal(size=800)])
    det = KNNLikelihood(memory=300).learn_many(X)
    normal = det.score_many(X[-5:]).max()
    odd = det.score_many([[0.0, 5.0]])[0]
    assert normal < 0.99 < odd


def test_bad_params() -> None:
    with pytest.raises(ValueError):
        KNNLikelihood(window=0).learn_many(np.zeros((5, 1)))
    with pytest.raises(ValueError):
        KNNLikelihood(alarm=2.0).learn_many(np.zeros((5, 1)))
    with pytest.raises(ValueError):
        KNNLikelihood(alarm=0.01, rest_score=0.995).learn_many(np.zeros((5, 1)))


def test_as_is_ensemble_passes_the_score_through_and_round_trips() -> None:
    from detectors.ensemble import Ensemble

    x = _wave(500, seed=2)
    ens = Ensemble(
        members=[
            {"detector": KNNLikelihood(memory=100, learn_period=50), "columns": [0], "name": "knn"}
        ],
        method="max",
        calibration={"kind": "as_is"},
    )
    alone = KNNLikelihood(memory=100, learn_period=50)
    ens.learn_many(x[:1])
    alone.learn_many(x[:1])
    for row in x[1:]:
        raw, calibrated, combined = ens.score_parts(row[None])
        assert combined[0] == calibrated[0, 0] == raw[0, 0] == alone.score_one(row)
        ens.learn_many(row[None], raw_scores=raw)
        alone.learn_one(row)
    restored = Ensemble.from_state(json.loads(json.dumps(ens.to_state())))
    probe = np.array([[0.3], [4.0]])
    np.testing.assert_array_equal(restored.score_many(probe), ens.score_many(probe))


def _daily_series(seed: int, n: int, spike: slice) -> tuple[np.ndarray, list]:
    """A 5-minute sensor with a daily wave, noise and a spike: values and Kafka records."""
    from streams.scoring import RawRecord

    rng = np.random.default_rng(seed)
    values = 50 + 10 * np.sin(2 * np.pi * np.arange(n) / 96) + rng.normal(size=n)
    values[spike] += 40.0
    ts = 1_700_000_000 + 300.0 * np.arange(n)
    records = [
        RawRecord(
            b"s1",
            json.dumps({"sensor_id": "s1", "timestamp": float(t), "value": float(v)}).encode(),
            "sensors",
            0,
            i,
        )
        for i, (t, v) in enumerate(zip(ts, values, strict=True))
    ]
    return values, records


def test_stream_path_gives_the_detectors_own_scores_event_by_event() -> None:
    """score_sensor_batch, with a level-preserving pipeline and an 'as_is' ensemble,
    publishes exactly what the detector alone gives on the raw values."""
    from detectors.ensemble import Ensemble
    from streams.scoring import (
        AlertPolicy,
        SensorModelConfig,
        SensorScorer,
        score_sensor_batch,
    )
    from windowing.sensor import SensorFeaturePipeline

    n = 700
    values, records = _daily_series(7, n, spike=slice(500, 505))
    params = {"memory": 200, "learn_period": 100}
    config = SensorModelConfig(detector="knn_likelihood", chunk=1)
    features = SensorFeaturePipeline("s1", cadence=300, difference=False, scaler_method="none")
    ensemble = Ensemble(
        members=[{"detector": KNNLikelihood(**params), "columns": [0], "name": "knn_likelihood"}],
        method="max",
        calibration={"kind": "as_is"},
    )
    scorers = {"s1": SensorScorer("s1", config, features=features, detector=ensemble)}
    stream = np.full(n, np.nan)
    for lo in range(0, n, 64):
        out = score_sensor_batch(records[lo : lo + 64], scorers, AlertPolicy(), config)
        for ev in out.scored:
            stream[ev.record.offset] = ev.score
    direct = KNNLikelihood(**params).score_learn(values.reshape(-1, 1))
    np.testing.assert_allclose(stream, direct, rtol=0, atol=1e-12)
    assert direct[500:505].max() > 0.9995


def test_the_stream_s_own_wiring_of_knn_likelihood_is_the_detector_alone() -> None:
    """Selected by name (ANOMSTREAM_SENSOR_DETECTOR__DETECTOR=knn_likelihood), the sensor
    agent builds the level-preserving pipeline, the as-is ensemble and reading-by-reading
    learning itself, and alerts at the detector's alarm level."""
    from streams.scoring import (
        SensorModelConfig,
        score_sensor_batch,
        sensor_alert_policy,
    )
    from streams.settings import Settings

    n = 2400
    values, records = _daily_series(8, n, spike=slice(2000, 2004))
    settings = Settings(sensor_detector={"detector": "knn_likelihood"})
    policy = sensor_alert_policy(settings)
    assert policy.threshold == pytest.approx(0.9995)
    assert sensor_alert_policy(Settings()).threshold == pytest.approx(0.9995)  # the default
    ensemble = Settings(sensor_detector={"detector": "default_ensemble"})
    assert sensor_alert_policy(ensemble).threshold == 0.99999
    assert sensor_alert_policy(Settings(alerts={"threshold": 0.9})).threshold == 0.9
    config = SensorModelConfig(detector="knn_likelihood")
    scorers: dict = {}
    stream = np.full(n, np.nan)
    alerts = []
    for lo in range(0, n, 500):
        out = score_sensor_batch(records[lo : lo + 500], scorers, policy, config)
        for ev in out.scored:
            stream[ev.record.offset] = ev.score
            if ev.alert is not None:
                alerts.append(ev.record.offset)
    direct = KNNLikelihood().score_learn(values.reshape(-1, 1))
    np.testing.assert_allclose(stream, direct, rtol=0, atol=1e-12)
    assert scorers["s1"].features.to_state()["config"]["difference"] is False
    assert any(2000 <= a <= 2010 for a in alerts), alerts


def test_each_channel_of_a_sensor_gets_its_own_knn_member() -> None:
    from streams.scoring import SensorModelConfig, make_sensor_detector

    names = ["value_z", "rh_z", "hour_sin", "hour_cos", "dow_sin", "dow_cos"]
    ens = make_sensor_detector(SensorModelConfig(detector="knn_likelihood"), names)
    assert [(m["name"], m["columns"]) for m in ens.members] == [
        ("knn_likelihood", [0]),
        ("knn_likelihood[rh_z]", [1]),
    ]
    assert ens.method == "min_p"
