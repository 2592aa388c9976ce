"""Read back what the pipeline produced: topic offsets, records, consumer lag, InfluxDB points.

Used by ``anomstream demo`` for its summary and by the integration tests: both judge the
pipeline by what actually arrived in Kafka and InfluxDB, never by in-memory counters.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from streams.settings import Settings

__all__ = [
    "TopicRecord",
    "commit_group_offsets",
    "consumer_lag",
    "end_offsets",
    "group_is_stable",
    "influx_query",
    "read_topic",
    "wait_for_group_stable",
    "wait_for_lag_zero",
]


@dataclass(frozen=True, slots=True)
class TopicRecord:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None

    def json(self) -> Any:
        return json.loads(self.value) if self.value is not None else None


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """Partition → next offset to be written."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        client_id="anomstream-observe",
        enable_auto_commit=False,
    )
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        return {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def commit_group_offsets(
    settings: Settings, group: str, offsets: dict[str, dict[int, int]]
) -> None:
    """Set consumer group ``group``'s committed offsets (topic → partition → offset), so a
    worker of that group starts exactly there instead of wherever "latest" resolves to."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        group_id=group,
        client_id="anomstream-observe",
        enable_auto_commit=False,
    )
    try:
        consumer.commit(
            {
                TopicPartition(topic, p): OffsetAndMetadata(offset, "", -1)
                for topic, parts in offsets.items()
                for p, offset in parts.items()
            }
        )
    finally:
        consumer.close()


def read_topic(
    settings: Settings,
    topic: str,
    start: dict[int, int] | None = None,
    stop: dict[int, int] | None = None,
    timeout_s: float = 30.0,
    follow_until: float | None = None,
) -> Iterator[TopicRecord]:
    """Records from ``start`` (default: beginning) up to ``stop`` (default: current end).

    With ``follow_until`` (a ``time.monotonic()`` deadline) it keeps tailing instead.
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        client_id="anomstream-observe",
        enable_auto_commit=False,
        consumer_timeout_ms=500,
    )
    try:
        parts = sorted(consumer.partitions_for_topic(topic) or set())
        tps = [TopicPartition(topic, p) for p in parts]
        consumer.assign(tps)
        starts = start or {}
        for tp in tps:
            if tp.partition in starts:
                consumer.seek(tp, starts[tp.partition])
            else:
                consumer.seek_to_beginning(tp)
        if follow_until is None:
            ends = stop or {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
            remaining = {
                p for p in parts if consumer.position(TopicPartition(topic, p)) < ends.get(p, 0)
            }
            deadline = time.monotonic() + timeout_s
            while remaining and time.monotonic() < deadline:
                for msg in consumer:
                    if msg.offset < ends.get(msg.partition, 0):
                        yield _rec(msg)
                    if consumer.position(TopicPartition(topic, msg.partition)) >= ends.get(
                        msg.partition, 0
                    ):
                        remaining.discard(msg.partition)
                    if not remaining:
                        break
        else:
            while time.monotonic() < follow_until:
                for msg in consumer:
                    yield _rec(msg)
                    if time.monotonic() >= follow_until:
                        break
    finally:
        consumer.close()


def _rec(msg: Any) -> TopicRecord:
    return TopicRecord(msg.topic, msg.partition, msg.offset, msg.timestamp, msg.key, msg.value)


def consumer_lag(settings: Settings, group: str, topic: str) -> int | None:
    """Messages of ``topic`` not yet committed by ``group`` (None if it committed nothing)."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    ends = end_offsets(settings, topic)
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka.bootstrap_servers, client_id="anomstream-observe"
    )
    try:
        committed = admin.list_group_offsets({group: None}).get(group, {})
    except KafkaError:
        # No coordinator yet (fresh cluster, or the group has never committed).
        return None
    finally:
        admin.close()
    mine = {tp.partition: om.offset for tp, om in committed.items() if tp.topic == topic}
    if not mine:
        return None
    return sum(max(0, end - mine.get(p, 0)) for p, end in ends.items())


def group_is_stable(settings: Settings, group: str) -> bool:
    """True once ``group`` has finished a rebalance and has members (partitions assigned)."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka.bootstrap_servers, client_id="anomstream-observe"
    )
    try:
        info = admin.describe_groups([group]).get(group, {})
    except KafkaError:
        return False
    finally:
        admin.close()
    state = info.get("group_state", info.get("state"))
    return state == "Stable" and bool(info.get("members"))


def wait_for_group_stable(settings: Settings, group: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if group_is_stable(settings, group):
            return True
        time.sleep(0.5)
    return False


def wait_for_lag_zero(settings: Settings, group: str, topic: str, timeout_s: float) -> int | None:
    """Poll until ``group`` has committed everything in ``topic``; returns the last lag seen."""
    deadline = time.monotonic() + timeout_s
    lag: int | None = None
    while time.monotonic() < deadline:
        lag = consumer_lag(settings, group, topic)
        if lag == 0:
            return 0
        time.sleep(1.0)
    return lag


def influx_query(settings: Settings, flux: str) -> list[dict[str, Any]]:
    """Run a Flux query; rows as dicts (``_time``, ``_value``, tags, …)."""
    from influxdb_client import InfluxDBClient

    with InfluxDBClient(
        url=settings.influx.url,
        token=settings.influx_token(),
        org=settings.influx.org,
        timeout=60_000,
    ) as client:
        tables = client.query_api().query(flux, org=settings.influx.org)
        return [rec.values for table in tables for rec in table.records]
