"""A worker's health and metrics over HTTP: ``/healthz``, ``/readyz``, ``/metrics``.

* ``/healthz`` (liveness): 200 while the event loop answers. A worker blocked for good is
  what a liveness probe must restart.
* ``/readyz`` (readiness): 200 when the worker has input partitions assigned and InfluxDB
  answers ``/health``; 503 with the reasons otherwise.
* ``/metrics``: Prometheus text format. Counters are updated once per micro-batch
  (:meth:`WorkerMetrics.observe_batch`); gauges that describe "now" (consumer lag per
  partition, InfluxDB write backlog, the model version in use) are read at scrape time.

The server listens on ``worker.web_port`` (0: no server), on all interfaces: probes and
scrapers come from outside the pod.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

if TYPE_CHECKING:
    from streams.app import Pipeline
    from streams.scoring import BatchResult

__all__ = ["WorkerMetrics", "serve_health"]

log = structlog.get_logger(__name__)

_SOURCES = {"score-sensors": "sensors", "score-connections": "connections"}


class WorkerMetrics:
    """The Prometheus metrics of one worker process (a registry of its own).

    >>> from streams.scoring import BatchResult
    >>> m = WorkerMetrics()
    >>> m.observe_batch("score-sensors", BatchResult(), events=3, seconds=0.02)
    >>> b"anomstream_batches_total" in m.render()
    True
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events_in = Counter(
            "anomstream_events_in", "Input events taken from Kafka", ["source"], registry=r
        )
        self.events_out = Counter(
            "anomstream_events_out",
            "Input events by outcome: scored (a score record), dead (a dead letter), "
            "replayed (already absorbed before a restart)",
            ["source", "outcome"],
            registry=r,
        )
        self.deadletters = Counter(
            "anomstream_deadletters", "Dead letters by reason", ["source", "reason"], registry=r
        )
        self.alerts = Counter("anomstream_alerts", "Alerts opened", ["source"], registry=r)
        self.batches = Counter("anomstream_batches", "Micro-batches", ["source"], registry=r)
        self.batch_seconds = Histogram(
            "anomstream_batch_seconds",
            "Micro-batch latency: taken from the stream to acknowledged",
            ["source"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=r,
        )
        self.live_entities = Gauge(
            "anomstream_live_entities", "Per-entity states in memory", ["source"], registry=r
        )
        self.open_alerts = Gauge(
            "anomstream_open_alerts",
            "Alert episodes still open among the states in memory",
            ["source"],
            registry=r,
        )

    def observe_batch(
        self,
        agent: str,
        result: BatchResult,
        *,
        events: int,
        seconds: float,
        live_entities: int | None = None,
        open_alerts: int | None = None,
    ) -> None:
        source = _SOURCES.get(agent, agent)
        self.events_in.labels(source).inc(events)
        self.events_out.labels(source, "scored").inc(len(result.scored))
        self.events_out.labels(source, "dead").inc(len(result.dead))
        self.events_out.labels(source, "replayed").inc(len(result.replayed))
        for letter in result.dead:
            self.deadletters.labels(source, letter.reason).inc()
        self.alerts.labels(source).inc(sum(1 for e in result.scored if e.alert is not None))
        self.batches.labels(source).inc()
        self.batch_seconds.labels(source).observe(seconds)
        if live_entities is not None:
            self.live_entities.labels(source).set(live_entities)
        if open_alerts is not None:
            self.open_alerts.labels(source).set(open_alerts)

    def render(self, pipe: Pipeline | None = None) -> bytes:
        """The Prometheus text page, with the scrape-time gauges of ``pipe``."""
        registry = self.registry
        if pipe is not None:
            registry = CollectorRegistry()
            registry.register(_Snapshot(self.registry))
            registry.register(_NowCollector(pipe))
        return generate_latest(registry)


class _Snapshot:
    """Re-exposes another registry's metrics (so scrape-time ones can join them)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Any:
        return self._registry.collect()


class _NowCollector:
    """Gauges read at scrape time from the running pipeline."""

    def __init__(self, pipe: Pipeline) -> None:
        self.pipe = pipe

    def collect(self) -> Any:
        pipe = self.pipe
        lag = GaugeMetricFamily(
            "anomstream_consumer_lag",
            "Input records not yet committed, per assigned partition",
            labels=["topic", "partition"],
        )
        for (topic, partition), value in _consumer_lag(pipe).items():
            lag.add_metric([topic, str(partition)], value)
        yield lag
        sink = pipe.sink
        for name, help_text, value in (
            ("anomstream_influx_pending_points", "Points in writes not finished yet",
             sink.pending_points),
            ("anomstream_influx_written_points", "Points written", sink.written_points),
            ("anomstream_influx_refused_points", "Points InfluxDB refused for good",
             sink.refused_points),
            ("anomstream_influx_write_failures", "Failed write attempts (retried or not)",
             sink.write_failures),
        ):
            yield GaugeMetricFamily(name, help_text, value=value)
        model = GaugeMetricFamily(
            "anomstream_model_info", "The model scoring each source (value 1)",
            labels=["source", "version"],
        )
        served = pipe.served_connections
        model.add_metric(["connections", served.version if served else "online"], 1)
        model.add_metric(["sensors", "online"], 1)
        yield model


def _consumer_lag(pipe: Pipeline) -> dict[tuple[str, int], int]:
    consumer = getattr(pipe.app, "_consumer", None)
    if consumer is None:
        return {}
    out: dict[tuple[str, int], int] = {}
    # The input topics only: changelog and assignor partitions are read, never committed.
    inputs = {pipe.settings.topics.sensors, pipe.settings.topics.connections}
    try:
        for tp in consumer.assignment():
            if tp.topic not in inputs:
                continue
            high = consumer.highwater(tp)
            committed = consumer._committed_offset.get(tp)
            if high is None:
                continue
            out[(tp.topic, tp.partition)] = max(int(high) - int(committed or 0), 0)
    except Exception as exc:  # a rebalance in progress: no lag this scrape
        log.debug("lag_unavailable", error=repr(exc))
    return out


def _assigned(pipe: Pipeline) -> int:
    consumer = getattr(pipe.app, "_consumer", None)
    try:
        return 0 if consumer is None else len(consumer.assignment())
    except Exception:
        return 0


def _influx_ok(url: str) -> str | None:
    """None if InfluxDB answers /health with "pass", else why not."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=2) as resp:
            body = json.loads(resp.read())
    except (OSError, ValueError) as exc:
        return f"InfluxDB /health: {exc}"
    return None if body.get("status") == "pass" else f"InfluxDB /health: {body}"


async def serve_health(pipe: Pipeline) -> None:
    """Serve the three endpoints on ``worker.web_port`` until cancelled."""
    from aiohttp import web

    port = pipe.settings.worker.web_port
    if not port:
        return
    started = time.time()
    ready_cache: dict[str, Any] = {"at": 0.0, "why": None}

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "uptime_s": round(time.time() - started, 1)})

    async def readyz(_: web.Request) -> web.Response:
        now = time.monotonic()
        if now - ready_cache["at"] > 5.0:  # probes come often; InfluxDB need not
            ready_cache["why"] = await asyncio.to_thread(_influx_ok, pipe.settings.influx.url)
            ready_cache["at"] = now
        reasons = [r for r in (ready_cache["why"],) if r]
        if not _assigned(pipe):
            reasons.append("no input partitions assigned")
        status = 503 if reasons else 200
        return web.json_response({"ready": not reasons, "reasons": reasons}, status=status)

    async def metrics(_: web.Request) -> web.Response:
        body = pipe.metrics.render(pipe)
        return web.Response(body=body, content_type="text/plain", charset="utf-8")

    server = web.Application()
    server.add_routes(
        [web.get("/healthz", healthz), web.get("/readyz", readyz), web.get("/metrics", metrics)]
    )
    runner = web.AppRunner(server, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host="0.0.0.0", port=port)
    await site.start()
    log.info("health_serving", port=port)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
