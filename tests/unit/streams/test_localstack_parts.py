"""Pure parts of the local-stack code; the services themselves are in tests/integration."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from streams.localstack.influxdb import _replace_lines
from streams.localstack.process import ManagedProcess


def test_replace_lines_single_and_block_forms() -> None:
    gomod = """module x
require a v1
replace github.com/a/b v0.1.0 => github.com/c/b v0.1.1 // fork
replace (
    github.com/d/e => ../e
    github.com/f/g v1.0.0 => github.com/h/g v1.0.1
)
"""
    assert _replace_lines(gomod) == [
        "replace github.com/a/b v0.1.0 => github.com/c/b v0.1.1",
        "replace github.com/d/e => ../e",
        "replace github.com/f/g v1.0.0 => github.com/h/g v1.0.1",
    ]


def test_managed_process_start_is_idempotent_and_stop_reaps(tmp_path: Path) -> None:
    proc = ManagedProcess("sleeper", tmp_path / "s.pid", tmp_path / "s.log")
    argv = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"]
    pid = proc.start(argv)
    assert proc.is_running()
    assert proc.start(argv) == pid  # second start is a no-op
    assert proc.stop(timeout=5) is True
    assert not proc.is_running()
    assert not (tmp_path / "s.pid").exists()
    assert proc.stop() is False


def test_stale_pid_file_is_not_running(tmp_path: Path) -> None:
    pid_file = tmp_path / "x.pid"
    pid_file.write_text("999999")
    proc = ManagedProcess("x", pid_file, tmp_path / "x.log")
    assert proc.pid() is None
    assert not proc.is_running()


def test_status_of_a_stopped_broker_is_a_clear_sentence_not_client_noise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import socket

    from streams.localstack.kafka import kafka_health

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    health = kafka_health(f"127.0.0.1:{port}")
    assert not health.healthy
    assert health.detail == f"nothing listening on 127.0.0.1:{port} (connection refused)"
    assert not [r for r in caplog.records if r.name.startswith("kafka")]
