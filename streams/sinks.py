"""InfluxDB output: points for scores, alerts and pipeline health, written with retries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import structlog
from influxdb_client import Point, WritePrecision

from streams.scoring import ScoredEvent
from streams.settings import Settings

__all__ = ["InfluxSink", "alert_point", "event_time_us", "pipeline_point", "score_point"]

log = structlog.get_logger(__name__)


def event_time_us(ts: float) -> int:
    """Event time as integer microseconds: exact in a double, so a replay hits the same point.

    >>> event_time_us(1.5)
    1500000
    """
    return round(ts * 1_000_000)


def score_point(ev: ScoredEvent) -> Point:
    p = (
        Point("score")
        .tag("source", ev.source)
        .tag("entity", ev.entity)
        .tag("detector", ev.detector)
        .tag("model_version", ev.model_version)
        .field("score", float(ev.score))
        .field("raw_score", float(ev.raw_score))
        .field("threshold", float(ev.threshold))
        .field("is_anomaly", bool(ev.is_anomaly))
        .time(event_time_us(ev.timestamp), WritePrecision.US)
    )
    if ev.value is not None:
        p = p.field("value", float(ev.value))
    return p


def alert_point(alert: dict[str, Any]) -> Point:
    return (
        Point("alert")
        .tag("source", alert["source"])
        .tag("entity", alert["entity"])
        .tag("severity", alert["severity"])
        .field("alert_id", alert["alert_id"])
        .field("score", float(alert["score"]))
        .field("detectors", ",".join(alert["detectors"]))
        .field("features", json.dumps(alert["features"]))
        .time(event_time_us(alert["first_seen"]), WritePrecision.US)
    )


def pipeline_point(
    worker: str,
    agent: str,
    *,
    events_per_s: float,
    deadletter_count: int,
    batch_latency_ms: float,
    batch_size: int,
    wall_time_s: float,
) -> Point:
    return (
        Point("pipeline")
        .tag("worker", worker)
        .tag("agent", agent)
        .field("events_per_s", float(events_per_s))
        .field("deadletter_count", int(deadletter_count))
        .field("batch_latency_ms", float(batch_latency_ms))
        .field("batch_size", int(batch_size))
        .time(event_time_us(wall_time_s), WritePrecision.US)
    )


class InfluxSink:
    """Async, batched InfluxDB writes that retry until accepted.

    A write that keeps failing blocks the agent instead of dropping points: the agent
    acknowledges its input only after the write, so the pipeline stays at-least-once and
    Kafka holds the backlog until InfluxDB is back.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Any = None
        self._write: Any = None

    async def start(self) -> None:
        from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync

        s = self.settings.influx
        self._client = InfluxDBClientAsync(
            url=s.url, token=self.settings.influx_token(), org=s.org, timeout=30_000
        )
        self._write = self._client.write_api()

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def write(self, points: Sequence[Point]) -> None:
        if not points:
            return
        if self._write is None:
            await self.start()
        s = self.settings.influx
        for start in range(0, len(points), s.write_batch_size):
            chunk = list(points[start : start + s.write_batch_size])
            delay = 0.5
            attempt = 0
            while True:
                attempt += 1
                try:
                    await self._write.write(bucket=s.bucket, org=s.org, record=chunk)
                    break
                except Exception as exc:  # any failure: keep the batch, back off, retry
                    level = log.error if attempt > s.write_retries else log.warning
                    level(
                        "influx_write_failed",
                        attempt=attempt,
                        points=len(chunk),
                        error=str(exc)[:300],
                        retry_in_s=delay,
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30.0)
