"""A flood of new sensor ids cannot run a worker out of memory, and a restart after it
resumes every sensor from its checkpoint (real Kafka + InfluxDB, worker processes)."""

from __future__ import annotations

import json
import socket
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from streams.observe import influx_query, read_topic, wait_for_lag_zero

pytestmark = pytest.mark.integration

START = 1_760_000_000.0
N_SENSORS = 10_000
READINGS = 2
#: The documented bound (docs/operations.md): peak RSS of a worker, whatever the number of
#: sensors, with the default cap of 2,000 live sensor states.
RSS_BOUND_MB = 1_200
LIVE_CAP = 2_000


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def produce(settings: Any, uid: str, readings: range) -> int:
    producer = KafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap_servers, acks="all", linger_ms=20
    )
    n = 0
    for k in readings:
        for i in range(N_SENSORS):
            sid = f"flood-{uid}-{i}"
            body = {"sensor_id": sid, "timestamp": START + 60 * k, "value": float(i % 13 + k)}
            value = json.dumps(body).encode()
            producer.send(settings.topics.sensors, key=sid.encode(), value=value)
            n += 1
    producer.flush()
    producer.close()
    return n


def test_ten_thousand_new_sensor_ids_stay_under_the_memory_bound_and_restart(
    pipeline: Any,
) -> None:
    s = pipeline.settings
    sent = produce(s, pipeline.uid, range(READINGS))
    worker = pipeline.start_worker(ANOMSTREAM_WORKER__MAX_LIVE_ENTITIES=str(LIVE_CAP))
    lag = wait_for_lag_zero(s, s.worker.app_id, s.topics.sensors, timeout_s=900)
    assert lag == 0, pipeline.worker_log()[-5000:]
    peak = peak_rss_mb(worker.pid)
    print(f"\n{N_SENSORS} sensors x {READINGS} readings: worker peak RSS {peak:.0f} MB")
    assert peak < RSS_BOUND_MB, pipeline.worker_log()[-3000:]
    assert worker.poll() is None
    scores = list(read_topic(s, s.topics.scores, timeout_s=120))
    assert len(scores) == sent

    # Restart: a new worker process resumes every sensor's state from the tables.
    pipeline.stop()
    started = time.monotonic()
    more = produce(s, pipeline.uid, range(READINGS, READINGS + 1))
    second = pipeline.start_worker(ANOMSTREAM_WORKER__MAX_LIVE_ENTITIES=str(LIVE_CAP))
    lag = wait_for_lag_zero(s, s.worker.app_id, s.topics.sensors, timeout_s=900)
    restart_s = time.monotonic() - started
    assert lag == 0, pipeline.worker_log(1)[-5000:]
    print(f"restart + {more} readings of known sensors scored in {restart_s:.1f} s")
    records = [r.json() for r in read_topic(s, s.topics.scores, timeout_s=120)]
    assert len(records) == sent + more
    after = [sc for sc in records if sc["timestamp"] == START + 60 * READINGS]
    assert len(after) == more
    # Every sensor went on from its checkpoint, none started afresh.
    rows = influx_query(
        s,
        f'''
from(bucket: "{s.influx.bucket}")
  |> range(start: -1h)
  |> filter(fn: (r) => r._measurement == "pipeline" and r.agent == "score-sensors")
  |> filter(fn: (r) => r.worker == "{socket.gethostname()}-{second.pid}")
  |> filter(fn: (r) => r._field == "restored_entities" or r._field == "new_entities")''',
    )
    totals = Counter()
    for r in rows:
        totals[r["_field"]] += r["_value"]
    assert totals == {"restored_entities": N_SENSORS, "new_entities": 0}
