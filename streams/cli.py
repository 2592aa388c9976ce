"""The ``anomstream`` command line."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from streams.logs import configure_logging
from streams.settings import Settings

if TYPE_CHECKING:
    from retrain.registry import ModelRegistry, VersionInfo

__all__ = ["app", "main", "models_app", "publish_model_event"]

app = typer.Typer(
    name="anomstream",
    help="Streaming anomaly detection on Kafka: local stack, workers, simulator, demo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)


def _register_evaluate() -> None:
    from evaluation.cli import evaluate_command

    app.command(
        "evaluate",
        help="Replay a labelled dataset through the same windowing + detectors, online "
        "(score, then learn); print metrics (--json) and write a report (--out).",
    )(evaluate_command)


def _settings() -> Settings:
    settings = Settings()
    configure_logging(settings.worker.loglevel)
    return settings


def _step_printer(t0: float) -> Callable[[str], None]:
    """One line per step with the elapsed time: it shows on a terminal, a log file and CI
    alike (a spinner shows nothing off a terminal)."""
    return lambda msg: console.print(f"[dim]{time.monotonic() - t0:6.1f}s[/] {msg}")


@app.command()
def install() -> None:
    """Fetch the Kafka jars and build influxd into the cache (first time only; up does it too)."""
    from streams.localstack import LocalStack

    settings = _settings()
    stack = LocalStack(settings)
    t0 = time.monotonic()
    stack.install(progress=_step_printer(t0))
    console.print(f"Kafka {settings.kafka.version}: {stack.kafka.libs}")
    console.print(f"InfluxDB {settings.influx.version}: {stack.influx.binary}")
    console.print(f"[dim]{time.monotonic() - t0:.1f}s[/]")


@app.command()
def up() -> None:
    """Install (first time only, cached) and start the local Kafka and InfluxDB. Idempotent."""
    from streams.localstack import LocalStack, create_topics

    settings = _settings()
    stack = LocalStack(settings)
    t0 = time.monotonic()
    step = _step_printer(t0)
    stack.install(progress=step)
    started = stack.up(progress=step)
    created = create_topics(settings) if settings.kafka.manage_local else []
    for name, now in started.items():
        console.print(f"{name}: {'started' if now else 'already running'}")
    if created:
        console.print(f"created topics: {', '.join(created)}")
    _print_status(settings)
    console.print(f"[dim]{time.monotonic() - t0:.1f}s[/]")


@app.command()
def down() -> None:
    """Stop the local Kafka and InfluxDB (data stays in the state directory)."""
    from streams.localstack import LocalStack

    settings = _settings()
    stopped = LocalStack(settings).down()
    for name, was in stopped.items():
        console.print(f"{name}: {'stopped' if was else 'was not running'}")


def _print_status(settings: Settings) -> bool:
    from streams.localstack import LocalStack

    st = LocalStack(settings).status()
    table = Table(show_header=True)
    for col in ("service", "healthy", "version", "address", "detail"):
        table.add_column(col)
    table.add_row(
        "kafka",
        "yes" if st.kafka.healthy else "NO",
        st.kafka.version or "-",
        settings.kafka.bootstrap_servers,
        st.kafka.detail,
    )
    table.add_row(
        "influxdb",
        "yes" if st.influx.healthy else "NO",
        st.influx.version or "-",
        settings.influx.url,
        st.influx.detail,
    )
    console.print(table)
    return st.healthy


@app.command()
def status() -> None:
    """Health of Kafka (ApiVersions round trip) and InfluxDB (/health), with versions."""
    if not _print_status(_settings()):
        raise typer.Exit(1)


@app.command()
def worker() -> None:
    """Run the Faust stream processor (start more of them to scale out)."""
    from streams.app import create_app
    from streams.runtime import StreamWorker

    settings = _settings()
    try:
        pipe = create_app(settings)
    except (KeyError, ValueError, OSError) as exc:
        # A detector name that cannot run in the stream, or a model folder that is missing
        # or fails its checksums.
        err.print(f"[red]worker not started:[/red] {str(exc).strip(chr(34))}")
        raise typer.Exit(2) from None
    w = StreamWorker(
        pipe.app,
        loglevel=settings.worker.loglevel.lower(),
        quiet=True,
        shutdown_timeout_s=settings.worker.shutdown_timeout_s,
    )
    w.execute_from_commandline()


@app.command()
def simulate(
    source: Annotated[
        str, typer.Option(help="sensors (connections arrive with their issue)")
    ] = "sensors",
    rate: Annotated[float, typer.Option(help="events per second")] = 50.0,
    duration: Annotated[float, typer.Option(help="seconds to run")] = 60.0,
    sensors: Annotated[int, typer.Option(help="number of simulated sensors")] = 5,
    bad_rate: Annotated[float, typer.Option(help="share of deliberately malformed records")] = 0.01,
    seed: Annotated[int, typer.Option()] = 7,
    truth: Annotated[
        Path | None, typer.Option(help="write injected-anomaly ground truth (JSON lines)")
    ] = None,
) -> None:
    """Produce realistic synthetic events with labelled anomalies: sensor readings (daily
    cycle, trend, noise, spikes, level shifts) or raw connections (floods, scans,
    password guessing)."""
    from streams.simulator import produce, produce_connections

    if source not in ("sensors", "connections"):
        err.print(f"[red]unknown source {source!r}[/]: sensors or connections")
        raise typer.Exit(2)
    settings = _settings()
    truth = truth or settings.state_dir / f"simulate-{source}-ground-truth.jsonl"
    truth.parent.mkdir(parents=True, exist_ok=True)
    with console.status("producing…") as st:
        progress = lambda n, total: st.update(f"producing… {n}/{total}")  # noqa: E731
        if source == "sensors":
            res = produce(
                settings.kafka.bootstrap_servers,
                settings.topics.sensors,
                rate=rate,
                duration_s=duration,
                n_sensors=sensors,
                bad_rate=bad_rate,
                seed=seed,
                truth_path=truth,
                on_progress=progress,
            )
        else:
            res = produce_connections(
                settings.kafka.bootstrap_servers,
                settings.topics.connections,
                rate=rate,
                duration_s=duration,
                bad_rate=bad_rate,
                seed=seed,
                truth_path=truth,
                on_progress=progress,
            )
    console.print_json(json.dumps({**res, "truth": str(truth)}))


@app.command()
def features(
    path: Annotated[Path, typer.Argument(help="NAB csv, KDD file (gzip or plain) or CSV")],
    format: Annotated[str, typer.Option("--format", "-f", help="nab, kdd or csv")] = "nab",
    rows: Annotated[int, typer.Option(help="rows to print (first and last)")] = 20,
    out: Annotated[Path | None, typer.Option(help="write the whole table as CSV")] = None,
    tz: Annotated[str, typer.Option(help="time zone of hour/day features (sensors)")] = "UTC",
    seasonal_period: Annotated[
        float | None, typer.Option(help="seconds of a season to difference (e.g. 86400)")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="KDD: read only the first N rows")] = None,
) -> None:
    """Print the feature table the detectors see: one row per event, named columns,
    calendar features and the differencing / stationarity decision."""
    from windowing.table import feature_table, format_feature_table

    opts: dict[str, object] = {}
    if format in ("nab", "csv"):
        opts.update(tz=tz, seasonal_period=seasonal_period)
    if format == "kdd" and limit is not None:
        opts["nrows"] = limit
    try:
        table = feature_table(path, format, **opts)
    except (OSError, ValueError) as exc:
        err.print(f"[red]cannot read {path}:[/] {exc}")
        raise typer.Exit(2) from exc
    console.print(format_feature_table(table, max_rows=rows), markup=False, highlight=False)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out)
        console.print(f"[dim]written {out} ({len(table)} rows)[/]")


@app.command()
def replay(
    path: Annotated[Path, typer.Argument(help="NAB folder/file, KDD file or CSV")],
    format: Annotated[str, typer.Option("--format", "-f", help="nab, kdd or csv")] = "nab",
    speed: Annotated[
        float, typer.Option(help="event-time seconds per wall second; 0 = as fast as possible")
    ] = 0.0,
    limit: Annotated[int | None, typer.Option(help="send at most this many events")] = None,
) -> None:
    """Publish a recorded dataset to Kafka in event-time order."""
    from streams.replay import replay as run_replay

    settings = _settings()
    t = settings.topics
    try:
        with console.status("replaying…") as st:
            res = run_replay(
                settings.kafka.bootstrap_servers,
                {"sensors": t.sensors, "connections": t.connections},
                path,
                format,
                speed=speed,
                limit=limit,
                on_progress=lambda n: st.update(f"replaying… {n:,} events"),
            )
    except (OSError, ValueError) as exc:
        err.print(f"[red]cannot replay {path}:[/] {exc}")
        raise typer.Exit(2) from exc
    console.print_json(json.dumps(res))


@app.command()
def demo(
    duration: Annotated[float, typer.Option(help="seconds of simulated traffic")] = 60.0,
    rate: Annotated[float, typer.Option(help="sensor readings per second")] = 50.0,
    conn_rate: Annotated[float, typer.Option(help="connections per second")] = 100.0,
) -> None:
    """Everything on one machine: stack, topics, worker, simulators, live alerts, summary."""
    from streams.demo import run_demo

    summary = run_demo(
        _settings(), duration_s=duration, rate=rate, conn_rate=conn_rate, console=console
    )
    ok = (
        summary.scored_events == summary.events_sent
        and summary.alerts > 0
        and summary.influx_score_points == summary.scored_events
        and summary.conn_scored_events == summary.conn_events_sent
        and summary.conn_influx_points > 0
    )
    if not ok:
        err.print(
            "[red]demo incomplete[/]: expected scores for every event, alerts, and "
            "every score in InfluxDB — see the table above and the worker log"
        )
        raise typer.Exit(1)


@app.command()
def bench(
    events: Annotated[int, typer.Option(help="backlog events per worker mode")] = 20_000,
    paced: Annotated[int, typer.Option(help="events sent at --rate for latency")] = 3_000,
    rate: Annotated[float, typer.Option(help="events/s of the latency phase")] = 500.0,
    out: Annotated[Path, typer.Option(help="JSON results")] = Path("reports/bench.json"),
    detectors_only: Annotated[
        bool, typer.Option("--detectors-only", help="only the detector micro-benchmark")
    ] = False,
    sensor_detector: Annotated[
        list[str] | None,
        typer.Option(
            "--sensor-detector",
            help="also run the full pipeline with this sensor detector (repeatable), "
            "compared with the configured one in the same run",
        ),
    ] = None,
) -> None:
    """End-to-end throughput/latency through the real Kafka + InfluxDB vs a pass-through
    worker, and a detector micro-benchmark (scores/s, batch and one at a time)."""
    from evaluation.microbench import run_microbench
    from streams.bench import run_bench
    from streams.localstack import LocalStack

    settings = _settings()
    micro = run_microbench(console=console)  # prints its own table
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_name(out.stem + "-detectors.json").write_text(json.dumps(micro, indent=2, default=str))
    if detectors_only:
        return
    LocalStack(settings).up()
    res = run_bench(
        settings,
        events=events,
        paced_events=paced,
        rate=rate,
        out=out,
        progress=lambda msg: err.print(f"[dim]{msg}[/]"),
        sensor_detectors=sensor_detector or (),
    )
    table = Table(title="anomstream bench (end to end, real Kafka + InfluxDB)")
    for col in ("mode", "phase", "events", "events/s", "p50 ms", "p99 ms", "CPU s", "peak RSS MB"):
        table.add_column(col, justify="right")
    for r in res["results"]:
        table.add_row(
            r["mode"],
            r["phase"],
            str(r["events"]),
            f"{r['events_per_s']:,.0f}",
            "-" if r["latency_p50_ms"] is None else f"{r['latency_p50_ms']:.0f}",
            "-" if r["latency_p99_ms"] is None else f"{r['latency_p99_ms']:.0f}",
            f"{r['cpu_s']:.1f}",
            f"{r['peak_rss_mb']:.0f}",
        )
    console.print(table)
    for k, v in res["ratios"].items():
        console.print(f"{k}: {v:.2f}")
    console.print(f"[dim]written {out}[/]")


@app.command()
def train(
    path: Annotated[
        Path | None,
        typer.Argument(help="labelled connections: a KDD Cup 99 file (gzip or plain)"),
    ] = None,
    detector: Annotated[
        str,
        typer.Option(
            help="registered detector to train; the default, a classifier over the known "
            "classes, names them on alerts and was the best on the harder KDD checks "
            "(docs/detectors.md)"
        ),
    ] = "open_set_classifier",
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Detector parameter KEY=VALUE (repeat)."),
    ] = None,
    simulated: Annotated[
        int, typer.Option(help="train on this many simulated connections instead of PATH")
    ] = 0,
    nrows: Annotated[int | None, typer.Option(help="read only the first N rows of PATH")] = None,
    out: Annotated[
        Path | None, typer.Option(help="model folder (default: under the state dir)")
    ] = None,
    register: Annotated[
        bool, typer.Option("--register", help="register it as a candidate in the registry")
    ] = False,
    model_name: Annotated[
        str, typer.Option(help="registered model it is a version of (with --register)")
    ] = "connections",
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
) -> None:
    """Train a connection model for the connection agent to serve (set
    ANOMSTREAM_CONNECTION_DETECTOR__MODEL_PATH to the folder it prints)."""
    import pandas as pd

    from evaluation.cli import parse_params
    from retrain.served import train_connection_model
    from streams.simulator import ConnectionSimulator
    from windowing.readers import read_kdd

    settings = _settings()
    if (path is None) == (simulated <= 0):
        err.print("[red]train:[/] give a KDD file, or --simulated N (not both)")
        raise typer.Exit(2)
    t0 = time.monotonic()
    step = _step_printer(t0)
    if path is not None:
        step(f"reading {path}")
        frame = read_kdd(path, nrows=nrows)
        source = str(path)
    else:
        sim = ConnectionSimulator(start=time.time() - simulated / 100, seed=seed, rate=100.0)
        events = list(sim.events(simulated))
        frame = pd.DataFrame([e for e, _ in events]).assign(label=[lab for _, lab in events])
        source = f"simulated:{simulated}:seed{seed}"
    counts = frame["label"].value_counts()
    step(f"{len(frame):,} connections, {counts.get('normal', 0):,} normal, "
         f"{len(counts) - ('normal' in counts)} attack classes")
    try:
        model = train_connection_model(
            frame, detector, parse_params(param), seed=seed, progress=step
        )
    except (KeyError, ValueError) as exc:
        err.print(f"[red]train:[/] {str(exc).strip(chr(34))}")
        raise typer.Exit(2) from None
    folder = out or settings.state_dir / "models" / "connections" / model.version
    model.save(folder)
    step(f"saved {model.version} to {folder}")
    typer.echo(f"serve it: ANOMSTREAM_CONNECTION_DETECTOR__MODEL_PATH={folder}")
    if register:
        with _registry_errors():
            version = _model_registry(settings).register_candidate(
                model_name,
                folder,
                metrics={},
                params={**model.trained, "source": source},
            )
        step(f"registered as version {version} of {model_name!r}")


@app.command()
def trainer() -> None:
    """Run the trainer: follow the scores topic, retrain the served connection model on
    schedule or on request, register it, and publish the decision on model-events."""
    import signal
    import threading

    from streams.trainer import run_trainer

    settings = _settings()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    run_trainer(settings, stop)


@app.command()
def retrain(
    model: Annotated[str, typer.Argument(help="registered model to retrain")] = "connections",
) -> None:
    """Ask the trainer to retrain MODEL now (a retrain_requested record on model-events)."""
    from streams.trainer import request_retrain

    settings = _settings()
    request_retrain(settings, model)
    console.print(f"retrain of {model!r} requested on {settings.topics.model_events}")


@app.command()
def label(
    alert_id: Annotated[str, typer.Argument(help="alert_id of the alert (anomstream alerts)")],
    verdict: Annotated[
        str, typer.Option(help="true: a real incident; false: a false alarm")
    ] = ...,  # type: ignore[assignment]
    note: Annotated[str | None, typer.Option(help="free text kept with the verdict")] = None,
) -> None:
    """Record an analyst's verdict on an alert (the labels topic): the trainer keeps a
    confirmed incident's connections out of training and adds a false alarm's back."""
    from streams.trainer import publish_label

    value = verdict.strip().lower()
    if value not in ("true", "false"):
        err.print(f"[red]label:[/] --verdict must be true or false, not {verdict!r}")
        raise typer.Exit(2)
    settings = _settings()
    publish_label(settings, alert_id, value == "true", note)
    console.print(f"verdict {value} for alert {alert_id} published on {settings.topics.labels}")


thresholds_app = typer.Typer(
    name="thresholds",
    help="Alert thresholds from analysts' verdicts (anomstream label).",
    no_args_is_help=True,
)
app.add_typer(thresholds_app, name="thresholds")


@thresholds_app.command("suggest")
def thresholds_suggest(
    source: Annotated[str, typer.Option(help="connections or sensors")] = "connections",
    objective: Annotated[str, typer.Option(help="fbeta or cost")] = "fbeta",
    beta: Annotated[float, typer.Option(help="F-beta's beta (recall weighs beta times)")] = 1.0,
    cost_fn: Annotated[float, typer.Option(help="cost of a missed incident")] = 10.0,
    cost_fp: Annotated[float, typer.Option(help="cost of a false alarm")] = 1.0,
    min_verdicts: Annotated[int, typer.Option(help="fewest labelled alerts to decide on")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Suggest an alert threshold from the labelled alerts (read from the alerts and
    labels topics): the best one for the objective, never below the current one."""
    from retrain.feedback import suggest_threshold
    from streams.observe import read_topic
    from streams.scoring import sensor_alert_policy
    from streams.trainer import parse_label

    settings = _settings()
    scores = {}
    for record in read_topic(settings, settings.topics.alerts):
        try:
            alert = record.json()
            if isinstance(alert, dict) and alert.get("source") == source:
                scores[str(alert["alert_id"])] = float(alert["score"])
        except (ValueError, KeyError, TypeError):
            continue  # not an alert this command can use
    verdicts = {}
    for record in read_topic(settings, settings.topics.labels):
        parsed = parse_label(record.value)
        if parsed is not None:
            verdicts[parsed[0]] = parsed[1]  # the latest verdict on an alert wins
    if source == "connections":
        current, setting = settings.alerts.connections_threshold, "ALERTS__CONNECTIONS_THRESHOLD"
    else:
        current, setting = sensor_alert_policy(settings).threshold, "ALERTS__THRESHOLD"
    try:
        s = suggest_threshold(source, scores, verdicts, current, objective=objective, beta=beta,
                              cost_fn=cost_fn, cost_fp=cost_fp, min_verdicts=min_verdicts)
    except ValueError as exc:
        err.print(f"[red]thresholds:[/] {exc}")
        raise typer.Exit(2) from None
    if as_json:
        _print_json({**s.to_dict(), "setting": f"ANOMSTREAM_{setting}"})
        return
    console.print(
        f"{s.verdicts} labelled {source} alerts ({s.confirmed} incidents, {s.false_alarms} "
        f"false alarms); {s.objective} {s.value:.3f}\n"
        f"threshold {s.current:.6g} -> {s.suggested:.6g}: removes {s.false_alarms_removed} "
        f"false alarms, misses {s.incidents_missed} incidents (precision {s.precision:.2f}, "
        f"recall {s.recall:.2f} among the labelled alerts)"
    )
    typer.echo(f"apply: ANOMSTREAM_{setting}={s.suggested:.6g}")


@app.command()
def alerts(
    from_beginning: Annotated[bool, typer.Option("--from-beginning")] = False,
    follow: Annotated[bool, typer.Option("--follow/--no-follow")] = True,
) -> None:
    """Tail the alert topic, human-readable."""
    from kafka import KafkaConsumer

    settings = _settings()
    consumer = KafkaConsumer(
        settings.topics.alerts,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
        consumer_timeout_ms=None if follow else 3000,
    )
    from streams.demo import format_alert

    try:
        for msg in consumer:
            try:
                console.print(format_alert(json.loads(msg.value)))
            except (ValueError, KeyError, TypeError):
                console.print(f"[yellow]unreadable alert at offset {msg.offset}[/]: {msg.value!r}")
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()


# -- models: the registry of the retraining loop ------------------------------------------------
models_app = typer.Typer(
    name="models",
    help="The model registry (MLflow): list, show, promote and roll back detector versions; "
    "alias 'champion' is the version workers run. See docs/registry.md.",
    no_args_is_help=True,
)
app.add_typer(models_app, name="models")

JsonOption = Annotated[bool, typer.Option("--json", help="print JSON instead of tables")]


def _model_registry(settings: Settings) -> ModelRegistry:
    # Imported here: retrain.registry pulls MLflow in lazily, but even its module is not
    # needed by the other commands.
    from streams.serving import open_registry

    return open_registry(settings)


@contextmanager
def _registry_errors() -> Iterator[None]:
    """Registry refusals (unknown model, nothing to roll back to) as one red line, exit 2."""
    from retrain.registry import RegistryError

    try:
        yield
    except RegistryError as exc:
        err.print(f"[red]models:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    except Exception as exc:
        # MLflow's own errors (a server that refuses, a bad URI) carry their message; the
        # traceback adds nothing for an operator.
        if type(exc).__module__.startswith("mlflow"):
            err.print(f"[red]models (MLflow):[/] {exc}", highlight=False)
            raise typer.Exit(2) from None
        raise


def publish_model_event(settings: Settings, event: dict[str, Any]) -> bool:
    """Send a ``promoted`` / ``rolled_back`` / ``trained`` record to the ``model-events``
    topic, keyed by the model's name; False (and a warning) if the broker cannot be
    reached: the registry change itself is already durable."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    from streams.localstack.kafka import unreachable

    servers = settings.kafka.bootstrap_servers
    down = unreachable(servers)
    if down is not None:
        err.print(f"[yellow]model event not published:[/] {down}", highlight=False)
        return False
    try:
        producer = KafkaProducer(bootstrap_servers=servers, acks="all", client_id="anomstream-cli")
        try:
            producer.send(
                settings.topics.model_events,
                key=str(event.get("model", "")).encode(),
                value=json.dumps(event, default=str).encode(),
            ).get(timeout=30)
        finally:
            producer.close()
    except KafkaError as exc:
        err.print(f"[yellow]model event not published:[/] {exc}", highlight=False)
        return False
    return True


def _print_json(obj: Any) -> None:
    # Plain stdout, not rich: scripts parse it, and rich would wrap long strings.
    typer.echo(json.dumps(obj, indent=2, default=str))


def _short_time(value: str | None) -> str:
    """``2026-01-01T00:00:00+00:00`` → ``2026-01-01 00:00`` (tables are narrow; --json has
    the full value)."""
    if not value:
        return "?"
    text = value.replace("T", " ")
    return text[:16] if len(text) >= 16 and text[10] == " " else text


def _versions_table(versions: list[VersionInfo], metric: str) -> Table:
    table = Table(show_header=True, title="registered detector versions")
    table.add_column("model")
    table.add_column("ver", justify="right", no_wrap=True)
    table.add_column("aliases")
    table.add_column("detector")
    table.add_column("trained on")
    table.add_column(metric, justify="right")
    table.add_column("registered")
    for v in versions:
        value = v.metrics.get(metric)
        table.add_row(
            v.model,
            v.version,
            ", ".join(v.aliases) or "-",
            v.detector or "-",
            f"{_short_time(v.data_start)} → {_short_time(v.data_end)}",
            "-" if value is None else f"{value:.4g}",
            _short_time(v.created),
        )
    return table


@models_app.command("list")
def models_list(
    model: Annotated[str | None, typer.Argument(help="one registered model (default: all)")] = None,
    as_json: JsonOption = False,
) -> None:
    """Every registered version, newest first: aliases, training range, promotion metric."""
    settings = _settings()
    with _registry_errors():
        versions = _model_registry(settings).list_versions(model)
    if as_json:
        _print_json([v.to_dict() for v in versions])
        return
    if not versions:
        console.print("no registered models" if model is None else f"{model}: no versions")
        return
    console.print(_versions_table(versions, settings.registry.promotion_metric))


@models_app.command("show")
def models_show(
    model: Annotated[str, typer.Argument(help="registered model name")],
    version: Annotated[str, typer.Argument(help="version number or alias (e.g. champion)")],
    as_json: JsonOption = False,
) -> None:
    """One version: lineage, metrics, parameters and the sha256 of every file."""
    settings = _settings()
    with _registry_errors():
        info = _model_registry(settings).show(model, version)
    if as_json:
        _print_json(info.to_dict())
        return
    head = Table(show_header=False, title=f"{info.model} version {info.version}")
    head.add_column("field", style="bold")
    head.add_column("value", overflow="fold")
    for key, value in (
        ("aliases", ", ".join(info.aliases) or "-"),
        ("detector", info.detector or "-"),
        ("trained on", f"{info.data_start or '?'} .. {info.data_end or '?'}"),
        ("created", info.created or "-"),
        ("status", info.status),
        ("description", info.description or "-"),
        ("source", info.source),
        ("run", info.run_id or "-"),
    ):
        head.add_row(key, value)
    console.print(head)
    for title, rows in (
        ("metrics", {k: f"{v:.6g}" for k, v in sorted(info.metrics.items())}),
        ("parameters", dict(sorted(info.params.items()))),
        ("sha256 (checked before loading)", dict(sorted(info.sha256.items()))),
        ("tags", dict(sorted(info.tags.items()))),
    ):
        if not rows:
            continue
        table = Table(show_header=False, title=title)
        table.add_column("name", style="bold")
        table.add_column("value", overflow="fold")
        for key, value in rows.items():
            table.add_row(key, value)
        console.print(table)


@models_app.command("promote")
def models_promote(
    model: Annotated[str, typer.Argument(help="registered model name")],
    version: Annotated[str, typer.Argument(help="candidate version number")],
    force: Annotated[
        bool, typer.Option("--force", help="move champion even if the rule says worse")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Make VERSION the champion if not worse on the promotion metric (exit 1 if rejected)."""
    settings = _settings()
    with _registry_errors():
        decision = _model_registry(settings).promote(model, version, force=force)
    event = decision.event()
    published = publish_model_event(settings, event) if event is not None else False
    if as_json:
        _print_json({**decision.to_dict(), "event": event, "published": published})
    else:
        colour = {"promoted": "green", "rejected": "red", "unchanged": "yellow"}[decision.status]
        console.print(
            f"[{colour}]{decision.status}[/]: {model} version {decision.version} — "
            f"{decision.reason}",
            highlight=False,
        )
        if decision.promoted:
            console.print(f"champion: {decision.previous_champion or '-'} → {decision.version}")
    if decision.status == "rejected":
        raise typer.Exit(1)


@models_app.command("rollback")
def models_rollback(
    model: Annotated[str, typer.Argument(help="registered model name")],
    as_json: JsonOption = False,
) -> None:
    """Move champion back to the version that held it before the current one."""
    settings = _settings()
    with _registry_errors():
        result = _model_registry(settings).rollback(model)
    event = result.event()
    published = publish_model_event(settings, event)
    if as_json:
        _print_json({**result.to_dict(), "event": event, "published": published})
    else:
        console.print(
            f"[green]rolled back[/]: {model} champion {result.from_version} → "
            f"{result.to_version}",
            highlight=False,
        )


_register_evaluate()


def main() -> None:
    try:
        app()
    except (RuntimeError, TimeoutError) as exc:
        err.print(f"[red]error:[/] {exc}")
        sys.exit(1)


if __name__ == "__main__":
    main()
