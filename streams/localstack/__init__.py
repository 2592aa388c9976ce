"""The local stack: a real single-node Kafka and a real InfluxDB, installed and run by us.

``anomstream up`` / ``down`` / ``status`` are thin wrappers around :class:`LocalStack`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from streams.localstack.influxdb import InfluxHealth, LocalInfluxDB, influx_health
from streams.localstack.kafka import KafkaHealth, LocalKafka, kafka_health
from streams.localstack.process import ManagedProcess, port_is_open, wait_until
from streams.settings import Settings

__all__ = [
    "InfluxHealth",
    "KafkaHealth",
    "LocalInfluxDB",
    "LocalKafka",
    "LocalStack",
    "ManagedProcess",
    "StackStatus",
    "create_topics",
    "influx_health",
    "kafka_health",
    "port_is_open",
    "topic_max_message_bytes",
    "wait_until",
]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class StackStatus:
    kafka: KafkaHealth
    influx: InfluxHealth
    kafka_managed: bool
    influx_managed: bool

    @property
    def healthy(self) -> bool:
        return self.kafka.healthy and self.influx.healthy


def create_topics(settings: Settings) -> list[str]:
    """Create the pipeline's topics that do not exist yet; returns the ones created."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    t = settings.topics
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka.bootstrap_servers, client_id="anomstream-admin"
    )
    try:
        existing = set(admin.list_topics())
        wanted = []
        for name in t.all_names():
            if name in existing:
                continue
            # Input topics are keyed by entity and partitioned so workers can scale out;
            # output topics follow the input keys.
            wanted.append(
                NewTopic(name, num_partitions=t.partitions, replication_factor=t.replication_factor)
            )
        if wanted:
            # Another worker may create them at the same moment.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(wanted)
        return [n.name for n in wanted]
    finally:
        admin.close()


def topic_max_message_bytes(settings: Settings, topics: list[str]) -> dict[str, int]:
    """Each existing topic's ``max.message.bytes``: the largest record the broker accepts."""
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType

    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        client_id="anomstream-admin",
        request_timeout_ms=10_000,
    )
    try:
        existing = set(admin.list_topics())
        names = [n for n in dict.fromkeys(topics) if n in existing]
        if not names:
            return {}
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, n) for n in names], config_filter="all"
        )
        out: dict[str, int] = {}
        for name, configs in described.get("topic", {}).items():
            entry = configs.get("max.message.bytes")
            value = entry.get("value") if isinstance(entry, dict) else entry
            if value is not None:
                out[name] = int(value)
        return out
    finally:
        admin.close()


class LocalStack:
    """Both local services, as configured."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.kafka = LocalKafka(settings)
        self.influx = LocalInfluxDB(settings)

    def install(self, progress: Callable[[str], None] | None = None) -> None:
        """Fetch Kafka's jars and build influxd, each only once (cached). ``progress`` gets
        a line before and after each step that has work to do: on a log file or in CI a
        spinner is silent, and the first build takes minutes."""
        say = progress or (lambda _msg: None)
        s = self.settings
        if s.kafka.manage_local and not self.kafka.installed():
            t0 = time.monotonic()
            say(
                f"installing Apache Kafka {s.kafka.version} from Maven Central "
                f"(once; cached in {self.kafka.home})…"
            )
            self.kafka.install()
            say(f"Kafka installed in {time.monotonic() - t0:.0f} s")
        if s.influx.manage_local and not self.influx.installed():
            t0 = time.monotonic()
            say(
                f"building influxd {s.influx.version} from its Go module (once, several "
                f"minutes; build log: {self.influx.build_dir / 'build.log'})…"
            )
            self.influx.install()
            say(f"influxd built in {time.monotonic() - t0:.0f} s")

    def up(self, progress: Callable[[str], None] | None = None) -> dict[str, bool]:
        """Start what is configured as local and not yet running (a second call is a no-op)."""
        say = progress or (lambda _msg: None)
        started = {"kafka": False, "influxdb": False}
        services: list[tuple[str, bool, LocalKafka | LocalInfluxDB]] = [
            ("kafka", self.settings.kafka.manage_local, self.kafka),
            ("influxdb", self.settings.influx.manage_local, self.influx),
        ]
        for name, local, service in services:
            if not local or service.process.is_running():
                continue
            t0 = time.monotonic()
            say(f"starting {name} (log: {service.process.log_file})…")
            started[name] = service.start()
            say(f"{name} ready in {time.monotonic() - t0:.0f} s")
        return started

    def down(self) -> dict[str, bool]:
        return {"kafka": self.kafka.stop(), "influxdb": self.influx.stop()}

    def status(self) -> StackStatus:
        s = self.settings
        k = kafka_health(
            s.kafka.bootstrap_servers, s.kafka.version if s.kafka.manage_local else None
        )
        return StackStatus(
            k, influx_health(s.influx.url), s.kafka.manage_local, s.influx.manage_local
        )
