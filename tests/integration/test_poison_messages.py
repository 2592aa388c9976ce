"""One bad message never stops a worker (real Kafka + InfluxDB, a worker process).

Each kind of message that once stopped an agent for good is sent between valid records on
both input topics: every valid record must be scored, every bad one must be exactly one
dead letter with its reason, the worker must keep its PID and the consumer offsets must
reach the end of both topics.
"""

from __future__ import annotations

import json
import socket
import time
from collections import Counter
from typing import Any

import pytest
from kafka import KafkaProducer

from streams.observe import influx_query, read_topic, wait_for_lag_zero
from streams.settings import Settings
from streams.simulator import ConnectionSimulator

pytestmark = pytest.mark.integration

START = 1_760_000_000.0
NESTED = b"[" * 10_000 + b"]" * 10_000


def sensor_poison(uid: str) -> list[tuple[bytes | None, bytes | None, str | None]]:
    """(key, value, expected reason or None when any single outcome will do)."""
    base = {"sensor_id": f"p-{uid}", "timestamp": START + 30, "value": 1.0}

    def body(**kw: Any) -> bytes:
        return json.dumps({**base, **kw}).encode()

    huge_id = "x" * 100_000
    return [
        (b"k", NESTED, "too_deep"),
        (b"k", b'{"sensor_id": ' + b"[" * 5_000 + b"]" * 5_000 + b"}", "too_deep"),
        (b"k", b"x" * 900_000, "too_large"),
        (b"k", b"\x01" * 150_000, "not_json"),
        (b"k", body(timestamp=-1e20), "bad_timestamp"),
        (b"k", body(timestamp="0001-01-01T00:00:00Z"), "bad_timestamp"),
        (huge_id.encode(), body(sensor_id=huge_id), "bad_id"),
        (b"k", body(sensor_id="bad\nid,with=tags"), "bad_id"),
        (b"k", body(sensor_id="ends-with\\"), "bad_id"),
        (b"k", body(value=10**400), None),
        (b"k", b'{"sensor_id": "s", "timestamp": 0, "value": 1' + b"0" * 5000 + b"}", None),
        (b"k", body(unit="u" * 10_000), "wrong_type"),
        (b"k", None, "empty"),
        (b"k", b"\xff\xfe\x00garbage", "not_json"),
        (b"k", body(value=1e308), None),
        (b"k", body(channels={"a" * 200: 1.0}), "wrong_type"),
    ]


def connection_poison(event: dict[str, Any]) -> list[tuple[bytes | None, bytes, str | None]]:
    def body(**kw: Any) -> bytes:
        return json.dumps({**event, **kw}).encode()

    return [
        (b"k", NESTED, "too_deep"),
        (b"k", b"y" * 900_000, "too_large"),
        (b"k", body(timestamp=-1e20), "bad_timestamp"),
        (b"k", body(timestamp="0001-01-01T00:00:00Z"), "bad_timestamp"),
        (b"k", body(dst_host="h" * 100_000), "bad_id"),
        (b"k", body(service="ht\ntp"), None),
        (b"k", body(src_bytes=10**400), None),
        (b"k", body(src_bytes=1e308), None),
        (b"k", b"[]", "not_object"),
    ]


def produce(s: Settings, uid: str) -> dict[str, Any]:
    """Valid records with every poison kind in between, on both topics; their positions."""
    producer = KafkaProducer(
        bootstrap_servers=s.kafka.bootstrap_servers, acks="all", max_request_size=2_000_000
    )
    good: dict[str, set[tuple[int, int]]] = {"sensors": set(), "connections": set()}
    bad: dict[str, dict[tuple[int, int], str | None]] = {"sensors": {}, "connections": {}}

    def send(topic: str, kind: str, key: bytes | None, value: bytes | None, reason: Any) -> None:
        md = producer.send(topic, key=key, value=value).get(timeout=30)
        if reason == "good":
            good[kind].add((md.partition, md.offset))
        else:
            bad[kind][(md.partition, md.offset)] = reason

    sensors = [f"s{i}-{uid}" for i in range(3)]
    poison = sensor_poison(uid)
    for k in range(100):
        for sid in sensors:
            value = json.dumps(
                {"sensor_id": sid, "timestamp": START + 60 * k, "value": 20.0 + k % 7}
            )
            send(s.topics.sensors, "sensors", sid.encode(), value.encode(), "good")
        if k % 6 == 3 and poison:
            send(s.topics.sensors, "sensors", *poison.pop())

    sim = ConnectionSimulator(start=time.time() - 120, seed=5, rate=100.0, attack_rate=0.0)
    events = [e for e, _ in sim.events(600)]
    cpoison = connection_poison(events[0])
    for i, ev in enumerate(events):
        send(s.topics.connections, "connections", ev["dst_host"].encode(),
             json.dumps(ev).encode(), "good")
        if i % 50 == 25 and cpoison:
            send(s.topics.connections, "connections", *cpoison.pop())
    producer.flush()
    producer.close()
    assert not poison and not cpoison
    return {"good": good, "bad": bad, "sensors": sensors}


def produce_keyed_otherwise(s: Settings, sensor: str, good: set[tuple[int, int]]) -> None:
    """Two readings of ``sensor`` keyed otherwise: they land in other partitions, so they
    are sent once the backlog is scored (in a live stream they come in their time)."""
    producer = KafkaProducer(bootstrap_servers=s.kafka.bootstrap_servers, acks="all")
    for k, key in ((100, None), (101, b"someone-else")):
        value = json.dumps({"sensor_id": sensor, "timestamp": START + 60 * k, "value": 21.0})
        md = producer.send(s.topics.sensors, key=key, value=value.encode()).get(timeout=30)
        good.add((md.partition, md.offset))
        producer.flush()
    producer.close()


def test_poison_messages_become_dead_letters_and_the_worker_goes_on(pipeline: Any) -> None:
    s = pipeline.settings
    sent = produce(s, pipeline.uid)
    worker = pipeline.start_worker(ANOMSTREAM_CONNECTION_DETECTOR__BOOTSTRAP_EVENTS="100")
    pid = worker.pid
    for topic in (s.topics.sensors, s.topics.connections):
        lag = wait_for_lag_zero(s, s.worker.app_id, topic, timeout_s=240)
        assert lag == 0, f"{topic}: lag {lag}\n" + pipeline.worker_log()[-5000:]
    produce_keyed_otherwise(s, sent["sensors"][0], sent["good"]["sensors"])
    lag = wait_for_lag_zero(s, s.worker.app_id, s.topics.sensors, timeout_s=240)
    assert lag == 0, pipeline.worker_log()[-5000:]
    assert worker.poll() is None and worker.pid == pid, pipeline.worker_log()[-5000:]

    scores = [r.json() for r in read_topic(s, s.topics.scores)]
    dead = [(r.json(), len(r.value)) for r in read_topic(s, s.topics.deadletter)]
    print(f"\n{len(scores)} score records; dead letters by reason:",
          dict(Counter(d["reason"] for d, _ in dead)))
    for kind, topic in (("sensors", s.topics.sensors), ("connections", s.topics.connections)):
        scored = Counter(
            (sc["input"]["partition"], sc["input"]["offset"])
            for sc in scores
            if sc["input"]["topic"] == topic
        )
        lettered = Counter(
            (d["partition"], d["offset"]) for d, _ in dead if d["source_topic"] == topic
        )
        # Exactly one outcome per input record.
        assert not (set(scored) & set(lettered)), f"{kind}: scored and dead-lettered"
        assert max(scored.values(), default=1) == 1 and max(lettered.values(), default=1) == 1
        good, bad = sent["good"][kind], sent["bad"][kind]
        assert good <= set(scored), f"{kind}: valid records without a score"
        assert set(scored) | set(lettered) == good | set(bad)
        # Every bad record whose reason we know got exactly that reason.
        reasons = {
            (d["partition"], d["offset"]): d["reason"]
            for d, _ in dead
            if d["source_topic"] == topic
        }
        for position, reason in bad.items():
            if reason is not None:
                assert reasons.get(position) == reason, (kind, position, reason)
    # Dead letters are bounded whatever the input was: the payload once, prefix + hash.
    assert max(size for _, size in dead) < 100_000
    big = [d for d, _ in dead if d["raw_length"] >= 900_000]
    assert len(big) == 2 and all(d["raw_truncated"] and len(d["raw_sha256"]) == 64 for d in big)

    # The readings keyed otherwise are this sensor's: scored under the body's id.
    first = [sc for sc in scores if sc.get("entity") == sent["sensors"][0]]
    assert len(first) == 102
    assert not any(sc["entity"] in ("someone-else", "k") for sc in scores)

    # The batches' health in InfluxDB counts what happened.
    rows = influx_query(
        s,
        f'''
from(bucket: "{s.influx.bucket}")
  |> range(start: -1h)
  |> filter(fn: (r) => r._measurement == "pipeline" and r.agent == "score-sensors")
  |> filter(fn: (r) => r.worker == "{socket.gethostname()}-{pid}")
  |> filter(fn: (r) => r._field == "key_mismatch" or r._field == "new_entities")''',
    )
    totals = Counter()
    for r in rows:
        totals[r["_field"]] += r["_value"]
    assert totals["new_entities"] >= 3
    assert totals["key_mismatch"] >= 2


def test_the_influx_sink_isolates_points_influxdb_refuses(stack: Any) -> None:
    """A permanent refusal (HTTP 4xx) is not retried forever: the refused points are found
    and returned with InfluxDB's reason, and every other point of the batch is written."""
    import asyncio

    from streams.sinks import InfluxSink

    s = stack.settings
    tag = f"sink-{time.time_ns()}"
    now_us = time.time_ns() // 1000  # the sink writes microsecond timestamps
    lines = [f"sinktest,run={tag},i={i} v={i} {now_us + i}" for i in range(7)]
    lines[2] = f"sinktest,run={tag},i=2 v=2 -9999999999999999999999"  # unparsable time
    lines[5] = f"sinktest,run={tag},i=5 v=\"text\" {now_us + 5}"  # field type conflict

    async def write() -> list[tuple[int, str]]:
        sink = InfluxSink(s)
        try:
            return await sink.write(lines)
        finally:
            await sink.stop()

    refused = asyncio.run(write())
    assert [i for i, _ in refused] == [2, 5]
    assert all(reason.startswith("HTTP 4") for _, reason in refused), refused
    rows = influx_query(
        s,
        f'''
from(bucket: "{s.influx.bucket}")
  |> range(start: -1h)
  |> filter(fn: (r) => r._measurement == "sinktest" and r.run == "{tag}")''',
    )
    assert sorted(int(r["i"]) for r in rows) == [0, 1, 3, 4, 6]
