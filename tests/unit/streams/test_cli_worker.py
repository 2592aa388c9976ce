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


def test_the_app_declares_its_topics_tables_and_agents_without_a_broker(tmp_path) -> None:
    from streams.app import create_app
    from streams.settings import Settings

    pipe = create_app(Settings(state_dir=tmp_path))
    assert set(pipe.app.agents) == {"score-sensors", "score-connections"}
    assert {t.name for t in pipe.app.tables.values()} == {"sensor-state", "connection-state"}
    # States are our own JSON bytes (raw), in RocksDB unless configured otherwise.
    assert pipe.sensor_state.value_serializer == "raw"
    assert str(pipe.app.conf.store).startswith("rocksdb:")
    assert pipe.app.conf.stream_wait_empty is False
    assert pipe.app.conf.broker_session_timeout == 20.0
