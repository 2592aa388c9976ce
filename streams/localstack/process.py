"""Detached service processes with pid files, log files and clean shutdown."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

__all__ = ["ManagedProcess", "port_is_open", "wait_until"]

log = structlog.get_logger(__name__)


def port_is_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on ``host:port``."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def wait_until(
    check: Callable[[], bool], timeout: float, interval: float = 0.25, what: str = "condition"
) -> None:
    """Poll ``check`` until it is true; ``TimeoutError`` naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


@dataclass
class ManagedProcess:
    """One long-running service process owned by the local stack.

    The pid file is the source of truth for ``is_running``; a stale pid file (process gone,
    or the pid reused by something that is not ours) is treated as "not running".
    """

    name: str
    pid_file: Path
    log_file: Path

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) and self._is_ours(pid) else None

    def _is_ours(self, pid: int) -> bool:
        # A recycled pid would make `down` kill a stranger; compare the recorded start marker.
        marker = self.pid_file.with_suffix(".cmd")
        try:
            expected = marker.read_text()
            actual = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            return True
        # Right after spawning, the child's cmdline can read empty for a moment: not a
        # stranger, just not exec'd far enough to show it.
        return not actual.strip() or actual.strip() == expected.strip()

    def is_running(self) -> bool:
        return self.pid() is not None

    def start(
        self, argv: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> int:
        """Start detached (own session, survives the CLI), stdout+stderr to the log file."""
        if (pid := self.pid()) is not None:
            return pid
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as out:
            proc = subprocess.Popen(
                list(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                start_new_session=True,
            )
        self.pid_file.write_text(str(proc.pid))
        self.pid_file.with_suffix(".cmd").write_text(" ".join(argv))
        log.info("process_started", service=self.name, pid=proc.pid, log=str(self.log_file))
        return proc.pid

    def exited_early(self) -> bool:
        """True if we started it and it is already gone (look at the log)."""
        return self.pid_file.exists() and self.pid() is None

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM, wait up to ``timeout``, then SIGKILL. Returns True if something was stopped."""
        pid = self.pid()
        if pid is None:
            self._forget()
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            log.warning("process_kill", service=self.name, pid=pid, after_s=timeout)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            wait_until(lambda: not _alive(pid), 10, what=f"{self.name} to die")
        self._forget()
        log.info("process_stopped", service=self.name, pid=pid)
        return True

    def _forget(self) -> None:
        for path in (self.pid_file, self.pid_file.with_suffix(".cmd")):
            path.unlink(missing_ok=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still answers kill(0); look at its state.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return True
    if state == "Z":
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return True
