"""The sensor agent's logic, without a broker: validation, scoring, episodes, state."""

from __future__ import annotations

import base64
import itertools
import json

import numpy as np
import pytest

from streams.scoring import (
    SELF_JUDGING,
    AlertPolicy,
    RawRecord,
    SensorModelConfig,
    SensorScorer,
    score_sensor_batch,
    stable_alert_id,
)
from streams.simulator import SensorSimulator

#: The previous default: robust z of the stationary value + seasonal profile.
ENSEMBLE = SensorModelConfig(detector="default_ensemble")
#: The default detector and the alert threshold it is designed for (its alarm level).
DEFAULT = SensorModelConfig()
DEFAULT_THRESHOLD = SELF_JUDGING[DEFAULT.detector]
BOTH = [(DEFAULT, DEFAULT_THRESHOLD), (ENSEMBLE, 0.99999)]


def _rec(obj: object, offset: int, key: bytes | None = b"s1") -> RawRecord:
    value = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return RawRecord(key=key, value=value, topic="sensors", partition=0, offset=offset)


def _series(values: list[float], sensor: str = "s1", start: float = 1.7e9) -> list[RawRecord]:
    return [
        _rec({"sensor_id": sensor, "timestamp": start + 60 * i, "value": v}, i)
        for i, v in enumerate(values)
    ]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "not_json"),
        (b"[1, 2]", "not_object"),
        (b'{"sensor_id": "s1", "value": 1.0}', "missing_field"),
        (b'{"sensor_id": "s1", "timestamp": 0, "value": NaN}', "not_finite"),
        (b'{"sensor_id": "s1", "timestamp": 0, "value": "hot"}', "wrong_type"),
        (b'{"sensor_id": "s1", "timestamp": "soon", "value": 1}', "bad_timestamp"),
        (b'{"sensor_id": "s1", "timestamp": 4000000000, "value": 1}', "future_timestamp"),
        (b'{"sensor_id": "s1", "timestamp": 99999999999, "value": 1}', "bad_timestamp"),
    ],
)
def test_bad_records_become_dead_letters_with_reason(raw: bytes, reason: str) -> None:
    good = _series([1.0, 2.0])
    bad = RawRecord(b"s1", raw, "sensors", 3, 42)
    result = score_sensor_batch([good[0], bad, good[1]], {}, AlertPolicy())
    scored, dead = result.scored, result.dead
    assert [d.reason for d in dead] == [reason]
    letter = dead[0].to_json()
    assert letter["source_topic"] == "sensors"
    assert (letter["partition"], letter["offset"]) == (3, 42)
    assert base64.b64decode(letter["raw_base64"]) == raw
    assert (letter["raw_length"], letter["raw_truncated"]) == (len(raw), False)
    # The records around the bad one are still scored: the batch goes on.
    assert [e.record.offset for e in scored] == [0, 1]


def test_tombstone_is_a_dead_letter_not_a_crash() -> None:
    rec = RawRecord(b"s1", None, "sensors", 0, 7)
    result = score_sensor_batch([rec], {}, AlertPolicy())
    scored, dead = result.scored, result.dead
    assert scored == []
    assert dead[0].reason == "empty"


def _batched(
    recs: list[RawRecord],
    scorers: dict,
    policy: AlertPolicy,
    size: int = 50,
    config: SensorModelConfig | None = None,
) -> list:
    out = []
    for i in range(0, len(recs), size):
        result = score_sensor_batch(recs[i : i + size], scorers, policy, config)
        scored, dead = result.scored, result.dead
        assert dead == []
        out += scored
    return out


def test_spike_after_warmup_alerts_once_per_episode() -> None:
    rng = np.random.default_rng(0)
    values = list(20 + rng.normal(0, 0.1, 400))
    values[300] += 5.0  # spike: the difference jumps up, then down
    scored = _batched(_series(values), {}, AlertPolicy(cooldown_events=5), config=ENSEMBLE)
    anomalous = [i for i, e in enumerate(scored) if e.is_anomaly]
    assert 300 in anomalous and set(anomalous) <= {300, 301}
    alerts = [e.alert for e in scored if e.alert is not None]
    assert len(alerts) == 1
    assert alerts[0]["entity"] == "s1"
    assert alerts[0]["first_seen"] == pytest.approx(1.7e9 + 60 * 300)
    assert alerts[0]["features"][0]["name"] == "value_z"
    assert alerts[0]["features"][0]["value"] > 10
    # Which member raised it, and every score record says how sure each member was.
    assert alerts[0]["detectors"] == ["zscore"]
    spike = scored[300]
    assert set(spike.context["members"]) == {"zscore", "seasonal"}
    assert spike.context["members"]["zscore"] > 5  # rarer than 1 in 100,000
    # White noise around a level: the test decided to leave it alone (no differencing).
    assert alerts[0]["stationarity"] != "pending"
    assert alerts[0]["differenced"] is False


def test_default_detector_alerts_once_on_a_spike_and_names_the_value() -> None:
    rng = np.random.default_rng(0)
    values = list(20 + rng.normal(0, 0.1, 600))
    values[400] += 5.0
    policy = AlertPolicy(threshold=DEFAULT_THRESHOLD)
    scored = _batched(_series(values), {}, policy)
    alerts = [(i, e.alert) for i, e in enumerate(scored) if e.alert is not None]
    assert len(alerts) == 1
    at, alert = alerts[0]
    assert 400 <= at <= 404  # the likelihood judges a short average: a few readings late
    assert alert["detectors"] == ["knn_likelihood"]
    top = alert["features"][0]
    # The level itself, and how much more novel its window is than usual.
    assert top["name"] == "value" and top["value"] == pytest.approx(values[at])
    assert top["ratio_to_normal"] > 3
    # Its own tail probability, never rounded to 1.0; one alarm for the episode.
    assert all(e.score < 1.0 for e in scored)
    assert [i for i, e in enumerate(scored) if e.is_anomaly] == [at]
    assert scored[-1].detector == "knn_likelihood"
    assert set(scored[-1].features) == {"value", "hour_sin", "hour_cos", "dow_sin", "dow_cos"}


def test_score_records_carry_features_and_stationarity() -> None:
    rng = np.random.default_rng(5)
    values = list(20 + np.cumsum(rng.normal(0, 1, 300)))
    scored = _batched(_series(values), {}, AlertPolicy(), config=ENSEMBLE)
    last = scored[-1]
    assert set(last.features) == {"value_z", "hour_sin", "hour_cos", "dow_sin", "dow_cos"}
    # A random walk: after the warm-up the test says "difference".
    assert last.context["stationarity"] == "unit_root"
    assert last.context["differenced"] is True
    assert scored[0].context["stationarity"] == "pending"


def test_no_alert_during_warmup() -> None:
    values = [20.0, 20.1, 20.0, 30.0, 20.0]
    result = score_sensor_batch(_series(values), {}, AlertPolicy(warmup=30))
    scored, _ = result.scored, result.dead
    assert not any(e.is_anomaly for e in scored)


@pytest.mark.parametrize(("config", "threshold"), BOTH)
def test_score_then_learn_no_lookahead(config: SensorModelConfig, threshold: float) -> None:
    rng = np.random.default_rng(1)
    values = list(rng.normal(0, 1, 300))
    scored_a = _batched(_series(values), {}, AlertPolicy(), config=config)
    # Changing the last reading must not change any earlier score, in its batch or before.
    values_b = [*values[:-1], 1000.0]
    scored_b = _batched(_series(values_b), {}, AlertPolicy(), config=config)
    assert [e.score for e in scored_a[:-1]] == [e.score for e in scored_b[:-1]]
    assert scored_a[-1].score < threshold < scored_b[-1].score


def test_state_round_trip_gives_identical_scores() -> None:
    rng = np.random.default_rng(2)
    recs = _series(list(rng.normal(5, 1, 120)))
    whole: dict[str, SensorScorer] = {}
    scored_whole = _batched(recs, whole, AlertPolicy(), size=60)
    first: dict[str, SensorScorer] = {}
    _batched(recs[:60], first, AlertPolicy(), size=60)
    # A worker restart: state goes through JSON (the Faust table) and back.
    restored = {
        k: SensorScorer.from_state(json.loads(json.dumps(v.to_state()))) for k, v in first.items()
    }
    scored_rest = _batched(recs[60:], restored, AlertPolicy(), size=60)
    assert [e.score for e in scored_rest] == [e.score for e in scored_whole[60:]]


@pytest.mark.parametrize("detector", ["robust_zscore", "default_ensemble", "ew_gaussian"])
def test_every_configured_detector_scores_in_unit_interval(detector: str) -> None:
    rng = np.random.default_rng(6)
    config = SensorModelConfig(detector=detector)
    scorers: dict[str, SensorScorer] = {}
    scored = _batched(_series(list(rng.normal(0, 1, 150))), scorers, AlertPolicy(), config=config)
    assert all(0.0 <= e.score <= 1.0 for e in scored)
    assert scored[-1].detector == detector
    again = SensorScorer.from_state(json.loads(json.dumps(scorers["s1"].to_state())))
    assert again.config.detector == detector


def test_out_of_order_reading_is_a_dead_letter() -> None:
    recs = _series([1.0, 2.0, 3.0])
    late = _rec({"sensor_id": "s1", "timestamp": 1.7e9 + 30, "value": 50.0}, 9)
    result = score_sensor_batch([*recs, late], {}, AlertPolicy())
    scored, dead = result.scored, result.dead
    assert [e.record.offset for e in scored] == [0, 1, 2]
    assert [d.reason for d in dead] == ["out_of_order"]
    assert dead[0].record.offset == 9


def test_alert_ids_are_stable_across_replays() -> None:
    rng = np.random.default_rng(3)
    values = list(20 + rng.normal(0, 0.1, 200))
    values[150] = 40.0
    a = _batched(_series(values), {}, AlertPolicy())
    b = _batched(_series(values), {}, AlertPolicy())
    ids_a = [e.alert["alert_id"] for e in a if e.alert]
    assert ids_a and ids_a == [e.alert["alert_id"] for e in b if e.alert]
    assert stable_alert_id("sensors", "s1", 1.0) != stable_alert_id("sensors", "s2", 1.0)


def test_zscore_member_starts_from_the_half_normal_prior() -> None:
    # Before it has a reference, the z-score member's calibration is analytic and
    # monotone: alert-ready from the first readings.
    values = list(20 + np.random.default_rng(4).normal(0, 0.1, 40))
    scorers: dict[str, SensorScorer] = {}
    _batched(_series(values), scorers, AlertPolicy(), config=ENSEMBLE)
    ens = scorers["s1"].detector
    assert ens is not None and ens.method == "min_p"
    zscore = ens.calibrators_[ens.member_names_.index("zscore")]
    assert zscore.prior == "half_normal" and not zscore.empirical
    cal = zscore.transform(np.linspace(0, 10, 50))
    assert all(b >= a for a, b in itertools.pairwise(cal))
    assert cal[0] == 0.0 and abs(cal[20] - 0.9999) < 1e-4  # z = 4.08


@pytest.mark.parametrize(
    ("config", "threshold", "late", "share"),
    [
        # The likelihood judges a short average of novelty: spikes surface a few readings in.
        (DEFAULT, DEFAULT_THRESHOLD, 5, 0.85),
        (ENSEMBLE, 0.99999, 3, 0.9),
    ],
)
def test_simulated_anomalies_are_found_with_few_false_alarms(
    config: SensorModelConfig, threshold: float, late: int, share: float
) -> None:
    sim = SensorSimulator(n_sensors=5, cadence_s=300, start=1.7e9, seed=7)
    recs = [
        RawRecord(r["sensor_id"].encode(), json.dumps(r).encode(), "sensors", 0, i)
        for i, (r, _) in enumerate(sim.readings(1500))
    ]
    scored = _batched(recs, {}, AlertPolicy(threshold=threshold), size=100, config=config)
    alerts = [e.alert for e in scored if e.alert]
    truth = sim.truth
    assert len(truth) >= 10

    def near(a: dict, t: object) -> bool:
        return a["entity"] == t.sensor_id and 0 <= a["first_seen"] - t.timestamp <= late * 300

    detected = sum(any(near(a, t) for a in alerts) for t in truth)
    false_alarms = sum(not any(near(a, t) for t in truth) for a in alerts)
    assert detected / len(truth) >= share
    assert false_alarms <= 2


def test_replayed_events_already_in_the_state_are_not_scored_again() -> None:
    rng = np.random.default_rng(4)
    recs = _series(list(rng.normal(5, 1, 40)))
    scorers: dict[str, SensorScorer] = {}
    result = score_sensor_batch(recs[:30], scorers, AlertPolicy())
    first, _ = result.scored, result.dead
    # A rebalance redelivers from the last commit (offset 20) while the state is at 29.
    result = score_sensor_batch(recs[20:40], scorers, AlertPolicy())
    again, dead = result.scored, result.dead
    assert dead == []
    assert [e.record.offset for e in again] == list(range(30, 40))
    whole: dict[str, SensorScorer] = {}
    result = score_sensor_batch(recs[:30], whole, AlertPolicy())
    ref_a, _ = result.scored, result.dead
    result = score_sensor_batch(recs[30:40], whole, AlertPolicy())
    ref_b, _ = result.scored, result.dead
    assert [e.score for e in first + again] == [e.score for e in ref_a + ref_b]


def test_extra_channels_keep_calendar_columns_in_place_for_the_ensemble() -> None:
    rng = np.random.default_rng(7)
    recs = [
        _rec(
            {
                "sensor_id": "s1",
                "timestamp": 1.7e9 + 60 * i,
                "value": float(v),
                "channels": {"humidity": float(h)},
            },
            i,
        )
        for i, (v, h) in enumerate(zip(rng.normal(20, 1, 120), rng.normal(40, 2, 120), strict=True))
    ]
    scorers: dict[str, SensorScorer] = {}
    config = SensorModelConfig(detector="default_ensemble")
    scored = _batched(recs, scorers, AlertPolicy(), config=config)
    names = list(scorers["s1"].features.names)
    assert names[:2] == ["value_z", "humidity_z"]
    # Two value channels: the ensemble runs on value columns only, no calendar misreading.
    assert all(0.0 <= e.score <= 1.0 for e in scored)


@pytest.mark.parametrize(("config", "threshold"), BOTH)
def test_flat_series_does_not_alert_on_tiny_wiggles(
    config: SensorModelConfig, threshold: float
) -> None:
    values = [20.0] * 300 + [20.0001] + [20.0] * 20
    scored = _batched(_series(values), {}, AlertPolicy(threshold=threshold), config=config)
    assert not any(e.is_anomaly for e in scored)
    # A real step on the same flat sensor is not lost under that tolerance.
    values[305:] = [20.5] * 16
    scored = _batched(_series(values), {}, AlertPolicy(threshold=threshold), config=config)
    assert any(e.is_anomaly for e in scored[305:])


def test_calibration_turns_empirical_after_enough_history() -> None:
    rng = np.random.default_rng(8)
    # Heavy-tailed noise: the Gaussian tail would call many of these "1 in a million".
    values = list(np.cumsum(rng.standard_t(3, 1500)))
    scorers: dict[str, SensorScorer] = {}
    scored = _batched(_series(values), scorers, AlertPolicy(), size=100, config=ENSEMBLE)
    ens = scorers["s1"].detector
    cal = ens.calibrators_[ens.member_names_.index("zscore")]
    assert cal.empirical and cal.count_ >= SensorModelConfig().empirical_after
    late = scored[1000:]
    # Against its own history, the sensor's heavy tails stop looking extreme.
    assert sum(e.is_anomaly for e in late) <= 3
    state = json.loads(json.dumps(scorers["s1"].to_state()))
    restored = SensorScorer.from_state(state).detector
    assert restored.calibrators_[0].count_ == cal.count_


def test_scores_do_not_depend_on_how_readings_are_cut_into_micro_batches() -> None:
    # The stream's micro-batches are whatever the consumer delivers; `evaluate` replays in
    # its own batch size. Both must give every reading the same score.
    rng = np.random.default_rng(11)
    values = list(20 + np.sin(np.arange(600) / 30) + rng.normal(0, 0.2, 600))
    values[400] += 8.0
    recs = _series(values)

    def run(size: int) -> list[tuple[int, float, bool]]:
        scorers: dict[str, SensorScorer] = {}
        out = []
        for i in range(0, len(recs), size):
            result = score_sensor_batch(recs[i : i + size], scorers, AlertPolicy(warmup=30))
            out += [(e.record.offset, e.score, e.alert is not None) for e in result.scored]
        return out

    reference = run(500)
    assert any(alert for _, _, alert in reference)
    for size in (1, 7, 13, 64):
        assert run(size) == reference


def test_a_checkpoint_inside_a_chunk_resumes_the_chunk() -> None:
    # The ensemble learns in chunks of 8 readings (the default detector reading by reading).
    recs = _series(list(20 + np.sin(np.arange(100) / 9)))
    policy = AlertPolicy(warmup=10)
    whole: dict[str, SensorScorer] = {}
    reference = score_sensor_batch(recs, whole, policy, ENSEMBLE).scored
    scorers: dict[str, SensorScorer] = {}
    first = score_sensor_batch(recs[:45], scorers, policy, ENSEMBLE).scored
    assert scorers["s1"].pending is not None and len(scorers["s1"].pending[0]) == 45 % 8
    restored = {"s1": SensorScorer.from_state(json.loads(json.dumps(scorers["s1"].to_state())))}
    second = score_sensor_batch(recs[45:], restored, policy, ENSEMBLE).scored
    assert [e.score for e in first + second] == [e.score for e in reference]
