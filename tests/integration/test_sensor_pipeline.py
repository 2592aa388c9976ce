"""One stream, end to end, on the real broker and server: Kafka in, Kafka + InfluxDB out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from typing import Any

import numpy as np
import pytest
from kafka import KafkaProducer

from streams.observe import influx_query, read_topic, wait_for_lag_zero
from streams.scoring import stable_alert_id
from streams.settings import Settings

pytestmark = pytest.mark.integration

START = 1_760_000_000.0
MALFORMED = {
    b"{not json": "not_json",
    b'{"sensor_id": "x", "value": 1.0}': "missing_field",
    b'{"sensor_id": "x", "timestamp": 0, "value": NaN}': "not_finite",
    b'{"sensor_id": "x", "timestamp": 0, "value": "hot"}': "wrong_type",
}


def produce_readings(settings: Settings, uid: str) -> dict[str, Any]:
    """Three sensors, 240 readings each (the default detector speaks after 150), one spike on
    the second; malformed records between."""
    rng = np.random.default_rng(3)
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, acks="all")
    good: list[dict[str, Any]] = []
    bad: list[tuple[bytes, int, int]] = []
    sensors = [f"t{i}-{uid}" for i in range(3)]
    spike = (sensors[1], START + 200 * 60)
    for k in range(240):
        for sid in sensors:
            ts = START + k * 60
            value = round(20 + np.sin(k / 20) + rng.normal(0, 0.05), 4)
            if (sid, ts) == spike:
                value += 6.0
            good.append({"sensor_id": sid, "timestamp": ts, "value": value})
            producer.send(
                settings.topics.sensors, key=sid.encode(), value=json.dumps(good[-1]).encode()
            )
        if k % 60 == 10:
            for raw in MALFORMED:
                md = producer.send(settings.topics.sensors, key=b"x", value=raw).get(timeout=30)
                bad.append((raw, md.partition, md.offset))
    producer.flush()
    producer.close()
    return {"good": good, "bad": bad, "sensors": sensors, "spike": spike}


def influx_points(
    settings: Settings, measurement: str, field: str, entities: list[str]
) -> list[dict]:
    ents = " or ".join(f'r.entity == "{e}"' for e in entities)
    return influx_query(
        settings,
        f'''
from(bucket: "{settings.influx.bucket}")
  |> range(start: {int(START) - 60}, stop: {int(START) + 86400})
  |> filter(fn: (r) => r._measurement == "{measurement}" and r._field == "{field}")
  |> filter(fn: (r) => {ents})''',
    )


def test_sensor_events_reach_scores_alerts_deadletter_and_influx(pipeline: Any) -> None:
    s = pipeline.settings
    sent = produce_readings(s, pipeline.uid)
    worker = pipeline.start_worker()
    lag = wait_for_lag_zero(s, s.worker.app_id, s.topics.sensors, timeout_s=180)
    assert lag == 0, pipeline.worker_log()
    assert worker.poll() is None, "worker died on malformed input:\n" + pipeline.worker_log()

    # Dead letters: every malformed record, with its reason and its exact source position.
    dead = [r.json() for r in read_topic(s, s.topics.deadletter)]
    assert Counter(d["reason"] for d in dead) == Counter(
        {reason: 4 for reason in MALFORMED.values()}
    )
    assert {(d["partition"], d["offset"]) for d in dead} == {(p, o) for _, p, o in sent["bad"]}
    assert all(d["source_topic"] == s.topics.sensors for d in dead)

    # Scores: one per good event, carrying the input value back.
    scores = [r.json() for r in read_topic(s, s.topics.scores)]
    assert len(scores) == len(sent["good"]) == 720
    by_key = {(sc["entity"], sc["timestamp"]): sc for sc in scores}
    for g in sent["good"]:
        assert by_key[(g["sensor_id"], g["timestamp"])]["value"] == g["value"]
    anomalous = sorted((sc["entity"], sc["timestamp"]) for sc in scores if sc["is_anomaly"])
    spike_entity, spike_ts = sent["spike"]
    # One anomalous reading, the spike's, or a few readings into it (the default detector
    # judges a short average of novelty); one alarm per episode, nothing else.
    assert len(anomalous) == 1
    entity, first = anomalous[0]
    assert entity == spike_entity and spike_ts <= first <= spike_ts + 4 * 60
    assert set(scores[0]["features"]) == {"value", "hour_sin", "hour_cos", "dow_sin", "dow_cos"}
    # The default detector reads the level: no differencing, by configuration.
    assert {sc["context"]["stationarity"] for sc in scores} == {"configured"}
    assert not any(sc["context"]["differenced"] for sc in scores)

    # Alerts: one per episode, with a replay-stable id.
    alerts = [r.json() for r in read_topic(s, s.topics.alerts)]
    assert len(alerts) == 1
    assert alerts[0]["entity"] == spike_entity
    assert alerts[0]["first_seen"] == first
    assert alerts[0]["alert_id"] == stable_alert_id("sensors", spike_entity, first)
    # The member that raised it, and the channel it found novel.
    assert alerts[0]["detectors"][0] == "knn_likelihood"
    assert alerts[0]["features"][0]["name"] == "value"

    # InfluxDB: a score point per good event with its tags and fields; the alert point.
    rows = influx_points(s, "score", "value", sent["sensors"])
    assert len(rows) == 720
    assert {r["detector"] for r in rows} == {"knn_likelihood"}
    assert {r["source"] for r in rows} == {"sensors"}
    got = {(r["entity"], r["_time"].timestamp()): r["_value"] for r in rows}
    for g in sent["good"]:
        assert got[(g["sensor_id"], g["timestamp"])] == pytest.approx(g["value"])
    flags = influx_points(s, "score", "is_anomaly", sent["sensors"])
    assert sum(bool(r["_value"]) for r in flags) == len(anomalous)
    arows = influx_points(s, "alert", "alert_id", [spike_entity])
    assert [r["_value"] for r in arows] == [alerts[0]["alert_id"]]

    # Replay with a new consumer group: same points overwritten, same alert id again.
    pipeline.stop()
    replay_group = s.worker.app_id + "-replay"
    pipeline.start_worker(ANOMSTREAM_WORKER__APP_ID=replay_group)
    assert wait_for_lag_zero(s, replay_group, s.topics.sensors, timeout_s=180) == 0
    assert len(influx_points(s, "score", "value", sent["sensors"])) == 720
    alerts_after = [r.json() for r in read_topic(s, s.topics.alerts)]
    assert [a["alert_id"] for a in alerts_after] == [alerts[0]["alert_id"]] * 2


def test_restarted_worker_resumes_state_from_table(pipeline: Any) -> None:
    """Stop after part of a series; a new worker process continues with the same state."""
    s = pipeline.settings
    producer = KafkaProducer(bootstrap_servers=s.kafka.bootstrap_servers, acks="all")
    sid = f"r-{pipeline.uid}"

    def send(k0: int, k1: int) -> None:
        for k in range(k0, k1):
            v = 10.0 + 0.01 * (k % 7)
            producer.send(
                s.topics.sensors,
                key=sid.encode(),
                value=json.dumps(
                    {"sensor_id": sid, "timestamp": START + 60 * k, "value": v}
                ).encode(),
            )
        producer.flush()

    send(0, 70)
    pipeline.start_worker()
    assert wait_for_lag_zero(s, s.worker.app_id, s.topics.sensors, timeout_s=180) == 0
    pipeline.stop()
    send(70, 80)
    pipeline.start_worker()
    assert wait_for_lag_zero(s, s.worker.app_id, s.topics.sensors, timeout_s=180) == 0
    scores = [r.json() for r in read_topic(s, s.topics.scores)]
    # At-least-once: every event scored; a replay after the restart may repeat a score,
    # but a repeat must be identical.
    by_event: dict[float, list[dict]] = {}
    for sc in scores:
        by_event.setdefault(sc["timestamp"], []).append(sc)
    assert sorted(by_event) == [START + 60 * k for k in range(80)]
    for repeats in by_event.values():
        assert all(r["raw_score"] == repeats[0]["raw_score"] for r in repeats)
    scores = [v[0] for _, v in sorted(by_event.items())]
    resumed = [sc for sc in scores if sc["timestamp"] >= START + 60 * 70]
    # Warm state came back from the changelog: the first resumed event is already past the
    # 60-reading warm-up, and no gap was seen (a fresh scorer would be cold).
    assert resumed[0]["context"]["warm"] is True
    assert resumed[0]["context"]["gap"] is False


def test_status_reports_versions_and_up_is_a_no_op(stack: Any) -> None:
    env = {**os.environ, **stack.env}
    out = subprocess.run(
        [sys.executable, "-m", "streams.cli", "status"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "4.1.2" in out.stdout and "v2.8.0" in out.stdout
    again = subprocess.run(
        [sys.executable, "-m", "streams.cli", "up"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("already running") == 2
