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

from retrain.monitors import DriftSettings, ModelDriftMonitors
from retrain.trainer import ConnectionTrainer, RetrainPolicy
from streams.serving import open_registry
from streams.settings import Settings
from windowing.kdd import INTRINSIC_NUMERIC_FIELDS

__all__ = ["RETRAIN_REQUESTED", "parse_label", "publish_label", "request_retrain", "run_trainer"]

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


def publish_label(settings: Settings, alert_id: str, confirmed: bool, note: str | None) -> None:
    """An analyst's verdict on an alert, on the ``labels`` topic (keyed by the alert id)."""
    from kafka import KafkaProducer

    label = {"alert_id": alert_id, "verdict": confirmed, "note": note, "at": time.time()}
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, acks="all")
    try:
        producer.send(settings.topics.labels, key=alert_id.encode(),
                      value=json.dumps(label).encode()).get(timeout=30)
    finally:
        producer.close()


def parse_label(value: bytes | None) -> tuple[str, bool] | None:
    """``(alert_id, confirmed)`` of a ``labels`` record; None for anything else.

    >>> parse_label(b'{"alert_id": "a1", "verdict": false}')
    ('a1', False)
    >>> parse_label(b'{"alert_id": "a1", "verdict": "yes"}'), parse_label(b"[]")
    (None, None)
    """
    try:
        label = json.loads(value or b"")
    except ValueError:
        return None
    if not isinstance(label, dict):
        return None
    alert_id, verdict = label.get("alert_id"), label.get("verdict")
    if not isinstance(alert_id, str) or not isinstance(verdict, bool):
        return None
    return alert_id, verdict


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


def _publish_drift(settings: Settings, producer: Any, writer: Any, name: str, report: Any) -> None:
    """A ``drift_detected`` record on ``model-events`` and a ``drift`` point in InfluxDB."""
    from influxdb_client import Point, WritePrecision

    event = {"event": "drift_detected", "model": name, **report.to_dict()}
    producer.send(settings.topics.model_events, key=name.encode(),
                  value=json.dumps(event, default=str).encode())
    point = (
        Point("drift")
        .tag("model", name)
        .tag("monitor", str(report.monitor))
        .field("statistic", float(report.statistic))
        .field("features", ",".join(report.features or ()))
        .time(time.time_ns() // 1000, WritePrecision.US)
    )
    writer.write(bucket=settings.influx.bucket, record=point, write_precision=WritePrecision.US)
    log.warning("drift_detected", model=name, monitor=report.monitor,
                features=list(report.features or ()))


def run_trainer(settings: Settings, stop: threading.Event | None = None) -> None:
    """Follow ``scores`` and ``model-events`` and retrain until ``stop`` is set."""
    from influxdb_client import InfluxDBClient, WritePrecision
    from kafka import KafkaConsumer, KafkaProducer

    stop = stop or threading.Event()
    name = settings.connection_detector.registered_model or "connections"
    drift = None
    if settings.retrain.on_drift:
        # The connections' own fields and the scores: the traffic fields are counts over
        # sliding windows, autocorrelated enough to fool a two-sample test.
        drift = ModelDriftMonitors(
            DriftSettings(budget_events=settings.retrain.drift_budget_events),
            list(INTRINSIC_NUMERIC_FIELDS),
        )
    trainer = ConnectionTrainer(name, _policy(settings), drift=drift)
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
    labels = KafkaConsumer(
        t.labels,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        group_id=f"{settings.worker.app_id}-trainer-labels",
        auto_offset_reset="earliest",
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
                    # A record the trainer cannot read is skipped, never fatal: the workers
                    # wrote these, but the topic is open to anyone.
                    try:
                        record = json.loads(message.value)
                        reports = trainer.observe(record) if isinstance(record, dict) else []
                    except Exception as exc:
                        log.warning("score_record_skipped", offset=message.offset,
                                    error=repr(exc)[:200])
                        continue
                    for report in reports:
                        _publish_drift(settings, producer, writer, name, report)
            for batch in labels.poll(timeout_ms=0).values():
                for message in batch:
                    parsed = parse_label(message.value)
                    if parsed is not None:
                        rows = trainer.verdict(*parsed)
                        log.info("label_applied", alert_id=parsed[0], confirmed=parsed[1],
                                 rows=rows)
            reason = trainer.due()
            for batch in commands.poll(timeout_ms=0).values():
                for message in batch:
                    try:
                        event = json.loads(message.value)
                    except ValueError:
                        continue
                    if not isinstance(event, dict):
                        continue
                    if event.get("event") == RETRAIN_REQUESTED and event.get("model") == name:
                        reason = "command"
            if reason is None:
                continue
            log.info("retrain_started", model=name, reason=reason, rows=len(trainer.buffer))
            try:
                events = trainer.retrain(open_registry(settings), reason, progress=lambda m: (
                    log.info("retrain_progress", model=name, step=m)))
            except Exception as exc:
                # One failed training must not stop the trainer: say so, and go on.
                log.error("retrain_failed", model=name, reason=reason, error=repr(exc)[:1000])
                events = [{"event": "failed", "model": name, "reason": reason,
                           "error": repr(exc)[:1000]}]
            for event in events:
                producer.send(t.model_events, key=name.encode(),
                              value=json.dumps(event, default=str).encode()).get(timeout=30)
                if event["event"] not in ("started", "failed"):
                    writer.write(bucket=settings.influx.bucket, record=_model_point(event),
                                 write_precision=WritePrecision.US)
                log.info("model_event_published", model=name, kind=event["event"],
                         version=event.get("version"), served_version=event.get("served_version"))
    finally:
        for closable in (scores, commands, labels, producer, influx):
            closable.close()
