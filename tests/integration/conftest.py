"""Real local Kafka and InfluxDB for the integration tests: started once per session.

The stack gets its own state directory and free ports, so a running `anomstream demo`
stack is left alone; the installed jars and influxd binary are reused from the cache.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from streams.localstack import LocalStack, create_topics
from streams.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stack_env(state_dir: Path) -> dict[str, str]:
    return {
        "ANOMSTREAM_STATE_DIR": str(state_dir),
        "ANOMSTREAM_KAFKA__PORT": str(free_port()),
        "ANOMSTREAM_KAFKA__CONTROLLER_PORT": str(free_port()),
        "ANOMSTREAM_INFLUX__PORT": str(free_port()),
    }


@dataclass
class Stack:
    """The session's stack: its settings and the environment that points a process at it."""

    settings: Settings
    env: dict[str, str]

    def settings_with(self, **env: str) -> Settings:
        """Settings as a process started with ``env`` on top of the stack's would see them."""
        with _patched_environ({**self.env, **env}):
            return Settings()


@contextlib.contextmanager
def _patched_environ(env: dict[str, str]) -> Iterator[None]:
    old = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(old)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = stack_env(tmp_path_factory.mktemp("stack"))
    with _patched_environ(env):
        settings = Settings()
    local = LocalStack(settings)
    try:
        local.install()
        local.up()
        yield Stack(settings, env)
    finally:
        local.down()


class Pipeline:
    """Unique topics + consumer group for one test, and its worker processes."""

    def __init__(self, stack: Stack, tmp: Path) -> None:
        uid = uuid.uuid4().hex[:8]
        self.uid = uid
        self.stack = stack
        self.env = {
            **stack.env,
            "ANOMSTREAM_WORKER__APP_ID": f"anomstream-test-{uid}",
            "ANOMSTREAM_WORKER__DATA_DIR": str(tmp / "faust"),
            "ANOMSTREAM_WORKER__BATCH_WITHIN_S": "0.2",
            "ANOMSTREAM_TOPICS__PARTITIONS": "2",
            # Tests run several workers at once; the one that scrapes sets its own port.
            "ANOMSTREAM_WORKER__WEB_PORT": "0",
        }
        for name in (
            "sensors",
            "connections",
            "scores",
            "alerts",
            "labels",
            "deadletter",
            "model_events",
        ):
            self.env[f"ANOMSTREAM_TOPICS__{name.upper()}"] = f"{name}-{uid}"
        self.tmp = tmp
        self.workers: list[subprocess.Popen[bytes]] = []
        self.settings = self.make_settings()
        create_topics(self.settings)

    def make_settings(self, **env: str) -> Settings:
        return self.stack.settings_with(**self.env, **env)

    def start_worker(self, **env: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"worker-{len(self.workers)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            env={**os.environ, **self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers.append(proc)
        return proc

    def worker_log(self, i: int = 0) -> str:
        return (self.tmp / f"worker-{i}.log").read_text(errors="replace")

    def stop(self) -> None:
        from streams.demo import stop_worker_process

        for proc in self.workers:
            stop_worker_process(proc)


@pytest.fixture
def pipeline(stack: Stack, tmp_path: Path) -> Iterator[Pipeline]:
    p = Pipeline(stack, tmp_path)
    try:
        yield p
    finally:
        p.stop()


def model_versions(settings: Settings, events: list[dict]) -> list[str]:
    """The ``model_version`` that scored each connection of ``events`` (in their order),
    after checking that every one of them has exactly one score record."""
    from collections import Counter

    from streams.observe import read_topic

    scores = [r.json() for r in read_topic(settings, settings.topics.scores)]
    keys = Counter((sc["input"]["partition"], sc["input"]["offset"]) for sc in scores)
    assert len(keys) == len(events) and set(keys.values()) == {1}
    by_event = {(sc["entity"], sc["timestamp"]): sc["model_version"] for sc in scores}
    return [by_event[(ev["dst_host"], ev["timestamp"])] for ev in events]
