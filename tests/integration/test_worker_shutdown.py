"""A worker stuck behind an unreachable InfluxDB still stops on SIGTERM within its
deadline, loses nothing, and its log is plain text (real Kafka + InfluxDB)."""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import pytest
from kafka import KafkaProducer

from streams.observe import read_topic, wait_for_lag_zero

from .conftest import free_port

pytestmark = pytest.mark.integration

START = 1_760_000_000.0


def test_sigterm_stops_a_stuck_worker_within_its_deadline_and_nothing_is_lost(
    pipeline: Any,
) -> None:
    s = pipeline.settings
    producer = KafkaProducer(bootstrap_servers=s.kafka.bootstrap_servers, acks="all")
    sid = f"stuck-{pipeline.uid}"
    for k in range(50):
        body = {"sensor_id": sid, "timestamp": START + 60 * k, "value": 20.0 + k % 3}
        producer.send(s.topics.sensors, key=sid.encode(), value=json.dumps(body).encode())
    producer.flush()
    producer.close()

    # Nothing listens on this port: every InfluxDB write fails (connection refused), a
    # transient failure the sink retries, so the agent blocks on its first batch.
    stuck = pipeline.start_worker(
        ANOMSTREAM_INFLUX__PORT=str(free_port()), ANOMSTREAM_WORKER__SHUTDOWN_TIMEOUT_S="5"
    )
    deadline = time.monotonic() + 120
    while "influx_write_failed" not in pipeline.worker_log(0) and time.monotonic() < deadline:
        time.sleep(1)
    assert "influx_write_failed" in pipeline.worker_log(0), pipeline.worker_log(0)[-3000:]
    assert stuck.poll() is None

    os.killpg(stuck.pid, signal.SIGTERM)
    took = time.monotonic()
    stuck.wait(timeout=60)  # the deadline is 5 s; this only guards against a hang
    print(f"\nstuck worker stopped {time.monotonic() - took:.1f} s after SIGTERM, "
          f"exit status {stuck.returncode}")
    log = pipeline.worker_log(0)
    assert "shutdown_started" in log
    assert "\x1b[" not in log, "terminal escape codes in a log file"
    # Offsets were never committed for the stuck batch.
    assert not list(read_topic(s, s.topics.scores, timeout_s=5))

    # The next worker (InfluxDB reachable) processes every reading: nothing was lost.
    pipeline.start_worker()
    assert wait_for_lag_zero(s, s.worker.app_id, s.topics.sensors, timeout_s=180) == 0, (
        pipeline.worker_log(1)[-3000:]
    )
    scores = [r.json() for r in read_topic(s, s.topics.scores)]
    assert sorted(sc["timestamp"] for sc in scores) == [START + 60 * k for k in range(50)]
