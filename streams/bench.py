"""``anomstream bench``: end-to-end throughput and latency through the real Kafka and InfluxDB.

Every number comes with a baseline measured in the same invocation: a pass-through worker
(same Faust app, same micro-batching, consume → produce, no validation, no scoring, no
InfluxDB) on the same events. Ratios survive a noisy shared machine better than seconds do.

Two phases per worker mode:

* **backlog** – all events are in the topic before the worker starts; throughput is output
  records divided by the time between the first and last output (broker timestamps).
* **paced** – the worker is running and events arrive at a fixed rate; latency per event is
  output record timestamp minus input record timestamp (both stamped at produce time on the
  same host), reported as p50 / p99.

CPU seconds and peak RSS of the worker process come from ``/proc``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streams.localstack import create_topics
from streams.observe import end_offsets, read_topic, wait_for_lag_zero
from streams.settings import Settings
from streams.simulator import SensorSimulator

__all__ = ["BenchResult", "ProcessSampler", "run_bench"]


@dataclass
class BenchResult:
    mode: str
    phase: str
    events: int
    seconds: float
    events_per_s: float
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    cpu_s: float
    peak_rss_mb: float


class ProcessSampler:
    """CPU time and peak RSS of one process, read from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_rss_kb = 0

    def cpu_seconds(self) -> float:
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime

    def sample(self) -> None:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_rss_kb = max(self.peak_rss_kb, int(line.split()[1]))
        except OSError:
            pass


def _events(n: int, seed: int) -> list[tuple[bytes, bytes]]:
    """``n`` readings of 20 sensors, one minute apart per sensor, ending now."""
    rounds = n // 20 + 1
    sim = SensorSimulator(n_sensors=20, cadence_s=60, start=time.time() - rounds * 60, seed=seed)
    out = []
    for reading, _ in sim.readings(rounds):
        out.append((reading["sensor_id"].encode(), json.dumps(reading).encode()))
    return out[:n]


def _produce(
    settings: Settings, topic: str, events: list[tuple[bytes, bytes]], rate: float | None = None
) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        acks="all",
        linger_ms=5,
        batch_size=256 * 1024,
    )
    t0 = time.monotonic()
    for i, (k, v) in enumerate(events):
        producer.send(topic, key=k, value=v)
        if rate is not None:
            ahead = (i + 1) / rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
    producer.flush()
    producer.close()


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker"],
        env={**os.environ, **env},
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _measure(
    settings: Settings,
    env: dict[str, str],
    mode: str,
    n_backlog: int,
    n_paced: int,
    rate: float,
    log: Path,
    progress: Any,
    sensor_detector: str | None = None,
) -> list[BenchResult]:
    from streams.demo import stop_worker_process

    uid = uuid.uuid4().hex[:8]
    label = mode if sensor_detector is None else f"{mode}:{sensor_detector}"
    if sensor_detector is not None:
        env = {**env, "ANOMSTREAM_SENSOR_DETECTOR__DETECTOR": sensor_detector}
    topics = {
        name: f"bench-{mode}-{name}-{uid}"
        for name in (
            "sensors",
            "scores",
            "alerts",
            "deadletter",
            "connections",
            "labels",
            "model_events",
        )
    }
    env = {
        **env,
        "ANOMSTREAM_WORKER__MODE": mode,
        "ANOMSTREAM_WORKER__APP_ID": f"anomstream-bench-{mode}-{uid}",
        "ANOMSTREAM_WORKER__DATA_DIR": str(log.parent / f"faust-{uid}"),
        **{f"ANOMSTREAM_TOPICS__{k.upper()}": v for k, v in topics.items()},
    }
    s = Settings(
        topics=settings.topics.model_copy(update=topics),
        worker=settings.worker.model_copy(update={"app_id": env["ANOMSTREAM_WORKER__APP_ID"]}),
    )
    create_topics(s)
    results = []
    # One timeline for both phases: the paced readings continue each sensor's series (an
    # older reading would be refused as out of order and never scored).
    events = _events(n_backlog + n_paced, seed=1)
    progress(f"{label}: producing a backlog of {n_backlog} events")
    _produce(s, topics["sensors"], events[:n_backlog])
    proc = _start_worker(env, log)
    sampler = ProcessSampler(proc.pid)
    try:
        progress(f"{label}: draining the backlog")
        cpu0 = sampler.cpu_seconds()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            sampler.sample()
            if wait_for_lag_zero(s, s.worker.app_id, topics["sensors"], timeout_s=2) == 0:
                break
        cpu_backlog = sampler.cpu_seconds() - cpu0
        outs = list(read_topic(s, topics["scores"]))
        ts = [r.timestamp_ms for r in outs]
        span = (max(ts) - min(ts)) / 1000 if len(ts) > 1 else float("nan")
        results.append(
            BenchResult(
                label,
                "backlog",
                len(outs),
                span,
                len(outs) / span,
                None,
                None,
                cpu_backlog,
                sampler.peak_rss_kb / 1024,
            )
        )

        progress(f"{label}: {n_paced} events at {rate:.0f}/s for latency")
        start_offsets = end_offsets(s, topics["scores"])
        in_start = end_offsets(s, topics["sensors"])
        cpu0 = sampler.cpu_seconds()
        t0 = time.monotonic()
        _produce(s, topics["sensors"], events[n_backlog:], rate=rate)
        while time.monotonic() < t0 + 120:
            sampler.sample()
            if wait_for_lag_zero(s, s.worker.app_id, topics["sensors"], timeout_s=2) == 0:
                break
        elapsed = time.monotonic() - t0
        cpu_paced = sampler.cpu_seconds() - cpu0
        inputs = {
            (r.partition, r.offset): r.timestamp_ms
            for r in read_topic(s, topics["sensors"], start=in_start)
        }
        lat = []
        for r in read_topic(s, topics["scores"], start=start_offsets):
            src = r.json()["input"]
            t_in = inputs.get((src["partition"], src["offset"]))
            if t_in is not None:
                lat.append(r.timestamp_ms - t_in)
        arr = np.asarray(lat, dtype=float)
        results.append(
            BenchResult(
                label,
                "paced",
                len(lat),
                elapsed,
                len(lat) / elapsed,
                float(np.percentile(arr, 50)) if len(arr) else None,
                float(np.percentile(arr, 99)) if len(arr) else None,
                cpu_paced,
                sampler.peak_rss_kb / 1024,
            )
        )
    finally:
        stop_worker_process(proc)
    return results


def run_bench(
    settings: Settings,
    *,
    events: int = 20_000,
    paced_events: int = 3_000,
    rate: float = 500.0,
    out: Path | None = None,
    progress: Any = print,
    sensor_detectors: Sequence[str] = (),
) -> dict[str, Any]:
    """Pass-through baseline and the full pipeline, same events, same broker; returns JSON.

    Each of ``sensor_detectors`` adds a full-pipeline run with that sensor detector (mode
    ``score:<name>``), compared with the configured one (``score``) in the same run.
    """
    log_dir = settings.state_dir / "bench"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k.startswith("ANOMSTREAM_")}
    rows: list[BenchResult] = []
    runs: list[tuple[str, str | None]] = [("passthrough", None), ("score", None)]
    runs += [("score", name) for name in sensor_detectors]
    for mode, detector in runs:
        rows += _measure(
            settings,
            env,
            mode,
            events,
            paced_events,
            rate,
            log_dir / f"worker-{mode}{'-' + detector if detector else ''}.log",
            progress,
            sensor_detector=detector,
        )
    by = {(r.mode, r.phase): r for r in rows}
    ratios = {
        "backlog_throughput_vs_passthrough": by[("score", "backlog")].events_per_s
        / by[("passthrough", "backlog")].events_per_s,
        "cpu_per_event_vs_passthrough": (
            by[("score", "backlog")].cpu_s / max(by[("score", "backlog")].events, 1)
        )
        / max(
            by[("passthrough", "backlog")].cpu_s / max(by[("passthrough", "backlog")].events, 1),
            1e-12,
        ),
    }
    for name in sensor_detectors:
        configured = by[("score", "backlog")].events_per_s
        other = by[(f"score:{name}", "backlog")].events_per_s
        ratios[f"backlog_throughput_vs_score:{name}"] = configured / other
    p50s = (by[("score", "paced")].latency_p50_ms, by[("passthrough", "paced")].latency_p50_ms)
    if all(p is not None and p > 0 for p in p50s):
        ratios["paced_p50_latency_vs_passthrough"] = p50s[0] / p50s[1]  # type: ignore[operator]
    result = {
        "results": [asdict(r) for r in rows],
        "ratios": ratios,
        "config": {
            "events": events,
            "paced_events": paced_events,
            "rate": rate,
            "batch_size": settings.worker.batch_size,
            "sensor_detector": settings.sensor_detector.detector,
            "compared_sensor_detectors": list(sensor_detectors),
        },
    }
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
    return result
