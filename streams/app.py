"""The Faust app: its topics, tables and agents, declared in one readable place.

Agents are short: they take a micro-batch, call plain functions in :mod:`streams.scoring`
and hand the results to the sinks. An input batch is acknowledged (so its offsets may be
committed) only after its scores and alerts reached Kafka and InfluxDB accepted the points:
at-least-once end to end.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import faust
import structlog
from faust.streams import _current_event

from streams.connection_scoring import (
    ConnectionModelConfig,
    ConnectionScorer,
    make_connection_detector,
    score_connection_batch,
)
from streams.ordering import OffsetGuard
from streams.scoring import (
    AlertPolicy,
    DeadLetter,
    RawRecord,
    ScoredEvent,
    SensorModelConfig,
    SensorScorer,
    make_sensor_detector,
    score_sensor_batch,
)
from streams.settings import Settings
from streams.sinks import InfluxSink, alert_point, pipeline_point, score_point

__all__ = ["Pipeline", "create_app", "kafka_broker_urls"]

log = structlog.get_logger(__name__)


def kafka_broker_urls(bootstrap_servers: str) -> list[str]:
    """``"h1:9092,h2:9092"`` → Faust's ``["kafka://h1:9092", "kafka://h2:9092"]``.

    >>> kafka_broker_urls("127.0.0.1:9092, h2:9093")
    ['kafka://127.0.0.1:9092', 'kafka://h2:9093']
    """
    return [f"kafka://{h.strip()}" for h in bootstrap_servers.split(",") if h.strip()]


@dataclass
class Pipeline:
    """The app and everything declared on it."""

    app: faust.App
    settings: Settings
    sensors: faust.TopicT
    scores: faust.TopicT
    alerts: faust.TopicT
    deadletter: faust.TopicT
    sensor_state: faust.Table
    sink: InfluxSink
    connections: faust.TopicT | None = None
    connection_state: faust.Table | None = None


def _raw(event: faust.EventT) -> RawRecord:
    msg = event.message
    return RawRecord(
        key=msg.key,
        value=msg.value,
        topic=msg.topic,
        partition=msg.partition,
        offset=msg.offset,
        timestamp_ms=int(msg.timestamp * 1000) if msg.timestamp else None,
    )


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()


def create_app(settings: Settings | None = None) -> Pipeline:
    """Build the Faust app for ``settings`` (default: environment + config file)."""
    settings = settings or Settings()
    t = settings.topics
    w = settings.worker
    app = faust.App(
        w.app_id,
        broker=kafka_broker_urls(settings.kafka.bootstrap_servers),
        store="memory://",
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=t.partitions,
        topic_replication_factor=t.replication_factor,
        datadir=str(w.data_dir or settings.state_dir / "faust"),
        web_enabled=False,
        producer_acks=-1,
        consumer_auto_offset_reset=w.auto_offset_reset,
        broker_commit_every=w.batch_size,
        stream_wait_empty=True,
    )
    sensors = app.topic(t.sensors, key_type=bytes, value_type=bytes)
    connections = app.topic(t.connections, key_type=bytes, value_type=bytes)
    scores = app.topic(t.scores, key_type=bytes, value_type=bytes)
    alerts = app.topic(t.alerts, key_type=bytes, value_type=bytes)
    deadletter = app.topic(t.deadletter, key_type=bytes, value_type=bytes)
    # Per-sensor detector state survives restarts and rebalances through the changelog.
    # (Table keys and values default to the json codec, whatever the app's serializer.)
    sensor_state = app.Table("sensor-state", default=None, partitions=t.partitions)
    # Connection state is per input partition (traffic windows span hosts), keyed "p<n>".
    connection_state = app.Table("connection-state", default=None, partitions=t.partitions)
    sink = InfluxSink(settings)
    pipe = Pipeline(
        app,
        settings,
        sensors,
        scores,
        alerts,
        deadletter,
        sensor_state,
        sink,
        connections,
        connection_state,
    )
    policy = AlertPolicy(
        threshold=settings.alerts.threshold,
        warmup=settings.sensor_detector.warmup,
        cooldown_events=settings.alerts.cooldown_events,
    )
    sd = settings.sensor_detector
    model_config = SensorModelConfig(
        detector=sd.detector,
        cadence=sd.cadence_s,
        seasonal_period=sd.seasonal_period_s,
        tz=sd.timezone,
        stationarity_warmup=sd.stationarity_warmup,
        top_k=sd.top_k,
    )
    worker_name = f"{socket.gethostname()}-{os.getpid()}"

    if w.mode == "passthrough":
        _register_passthrough(pipe)
        return pipe

    @app.agent(sensors, name="score-sensors")
    async def score_sensors(stream: faust.StreamT) -> None:
        scorers: dict[str, SensorScorer] = {}
        await _score_stream(
            pipe,
            stream,
            "score-sensors",
            worker_name,
            load=lambda recs: [_load_scorer(r, scorers, sensor_state) for r in recs],
            score=lambda recs: score_sensor_batch(recs, scorers, policy, model_config),
            checkpoint=lambda scored, events: _checkpoint(
                sensor_state, scorers, scored, events
            ),
        )

    conn_config = ConnectionModelConfig(
        detector=settings.connection_detector.detector,
        bootstrap_events=settings.connection_detector.bootstrap_events,
        top_k=settings.connection_detector.top_k,
    )
    # A detector name that cannot run in the stream fails here, at start-up, with the
    # reason, not inside an agent at the first event.
    make_sensor_detector(model_config, ["value_z"])
    make_connection_detector(None, conn_config)
    conn_policy = AlertPolicy(
        threshold=settings.alerts.connections_threshold,
        warmup=settings.connection_detector.warmup,
        cooldown_events=settings.alerts.cooldown_events,
    )

    @app.agent(connections, name="score-connections")
    async def score_connections(stream: faust.StreamT) -> None:
        scorers: dict[int, ConnectionScorer] = {}
        await _score_stream(
            pipe,
            stream,
            "score-connections",
            worker_name,
            load=lambda recs: [
                _load_connection_scorer(r.partition, scorers, connection_state) for r in recs
            ],
            score=lambda recs: score_connection_batch(recs, scorers, conn_policy, conn_config),
            checkpoint=lambda _scored, events: _checkpoint_partitions(
                connection_state, scorers, events
            ),
        )

    @app.task
    async def _start_sink() -> None:
        await sink.start()

    @app.on_before_shutdown.connect
    async def _stop_sink(app: faust.App, **kwargs: Any) -> None:
        await sink.stop()

    return pipe


def _register_passthrough(pipe: Pipeline) -> None:
    """Same consumption and batching, no work: the baseline `anomstream bench` compares to."""
    w = pipe.settings.worker

    @pipe.app.agent(pipe.sensors, name="passthrough")
    async def passthrough(stream: faust.StreamT) -> None:
        async for events in stream.noack_take(w.batch_size, within=w.batch_within_s):
            futures = []
            for e in events:
                m = e.message
                body = {
                    "input": {"topic": m.topic, "partition": m.partition, "offset": m.offset},
                    "raw": m.value.decode("utf-8", "replace") if m.value else None,
                }
                futures.append(await pipe.scores.send(key=m.key, value=_dumps(body)))
            await asyncio.gather(*futures)
            await _ack(stream, events)


async def _finish_batch(
    pipe: Pipeline,
    stream: faust.StreamT,
    events: list[faust.EventT],
    agent: str,
    worker: str,
    started: float,
    n_dead: int,
) -> None:
    """Record the batch's health in InfluxDB, then acknowledge it."""
    elapsed = time.perf_counter() - started
    await pipe.sink.write(
        [
            pipeline_point(
                worker,
                agent,
                events_per_s=len(events) / max(elapsed, 1e-9),
                deadletter_count=n_dead,
                batch_latency_ms=elapsed * 1000,
                batch_size=len(events),
                wall_time_s=time.time(),
            )
        ]
    )
    await _ack(stream, events)


async def _ack(stream: faust.StreamT, events: list[faust.EventT]) -> None:
    """Mark a fully handled batch as committable.

    Why noack_take and not take_events: take_events acknowledges its batch in a ``finally``
    — also when the generator is closed by a shutdown or an agent restart half-way through
    the batch, which can commit offsets whose outputs were never written.
    Here nothing is acknowledged unless we got this far.
    """
    for event in events:
        await stream.ack(event)


async def _score_stream(
    pipe: Pipeline,
    stream: faust.StreamT,
    agent: str,
    worker: str,
    *,
    load: Callable[[list[RawRecord]], object],
    score: Callable[[list[RawRecord]], tuple[list[ScoredEvent], list[DeadLetter]]],
    checkpoint: Callable[[list[ScoredEvent], list[faust.EventT]], None],
) -> None:
    """What both scoring agents do with every micro-batch.

    In offset order per partition (:func:`_in_offset_order`), restore the entities' state
    from the table (``load``), score off the event loop (CPU work: Kafka heartbeats keep
    flowing), publish and wait for the acks, write the state back (``checkpoint``), then
    acknowledge the batch.
    """
    w = pipe.settings.worker
    guard = OffsetGuard()
    async for batch in stream.noack_take(w.batch_size, within=w.batch_within_s):
        events = await _in_offset_order(pipe.app, guard, batch, agent)
        if not events:
            continue
        started = time.perf_counter()
        records = [_raw(e) for e in events]
        load(records)
        scored, dead = await asyncio.to_thread(score, records)
        await _publish(pipe, scored, dead)
        checkpoint(scored, events)
        await _finish_batch(pipe, stream, events, agent, worker, started, len(dead))


async def _in_offset_order(
    app: faust.App, guard: OffsetGuard, events: list[faust.EventT], agent: str
) -> list[faust.EventT]:
    """The events of a batch that continue their partitions in offset order.

    The others are held back (not processed, not acknowledged) and their partitions are
    sought back to the first missing offset, so the consumer fetches it again
    (see :mod:`streams.ordering` for the Faust behaviour this guards against).
    """
    consumer = app.consumer
    # Faust keeps the committed offsets (next to read) per partition after its seek to
    # them at assignment; there is no public accessor in faust-streaming 0.15.
    committed = consumer._committed_offset.get
    admitted, seeks = guard.admit([(e.message.tp, e.message.offset) for e in events], committed)
    for tp, offset in seeks.items():
        log.warning(
            "offset_hole_refetch", agent=agent, topic=tp.topic, partition=tp.partition,
            offset=offset,
        )
        await consumer.seek(tp, offset)
    return [events[i] for i in admitted]


def _load_scorer(rec: RawRecord, scorers: dict[str, SensorScorer], table: faust.Table) -> None:
    # Cheap peek at the key (= sensor id, by convention) to restore state after a restart;
    # records with a wrong key still work, they just start from an empty state.
    if rec.key is None:
        return
    key = rec.key.decode("utf-8", "replace")
    if key in scorers:
        return
    state = table.get(key)
    if state is not None:
        try:
            scorers[key] = SensorScorer.from_state(state)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("state_restore_failed", entity=key, error=str(exc))


def _load_connection_scorer(
    partition: int, scorers: dict[int, ConnectionScorer], table: faust.Table
) -> None:
    if partition in scorers:
        return
    state = table.get(f"p{partition}")
    if state is not None:
        try:
            scorers[partition] = ConnectionScorer.from_state(state)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("state_restore_failed", partition=partition, error=str(exc))


def _checkpoint_partitions(
    table: faust.Table, scorers: dict[int, ConnectionScorer], events: list[faust.EventT]
) -> None:
    last: dict[int, faust.EventT] = {e.message.partition: e for e in events}
    for partition, event in last.items():
        scorer = scorers.get(partition)
        if scorer is None or scorer.pipeline is None:
            continue  # still bootstrapping: nothing worth a checkpoint yet
        _current_event.set(weakref.ref(event))
        table[f"p{partition}"] = scorer.to_state()
    _current_event.set(None)


def _checkpoint(
    table: faust.Table,
    scorers: dict[str, SensorScorer],
    scored: list[ScoredEvent],
    events: list[faust.EventT],
) -> None:
    """Write each touched entity's state to the table's changelog, in its event's partition."""
    last_event: dict[str, faust.EventT] = {}
    for ev, event in zip(scored, _events_of(scored, events), strict=True):
        last_event[ev.entity] = event
    for entity, event in last_event.items():
        # A table assignment takes its changelog partition from the "current event"; inside
        # noack_take() there is none, so point it at the event the state came from.
        _current_event.set(weakref.ref(event))
        table[entity] = scorers[entity].to_state()
    _current_event.set(None)


def _events_of(scored: list[ScoredEvent], events: list[faust.EventT]) -> list[faust.EventT]:
    by_offset = {(e.message.partition, e.message.offset): e for e in events}
    return [by_offset[(ev.record.partition, ev.record.offset)] for ev in scored]


async def _publish(pipe: Pipeline, scored: list[ScoredEvent], dead: list[DeadLetter]) -> None:
    futures = []
    for d in dead:
        futures.append(await pipe.deadletter.send(key=d.record.key, value=_dumps(d.to_json())))
    for ev in scored:
        key = ev.entity.encode()
        futures.append(await pipe.scores.send(key=key, value=_dumps(ev.to_json())))
        if ev.alert is not None:
            futures.append(await pipe.alerts.send(key=key, value=_dumps(ev.alert)))
    # Wait for the broker's acks before InfluxDB and before the input is acknowledged.
    if futures:
        await asyncio.gather(*futures)
    points = [score_point(ev) for ev in scored]
    points += [alert_point(ev.alert) for ev in scored if ev.alert is not None]
    await pipe.sink.write(points)
    for d in dead:
        log.warning(
            "deadletter",
            reason=d.reason,
            detail=d.detail[:200],
            topic=d.record.topic,
            partition=d.record.partition,
            offset=d.record.offset,
        )
