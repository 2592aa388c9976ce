"""A real worker's /healthz, /readyz and /metrics, scraped over HTTP."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from streams.observe import wait_for_lag_zero
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_worker_serves_health_readiness_and_metrics(pipeline: Any) -> None:
    s = pipeline.settings
    port = free_port()
    producer = KafkaProducer(bootstrap_servers=s.kafka.bootstrap_servers, acks="all")
    start = time.time() - 3600
    for k in range(100):
        for sid in ("h1", "h2"):
            reading = {"sensor_id": f"{sid}-{pipeline.uid}", "timestamp": start + 30 * k,
                       "value": 20.0 + (k % 7) * 0.1}
            producer.send(s.topics.sensors, key=reading["sensor_id"].encode(),
                          value=json.dumps(reading).encode())
    for _ in range(3):
        producer.send(s.topics.sensors, key=b"x", value=b"{not json")
    producer.flush()
    producer.close()

    pipeline.start_worker(ANOMSTREAM_WORKER__WEB_PORT=str(port))
    assert wait_for_lag_zero(s, s.worker.app_id, s.topics.sensors, timeout_s=180) == 0
    base = f"http://127.0.0.1:{port}"
    status, body = _get(f"{base}/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, body = _get(f"{base}/readyz")
    assert status == 200 and json.loads(body) == {"ready": True, "reasons": []}

    # Counters are updated after each batch's acknowledgement: poll until they settle.
    deadline = time.monotonic() + 30
    while True:
        status, body = _get(f"{base}/metrics")
        assert status == 200
        m = _samples(body.decode())
        scored = m.get(("anomstream_events_out_total",
                        (("outcome", "scored"), ("source", "sensors"))), 0)
        if scored == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert scored == 200
    assert m[("anomstream_events_in_total", (("source", "sensors"),))] == 203
    assert m[("anomstream_deadletters_total", (("reason", "not_json"), ("source", "sensors")))] == 3
    assert m[("anomstream_batch_seconds_count", (("source", "sensors"),))] >= 1
    lags = {k: v for k, v in m.items() if k[0] == "anomstream_consumer_lag"}
    assert lags and all(v == 0 for v in lags.values())
    assert m[("anomstream_model_info", (("source", "connections"), ("version", "online")))] == 1
    assert m[("anomstream_influx_refused_points", ())] == 0
    assert m[("anomstream_influx_written_points", ())] >= 200
