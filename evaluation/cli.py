"""``anomstream evaluate``: the command-line face of :func:`run_evaluation`.

``evaluate_command`` is a plain function with typer annotations; the main CLI registers it
with ``app.command("evaluate")(evaluate_command)``. Progress bars and the human summary go
to stderr / the terminal; ``--json`` prints exactly one JSON object on stdout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from evaluation.harness import FORMATS, run_evaluation, to_json

__all__ = ["evaluate_command", "parse_params", "print_summary"]


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """``["window=500", "name=x"]`` → ``{"window": 500, "name": "x"}`` (values JSON if they parse).

    >>> parse_params(["window=500", "min_scale=0.1", "mode=fast"])
    {'window': 500, 'min_scale': 0.1, 'mode': 'fast'}
    """
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = json.loads(raw)
        except ValueError:
            out[key.strip()] = raw
    return out


def _f(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def print_summary(result: dict[str, Any], console: Console | None = None) -> None:
    """Human-readable tables of a result dict."""
    con = console or Console(stderr=False)
    con.print(
        f"[bold]{result['detector']}[/] on {result['path']} ({result['format']}): "
        f"{result.get('n_rows', 0):,} rows, {result.get('n_anomalous_rows', 0):,} anomalous"
    )
    if "nab" in result:
        t = Table(title="NAB (normalised, 0-100)")
        for col in (
            "profile",
            "score",
            "threshold",
            "raw",
            "null",
            "perfect",
            "windows hit",
            "FP rows",
        ):
            t.add_column(col, justify="right")
        for p, d in result["nab"].items():
            series = d.get("series", {}).values()
            hit = sum(s["windows_detected"] for s in series)
            total = sum(s["windows"] for s in series)
            t.add_row(
                p,
                _f(d["score"], 1),
                f"{d['threshold']:.6g}",
                _f(d["raw_score"]),
                _f(d["null_score"]),
                _f(d["perfect_score"]),
                f"{hit}/{total}",
                str(d["fp"]),
            )
        con.print(t)
    m = result.get("metrics", {})
    if m:
        con.print(
            f"ROC AUC {_f(m.get('roc_auc'))}   average precision {_f(m.get('average_precision'))}"
        )
        t = Table(title="Operating points")
        for col in (
            "point",
            "threshold",
            "precision",
            "recall",
            "F1",
            "F2",
            "FPR",
            "TP",
            "FP",
            "FN",
        ):
            t.add_column(col, justify="right")
        for key in ("best_f1", "label_free", "min_cost"):
            if key in m:
                d = m[key]
                t.add_row(
                    key,
                    f"{d['threshold']:.6g}",
                    _f(d["precision"]),
                    _f(d["recall"]),
                    _f(d["f1"]),
                    _f(d["f2"]),
                    _f(d["fpr"], 4),
                    str(d["tp"]),
                    str(d["fp"]),
                    str(d["fn"]),
                )
        con.print(t)
    if "categories" in result:
        t = Table(title="Per category")
        for col in (
            "category",
            "rows",
            "ROC AUC vs normal",
            "recall @best F1",
            "recall @label-free",
        ):
            t.add_column(col, justify="right")
        for c, d in result["categories"].items():
            if c == "normal":
                t.add_row(
                    c,
                    str(d["rows"]),
                    "",
                    f"FPR {_f(d['fpr_best_f1'], 4)}",
                    f"FPR {_f(d['fpr_label_free'], 4)}",
                )
            else:
                t.add_row(
                    c,
                    str(d["rows"]),
                    _f(d.get("roc_auc_vs_normal")),
                    _f(d["recall_best_f1"]),
                    _f(d["recall_label_free"]),
                )
        con.print(t)
    outputs = result.get("outputs", {})
    if "report" in outputs:
        con.print(f"report: {outputs['report']}")


def evaluate_command(
    path: Annotated[Path, typer.Argument(help="NAB corpus folder, KDD test file or labelled CSV.")],
    format: Annotated[
        str, typer.Option("--format", "-f", help=f"Dataset format: {', '.join(FORMATS)}.")
    ] = "nab",
    detector: Annotated[
        str | None, typer.Option("--detector", "-d", help="Registry name (default: per source).")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Detector parameter KEY=VALUE (repeat)."),
    ] = None,
    profile: Annotated[
        list[str] | None,
        typer.Option(
            "--profile", help="NAB profile (repeat): standard, reward_low_FP, reward_low_FN."
        ),
    ] = None,
    train: Annotated[
        Path | None, typer.Option("--train", help="Training file (KDD: required; CSV: optional).")
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write results, plots, report.html here.")
    ] = None,
    features: Annotated[
        str | None,
        typer.Option(
            "--features",
            help="Sensor series: auto|diff|level, optionally +time (default: auto+time for "
            "the default ensemble, auto otherwise).",
        ),
    ] = None,
    learn: Annotated[
        bool | None,
        typer.Option("--learn/--no-learn", help="Learn from evaluated rows after scoring."),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Online micro-batch size.")
    ] = None,
    alpha: Annotated[
        float, typer.Option("--alpha", help="Label-free threshold = 1 - alpha.")
    ] = 0.01,
    cost_fn: Annotated[
        float, typer.Option("--cost-fn", help="Cost of a missed anomalous row.")
    ] = 1.0,
    cost_fp: Annotated[float, typer.Option("--cost-fp", help="Cost of a false alarm.")] = 1.0,
    label_column: Annotated[
        str | None, typer.Option("--label-column", help="CSV label column (default: auto).")
    ] = None,
    report: Annotated[
        bool, typer.Option("--report/--no-report", help="Plots and report.html.")
    ] = True,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the train fit/calibration split.")
    ] = 0,
) -> None:
    """Replay a labelled dataset through a detector online and print its metrics."""
    try:
        result = run_evaluation(
            path,
            format=format,
            detector=detector,
            detector_params=parse_params(param),
            profiles=profile,
            train=train,
            out=out,
            features=features,
            learn=learn,
            batch_size=batch_size,
            alpha=alpha,
            cost_fn=cost_fn,
            cost_fp=cost_fp,
            label_column=label_column,
            report=report,
            progress=sys.stderr.isatty(),
            seed=seed,
        )
    except (ValueError, KeyError, FileNotFoundError) as exc:
        typer.echo(f"evaluate: {exc}", err=True)
        raise typer.Exit(code=2) from None
    if json_output:
        typer.echo(to_json(result, indent=None))
    else:
        print_summary(result)
