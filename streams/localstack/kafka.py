"""A local single-node Apache Kafka (KRaft: broker + controller in one JVM) from Maven jars."""

from __future__ import annotations

import base64
import logging
import shutil
import socket
import subprocess
import uuid
from dataclasses import dataclass

import structlog

from streams.localstack.process import ManagedProcess, port_is_open, wait_until
from streams.settings import Settings

__all__ = ["KafkaHealth", "LocalKafka", "kafka_health", "unreachable"]

log = structlog.get_logger(__name__)

# Maven 3.8's default dependency plugin predates copy-dependencies' current options.
_DEPENDENCY_PLUGIN = "3.8.1"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>anomstream.local</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
  <build><plugins><plugin>
    <groupId>org.apache.maven.plugins</groupId><artifactId>maven-dependency-plugin</artifactId>
    <version>{plugin}</version>
  </plugin></plugins></build>
</project>
"""

_LOG4J2 = """Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.server.KafkaRaftServer
        level: INFO
"""


@dataclass(frozen=True)
class KafkaHealth:
    healthy: bool
    detail: str
    version: str | None = None


def unreachable(bootstrap_servers: str, timeout_s: float = 2.0) -> str | None:
    """Why no bootstrap server accepts a TCP connection, or None if one does.

    kafka-python retries a refused bootstrap for ~30 s, logging each attempt; a closed
    port is answered here in milliseconds instead.

    >>> unreachable("127.0.0.1:1")
    'nothing listening on 127.0.0.1:1 (connection refused)'
    """
    reasons = []
    for server in bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
                return None
        except ConnectionRefusedError:
            reasons.append(f"nothing listening on {server.strip()} (connection refused)")
        except (OSError, ValueError) as exc:
            reasons.append(f"{server.strip()}: {exc}")
    return "; ".join(reasons)


def kafka_health(bootstrap_servers: str, installed_version: str | None = None) -> KafkaHealth:
    """An ApiVersions round trip through a real client, not just an open port."""
    down = unreachable(bootstrap_servers)
    if down is not None:
        return KafkaHealth(False, down)
    # The answer is the returned health; the client's own retry errors are noise here.
    quiet = logging.getLogger("kafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        return _api_versions(bootstrap_servers, installed_version)
    finally:
        quiet.setLevel(level)


def _api_versions(bootstrap_servers: str, installed_version: str | None) -> KafkaHealth:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap_servers,
            request_timeout_ms=5000,
            client_id="anomstream-status",
        )
    except (KafkaError, OSError, ValueError) as exc:
        return KafkaHealth(False, f"no ApiVersions answer from {bootstrap_servers}: {exc}")
    try:
        cluster = admin.describe_cluster()
        broker_id = cluster["brokers"][0]["broker_id"]
        versions = admin.get_broker_version_data(broker_id)
        topics = len(admin.list_topics())
    except (KafkaError, OSError, ValueError, IndexError, KeyError) as exc:
        return KafkaHealth(False, f"broker at {bootstrap_servers} did not answer: {exc}")
    finally:
        admin.close()
    proto = versions.broker_version_str
    version = installed_version or f"~{proto}"
    return KafkaHealth(
        True,
        f"ApiVersions OK ({len(versions.api_versions)} APIs, protocol level {proto}), "
        f"cluster {cluster.get('cluster_id')}, {topics} topics",
        version,
    )


class LocalKafka:
    """Install (once, cached), format, start, check and stop the local broker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        k = settings.kafka
        self.home = settings.cache_dir / f"kafka-{k.version}"
        self.libs = self.home / "libs"
        self.state = settings.state_dir / "kafka"
        self.data = self.state / "data"
        self.config = self.state / "server.properties"
        self.process = ManagedProcess("kafka", self.state / "kafka.pid", self.state / "kafka.log")

    # -- install ---------------------------------------------------------------------------
    def installed(self) -> bool:
        return (self.home / ".installed").is_file()

    def install(self) -> None:
        """Resolve kafka_2.13 + a log4j2 binding from Maven Central into the cache."""
        if self.installed():
            return
        mvn = shutil.which("mvn")
        if mvn is None:
            raise RuntimeError("Maven (mvn) is needed once to fetch the Kafka jars; install it")
        k = self.settings.kafka
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "pom.xml").write_text(
            _POM.format(kafka=k.version, log4j=k.log4j_version, plugin=_DEPENDENCY_PLUGIN)
        )
        tmp = self.home / "libs.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        log.info("kafka_install", version=k.version, into=str(self.libs))
        proc = subprocess.run(
            [
                mvn,
                "-B",
                "-q",
                "dependency:copy-dependencies",
                f"-DoutputDirectory={tmp}",
                "-DincludeScope=runtime",
            ],
            cwd=self.home,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"fetching Kafka {k.version} jars failed:\n"
                f"{proc.stdout[-3000:]}{proc.stderr[-2000:]}"
            )
        shutil.rmtree(self.libs, ignore_errors=True)
        tmp.rename(self.libs)
        (self.home / ".installed").write_text(k.version)

    def _java(self, *args: str) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise RuntimeError("Java 17+ is needed to run the local Kafka broker")
        return [java, "-cp", f"{self.libs}/*", *args]

    # -- configure -------------------------------------------------------------------------
    def _write_config(self) -> None:
        k = self.settings.kafka
        self.state.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{k.controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{k.port},CONTROLLER://127.0.0.1:{k.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{k.port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    "inter.broker.listener.name=PLAINTEXT",
                    f"log.dirs={self.data}",
                    f"num.partitions={self.settings.topics.partitions}",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=4",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=true",
                    "log.retention.hours=168",
                    "",
                ]
            )
        )
        (self.state / "log4j2.yaml").write_text(_LOG4J2)

    def _format(self) -> None:
        if (self.data / "meta.properties").is_file():
            return
        # Kafka wants the base64url form of a UUID: 22 characters, no padding.
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        proc = subprocess.run(
            self._java(
                # "=" form: a base64url id may start with "-", which argparse takes for a flag.
                "kafka.tools.StorageTool",
                "format",
                f"--cluster-id={cluster_id}",
                f"--config={self.config}",
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"kafka storage format failed:\n{proc.stdout}{proc.stderr}")

    # -- run -------------------------------------------------------------------------------
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.settings.kafka.port}"

    def start(self, timeout: float = 90.0) -> bool:
        """Start if not running. Returns True if it was started now, False if already up."""
        if self.process.is_running():
            return False
        k = self.settings.kafka
        if port_is_open("127.0.0.1", k.port):
            raise RuntimeError(
                f"port {k.port} is taken by a process this stack does not own; "
                "set ANOMSTREAM_KAFKA__PORT or stop it"
            )
        self.install()
        self._write_config()
        self._format()
        self.process.start(
            self._java(
                f"-Xmx{k.heap}",
                "-Xms128m",
                "-XX:+UseG1GC",
                "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={self.state / 'log4j2.yaml'}",
                f"-Dkafka.logs.dir={self.state / 'logs'}",
                "kafka.Kafka",
                str(self.config),
            )
        )

        def ready() -> bool:
            if self.process.exited_early():
                raise RuntimeError(f"Kafka exited during start:\n{self.process.log_tail()}")
            return port_is_open("127.0.0.1", k.port) and kafka_health(self.bootstrap()).healthy

        wait_until(ready, timeout, interval=0.5, what="Kafka to accept ApiVersions")
        return True

    def stop(self) -> bool:
        return self.process.stop(timeout=45)

    def health(self) -> KafkaHealth:
        return kafka_health(self.bootstrap(), self.settings.kafka.version)
