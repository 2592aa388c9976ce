"""``anomstream trainer``: the process that retrains the served connection model.

It reads the ``scores`` topic with a consumer group of its own (every score record, from
every worker), keeps clean training rows (:class:`retrain.trainer.ConnectionTrainer`), and
retrains when one is due (every ``retrain.every_events`` clean rows) or asked for
(a ``retrain_requested`` record on ``model-events``, which ``anomstream retrain MODEL``
sends). Each training publishes ``started`` / ``finished`` / ``promoted`` or ``rejected``
on ``model-events`` — the workers swap on ``promoted`` — and a ``model`` point to
InfluxDB. Training runs here, never in a worker's event loop.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import structlog

from retrain.trainer import ConnectionTrainer, RetrainPolicy
from streams.serving import open_registry
from streams.settings import Settings

__all__ = ["RETRAIN_REQUESTED", "request_retrain", "run_trainer"]

log = structlog.get_logger(__name__)

#: The ``model-events`` record that asks the trainer for a retrain now.
RETRAIN_REQUESTED = "retrain_requested"


def _policy(settings: Settings) -> RetrainPolicy:
    r = settings.retrain
    return RetrainPolicy(
        detector=r.detector,
        every_events=r.every_events,
        min_rows=r.min_rows,
        alert_threshold=settings.alerts.connections_threshold,
        tolerance=r.tolerance,
    )


def request_retrain(settings: Settings, model: str) -> None:
    """Publish a ``retrain_requested`` record for ``model``."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, acks="all")
    try:
        event = {"event": RETRAIN_REQUESTED, "model": model, "at": time.time()}
        producer.send(settings.topics.model_events, key=model.encode(),
                      value=json.dumps(event).encode()).get(timeout=30)
    finally:
        producer.close()


def _model_point(event: dict[str, Any]) -> Any:
    """An InfluxDB ``model`` point for a training's ``finished`` / decision record."""
    from influxdb_client import Point, WritePrecision

    version = str(event.get("served_version") or event.get("version") or "")
    point = (
        Point("model")
        .tag("model", str(event["model"]))
        .tag("event", str(event["event"]))
        .field("version", version)
        .time(time.time_ns() // 1000, WritePrecision.US)
    )
    for key in ("rows", "train_rows", "seconds"):
        if isinstance(event.get(key), int | float):
            point = point.field(key, float(event[key]))
    for key, value in (event.get("metrics") or {}).items():
        point = point.field(key, float(value))
    return point


def run_trainer(settings: Settings, stop: threading.Event | None = None) -> None:
    """Follow ``scores`` and ``model-events`` and retrain until ``stop`` is set."""
    from influxdb_client import InfluxDBClient, WritePrecision
    from kafka import KafkaConsumer, KafkaProducer

    stop = stop or threading.Event()
    name = settings.connection_detector.registered_model or "connections"
    trainer = ConnectionTrainer(name, _policy(settings))
    t = settings.topics
    scores = KafkaConsumer(
        t.scores,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        group_id=f"{settings.worker.app_id}-trainer",
        auto_offset_reset="earliest",
        enable_auto_commit=True,
        value_deserializer=None,
    )
    commands = KafkaConsumer(
        t.model_events,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        group_id=None,
        auto_offset_reset="latest",
    )
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, acks="all")
    influx = InfluxDBClient(
        url=settings.influx.url,
        token=settings.influx_token(),
        org=settings.influx.org,
    )
    writer = influx.write_api()
    log.info("trainer_started", model=name, detector=trainer.policy.detector)
    try:
        while not stop.is_set():
            for batch in scores.poll(timeout_ms=500, max_records=5000).values():
                for message in batch:
                    try:
                        trainer.observe(json.loads(message.value))
                    except ValueError:
                        continue
            reason = trainer.due()
            for batch in commands.poll(timeout_ms=0).values():
                for message in batch:
                    try:
                        event = json.loads(message.value)
                    except ValueError:
                        continue
                    if event.get("event") == RETRAIN_REQUESTED and event.get("model") == name:
                        reason = "command"
            if reason is None:
                continue
            log.info("retrain_started", model=name, reason=reason, rows=len(trainer.buffer))
            registry = open_registry(settings)
            for event in trainer.retrain(registry, reason, progress=lambda m: log.info(
                    "retrain_progress", model=name, step=m)):
                producer.send(t.model_events, key=name.encode(),
                              value=json.dumps(event, default=str).encode()).get(timeout=30)
                if event["event"] != "started":
                    writer.write(bucket=settings.influx.bucket, record=_model_point(event),
                                 write_precision=WritePrecision.US)
                shown = ("event", "version", "reason", "served_version")
                log.info("model_event", **{k: v for k, v in event.items() if k in shown})
    finally:
        for closable in (scores, commands, producer, influx):
            closable.close()
