"""Evaluation report: PNG plots and one self-contained ``report.html``.

Plots (matplotlib, Agg backend, no display needed):

* ``timeline_<series>.png`` — value and calibrated score over time, labelled anomalies
  shaded red, rows not scored (NAB probation, readings the feature pipeline refused) shaded
  grey, detections at the chosen threshold marked;
* ``roc.png`` / ``pr.png`` — ROC and precision-recall curves with the operating points;
* ``threshold_sweep.png`` — precision, recall, F1, F2 and the cost of errors against the
  threshold (logit axis: the useful thresholds of tail-probability scores are 0.99, 0.999...);
* ``score_hist.png`` — score distributions of normal and anomalous rows;
* ``confusion.png`` — confusion counts at each operating point;
* ``nab_threshold.png`` — normalised NAB score against the corpus threshold (NAB only).

``report.html`` inlines every PNG (base64) and the metric tables, so it can be mailed or
attached to a ticket as one file.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: CI and stream workers have no display

import matplotlib.pyplot as plt
import numpy as np

from detectors import metrics

__all__ = [
    "ReportData",
    "SeriesView",
    "plot_confusion",
    "plot_nab_thresholds",
    "plot_roc_pr",
    "plot_score_hist",
    "plot_threshold_sweep",
    "plot_timeline",
    "slug",
    "write_report",
]

_MAX_LINE_POINTS = 20_000
_MAX_CURVE_POINTS = 4_000
_MAX_MARKERS = 3_000
_COLORS = {
    "best F1": "tab:orange",
    "label-free": "tab:purple",
    "min cost": "tab:brown",
    "NAB standard": "k",
}
_EPS = 1e-7
_MAX_SURPRISE = 12.0


def _surprise(v: np.ndarray) -> np.ndarray:
    """``-log10(1 - v)``: 0.9 → 1, 0.99 → 2... spreads tail-probability scores near 1."""
    return -np.log10(np.clip(1.0 - np.asarray(v, dtype=np.float64), 10.0**-_MAX_SURPRISE, 1.0))


def _unsurprise(u: np.ndarray) -> np.ndarray:
    return 1.0 - 10.0 ** (-np.asarray(u, dtype=np.float64))


def _surprise_axis(ax: plt.Axes, which: str, top: float) -> None:
    """Put a [0, 1] score axis on the ``-log10(1 - score)`` scale, ticks labelled as scores."""
    decades = int(min(max(math.ceil(top), 2), _MAX_SURPRISE))
    step = math.ceil(decades / 6)
    ks = range(1, decades + 1, step)
    ticks = [0.0, 0.5] + [1 - 10.0**-k for k in ks]
    labels = ["0", "0.5"] + [f"1-1e-{k}" if k > 4 else f"{1 - 10.0**-k:.{k}f}" for k in ks]
    if which == "x":
        ax.set_xscale("function", functions=(_surprise, _unsurprise))
        ax.set_xticks(ticks, labels, rotation=30, fontsize=8)
        ax.set_xlim(0.0, 1 - 10.0 ** -(decades + 0.2))
    else:
        ax.set_yscale("function", functions=(_surprise, _unsurprise))
        ax.set_yticks(ticks, labels, fontsize=8)
        ax.set_ylim(0.0, 1 - 10.0 ** -(decades + 0.2))


@dataclass
class SeriesView:
    """What a timeline plot needs about one series."""

    name: str
    x: np.ndarray
    values: np.ndarray | None
    scores: np.ndarray
    labels: np.ndarray
    threshold: float
    scorable: np.ndarray | None = None


@dataclass
class ReportData:
    """Arrays behind the plots. ``y``/``s`` are the pooled labelled rows that were scored."""

    title: str
    y: np.ndarray
    s: np.ndarray
    thresholds: dict[str, float]
    series: list[SeriesView] = field(default_factory=list)
    nab_curves: dict[str, tuple[np.ndarray, np.ndarray, float]] | None = None
    cost_fn: float = 1.0
    cost_fp: float = 1.0


def slug(name: str) -> str:
    """A file-name-safe version of a series name.

    >>> slug("realKnownCause/machine_temperature_system_failure.csv")
    'realKnownCause_machine_temperature_system_failure'
    """
    stem = re.sub(r"\.csv$", "", name)
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("_") or "series"


def _thin(n: int, limit: int) -> np.ndarray:
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).astype(np.int64))


def _bucket_max(x: np.ndarray, y: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    # A plain subsample would hide the very spikes the plot is about: keep each bucket's max.
    n = y.size
    if n <= limit:
        return x, y
    size = math.ceil(n / limit)
    pad = (-n) % size
    yy = np.r_[y, np.full(pad, -np.inf)].reshape(-1, size)
    arg = yy.argmax(axis=1) + np.arange(yy.shape[0]) * size
    return x[arg], y[arg]


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    m = np.r_[False, np.asarray(mask, dtype=bool), False].astype(np.int8)
    d = np.diff(m)
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1, strict=True))


def _shade(
    ax: plt.Axes, x: np.ndarray, mask: np.ndarray, color: str, alpha: float, label: str
) -> None:
    runs = _runs(mask)
    if len(runs) > 2000:
        # fill_between with where= draws thousands of runs in one artist.
        ax.fill_between(
            x,
            0,
            1,
            where=mask,
            transform=ax.get_xaxis_transform(),
            color=color,
            alpha=alpha,
            lw=0,
            label=label,
        )
        return
    for k, (a, b) in enumerate(runs):
        lo = x[a]
        hi = x[b] if b > a else x[min(b + 1, x.size - 1)]
        ax.axvspan(lo, hi, color=color, alpha=alpha, lw=0, label=label if k == 0 else None)


def _in_unit(v: np.ndarray) -> bool:
    return bool(v.size) and float(v.min()) >= 0.0 and float(v.max()) <= 1.0


def _legend_above(ax: plt.Axes, ncol: int = 5) -> None:
    # Above the axes, so the legend never hides the spikes it describes.
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), fontsize=8, ncol=ncol, frameon=False)


def plot_timeline(view: SeriesView, path: Path) -> Path:
    """Value (if any) and score over time with labelled anomalies and detections.

    Scores in [0, 1] are drawn on the ``-log10(1 - score)`` scale: with tail-probability
    scores every normal row is uniform on [0, 1], and only that scale separates 0.999 from
    0.999999.
    """
    n = view.scores.size
    x = np.asarray(view.x) if view.x is not None else np.arange(n)
    det = view.scores >= view.threshold
    if view.scorable is not None:
        det &= view.scorable
    det_idx = np.flatnonzero(det)
    if det_idx.size > _MAX_MARKERS:
        det_idx = det_idx[_thin(det_idx.size, _MAX_MARKERS)]
    panels = 2 if view.values is not None else 1
    fig, axes = plt.subplots(
        panels, 1, figsize=(12, 3.0 * panels + 0.9), sharex=True, squeeze=False
    )
    axes = axes[:, 0]
    for ax in axes:
        _shade(ax, x, view.labels.astype(bool), "tab:red", 0.18, "labelled anomaly")
        if view.scorable is not None and (~view.scorable).any():
            _shade(ax, x, ~view.scorable, "0.5", 0.2, "not scored")
    if view.values is not None:
        ax = axes[0]
        keep = _thin(n, _MAX_LINE_POINTS)
        ax.plot(x[keep], view.values[keep], lw=0.7, color="tab:blue", label="value")
        ax.plot(
            x[det_idx],
            view.values[det_idx],
            "v",
            ms=6,
            color="tab:red",
            label=f"detection ({int(det.sum())})",
        )
        ax.set_ylabel("value")
        _legend_above(ax)
    ax = axes[-1]
    xs, ys = _bucket_max(x, view.scores, _MAX_LINE_POINTS)
    ax.plot(xs, ys, lw=0.6, color="tab:green", label="anomaly score")
    ax.plot(
        x[det_idx],
        view.scores[det_idx],
        "o",
        ms=4,
        color="tab:red",
        label=None if view.values is not None else f"detection ({int(det.sum())})",
    )
    ax.axhline(view.threshold, ls="--", lw=0.9, color="k", label=f"threshold {view.threshold:.6g}")
    if _in_unit(view.scores) and view.threshold <= 1.0:
        top = float(np.max(_surprise(np.r_[view.scores, view.threshold])))
        _surprise_axis(ax, "y", top + 0.5)
        ax.set_ylabel("score (tail scale)")
    else:
        ax.set_ylabel("score")
    _legend_above(ax)
    fig.suptitle(
        f"{view.name}: {n:,} rows, {int(view.labels.sum()):,} labelled anomalous, "
        f"{int(det.sum()):,} detections",
        fontsize=10,
    )
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _op_points(
    y: np.ndarray, s: np.ndarray, thresholds: dict[str, float]
) -> dict[str, dict[str, float]]:
    out = {}
    for name, t in thresholds.items():
        rep = metrics.classification_report(y, s, t)
        out[name] = {"fpr": rep["fpr"], "tpr": rep["recall"], "precision": rep["precision"]}
    return out


def plot_roc_pr(data: ReportData, out_dir: Path) -> list[Path]:
    """``roc.png`` and ``pr.png``."""
    y, s = data.y, data.s
    fpr, tpr, _ = metrics.roc_curve(y, s)
    prec, rec, _ = metrics.precision_recall_curve(y, s)
    auc = metrics.roc_auc(y, s)
    ap = metrics.average_precision(y, s)
    ops = _op_points(y, s, data.thresholds)

    fig, ax = plt.subplots(figsize=(5.5, 5))
    k = _thin(fpr.size, _MAX_CURVE_POINTS)
    ax.plot(fpr[k], tpr[k], lw=1.5, label=f"detector (AUC = {auc:.3f})")
    ax.plot([0, 1], [0, 1], ls=":", color="0.5", label="chance")
    for name, p in ops.items():
        ax.plot(p["fpr"], p["tpr"], "o", color=_color(name), label=name)
    ax.set(
        xlabel="false positive rate",
        ylabel="true positive rate (recall)",
        xlim=(0, 1),
        ylim=(0, 1.01),
        title="ROC curve",
    )
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    roc = out_dir / "roc.png"
    fig.savefig(roc, dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.5, 5))
    k = _thin(rec.size, _MAX_CURVE_POINTS)
    ax.step(
        np.r_[0.0, rec[k]],
        np.r_[prec[k][0], prec[k]],
        where="post",
        lw=1.5,
        label=f"detector (AP = {ap:.3f})",
    )
    ax.axhline(y.mean(), ls=":", color="0.5", label=f"prevalence {y.mean():.3f}")
    for name, p in ops.items():
        ax.plot(p["tpr"], p["precision"], "o", color=_color(name), label=name)
    ax.set(
        xlabel="recall",
        ylabel="precision",
        xlim=(0, 1),
        ylim=(0, 1.01),
        title="Precision-recall curve",
    )
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    pr = out_dir / "pr.png"
    fig.savefig(pr, dpi=100)
    plt.close(fig)
    return [roc, pr]


def _color(name: str) -> str:
    return _COLORS.get(name, "k")


def plot_threshold_sweep(data: ReportData, path: Path) -> Path:
    """Precision / recall / F-scores (top) and cost (bottom) against the threshold."""
    sw = metrics.threshold_sweep(data.y, data.s, cost_fn=data.cost_fn, cost_fp=data.cost_fp)
    t = sw["threshold"]
    # Precision is undefined without detections: leave the "alert on nothing" end out.
    some = (sw["tp"] + sw["fp"]) > 0
    unit = _in_unit(data.s)
    k = _thin(t.size, _MAX_CURVE_POINTS)
    ks = k[some[k]]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 7.5), sharex=True)
    for key, color in (
        ("precision", "tab:blue"),
        ("recall", "tab:green"),
        ("f1", "tab:orange"),
        ("f2", "tab:red"),
    ):
        ax1.plot(t[ks], sw[key][ks], lw=1.2, color=color, label=key)
    ax1.set(ylabel="value", ylim=(0, 1.02))
    fig.suptitle("Threshold sweep: alert when score ≥ threshold", fontsize=11)
    ax2.plot(t[k], sw["cost"][k], lw=1.2, color="tab:brown", label="cost")
    kmin = int(np.flatnonzero(sw["cost"] == sw["cost"].min())[-1])
    ax2.plot(
        t[kmin],
        sw["cost"][kmin],
        "o",
        color="tab:brown",
        label=f"min cost {sw['cost'][kmin]:,.4g} at {t[kmin]:.6g}",
    )
    ax2.set(ylabel=f"cost = {data.cost_fn:g}·FN + {data.cost_fp:g}·FP", xlabel="threshold")
    for name, th in data.thresholds.items():
        for ax in (ax1, ax2):
            ax.axvline(th, ls="--", lw=0.9, color=_color(name), label=f"{name} ({th:.6g})")
    if unit:
        top = float(np.max(_surprise(np.r_[t[t <= 1.0], list(data.thresholds.values())])))
        _surprise_axis(ax2, "x", top + 0.3)
    for ax in (ax1, ax2):
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_score_hist(data: ReportData, path: Path) -> Path:
    """Normal vs anomalous score densities, linear and as ``-log10(1 - score)``."""
    y = data.y.astype(bool)
    s = data.s
    unit = _in_unit(s)
    fig, axes = plt.subplots(1, 2 if unit else 1, figsize=(11 if unit else 6, 4), squeeze=False)
    views = [("score", s)]
    if unit:
        views.append(("tail scale −log10(1 − score)", _surprise(s)))
    for ax, (label, v) in zip(axes[0], views, strict=True):
        bins = np.linspace(float(v.min()), float(v.max()) + 1e-12, 60)
        for mask, name, color in ((~y, "normal", "tab:blue"), (y, "anomalous", "tab:red")):
            if mask.any():
                ax.hist(
                    v[mask],
                    bins=bins,
                    density=True,
                    alpha=0.5,
                    color=color,
                    label=f"{name} ({int(mask.sum()):,})",
                )
        for name, th in data.thresholds.items():
            tv = th if label == "score" else float(_surprise(th))
            ax.axvline(tv, ls="--", lw=0.9, color=_color(name), label=name)
        ax.set_yscale("log")
        ax.set(xlabel=label, ylabel="density")
        ax.legend(fontsize=8)
    axes[0][0].set_title("Score distribution by label")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_confusion(data: ReportData, path: Path) -> Path:
    """2×2 confusion counts at each named threshold."""
    names = list(data.thresholds)
    ncols = max(len(names), 1)
    fig, axes = plt.subplots(1, ncols, figsize=(4 * ncols, 3.8), squeeze=False)
    for ax, name in zip(axes[0], names, strict=False):
        c = metrics.confusion_counts(data.y, data.s >= data.thresholds[name])
        mat = np.array([[c["tn"], c["fp"]], [c["fn"], c["tp"]]])
        ax.imshow(np.log1p(mat), cmap="Blues", vmin=0)
        for (i, j), v in np.ndenumerate(mat):
            dark = np.log1p(v) > np.log1p(mat.max()) / 2
            ax.text(
                j,
                i,
                f"{['TN', 'FP', 'FN', 'TP'][2 * i + j]}\n{v:,}",
                ha="center",
                va="center",
                color="white" if dark else "black",
            )
        ax.set_xticks([0, 1], ["predicted normal", "predicted anomaly"], fontsize=8)
        ax.set_yticks([0, 1], ["normal", "anomalous"], fontsize=8)
        ax.set_title(f"{name}: score ≥ {data.thresholds[name]:.6g}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_nab_thresholds(
    curves: dict[str, tuple[np.ndarray, np.ndarray, float]], path: Path
) -> Path:
    """Normalised NAB score against the corpus threshold, one line per profile."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    tops = []
    for name, (t, score, chosen) in curves.items():
        keep = t <= 1.0  # drop NAB's "no detection" starting point at 1.1
        k = np.flatnonzero(keep)[_thin(int(keep.sum()), _MAX_CURVE_POINTS)]
        best = int(np.argmax(score))
        (line,) = ax.plot(
            t[k], score[k], lw=1.2, label=f"{name}: {score[best]:.1f} at threshold {chosen:.6g}"
        )
        ax.plot(chosen, score[best], "o", color=line.get_color())
        tops.append(float(np.max(_surprise(t[keep]))) if keep.any() else 1.0)
    ax.axhline(0, color="0.5", lw=0.8, ls=":")
    _surprise_axis(ax, "x", max(tops) + 0.3)
    lo = min(float(np.min(c[1])) for c in curves.values())
    ax.set_ylim(max(lo, -100.0) - 2, 102.0)
    ax.set(
        xlabel="corpus threshold (detect when score ≥ threshold)",
        ylabel="normalised NAB score",
        title="NAB score vs threshold",
    )
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# -- HTML -----------------------------------------------------------------------------------
def _cell(v: Any, key: str = "") -> str:
    if isinstance(v, float):
        # Thresholds of tail-probability scores live at 0.9999...: 4 digits would say "1".
        digits = 10 if key == "threshold" else 4
        return "–" if not math.isfinite(v) else f"{v:.{digits}g}"
    if v is None:
        return "–"
    return html.escape(str(v))


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    if not rows:
        return ""
    cols = list(columns or rows[0].keys())
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(r.get(c), c)}</td>" for c in cols) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1250px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;
font-size:13px;text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}
img{max-width:100%}figure{margin:1em 0}figcaption{font-size:12px;color:#555}
pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:12px}"""


def _html(
    result: dict[str, Any], figures: list[tuple[Path, str]], cards: list[dict[str, Any]]
) -> str:
    m = result.get("metrics", {})
    parts = [
        f"<h1>anomstream evaluation — {html.escape(str(result.get('detector')))}"
        f" on {html.escape(str(result.get('path')))}</h1>",
        f"<p>format <b>{html.escape(str(result.get('format')))}</b>, "
        f"{result.get('n_rows', 0):,} rows scored online "
        f"({result.get('n_anomalous_rows', 0):,} labelled anomalous), "
        f"features <b>{html.escape(str(result.get('features')))}</b>, "
        f"calibration <b>{html.escape(str(result.get('calibration')))}</b>.</p>",
    ]
    if "nab" in result:
        rows = [
            {"profile": p, **{k: v for k, v in d.items() if k != "series"}}
            for p, d in result["nab"].items()
        ]
        parts += ["<h2>NAB scores (normalised 0–100)</h2>", _table(rows)]
        first = next(iter(result["nab"].values()))
        srows = [{"series": s, **d} for s, d in first.get("series", {}).items()]
        parts += [
            f"<h3>Per series at the {html.escape(next(iter(result['nab'])))} threshold</h3>",
            _table(srows),
        ]
    if m:
        ops = [
            {"operating point": k, **m[k]} for k in ("best_f1", "label_free", "min_cost") if k in m
        ]
        parts += [
            "<h2>Detection metrics</h2>",
            f"<p>ROC AUC <b>{_cell(m.get('roc_auc'))}</b>, average precision "
            f"<b>{_cell(m.get('average_precision'))}</b>.</p>",
            _table(
                ops,
                [
                    "operating point",
                    "threshold",
                    "precision",
                    "recall",
                    "f1",
                    "f2",
                    "fpr",
                    "tp",
                    "fp",
                    "tn",
                    "fn",
                ],
            ),
        ]
    if "categories" in result:
        rows = [{"category": c, **d} for c, d in result["categories"].items()]
        parts += ["<h2>Per attack category</h2>", _table(rows)]
    if cards:
        flat = [
            {
                **{k: v for k, v in c.items() if k not in ("params", "metrics")},
                "params": ", ".join(f"{k}={v}" for k, v in c["params"].items()),
                **c["metrics"],
            }
            for c in cards
        ]
        parts += ["<h2>Model cards</h2>", _table(flat)]
    parts.append("<h2>Plots</h2>")
    parts += [_img(p, cap) for p, cap in figures]
    parts += ["<h2>Raw result</h2>", f"<pre>{html.escape(json.dumps(result, indent=2))}</pre>"]
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>anomstream evaluation</title>"
        f"<style>{_CSS}</style></head><body>{''.join(parts)}</body></html>"
    )


def write_report(
    out_dir: str | Path,
    data: ReportData,
    result: dict[str, Any],
    cards: list[dict[str, Any]] | None = None,
    max_timelines: int = 50,
) -> list[Path]:
    """Write every PNG and ``report.html`` into ``out_dir``; return their paths (HTML last)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures: list[tuple[Path, str]] = []
    for view in data.series[:max_timelines]:
        p = plot_timeline(view, out / f"timeline_{slug(view.name)}.png")
        figures.append((p, f"Score timeline: {view.name}"))
    if data.y.size and 0 < data.y.sum() < data.y.size:
        roc, pr = plot_roc_pr(data, out)
        figures += [(roc, "ROC curve"), (pr, "Precision-recall curve")]
        figures.append((plot_threshold_sweep(data, out / "threshold_sweep.png"), "Threshold sweep"))
    if data.y.size:
        figures.append((plot_score_hist(data, out / "score_hist.png"), "Score histograms"))
        figures.append((plot_confusion(data, out / "confusion.png"), "Confusion counts"))
    if data.nab_curves:
        figures.append(
            (
                plot_nab_thresholds(data.nab_curves, out / "nab_threshold.png"),
                "NAB score vs corpus threshold",
            )
        )
    page = out / "report.html"
    page.write_text(_html(result, figures, cards or []))
    return [p for p, _ in figures] + [page]
