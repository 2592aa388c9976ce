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

__all__ = [
    "InfluxSink",
    "alert_point",
    "event_time_us",
    "influx_reason",
    "is_permanent",
    "pipeline_point",
    "score_point",
]

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
    **counters: int,
) -> Point:
    """One micro-batch's health; ``counters`` (live / new / evicted entities, key
    mismatches, replayed inputs …) become integer fields."""
    p = (
        Point("pipeline")
        .tag("worker", worker)
        .tag("agent", agent)
        .field("events_per_s", float(events_per_s))
        .field("deadletter_count", int(deadletter_count))
        .field("batch_latency_ms", float(batch_latency_ms))
        .field("batch_size", int(batch_size))
        .time(event_time_us(wall_time_s), WritePrecision.US)
    )
    for name, value in counters.items():
        p = p.field(name, int(value))
    return p


def is_permanent(exc: BaseException) -> bool:
    """Whether InfluxDB refused a write for good, so retrying cannot help.

    Transient, retried: no connection, a timeout, HTTP 5xx, 401/403 (a token an operator
    can fix), 408/429 (load) and 413 (too big a request). Anything else — another 4xx, or
    a point the client cannot even serialise — is permanent.

    >>> from influxdb_client.rest import ApiException
    >>> is_permanent(ApiException(status=400)), is_permanent(ApiException(status=429))
    (True, False)
    >>> is_permanent(ConnectionRefusedError()), is_permanent(ApiException(status=503))
    (False, False)
    >>> is_permanent(ValueError("bad field"))
    True
    """
    import aiohttp

    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return 400 <= status < 500 and status not in _RETRYABLE_4XX
    return not isinstance(exc, OSError | TimeoutError | aiohttp.ClientError)


_RETRYABLE_4XX = frozenset({401, 403, 408, 413, 429})


def influx_reason(exc: BaseException) -> str:
    """InfluxDB's own words for a failed write (its JSON ``message``), in full."""
    body = getattr(exc, "body", None)
    if body:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        try:
            message = json.loads(text).get("message")
        except (ValueError, AttributeError):
            message = None
        status = getattr(exc, "status", "")
        return f"HTTP {status}: {message or text}"
    return f"{type(exc).__name__}: {exc}"


class InfluxSink:
    """Async, batched InfluxDB writes: transient failures retried, permanent ones isolated.

    A write that fails transiently (connection refused, timeout, 5xx, 401/403/408/429)
    is retried with backoff until it succeeds, blocking the agent instead of dropping
    points: the agent acknowledges its input only after the write, so the pipeline stays
    at-least-once and Kafka holds the backlog until InfluxDB is back. A write InfluxDB
    refuses for good (any other 4xx) is split in halves until the refused points are
    found; :meth:`write` returns them, with InfluxDB's reason, and writes the rest.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Any = None
        self._write: Any = None
        self._stopping = False
        #: Points in writes not finished yet (retrying ones included), points written,
        #: points refused for good, and failed write attempts (for /metrics).
        self.pending_points = 0
        self.written_points = 0
        self.refused_points = 0
        self.write_failures = 0

    async def start(self) -> None:
        from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync

        s = self.settings.influx
        self._stopping = False
        self._client = InfluxDBClientAsync(
            url=s.url, token=self.settings.influx_token(), org=s.org, timeout=30_000
        )
        self._write = self._client.write_api()

    async def stop(self) -> None:
        self._stopping = True
        if self._client is not None:
            await self._client.close()
            self._client = None
            self._write = None

    async def write(self, points: Sequence[Point | str]) -> list[tuple[int, str]]:
        """Write ``points``; returns ``(index, reason)`` of those InfluxDB refused for good."""
        if not points:
            return []
        if self._write is None:
            await self.start()
        size = self.settings.influx.write_batch_size
        refused: list[tuple[int, str]] = []
        self.pending_points += len(points)
        try:
            for start in range(0, len(points), size):
                refused += await self._write_isolating(list(points[start : start + size]), start)
        finally:
            self.pending_points -= len(points)
        self.written_points += len(points) - len(refused)
        self.refused_points += len(refused)
        return refused

    async def _write_isolating(
        self, chunk: list[Point | str], offset: int
    ) -> list[tuple[int, str]]:
        try:
            await self._write_retrying(chunk)
            return []
        except _Refused as refusal:
            if len(chunk) == 1:
                log.error("influx_point_refused", reason=refusal.reason, point=_line(chunk[0]))
                return [(offset, refusal.reason)]
        # Writes are idempotent (same series and time), so rewriting the good half is free.
        mid = len(chunk) // 2
        return await self._write_isolating(chunk[:mid], offset) + await self._write_isolating(
            chunk[mid:], offset + mid
        )

    async def _write_retrying(self, chunk: list[Point | str]) -> None:
        s = self.settings.influx
        delay = 0.5
        attempt = 0
        while True:
            attempt += 1
            try:
                # Every point we write is stamped in microseconds (event_time_us); line
                # protocol strings carry no precision of their own.
                await self._write.write(
                    bucket=s.bucket, org=s.org, record=chunk, write_precision=WritePrecision.US
                )
                return
            except Exception as exc:
                reason = influx_reason(exc)
                self.write_failures += 1
                if is_permanent(exc):
                    raise _Refused(reason) from exc
                if self._stopping:
                    raise
                level = log.error if attempt > s.write_retries else log.warning
                level(
                    "influx_write_failed",
                    attempt=attempt,
                    points=len(chunk),
                    error=reason,
                    retry_in_s=delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                if self._write is None:  # stopped while we slept
                    raise


class _Refused(Exception):  # noqa: N818 - internal signal, never escapes the sink
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _line(point: Point | str) -> str:
    if isinstance(point, str):
        return point[:2000]
    try:
        return point.to_line_protocol()[:2000]
    except Exception as exc:  # the point itself may be what is broken
        return f"<unprintable point: {exc!r}>"
