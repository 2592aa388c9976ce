"""The Grafana dashboard's Flux queries run against the real InfluxDB and find our points."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS

from streams.observe import influx_query
from streams.scoring import RawRecord, ScoredEvent
from streams.sinks import alert_point, pipeline_point, score_point

pytestmark = pytest.mark.integration

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "dashboards" / "anomstream.json"


def _flux(query: str, bucket: str, source: str, start: int) -> str:
    # Grafana's variables, as Grafana would expand them for a fixed time range.
    return (
        query.replace("${bucket}", bucket)
        .replace("${source}", source)
        .replace("v.timeRangeStart", str(start))
        .replace("v.timeRangeStop", "now()")
        .replace("v.windowPeriod", "1m")
    )


def test_every_panel_query_runs_and_returns_rows(stack: Any) -> None:
    s = stack.settings
    entity = f"grafana-{uuid.uuid4().hex[:6]}"
    now = time.time()
    rec = RawRecord(b"k", b"{}", "sensors", 0, 0)
    events = [
        ScoredEvent(
            "sensors",
            entity,
            now - 60 + i,
            20.0 + i,
            0.5 if i else 0.999999,
            1.0,
            0.99999,
            i == 0,
            "default_ensemble",
            "online",
            {},
            {},
            rec,
        )
        for i in range(5)
    ]
    alert = {
        "alert_id": str(uuid.uuid4()),
        "source": "sensors",
        "entity": entity,
        "severity": "critical",
        "score": 0.999999,
        "detectors": ["zscore"],
        "features": [{"name": "value_z", "value": 9.0}],
        "first_seen": now - 60,
    }
    points = [score_point(e) for e in events] + [alert_point(alert)]
    points.append(
        pipeline_point(
            "w1",
            "score-sensors",
            events_per_s=1000.0,
            deadletter_count=2,
            batch_latency_ms=12.0,
            batch_size=5,
            wall_time_s=now - 30,
        )
    )
    with InfluxDBClient(url=s.influx.url, token=s.influx_token(), org=s.influx.org) as client:
        client.write_api(write_options=SYNCHRONOUS).write(bucket=s.influx.bucket, record=points)

    dash = json.loads(DASHBOARD.read_text())
    assert {p["datasource"]["uid"] for p in dash["panels"]} == {"anomstream-influxdb"}
    for panel in dash["panels"]:
        for target in panel["targets"]:
            rows = influx_query(
                s, _flux(target["query"], s.influx.bucket, "sensors", int(now) - 3600)
            )
            assert rows, f"panel {panel['title']!r} returned nothing"
            if panel["title"].startswith("Alerts"):
                assert any(r.get("alert_id") == alert["alert_id"] for r in rows)
            if panel["title"] == "Anomalous events":
                assert rows[0]["_value"] >= 1
