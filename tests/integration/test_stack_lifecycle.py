"""A second, throw-away stack: `up` then `down` leaves no process behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import stack_env

pytestmark = pytest.mark.integration


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's exit status is init's to collect, not ours)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_up_status_down_leaves_nothing_running(tmp_path: Path) -> None:
    env = {**os.environ, **stack_env(tmp_path)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "streams.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    up = cli("up")
    assert up.returncode == 0, up.stdout + up.stderr
    # Captured output is not a terminal: each step still says what it does, and how long.
    out = " ".join(up.stdout.split())
    for service in ("kafka", "influxdb"):
        assert f"starting {service} (log:" in out
        assert f"{service} ready in" in out
    pids = [
        int((tmp_path / d / f).read_text())
        for d, f in (("kafka", "kafka.pid"), ("influxdb", "influxd.pid"))
    ]
    assert all(running(p) for p in pids)
    assert cli("status").returncode == 0
    down = cli("down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert "stopped" in down.stdout
    assert not any(running(p) for p in pids)
    st = cli("status")
    assert st.returncode == 1
