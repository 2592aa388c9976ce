"""`anomstream worker` refuses a detector the stream cannot run, before touching Kafka."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from streams.cli import app


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"ANOMSTREAM_CONNECTION_DETECTOR__DETECTOR": "isolation_forest"}, "learn online"),
        ({"ANOMSTREAM_SENSOR_DETECTOR__DETECTOR": "nope"}, "unknown detector 'nope'"),
    ],
)
def test_worker_refuses_a_detector_the_stream_cannot_run(env: dict, reason: str) -> None:
    result = CliRunner().invoke(app, ["worker"], env=env)
    assert result.exit_code == 2
    assert "worker not started" in result.output and reason in " ".join(result.output.split())
