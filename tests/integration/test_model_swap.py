"""A running worker switches connection models when the registry's champion moves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest
from kafka import KafkaProducer

from retrain.served import ServedConnectionModel
from streams.observe import wait_for_lag_zero
from streams.simulator import ConnectionSimulator
from tests.integration.conftest import model_versions

pytestmark = pytest.mark.integration


def test_promote_and_rollback_swap_the_served_model_between_batches(pipeline: Any) -> None:
    s = pipeline.settings
    name = f"connections-{pipeline.uid}"
    env = {**os.environ, **pipeline.env}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "streams.cli", *args],
            env=env, capture_output=True, text=True, timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    # Two candidate models, trained and registered as an operator does.
    for seed in (0, 1):
        cli("train", "--simulated", "3000", "--seed", str(seed), "--register",
            "--model-name", name, "--out", str(pipeline.tmp / f"m{seed}"))
    v1, v2 = (ServedConnectionModel.load(pipeline.tmp / f"m{i}").version for i in (0, 1))
    assert v1 != v2

    sim = ConnectionSimulator(start=time.time() - 120, seed=4, rate=100.0, attack_rate=0.0)
    events = [e for e, _ in sim.events(2000)]
    producer = KafkaProducer(bootstrap_servers=s.kafka.bootstrap_servers, acks="all")
    log_path = pipeline.tmp / "worker-0.log"

    def send(lo: int, hi: int) -> None:
        for ev in events[lo:hi]:
            producer.send(
                s.topics.connections, key=ev["dst_host"].encode(), value=json.dumps(ev).encode()
            )
        producer.flush()
        assert wait_for_lag_zero(s, s.worker.app_id, s.topics.connections, timeout_s=180) == 0

    def swapped(n: int) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if log_path.read_text(errors="replace").count('"model_swapped"') >= n:
                return
            time.sleep(0.5)
        raise AssertionError("no model swap:\n" + pipeline.worker_log())

    pipeline.start_worker(
        ANOMSTREAM_CONNECTION_DETECTOR__BOOTSTRAP_EVENTS="200",
        ANOMSTREAM_CONNECTION_DETECTOR__REGISTERED_MODEL=name,
        ANOMSTREAM_WORKER__LOGLEVEL="INFO",  # model_swapped lines are info
    )
    send(0, 800)  # no champion yet: the online members alone
    swapped(1)  # the start-up check found none
    cli("models", "promote", name, "1")
    swapped(2)
    send(800, 1200)
    cli("models", "promote", name, "2", "--force")
    swapped(3)
    send(1200, 1600)
    cli("models", "rollback", name)
    swapped(4)
    send(1600, 2000)
    producer.close()

    # Every connection has exactly one score record, whatever was swapped when.
    used = model_versions(s, events)
    assert set(used[:800]) <= {"bootstrap", "online"}
    assert set(used[800:1200]) == {v1}
    assert set(used[1200:1600]) == {v2}
    assert set(used[1600:]) == {v1}  # rolled back
