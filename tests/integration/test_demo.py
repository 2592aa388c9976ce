"""`make demo`'s own code, end to end on the real stack: what it sends is what it reads back."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from streams.demo import run_demo
from tests.integration.conftest import _patched_environ

pytestmark = pytest.mark.integration


def test_demo_reads_back_every_event_alert_and_dead_letter(pipeline: Any) -> None:
    out = io.StringIO()
    # The demo's worker is a child process: it sees the test stack through the environment.
    with _patched_environ(pipeline.env):
        summary = run_demo(
            pipeline.settings,
            duration_s=30.0,
            rate=100.0,
            conn_rate=100.0,
            console=Console(file=out, width=200),
        )
    printed = out.getvalue()
    # Sensors: every reading scored once, every malformed record a dead letter.
    assert summary.events_in == summary.events_sent + summary.malformed_sent
    assert summary.scored_events == summary.events_sent
    assert summary.deadletters == summary.malformed_sent > 0
    assert summary.influx_score_points == summary.events_sent
    # Connections likewise, their malformed records counted on their own row.
    assert summary.conn_scored_events == summary.conn_events_sent
    assert summary.conn_deadletters == summary.conn_malformed_sent
    assert summary.conn_influx_points == summary.conn_events_sent
    assert summary.lag_at_end == 0
    # 600 readings per sensor: anomalies after the 200-reading warm-up, and they are found.
    assert summary.anomalies_injected >= 1
    assert summary.injected_detected >= summary.anomalies_injected - 1
    assert summary.influx_alert_points == summary.alerts
    # Alerts print their tail probability, not a saturated score.
    assert "score=1.00000" not in printed
    assert "p=" in printed and "ALERT" in printed
