"""``anomstream demo``: the whole pipeline on one machine.

The summary is judged by what reached Kafka and InfluxDB, never by in-memory counters.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from streams.localstack import LocalStack, create_topics
from streams.observe import (
    commit_group_offsets,
    end_offsets,
    influx_query,
    read_topic,
    wait_for_group_stable,
    wait_for_lag_zero,
)
from streams.settings import Settings
from streams.simulator import produce, produce_connections

#: A minute of demo traffic is short: each partition learns its bounds from 500 connections.
_DEMO_BOOTSTRAP = 500
#: An injected anomaly counts as found when a sensor alert opens within this many readings:
#: the default detector judges a short average of novelty, so a spike surfaces 1-4 readings in.
DETECTION_READINGS = 5

__all__ = ["DemoSummary", "format_alert", "run_demo", "start_worker_process", "stop_worker_process"]


@dataclass
class DemoSummary:
    events_sent: int = 0
    malformed_sent: int = 0
    anomalies_injected: int = 0
    events_in: int = 0
    score_records: int = 0
    scored_events: int = 0
    alerts: int = 0
    deadletters: int = 0
    deadletter_reasons: dict[str, int] = field(default_factory=dict)
    conn_malformed_sent: int = 0
    conn_deadletters: int = 0
    conn_deadletter_reasons: dict[str, int] = field(default_factory=dict)
    influx_score_points: int = 0
    influx_alert_points: int = 0
    throughput_eps: float = 0.0
    batch_capacity_eps: float = 0.0
    injected_detected: int = 0
    lag_at_end: int | None = None
    truth_path: str = ""
    conn_events_sent: int = 0
    conn_attacks_injected: int = 0
    conn_scored_events: int = 0
    conn_bootstrap: int = 0
    conn_alerts: int = 0
    conn_alerts_on_victims: int = 0
    conn_influx_points: int = 0

    def table(self) -> Table:
        t = Table(title="anomstream demo — read back from Kafka and InfluxDB", show_header=True)
        t.add_column("what")
        t.add_column("value", justify="right")
        rows = [
            (
                "events sent by the simulator (+ malformed)",
                f"{self.events_sent} (+{self.malformed_sent})",
            ),
            ("records in `sensors` this run", self.events_in),
            (
                "score records in `scores` (distinct events)",
                f"{self.score_records} ({self.scored_events})",
            ),
            ("alerts in `alerts`", self.alerts),
            (
                "dead letters in `deadletter` from `sensors`",
                f"{self.deadletters} {dict(sorted(self.deadletter_reasons.items()))}",
            ),
            ("InfluxDB `score` points for this run's events", self.influx_score_points),
            ("InfluxDB `alert` points for this run's alerts", self.influx_alert_points),
            (
                f"injected anomalies / alerted within {DETECTION_READINGS} readings",
                f"{self.anomalies_injected} / {self.injected_detected}",
            ),
            (
                "end-to-end throughput (scores/s, paced by the simulator)",
                f"{self.throughput_eps:,.0f}",
            ),
            (
                "worker batch capacity (events/s, median over batches)",
                f"{self.batch_capacity_eps:,.0f}",
            ),
            (
                "connections sent (+ malformed) / scored (of which bootstrap)",
                f"{self.conn_events_sent} (+{self.conn_malformed_sent}) / "
                f"{self.conn_scored_events} ({self.conn_bootstrap})",
            ),
            (
                "dead letters in `deadletter` from `connections`",
                f"{self.conn_deadletters} "
                f"{dict(sorted(self.conn_deadletter_reasons.items()))}",
            ),
            (
                "connection alerts (on an attacked host) / attacks injected",
                f"{self.conn_alerts} ({self.conn_alerts_on_victims}) / "
                f"{self.conn_attacks_injected}",
            ),
            ("InfluxDB `score` points for this run's connections", self.conn_influx_points),
            ("consumer lag at end (sensors + connections)", self.lag_at_end),
        ]
        for k, v in rows:
            t.add_row(k, str(v))
        return t


def start_worker_process(
    settings: Settings, log_path: Path, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``anomstream worker`` as a child process: what an operator runs, not a shortcut."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    out = open(log_path, "ab")  # noqa: SIM115 - lives as long as the child
    env = {
        **os.environ,
        "ANOMSTREAM_STATE_DIR": str(settings.state_dir),
        "ANOMSTREAM_CACHE_DIR": str(settings.cache_dir),
        **(extra_env or {}),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker"],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )


def stop_worker_process(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def _tail_probability(score: float) -> str:
    """A calibrated score as the tail probability it stands for (0.99999 is p=1.0e-05)."""
    p = 1.0 - score
    return "p=0 (saturated)" if p <= 0 else f"p={p:.1e}"


def _feature(f: dict[str, Any]) -> str:
    ratio = f.get("ratio_to_normal")
    times = f" x{ratio:.1f}" if isinstance(ratio, int | float) else ""
    return f"{f['name']}={f['value']:+.2f}{times}"


def format_alert(a: dict[str, Any]) -> str:
    """One terminal line per alert, sensor or connection: the score as its tail probability,
    the top features with their value and how many times their usual contribution.

    >>> line = format_alert({"first_seen": 0, "severity": "warning", "entity": "t1",
    ...                      "score": 0.99978, "alert_id": "abcdef123", "source": "sensors",
    ...                      "value": 1.0, "features": [{"name": "value", "value": 5.0,
    ...                                                  "ratio_to_normal": 7.25}]})
    >>> "t1" in line and "p=2.2e-04" in line and "value=+5.00 x7.2" in line
    True
    >>> "id=abcdef12" in line
    True
    """
    ts = datetime.fromtimestamp(a["first_seen"], UTC).strftime("%Y-%m-%d %H:%M:%S")
    feats = ", ".join(
        _feature(f) for f in a.get("features", []) if isinstance(f.get("value"), int | float)
    )
    if a.get("source") == "connections":
        what = f"from {a.get('src_host')} {a.get('service')}/{a.get('flag')}"
    else:
        what = f"value={a.get('value')}"
    return (
        f"[bold red]ALERT[/] {a['severity']:<8} {a.get('source', ''):<11} {a['entity']:<14} "
        f"at {ts}  {_tail_probability(a['score'])}  {what}  ({feats})  id={a['alert_id'][:8]}"
    )


def run_demo(
    settings: Settings,
    duration_s: float = 60.0,
    rate: float = 50.0,
    conn_rate: float = 100.0,
    console: Console | None = None,
) -> DemoSummary:
    console = console or Console()
    stack = LocalStack(settings)
    t0 = time.monotonic()

    def step(msg: str) -> None:
        console.print(f"[dim]{time.monotonic() - t0:6.1f}s[/] {msg}")

    stack.install(progress=step)
    stack.up(progress=step)
    status = stack.status()
    console.print(f"[green]Kafka[/] {status.kafka.version} — {status.kafka.detail}")
    console.print(f"[green]InfluxDB[/] {status.influx.version} — {status.influx.detail}")
    created = create_topics(settings)
    if created:
        console.print(f"created topics: {', '.join(created)}")
    t = settings.topics
    starts = {
        name: end_offsets(settings, name)
        for name in (t.sensors, t.connections, t.scores, t.alerts, t.deadletter)
    }

    wall_start = int(time.time())
    # Each run simulates days of readings that end "now", so its event times overlap the
    # previous run's. A consumer group (and per-sensor state) of its own, starting at the
    # end of the topic, keeps one run's sensors from seeing another run's past as their
    # future.
    group = f"{settings.worker.app_id}-demo-{wall_start}"
    # The group starts at this run's first input record: "latest" would resolve only once
    # the worker has recovered its tables, after the simulator may have begun.
    commit_group_offsets(
        settings, group, {t.sensors: starts[t.sensors], t.connections: starts[t.connections]}
    )
    worker_log = settings.state_dir / "demo-worker.log"
    worker = start_worker_process(
        settings,
        worker_log,
        {
            "ANOMSTREAM_WORKER__APP_ID": group,
            "ANOMSTREAM_WORKER__AUTO_OFFSET_RESET": "latest",
            "ANOMSTREAM_CONNECTION_DETECTOR__BOOTSTRAP_EVENTS": str(_DEMO_BOOTSTRAP),
        },
    )
    console.print(f"worker started (pid {worker.pid}, group {group}, log {worker_log})")
    with console.status("waiting for the worker to join its consumer group…"):
        if not wait_for_group_stable(settings, group, timeout_s=120):
            stop_worker_process(worker)
            raise RuntimeError(f"the worker did not join its group; see {worker_log}")

    stop_tail = threading.Event()
    tail_offsets = dict(starts[t.alerts])
    tailer = threading.Thread(
        target=lambda: _tail(settings, t.alerts, tail_offsets, stop_tail, console), daemon=True
    )
    tailer.start()

    truth_path = settings.state_dir / "demo-ground-truth.jsonl"
    summary = DemoSummary(truth_path=str(truth_path))
    try:
        console.print(
            f"simulating {duration_s:.0f}s of sensor readings at {rate:.0f} events/s and "
            f"connections at {conn_rate:.0f} events/s…"
        )
        conn_result: dict[str, Any] = {}
        conn_truth = settings.state_dir / "demo-connections-ground-truth.jsonl"
        conn_thread = threading.Thread(
            target=lambda: conn_result.update(
                produce_connections(
                    settings.kafka.bootstrap_servers,
                    t.connections,
                    rate=conn_rate,
                    duration_s=duration_s,
                    attack_rate=0.002,
                    # Attacks only once every partition has finished its bootstrap: an
                    # attack inside the bootstrap would be learned as normal traffic.
                    attack_warmup=_DEMO_BOOTSTRAP * (settings.topics.partitions + 1),
                    truth_path=conn_truth,
                )
            ),
            daemon=True,
        )
        conn_thread.start()
        with console.status("simulating…") as st:
            sim = produce(
                settings.kafka.bootstrap_servers,
                t.sensors,
                rate=rate,
                duration_s=duration_s,
                truth_path=truth_path,
                on_progress=lambda n, total: st.update(f"simulating… {n}/{total} events"),
            )
        summary.events_sent = sim["events"]
        summary.malformed_sent = sim["malformed"]
        summary.anomalies_injected = sim["anomalies_injected"]
        conn_thread.join(duration_s + 60)
        summary.conn_events_sent = conn_result.get("events", 0)
        summary.conn_attacks_injected = conn_result.get("attacks_injected", 0)
        summary.conn_malformed_sent = conn_result.get("malformed", 0)
        sim["conn_truth"] = str(conn_truth)
        with console.status("waiting for the worker to catch up…"):
            lags = [
                wait_for_lag_zero(settings, group, topic, 120)
                for topic in (t.sensors, t.connections)
            ]
            summary.lag_at_end = None if None in lags else sum(lags)  # type: ignore[arg-type]
        time.sleep(1.0)
    finally:
        stop_tail.set()
        tailer.join(5)
        stop_worker_process(worker)

    with console.status("reading back from Kafka and InfluxDB…"):
        _fill_summary(settings, summary, starts, sim, wall_start)
    console.print(summary.table())
    console.print(f"ground truth of injected anomalies: {truth_path}")
    console.print(
        "the stack keeps running: `anomstream status`, `anomstream alerts`, "
        "`anomstream down` to stop it."
    )
    return summary


def _tail(
    settings: Settings, topic: str, offsets: dict[int, int], stop: threading.Event, console: Console
) -> None:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        enable_auto_commit=False,
        client_id="anomstream-demo-tail",
    )
    try:
        tps = [TopicPartition(topic, p) for p in sorted(offsets)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, offsets[tp.partition])
        while not stop.is_set():
            for batch in consumer.poll(timeout_ms=300).values():
                for msg in batch:
                    console.print(format_alert(json.loads(msg.value)))
    finally:
        consumer.close()


def _fill_connections(
    settings: Settings,
    s: DemoSummary,
    scores: list[Any],
    alerts: list[dict[str, Any]],
    sim: dict[str, Any],
) -> None:
    conn = [r.json() for r in scores]
    conn = [j for j in conn if j["source"] == "connections"]
    keys = {(j["entity"], round(j["timestamp"] * 1e6)) for j in conn}
    s.conn_scored_events = len({(j["input"]["partition"], j["input"]["offset"]) for j in conn})
    s.conn_bootstrap = sum(j["model_version"] == "bootstrap" for j in conn)
    conn_alerts = [a for a in alerts if a["source"] == "connections"]
    s.conn_alerts = len({a["alert_id"] for a in conn_alerts})
    truth_file = Path(sim.get("conn_truth", ""))
    truth = (
        [json.loads(x) for x in truth_file.read_text().splitlines() if x]
        if (truth_file.is_file())
        else []
    )
    s.conn_alerts_on_victims = sum(
        any(
            a["entity"] == tr["victim"] and tr["start"] - 1 <= a["first_seen"] <= tr["end"] + 5
            for tr in truth
        )
        for a in conn_alerts
    )
    if not conn:
        return
    tmin = min(j["timestamp"] for j in conn)
    tmax = max(j["timestamp"] for j in conn)
    rows = influx_query(
        settings,
        f'''
from(bucket: "{settings.influx.bucket}")
  |> range(start: {int(tmin) - 1}, stop: {int(tmax) + 2})
  |> filter(fn: (r) => r._measurement == "score" and r._field == "score"
      and r.source == "connections")
  |> keep(columns: ["_time", "entity"])''',
    )
    found = {(r["entity"], round(r["_time"].timestamp() * 1e6)) for r in rows}
    s.conn_influx_points = len(keys & found)


def _fill_summary(
    settings: Settings,
    s: DemoSummary,
    starts: dict[str, dict[int, int]],
    sim: dict[str, Any],
    wall_start: int,
) -> None:
    t = settings.topics
    ends = {name: end_offsets(settings, name) for name in starts}
    s.events_in = sum(ends[t.sensors].get(p, 0) - off for p, off in starts[t.sensors].items())
    scores = [
        r for r in read_topic(settings, t.scores, start=starts[t.scores], stop=ends[t.scores])
    ]
    all_alerts = [
        r.json()
        for r in read_topic(settings, t.alerts, start=starts[t.alerts], stop=ends[t.alerts])
    ]
    _fill_connections(settings, s, scores, all_alerts, sim)
    scores = [r for r in scores if r.json()["source"] == "sensors"]
    s.score_records = len(scores)
    alerts = [a for a in all_alerts if a["source"] == "sensors"]
    s.alerts = len({a["alert_id"] for a in alerts})
    dead = [
        r.json()
        for r in read_topic(
            settings, t.deadletter, start=starts[t.deadletter], stop=ends[t.deadletter]
        )
    ]
    for d in dead:
        if d.get("source_topic") == t.connections:
            s.conn_deadletters += 1
            reasons = s.conn_deadletter_reasons
        else:
            s.deadletters += 1
            reasons = s.deadletter_reasons
        reasons[d["reason"]] = reasons.get(d["reason"], 0) + 1
    if len(scores) >= 2:
        span = (scores[-1].timestamp_ms - min(r.timestamp_ms for r in scores)) / 1000
        s.throughput_eps = len(scores) / max(span, 1e-3)

    # InfluxDB: count points at exactly this run's (entity, event time) pairs.
    keys = set()
    tmin, tmax = float("inf"), float("-inf")
    for r in scores:
        j = r.json()
        keys.add((j["entity"], round(j["timestamp"] * 1e6)))
        tmin, tmax = min(tmin, j["timestamp"]), max(tmax, j["timestamp"])
    # At-least-once: a rebalance can replay a batch; count events, not deliveries.
    s.scored_events = len(keys)
    if keys:
        rows = influx_query(
            settings,
            f'''
from(bucket: "{settings.influx.bucket}")
  |> range(start: {int(tmin) - 1}, stop: {int(tmax) + 2})
  |> filter(fn: (r) => r._measurement == "score" and r._field == "score" and r.source == "sensors")
  |> keep(columns: ["_time", "entity"])''',
        )
        found = {(r["entity"], round(r["_time"].timestamp() * 1e6)) for r in rows}
        s.influx_score_points = len(keys & found)
        alert_ids = {a["alert_id"] for a in alerts}
        rows = influx_query(
            settings,
            f'''
from(bucket: "{settings.influx.bucket}")
  |> range(start: {int(tmin) - 1}, stop: {int(tmax) + 2})
  |> filter(fn: (r) => r._measurement == "alert" and r._field == "alert_id")''',
        )
        s.influx_alert_points = len({r["_value"] for r in rows} & alert_ids)
        prow = influx_query(
            settings,
            f'''
from(bucket: "{settings.influx.bucket}")
  |> range(start: {wall_start})
  |> filter(fn: (r) => r._measurement == "pipeline" and r._field == "events_per_s"
      and r.agent == "score-sensors")''',
        )
        caps = sorted(r["_value"] for r in prow)
        if caps:
            s.batch_capacity_eps = caps[len(caps) // 2]

    # How many injected anomalies got an alert within a few readings of injection.
    truth = [line for line in Path(s.truth_path).read_text().splitlines() if line]
    cadence = sim["cadence_s"]
    detected = 0
    for line in truth:
        inj = json.loads(line)
        if any(
            a["entity"] == inj["sensor_id"]
            and 0 <= a["first_seen"] - inj["timestamp"] <= DETECTION_READINGS * cadence
            for a in alerts
        ):
            detected += 1
    s.injected_detected = detected
