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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
import structlog
from faust.streams import _current_event

from retrain.served import ServedConnectionModel
from streams.connection_scoring import (
    ConnectionModelConfig,
    ConnectionScorer,
    make_connection_detector,
    score_connection_batch,
)
from streams.health import WorkerMetrics, serve_health
from streams.live import LiveStates
from streams.ordering import OffsetGuard
from streams.outcomes import SINK_REJECTED, dumps, fit_outputs, score_guarded
from streams.scoring import (
    INTERNAL_ERROR,
    AlertPolicy,
    BatchResult,
    DeadLetter,
    RawRecord,
    SensorScorer,
    make_sensor_detector,
    score_sensor_batch,
    sensor_alert_policy,
    sensor_model_config,
)
from streams.serving import follow_model_events
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
    #: Largest record published; lowered at start-up to the output topics' real limit.
    max_message_bytes: int = 1_000_000
    #: The trained connection model serving now; read once per micro-batch, so replacing
    #: it swaps models between batches.
    served_connections: ServedConnectionModel | None = None
    #: Set once the model to serve at start-up is known (loaded, or known to be none):
    #: the connection agent waits for it, so no connection is scored before it.
    models_ready: asyncio.Event = field(default_factory=asyncio.Event)
    #: Prometheus metrics served on /metrics (streams.health).
    metrics: WorkerMetrics = field(default_factory=WorkerMetrics)
    #: Live per-entity states by agent name (for the pipeline measurement and tests).
    live: dict[str, LiveStates[Any, Any]] = field(default_factory=dict)


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


def create_app(settings: Settings | None = None) -> Pipeline:
    """Build the Faust app for ``settings`` (default: environment + config file)."""
    settings = settings or Settings()
    t = settings.topics
    w = settings.worker
    # Per app id (consumer group): the RocksDB tables remember the changelog offsets of the
    # group that wrote them, so groups must not share them.
    datadir = (w.data_dir or settings.state_dir / "faust") / w.app_id
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        w.app_id,
        broker=kafka_broker_urls(settings.kafka.bootstrap_servers),
        store=f"{w.table_store}://",
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=t.partitions,
        topic_replication_factor=t.replication_factor,
        datadir=str(datadir),
        web_enabled=False,
        producer_acks=-1,
        producer_max_request_size=max(settings.kafka.max_message_bytes, 1_000_000),
        consumer_auto_offset_reset=w.auto_offset_reset,
        broker_commit_every=w.batch_size,
        broker_session_timeout=w.session_timeout_s,
        broker_heartbeat_interval=w.heartbeat_interval_s,
        # Waiting for the stream to drain on shutdown hangs forever behind a stuck batch;
        # unacknowledged input is simply processed again by the next worker.
        stream_wait_empty=False,
    )
    sensors = app.topic(t.sensors, key_type=bytes, value_type=bytes)
    connections = app.topic(t.connections, key_type=bytes, value_type=bytes)
    scores = app.topic(t.scores, key_type=bytes, value_type=bytes)
    alerts = app.topic(t.alerts, key_type=bytes, value_type=bytes)
    deadletter = app.topic(t.deadletter, key_type=bytes, value_type=bytes)
    # Per-sensor detector state survives restarts and rebalances through the changelog.
    # (Table keys and values default to the json codec, whatever the app's serializer.)
    # RocksDB keeps it on disk: small memtables and cache, so memory stays bounded
    # whatever the number of sensors.
    # States are stored as the JSON bytes we encode ourselves (value_type=bytes: raw), so
    # each is encoded once and its size is known for the per-entity cap.
    table_options = (
        {
            "write_buffer_size": 4 << 20,
            "max_write_buffer_number": 2,
            "block_cache_size": 16 << 20,
        }
        if w.table_store == "rocksdb"
        else None
    )
    sensor_state, connection_state = (
        app.Table(name, default=None, partitions=t.partitions, value_type=bytes,
                  options=table_options)
        # Connection state is per input partition (traffic windows span hosts), keyed "p<n>".
        for name in ("sensor-state", "connection-state")
    )
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
        max_message_bytes=settings.kafka.max_message_bytes,
    )
    policy = sensor_alert_policy(settings)
    model_config = sensor_model_config(settings)
    limits = settings.limits.input_limits()
    worker_name = f"{socket.gethostname()}-{os.getpid()}"

    if w.mode == "passthrough":
        _register_passthrough(pipe)
        return pipe

    @app.agent(sensors, name="score-sensors")
    async def score_sensors(stream: faust.StreamT) -> None:
        scorers: LiveStates[str, SensorScorer] = LiveStates(w.max_live_entities)
        pipe.live["score-sensors"] = scorers
        restore = _restorer(sensor_state, SensorScorer.from_state, str)
        await _score_stream(
            pipe,
            stream,
            "score-sensors",
            worker_name,
            scorers,
            score=lambda recs: score_sensor_batch(
                recs, scorers, policy, model_config, restore=restore, limits=limits
            ),
            table=sensor_state,
            table_key=str,
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
    model_path = settings.connection_detector.model_path
    if model_path is not None:
        # A model that is missing or fails its checksums stops the start-up with the
        # reason: serving without it would publish scores that do not say so.
        pipe.served_connections = ServedConnectionModel.load(model_path)
        log.info("served_model_loaded", version=pipe.served_connections.version,
                 path=str(model_path))
    conn_policy = AlertPolicy(
        threshold=settings.alerts.connections_threshold,
        warmup=settings.connection_detector.warmup,
        cooldown_events=settings.alerts.cooldown_events,
    )

    @app.agent(connections, name="score-connections")
    async def score_connections(stream: faust.StreamT) -> None:
        # One state per input partition: never more than the partitions this worker owns.
        scorers: LiveStates[int, ConnectionScorer] = LiveStates(max(t.partitions, 1))
        pipe.live["score-connections"] = scorers
        restore = _restorer(connection_state, ConnectionScorer.from_state, _partition_key)
        await pipe.models_ready.wait()
        await _score_stream(
            pipe,
            stream,
            "score-connections",
            worker_name,
            scorers,
            score=lambda recs: score_connection_batch(
                recs,
                scorers,
                conn_policy,
                conn_config,
                restore=restore,
                limits=limits,
                served=pipe.served_connections,
            ),
            table=connection_state,
            table_key=_partition_key,
            # Still bootstrapping: in memory only, nothing worth a checkpoint yet.
            checkpointable=lambda scorer: scorer.pipeline is not None,
        )

    @app.task
    async def _start_sink() -> None:
        await sink.start()
        await _check_message_limits(pipe)

    @app.task
    async def _serve_health() -> None:
        try:
            await serve_health(pipe)
        except OSError as exc:  # the port is taken: scoring matters more than probes
            log.error("health_not_served", port=settings.worker.web_port, error=repr(exc))

    @app.task
    async def _serve_champion() -> None:
        try:
            await follow_model_events(pipe)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Scoring goes on with the model in place; only the following stops.
            log.error("model_events_not_followed", error=repr(exc)[:1000])

    @app.on_before_shutdown.connect
    async def _stop_sink(app: faust.App, **kwargs: Any) -> None:
        await sink.stop()

    return pipe


def _partition_key(partition: int) -> str:
    return f"p{partition}"


def _restorer(
    table: faust.Table, from_state: Callable[[Any], Any], table_key: Callable[[Any], str]
) -> Callable[[Any], Any]:
    """``restore(entity)``: the entity's checkpointed state from ``table``, or ``None``."""

    def restore(entity: Any) -> Any:
        key = table_key(entity)
        stored = table.get(key)
        if stored is None:
            return None
        try:
            return from_state(json.loads(stored))
        except Exception as exc:  # another state version, or corrupted: start afresh
            log.warning("state_restore_failed", entity=key, error=repr(exc)[:500])
            return None

    return restore


async def _check_message_limits(pipe: Pipeline) -> None:
    """Lower ``max_message_bytes`` to the output topics' real ``max.message.bytes``, and
    say so when inputs above ``too_large``'s limit cannot even reach the worker."""
    from streams.localstack import topic_max_message_bytes

    t = pipe.settings.topics
    try:
        limits = await asyncio.to_thread(
            topic_max_message_bytes,
            pipe.settings,
            [t.scores, t.alerts, t.deadletter, t.sensors, t.connections],
        )
    except Exception as exc:  # not fatal: the configured limit stays in force
        log.warning("topic_limits_unknown", error=repr(exc)[:500])
        return
    outputs = [limits[n] for n in (t.scores, t.alerts, t.deadletter) if n in limits]
    if outputs and min(outputs) < pipe.max_message_bytes:
        pipe.max_message_bytes = min(outputs)
    inputs = [limits[n] for n in (t.sensors, t.connections) if n in limits]
    max_event = pipe.settings.limits.max_event_bytes
    if inputs and max_event >= min(inputs):
        log.warning(
            "too_large_unreachable",
            max_event_bytes=max_event,
            topic_max_message_bytes=min(inputs),
            hint="records that large never reach the worker; lower limits.max_event_bytes",
        )
    log.info("message_limits", max_message_bytes=pipe.max_message_bytes, topics=limits)


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
                futures.append(await pipe.scores.send(key=m.key, value=dumps(body)))
            await asyncio.gather(*futures)
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
    live: LiveStates[Any, Any],
    *,
    score: Callable[[Sequence[RawRecord]], BatchResult],
    table: faust.Table,
    table_key: Callable[[Any], str],
    checkpointable: Callable[[Any], bool] = lambda _: True,
) -> None:
    """What both scoring agents do with every micro-batch.

    In offset order per partition (:func:`_in_offset_order`), score off the event loop
    (CPU work: Kafka heartbeats keep flowing) under the one-outcome rule
    (:func:`~streams.outcomes.score_guarded`), publish and wait for the acks, write the
    touched states back to the table, drop the least recently used states beyond the
    cap, then acknowledge the batch.
    """
    w = pipe.settings.worker
    guard = OffsetGuard()
    reseeker = asyncio.create_task(_reseek_idle_holes(pipe.app, guard, agent))
    try:
        async for batch in stream.noack_take(w.batch_size, within=w.batch_within_s):
            events = await _in_offset_order(pipe.app, guard, batch, agent)
            if not events:
                continue
            started = time.perf_counter()
            records = [_raw(e) for e in events]
            result = await asyncio.to_thread(score_guarded, records, score)
            await _publish(pipe, result)
            _checkpoint(
                table, live, result, events, table_key, checkpointable, w.max_state_bytes
            )
            evicted = live.evict(keep=result.touched)
            result.count("evicted_entities", len(evicted))
            await _finish_batch(pipe, stream, events, agent, worker, started, result, len(live))
    finally:
        reseeker.cancel()


async def _reseek_idle_holes(app: faust.App, guard: OffsetGuard, agent: str) -> None:
    """Seek partitions with an open hole again while nothing arrives for them (see
    :meth:`OffsetGuard.idle_reseeks`): a backlog held back whole would otherwise wait for
    new input forever."""
    while True:
        await asyncio.sleep(guard.seek_interval_s)
        for tp, offset in guard.idle_reseeks().items():
            log.warning(
                "offset_hole_refetch_idle", agent=agent, topic=tp.topic,
                partition=tp.partition, offset=offset,
            )
            try:
                await app.consumer.seek(tp, offset)
            except Exception as exc:  # e.g. the partition was revoked meanwhile
                log.warning("offset_hole_seek_failed", partition=tp.partition, error=repr(exc))


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


def _checkpoint(
    table: faust.Table,
    live: LiveStates[Any, Any],
    result: BatchResult,
    events: list[faust.EventT],
    table_key: Callable[[Any], str],
    checkpointable: Callable[[Any], bool],
    max_state_bytes: int,
) -> None:
    """Write each touched entity's state to the table's changelog, in the partition of the
    last event that changed it."""
    by_position = {(e.message.partition, e.message.offset): e for e in events}
    for entity, record in result.touched.items():
        scorer = live.get(entity)
        if scorer is None or not checkpointable(scorer):
            continue
        try:
            blob = dumps(scorer.to_state())
        except Exception as exc:  # the outputs are out; the next batch tries again
            log.error("checkpoint_failed", entity=str(entity), error=repr(exc)[:1000])
            continue
        # A table assignment takes its changelog partition from the "current event"; inside
        # noack_take() there is none, so point it at the event the state came from.
        _current_event.set(weakref.ref(by_position[(record.partition, record.offset)]))
        if len(blob) > max_state_bytes:
            # Bounded by design (fixed windows); past the cap something is wrong with this
            # entity: it starts afresh rather than grow a worker's memory and changelog.
            log.error(
                "state_too_large", entity=str(entity), bytes=len(blob), cap=max_state_bytes
            )
            result.count("oversized_states")
            del live[entity]
            table.pop(table_key(entity), None)
            continue
        table[table_key(entity)] = blob
    _current_event.set(None)


async def _publish(pipe: Pipeline, result: BatchResult) -> None:
    """Send a batch's outputs: InfluxDB points first, then the Kafka records.

    Each input ends with exactly one of {score record, dead letter}: outputs too large for
    Kafka and points InfluxDB refuses for good turn their event into a dead letter before
    anything about it reaches Kafka. Transient failures are retried by the sinks.
    """
    limits = pipe.settings.limits
    scored, dead = fit_outputs(result, pipe.max_message_bytes, limits.deadletter_payload_bytes)

    def refuse(i: int, reason: str, detail: str) -> None:
        letter = DeadLetter(scored[i][0].record, reason, detail)
        dead.append((letter, dumps(letter.to_json(limits.deadletter_payload_bytes))))

    # Line protocol built here, per event: a point that cannot be built is that event's
    # dead letter, not the batch's crash.
    lines: list[str] = []
    owners: list[int] = []
    unbuildable: set[int] = set()
    for i, (ev, _, _) in enumerate(scored):
        try:
            own = [score_point(ev).to_line_protocol()]
            if ev.alert is not None:
                own.append(alert_point(ev.alert).to_line_protocol())
        except Exception as exc:
            refuse(i, INTERNAL_ERROR, f"InfluxDB point raised {type(exc).__name__}: {exc}")
            unbuildable.add(i)
            continue
        lines += own
        owners += [i] * len(own)
    refused: dict[int, str] = {}
    for index, reason in await pipe.sink.write(lines):
        refused.setdefault(owners[index], reason)
    for i, reason in refused.items():
        refuse(i, SINK_REJECTED, f"InfluxDB refused the point: {reason}")
    if refused or unbuildable:
        scored = [s for i, s in enumerate(scored) if i not in refused and i not in unbuildable]
    messages: list[_Message] = [
        _Message(pipe.deadletter, d.message_key(), body, d.record, "deadletter") for d, body in dead
    ]
    for ev, body, alert in scored:
        key = ev.entity.encode()
        messages.append(_Message(pipe.scores, key, body, ev.record, "score"))
        if alert is not None:
            messages.append(_Message(pipe.alerts, key, alert, ev.record, "alert"))
    # Logged and counted below like the others (they are on the dead-letter topic now).
    for letter in await _send(messages, pipe.deadletter, limits.deadletter_payload_bytes):
        dead.append((letter, b""))
    for d, _ in dead:
        log.warning(
            "deadletter",
            reason=d.reason,
            detail=d.detail[:300],
            topic=d.record.topic,
            partition=d.record.partition,
            offset=d.record.offset,
        )
    result.count("deadletters", len(dead))


@dataclass(frozen=True, slots=True)
class _Message:
    topic: faust.TopicT
    key: bytes | None
    value: bytes
    record: RawRecord
    kind: str


async def _send(
    messages: list[_Message], deadletter: faust.TopicT, payload_bytes: int
) -> list[DeadLetter]:
    """Send ``messages`` and wait for the broker's acks, retrying transient failures.

    A score record the broker refuses for good (despite :func:`fit_outputs`, e.g. a topic
    limit lowered at runtime) is replaced by a dead letter, which is returned; a refused
    alert or dead letter is logged with its input position.
    """
    from aiokafka.errors import KafkaError

    refused: list[DeadLetter] = []
    delay = 0.5
    while messages:
        futures = [await m.topic.send(key=m.key, value=m.value) for m in messages]
        results = await asyncio.gather(*futures, return_exceptions=True)
        retry: list[_Message] = []
        transient = False
        for m, res in zip(messages, results, strict=True):
            if not isinstance(res, BaseException):
                continue
            if not (isinstance(res, KafkaError) and not res.retriable):
                transient = True
                retry.append(m)
                continue
            log.error(
                "kafka_record_refused", kind=m.kind, bytes=len(m.value),
                topic=m.record.topic, partition=m.record.partition, offset=m.record.offset,
                error=repr(res),
            )
            if m.kind == "score":
                letter = DeadLetter(m.record, SINK_REJECTED, f"Kafka refused it: {res!r}")
                refused.append(letter)
                body = dumps(letter.to_json(payload_bytes))
                retry.append(_Message(deadletter, letter.message_key(), body, m.record, "dl"))
        if transient:
            log.warning("kafka_send_retry", messages=len(retry), retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
        messages = retry
    return refused


async def _finish_batch(
    pipe: Pipeline,
    stream: faust.StreamT,
    events: list[faust.EventT],
    agent: str,
    worker: str,
    started: float,
    result: BatchResult,
    live_entities: int,
) -> None:
    """Record the batch's health in InfluxDB and the metrics, then acknowledge it."""
    elapsed = time.perf_counter() - started
    counts = result.counts
    live = pipe.live.get(agent)
    pipe.metrics.observe_batch(
        agent,
        result,
        events=len(events),
        seconds=elapsed,
        live_entities=live_entities,
        open_alerts=None if live is None else _open_alerts(live),
    )
    await pipe.sink.write(
        [
            pipeline_point(
                worker,
                agent,
                events_per_s=len(events) / max(elapsed, 1e-9),
                deadletter_count=counts.get("deadletters", 0),
                batch_latency_ms=elapsed * 1000,
                batch_size=len(events),
                wall_time_s=time.time(),
                live_entities=live_entities,
                new_entities=counts.get("new_entities", 0),
                restored_entities=counts.get("restored_entities", 0),
                evicted_entities=counts.get("evicted_entities", 0),
                key_mismatch=counts.get("key_mismatch", 0),
                replayed=len(result.replayed),
                oversized_states=counts.get("oversized_states", 0),
            )
        ]
    )
    await _ack(stream, events)


def _open_alerts(live: LiveStates[Any, Any]) -> int:
    """Alert episodes still open among the states in memory (a sensor has one tracker, a
    connection partition one per destination host)."""
    n = 0
    for state in live.peek_values():
        episodes = state.episodes
        if isinstance(episodes, dict):
            n += sum(1 for t in episodes.values() if t.open_alert_id is not None)
        elif episodes.open_alert_id is not None:
            n += 1
    return n
