"""The retraining loop on the real stack: trainer process → registry → running worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest
from kafka import KafkaProducer

from streams.observe import read_topic, wait_for_lag_zero
from streams.simulator import ConnectionSimulator
from tests.integration.conftest import model_versions

pytestmark = pytest.mark.integration


def test_retrain_on_command_is_trained_promoted_and_served_without_a_restart(
    pipeline: Any,
) -> None:
    s = pipeline.settings
    name = f"connections-{pipeline.uid}"
    env = {
        **os.environ,
        **pipeline.env,
        "ANOMSTREAM_CONNECTION_DETECTOR__REGISTERED_MODEL": name,
        "ANOMSTREAM_CONNECTION_DETECTOR__BOOTSTRAP_EVENTS": "200",
        "ANOMSTREAM_RETRAIN__EVERY_EVENTS": "0",
        "ANOMSTREAM_RETRAIN__MIN_ROWS": "1000",
        "ANOMSTREAM_WORKER__LOGLEVEL": "INFO",
    }
    pipeline.start_worker(**{k: v for k, v in env.items() if k.startswith("ANOMSTREAM_")})
    trainer_log = open(pipeline.tmp / "trainer.log", "wb")  # noqa: SIM115
    trainer = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "trainer"], env=env, stdout=trainer_log,
        stderr=subprocess.STDOUT, start_new_session=True,
    )
    pipeline.workers.append(trainer)  # stopped with the workers

    sim = ConnectionSimulator(start=time.time() - 120, seed=4, rate=100.0, attack_rate=0.0)
    events = [e for e, _ in sim.events(3000)]
    producer = KafkaProducer(bootstrap_servers=s.kafka.bootstrap_servers, acks="all")

    def send(lo: int, hi: int) -> None:
        for ev in events[lo:hi]:
            producer.send(
                s.topics.connections, key=ev["dst_host"].encode(), value=json.dumps(ev).encode()
            )
        producer.flush()
        assert wait_for_lag_zero(s, s.worker.app_id, s.topics.connections, timeout_s=180) == 0

    def model_events() -> list[dict]:
        return [r.json() for r in read_topic(s, s.topics.model_events)]

    send(0, 2000)
    # The trainer has read the score records once its group has no lag on them.
    assert wait_for_lag_zero(s, f"{s.worker.app_id}-trainer", s.topics.scores, 120) == 0
    done = subprocess.run([sys.executable, "-m", "streams.cli", "retrain", name], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    deadline = time.monotonic() + 180
    while not any(e.get("event") == "promoted" for e in model_events()):
        assert time.monotonic() < deadline, (pipeline.tmp / "trainer.log").read_text()
        time.sleep(1)
    evs = [e for e in model_events() if e.get("model") == name]
    kinds = [e["event"] for e in evs]
    assert kinds[:4] == ["retrain_requested", "started", "finished", "promoted"]
    finished = evs[2]
    assert finished["reason"] == "command" and finished["train_rows"] >= 1000
    version = finished["served_version"]
    # The worker swaps to it between batches.
    deadline = time.monotonic() + 90
    while pipeline.worker_log().count('"model_swapped"') < 2:
        assert time.monotonic() < deadline, pipeline.worker_log()
        time.sleep(0.5)
    send(2000, 3000)
    producer.close()

    # Every connection has exactly one score record, whatever was swapped when.
    used = model_versions(s, events)
    assert set(used[:2000]) <= {"bootstrap", "online"}
    assert set(used[2000:]) == {version}
