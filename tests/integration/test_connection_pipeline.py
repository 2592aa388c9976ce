"""The connection agent on the real broker and server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from kafka import KafkaProducer

from retrain.served import ServedConnectionModel, train_connection_model
from streams.observe import influx_query, read_topic, wait_for_lag_zero
from streams.simulator import ConnectionSimulator

pytestmark = pytest.mark.integration


def test_connections_are_featurised_scored_and_written(pipeline: Any) -> None:
    s = pipeline.settings
    start = time.time() - 60
    sim = ConnectionSimulator(start=start, seed=4, rate=100.0, attack_rate=0.0)
    events = [e for e, _ in sim.events(1200)]
    producer = KafkaProducer(bootstrap_servers=s.kafka.bootstrap_servers, acks="all")
    for ev in events:
        producer.send(
            s.topics.connections, key=ev["dst_host"].encode(), value=json.dumps(ev).encode()
        )
    producer.send(s.topics.connections, key=b"x", value=b"not json")
    producer.send(
        s.topics.connections, key=b"x", value=json.dumps({**events[0], "src_bytes": -1}).encode()
    )
    producer.flush()
    producer.close()

    pipeline.start_worker(ANOMSTREAM_CONNECTION_DETECTOR__BOOTSTRAP_EVENTS="200")
    assert wait_for_lag_zero(s, s.worker.app_id, s.topics.connections, timeout_s=180) == 0, (
        pipeline.worker_log()
    )

    dead = [r.json() for r in read_topic(s, s.topics.deadletter)]
    assert Counter(d["reason"] for d in dead) == {"not_json": 1, "out_of_range": 1}

    scores = [r.json() for r in read_topic(s, s.topics.scores)]
    assert len(scores) == len(events)
    assert {sc["source"] for sc in scores} == {"connections"}
    by_version = Counter(sc["model_version"] for sc in scores)
    # Each of the 2 partitions bootstraps on its first 200 connections, then scores.
    assert by_version["bootstrap"] == 400
    assert by_version["online"] == len(events) - 400
    online = [sc for sc in scores if sc["model_version"] == "online"]
    assert all(0.0 <= sc["score"] <= 1.0 for sc in online)
    assert "count" in online[0]["features"] and "dst_host_srv_count" in online[0]["features"]
    assert {sc["entity"] for sc in scores} == {ev["dst_host"] for ev in events}

    rows = influx_query(
        s,
        f'''
from(bucket: "{s.influx.bucket}")
  |> range(start: {int(start) - 60}, stop: {int(time.time()) + 3600})
  |> filter(fn: (r) => r._measurement == "score" and r._field == "score")
  |> filter(fn: (r) => r.source == "connections")''',
    )
    mine = {(r["entity"], round(r["_time"].timestamp(), 6)) for r in rows}
    expected = {(ev["dst_host"], round(ev["timestamp"], 6)) for ev in events}
    assert expected <= mine


def test_a_trained_model_serves_alongside_the_online_members(pipeline: Any) -> None:
    s = pipeline.settings
    folder = pipeline.tmp / "model"
    # `anomstream train`, as an operator runs it.
    trained = subprocess.run(
        [sys.executable, "-m", "streams.cli", "train", "--simulated", "3000", "--out",
         str(folder)],
        env={**os.environ, **pipeline.env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert trained.returncode == 0, trained.stdout + trained.stderr
    version = ServedConnectionModel.load(folder).version
    assert f"MODEL_PATH={folder}" in trained.stdout

    start = time.time() - 60
    sim = ConnectionSimulator(start=start, seed=4, rate=100.0, attack_rate=0.01, warmup=600)
    events = [e for e, _ in sim.events(1500)]
    producer = KafkaProducer(bootstrap_servers=s.kafka.bootstrap_servers, acks="all")
    for ev in events:
        producer.send(
            s.topics.connections, key=ev["dst_host"].encode(), value=json.dumps(ev).encode()
        )
    producer.flush()
    producer.close()

    pipeline.start_worker(
        ANOMSTREAM_CONNECTION_DETECTOR__BOOTSTRAP_EVENTS="200",
        ANOMSTREAM_CONNECTION_DETECTOR__MODEL_PATH=str(folder),
    )
    assert wait_for_lag_zero(s, s.worker.app_id, s.topics.connections, timeout_s=180) == 0, (
        pipeline.worker_log()
    )
    scores = [r.json() for r in read_topic(s, s.topics.scores)]
    assert len(scores) == len(events)
    by_version = Counter(sc["model_version"] for sc in scores)
    # Every connection past the bootstrap is scored with the model, and says which one.
    assert by_version == {"bootstrap": 400, version: len(events) - 400}
    served = [sc for sc in scores if sc["model_version"] == version]
    # `train`'s default: a classifier over the simulator's attack kinds.
    assert all("model:open_set_classifier" in sc["context"]["members"] for sc in served)
    alerts = [r.json() for r in read_topic(s, s.topics.alerts)]
    assert alerts and all(a["source"] == "connections" for a in alerts)


def test_a_worker_refuses_to_start_on_a_tampered_model(pipeline: Any, tmp_path: Path) -> None:
    sim = ConnectionSimulator(start=time.time(), seed=2, rate=100.0, attack_rate=0.0)
    rows = [e for e, _ in sim.events(800)]
    model = train_connection_model(pd.DataFrame(rows).assign(label="normal"), "marginal_tail")
    model.save(tmp_path / "m")
    state = tmp_path / "m" / "state.json"
    state.write_bytes(state.read_bytes().replace(b"0", b"1", 1))
    proc = subprocess.run(
        [sys.executable, "-m", "streams.cli", "worker"],
        env={
            **os.environ,
            **pipeline.env,
            "ANOMSTREAM_CONNECTION_DETECTOR__MODEL_PATH": str(tmp_path / "m"),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "worker not started" in proc.stderr and "sha256" in proc.stderr
