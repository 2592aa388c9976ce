"""Analysts' verdicts on the real topics: `anomstream label`, then `thresholds suggest`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from kafka import KafkaProducer

from streams.trainer import publish_label

pytestmark = pytest.mark.integration


def test_labelled_alerts_suggest_a_higher_connection_threshold(pipeline: Any) -> None:
    s = pipeline.settings
    env = {**os.environ, **pipeline.env}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "streams.cli", *args], env=env,
                              capture_output=True, text=True, timeout=120)

    # Alerts as the connection agent publishes them (the fields this command reads).
    producer = KafkaProducer(bootstrap_servers=s.kafka.bootstrap_servers, acks="all")
    for i in range(30):
        alert = {"alert_id": f"a{i}", "source": "connections", "score": 0.999 + i * 3e-5}
        producer.send(s.topics.alerts, key=b"h", value=json.dumps(alert).encode())
    producer.send(s.topics.alerts, key=b"h", value=b"not an alert")
    producer.flush()
    producer.close()
    assert cli("thresholds", "suggest").returncode == 2  # no verdicts yet: says so
    # The 8 lowest-scoring alerts were false alarms. Two verdicts as an analyst gives them,
    # the rest through the same function, in-process.
    for i in (0, 29):
        done = cli("label", f"a{i}", "--verdict", "true" if i >= 8 else "false",
                   "--note", "checked")
        assert done.returncode == 0, done.stderr
    for i in range(1, 29):
        publish_label(s, f"a{i}", i >= 8, None)
    done = cli("thresholds", "suggest", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["verdicts"], out["confirmed"], out["false_alarms"]) == (30, 22, 8)
    assert out["suggested"] == pytest.approx(0.999 + 8 * 3e-5)
    assert out["false_alarms_removed"] == 8 and out["incidents_missed"] == 0
    assert out["setting"] == "ANOMSTREAM_ALERTS__CONNECTIONS_THRESHOLD"
