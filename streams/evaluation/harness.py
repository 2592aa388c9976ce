"""``run_evaluation``: replay a labelled dataset through a detector online and measure it.

Three input formats:

* ``nab`` — a NAB-layout corpus (``PATH/data/**.csv`` + ``PATH/labels/combined_windows.json``
  or ``PATH/windows.json``). One fresh detector per series, score-then-learn on every row,
  scores calibrated online to [0, 1]; NAB scores under the three profiles; with ``out``, the
  NAB results layout ``<out>/<detector>/<group>/<detector>_<file>.csv``.
* ``kdd`` — raw KDD Cup 99 files: fit on the normal rows of ``train``, score ``PATH`` in file
  order; ranking metrics, operating points, per-attack-category results; with ``out``,
  ``scores.csv`` (``row,label,score``).
* ``csv`` — a CSV with a label column and numeric features, replayed online like a sensor
  (optionally pre-fitted on the normal rows of ``train``).

The detector never sees a label: labels are used only to measure. The returned dict is the
``--json`` output; its keys are documented in ``docs/evaluation.md``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from detectors import metrics, nab
from detectors.base import Detector
from streams.evaluation import _readers
from streams.evaluation._calibration import ReferenceCalibrator, RunningCalibrator
from streams.evaluation._features import SENSOR_FEATURES, NumericScaler, sensor_features
from streams.evaluation.kdd_categories import CATEGORIES
from streams.evaluation.model_card import (
    ModelCard,
    build_model_card,
    cards_to_json,
    write_model_cards,
)
from streams.evaluation.online import (
    DEFAULT,
    DEFAULT_ENSEMBLE,
    default_detector_name,
    is_calibrated,
    make_detector,
    replay_online,
    score_in_batches,
)
from streams.evaluation.report import ReportData, SeriesView, write_report

__all__ = ["FORMATS", "SCHEMA_VERSION", "run_evaluation", "to_json"]

FORMATS = ("nab", "kdd", "csv")
#: Bumped when a key of the result dict changes meaning or disappears.
SCHEMA_VERSION = 1

_ONLINE_CALIBRATION_WINDOW = 2000
_WARMUP = 30
_CALIBRATION_FRACTION = 0.2
_MAX_FIT_ROWS = 50_000
_MAX_CALIBRATION_ROWS = 20_000


# -- helpers --------------------------------------------------------------------------------
def _clean(obj: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, NaN/inf to None, arrays dropped to lists."""
    if isinstance(obj, Mapping):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_clean(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    if isinstance(obj, Path):
        return str(obj)
    # Detector parameters may hold objects (an ensemble's members): keep their repr.
    return repr(obj)


def to_json(result: Mapping[str, Any], indent: int | None = 2) -> str:
    """The result as strict JSON (no NaN)."""
    return json.dumps(_clean(result), indent=indent, allow_nan=False)


def _binary_metrics(
    y: np.ndarray, s: np.ndarray, label_free: float, alpha: float, cost_fn: float, cost_fp: float
) -> dict[str, Any]:
    """Ranking metrics plus three operating points of pooled labelled scores."""
    out: dict[str, Any] = {"n_rows": int(y.size), "n_anomalous": int(y.sum())}
    if y.size == 0 or y.min() == y.max():
        out.update(roc_auc=None, average_precision=None)
        out["label_free"] = {
            **metrics.classification_report(y, s, label_free),
            "method": "calibrated score >= 1 - alpha",
            "alpha": alpha,
        }
        return out
    t_f1, _ = metrics.best_fbeta_threshold(y, s, beta=1.0)
    t_cost, cost = metrics.min_cost_threshold(y, s, cost_fn=cost_fn, cost_fp=cost_fp)
    best = metrics.classification_report(y, s, t_f1)
    out["roc_auc"] = best.pop("roc_auc")
    out["average_precision"] = best.pop("average_precision")

    def op(t: float) -> dict[str, Any]:
        rep = metrics.classification_report(y, s, t)
        rep.pop("roc_auc")
        rep.pop("average_precision")
        return rep

    out["best_f1"] = best
    out["label_free"] = {
        **op(label_free),
        "method": "calibrated score >= 1 - alpha",
        "alpha": alpha,
    }
    out["min_cost"] = {**op(t_cost), "cost": cost, "cost_fn": cost_fn, "cost_fp": cost_fp}
    return out


def _progress(enabled: bool, total: int, desc: str) -> tqdm:
    return tqdm(
        total=total, desc=desc, unit="ev", disable=not enabled, leave=False, mininterval=0.5
    )


def _split_normal(n_normal: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions (into the normal rows) for fitting and for calibration, disjoint."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n_normal)
    n_cal = min(max(round(n_normal * _CALIBRATION_FRACTION), 1), _MAX_CALIBRATION_ROWS)
    cal = np.sort(perm[:n_cal])
    fit = np.sort(perm[n_cal : n_cal + _MAX_FIT_ROWS])
    return fit, cal


def _resolve_name(name: str | None, source: str) -> str:
    return default_detector_name(source) if name in (None, DEFAULT) else name


def _fit_detector(det: Detector, mat: np.ndarray, names: list[str] | None) -> float:
    t0 = time.perf_counter()
    det.fit(mat, feature_names=names)
    return time.perf_counter() - t0


# -- NAB ------------------------------------------------------------------------------------
def _evaluate_nab(
    path: Path, opts: dict[str, Any]
) -> tuple[dict[str, Any], ReportData, list[ModelCard]]:
    corpus = _readers.read_nab_corpus(path)
    name = _resolve_name(opts["detector"], "sensors")
    params = dict(opts["params"])
    if name == DEFAULT_ENSEMBLE:
        # The sensor ensemble reads hour/day-of-week columns after the value; without them
        # it must be told there are none.
        feats = opts["features"] or "diff+time"
        if feats != "diff+time":
            params.setdefault("time_columns", None)
    else:
        feats = opts["features"] or "diff"
    if feats not in SENSOR_FEATURES:
        raise ValueError(f"NAB features must be one of {', '.join(SENSOR_FEATURES)}")
    calibration = f"running tail probability (window {_ONLINE_CALIBRATION_WINDOW})"
    total = sum(f.values.size for f in corpus.files)
    bar = _progress(opts["progress"], total, "nab")
    labeled, views, cards, results_files = [], [], [], []
    replay_seconds = 0.0
    for f in corpus.files:
        mat, names = sensor_features(f.values, feats, f.timestamps)
        _, det = make_detector(name, params, "sensors")
        t0 = time.perf_counter()
        rr = replay_online(
            det,
            mat,
            learn=opts["learn"],
            batch_size=opts["batch_size"],
            warmup=_WARMUP,
            feature_names=names,
            progress=bar.update,
        )
        if is_calibrated(det):
            score = np.clip(np.nan_to_num(rr.raw, nan=0.0), 0.0, 1.0)
            calibration = "the detector's own (ensemble)"
        else:
            score = RunningCalibrator(_ONLINE_CALIBRATION_WINDOW, _WARMUP).run(rr.raw)
        replay_seconds += time.perf_counter() - t0
        win = nab.windows_to_indices(f.timestamps, f.windows)
        labeled.append(nab.LabeledSeries(f.name, score, win))
        label = np.zeros(score.size, dtype=np.int8)
        for left, right in win:
            label[left : right + 1] = 1
        views.append((f, score, label, rr, det, names))
    bar.close()

    profiles = opts["profiles"] or list(nab.PROFILES)
    res = nab.score_corpus(labeled, profiles=profiles)
    first = next(iter(res.values()))

    # Pooled row-level metrics over the rows NAB scores (probation excluded).
    ys, ss, series_views = [], [], []
    for f, score, label, rr, det, _names in views:
        scorable = np.arange(score.size) >= nab.probation_length(score.size)
        ys.append(label[scorable])
        ss.append(score[scorable])
        series_views.append(
            SeriesView(f.name, f.timestamps, f.values, score, label, first.threshold, scorable)
        )
        sres = first.series[f.name]
        card_metrics: dict[str, Any] = {
            f"nab_raw_{first.profile}": sres["raw_score"],
            "windows_detected": f"{sres['windows_detected']}/{sres['windows']}",
            "fp_rows": sres["fp"],
        }
        if 0 < label[scorable].sum() < scorable.sum():
            card_metrics["roc_auc"] = metrics.roc_auc(label[scorable], score[scorable])
        cards.append(
            build_model_card(
                det,
                entity=f.name,
                train_rows=rr.n_learned,
                train_seconds=rr.learn_seconds,
                inference_seconds=rr.score_seconds,
                inference_rows=rr.n_scored,
                inference_mode=f"online, batch {opts['batch_size']}",
                metrics=card_metrics,
            )
        )
        if opts["out"] is not None:
            results_files.append(_write_nab_result(opts["out"], name, f, score, label))
    y, s = np.concatenate(ys), np.concatenate(ss)
    label_free = 1.0 - opts["alpha"]
    result: dict[str, Any] = {
        "n_series": len(corpus.files),
        "n_rows": int(total),
        "n_anomalous_rows": int(sum(v[2].sum() for v in views)),
        "detector": name,
        "features": feats,
        "calibration": calibration,
        "nab": {p: r.to_dict() for p, r in res.items()},
        "metrics": _binary_metrics(
            y, s, label_free, opts["alpha"], opts["cost_fn"], opts["cost_fp"]
        ),
        "skipped": corpus.skipped,
        "timing": {
            "replay_seconds": replay_seconds,
            "events_per_s": total / replay_seconds if replay_seconds else None,
        },
    }
    if results_files:
        result.setdefault("outputs", {})["results"] = [str(p) for p in results_files]
    thresholds = {"best F1": result["metrics"]["best_f1"]["threshold"], "label-free": label_free}
    curves = {}
    for p, r in res.items():
        normed = np.array(
            [nab.normalized_score(v, r.null_score, r.perfect_score) for v in r.curve.score]
        )
        curves[p] = (r.curve.threshold, normed, r.threshold)
    data = ReportData(
        title=f"NAB: {name}",
        y=y,
        s=s,
        thresholds={f"NAB {first.profile}": first.threshold, **thresholds},
        series=series_views,
        nab_curves=curves,
        cost_fn=opts["cost_fn"],
        cost_fp=opts["cost_fp"],
    )
    return result, data, cards


def _write_nab_result(
    out: Path, detector: str, f: _readers.NABFile, score: np.ndarray, label: np.ndarray
) -> Path:
    group_dir = out / detector / f.group if f.group else out / detector
    group_dir.mkdir(parents=True, exist_ok=True)
    path = group_dir / f"{detector}_{f.file}"
    pd.DataFrame(
        {
            "timestamp": pd.to_datetime(f.timestamps).strftime("%Y-%m-%d %H:%M:%S"),
            "value": f.values,
            "anomaly_score": score,
            "label": label,
        }
    ).to_csv(path, index=False)
    return path


# -- KDD ------------------------------------------------------------------------------------
def _evaluate_kdd(
    path: Path, opts: dict[str, Any]
) -> tuple[dict[str, Any], ReportData, list[ModelCard]]:
    if opts["train"] is None:
        raise ValueError(
            "format kdd needs --train TRAIN: the detector is fitted on its normal rows"
        )
    train = _readers.read_kdd(opts["train"])
    test = _readers.read_kdd(path)
    normal = np.flatnonzero(train.categories == "normal")
    if normal.size < 10:
        raise ValueError(f"{opts['train']}: fewer than 10 normal rows to fit on")
    fit_pos, cal_pos = _split_normal(normal.size, opts["seed"])
    scaler = NumericScaler().fit(train.features.iloc[normal[fit_pos]])
    mat_fit = scaler.transform(train.features.iloc[normal[fit_pos]])
    mat_cal = scaler.transform(train.features.iloc[normal[cal_pos]])
    mat_test = scaler.transform(test.features)
    names = list(scaler.columns_)

    name = _resolve_name(opts["detector"], "connections")
    params = dict(opts["params"] or {})
    if name == "robust_zscore":
        # The stream's default window (one day of 5-min sensor readings) is meaningless
        # here: keep every fitted normal row. Standardised features with a zero MAD (most
        # KDD counters on normal traffic) are measured in tenths of a training std.
        params.setdefault("window", int(mat_fit.shape[0]))
        params.setdefault("min_scale", 0.1)
    _, det = make_detector(name, params, "connections")
    train_seconds = _fit_detector(det, mat_fit, names)
    raw_cal, _ = score_in_batches(det, mat_cal)
    calibrator = ReferenceCalibrator(raw_cal)

    bar = _progress(opts["progress"], mat_test.shape[0], "kdd")
    if opts["learn"]:
        rr = replay_online(
            det, mat_test, learn=True, batch_size=opts["batch_size"], warmup=0, progress=bar.update
        )
        raw, infer_s, mode = rr.raw, rr.score_seconds, f"online, batch {opts['batch_size']}"
    else:
        raw, infer_s = score_in_batches(det, mat_test, progress=bar.update)
        mode = "batch 10000"
    bar.close()
    score = calibrator.transform(raw)
    y = test.is_anomaly
    label_free = 1.0 - opts["alpha"]
    m = _binary_metrics(y, score, label_free, opts["alpha"], opts["cost_fn"], opts["cost_fp"])

    cats: dict[str, Any] = {}
    is_normal = test.categories == "normal"
    t_best = m.get("best_f1", {}).get("threshold", label_free)
    for cat in CATEGORIES:
        rows = test.categories == cat
        if not rows.any():
            continue
        entry: dict[str, Any] = {"rows": int(rows.sum()), "mean_score": float(score[rows].mean())}
        if cat == "normal":
            entry["fpr_best_f1"] = float(np.mean(score[rows] >= t_best))
            entry["fpr_label_free"] = float(np.mean(score[rows] >= label_free))
        else:
            entry["recall_best_f1"] = float(np.mean(score[rows] >= t_best))
            entry["recall_label_free"] = float(np.mean(score[rows] >= label_free))
            if is_normal.any():
                sub = rows | is_normal
                entry["roc_auc_vs_normal"] = metrics.roc_auc(rows[sub], score[sub])
                entry["average_precision_vs_normal"] = metrics.average_precision(
                    rows[sub], score[sub]
                )
        cats[cat] = entry
    attacks = {}
    for lab in np.unique(test.labels):
        rows = test.labels == lab
        attacks[str(lab)] = {
            "rows": int(rows.sum()),
            "detected_best_f1": float(np.mean(score[rows] >= t_best)),
            "detected_label_free": float(np.mean(score[rows] >= label_free)),
        }

    card = build_model_card(
        det,
        entity=Path(opts["train"]).name,
        train_rows=mat_fit.shape[0],
        train_seconds=train_seconds,
        inference_seconds=infer_s,
        inference_rows=mat_test.shape[0],
        inference_mode=mode,
        metrics={
            "roc_auc": m.get("roc_auc"),
            "average_precision": m.get("average_precision"),
            "f1_best": m.get("best_f1", {}).get("f1"),
            "f1_label_free": m["label_free"]["f1"],
        },
    )
    result: dict[str, Any] = {
        "train": str(opts["train"]),
        "n_train_rows": int(train.labels.size),
        "n_fit_rows": int(mat_fit.shape[0]),
        "n_calibration_rows": int(mat_cal.shape[0]),
        "n_rows": int(y.size),
        "n_anomalous_rows": int(y.sum()),
        "detector": name,
        "features": f"{len(names)} numeric features, log1p counts, standardised on normal TRAIN",
        "calibration": "tail probability under held-out normal TRAIN rows",
        "metrics": m,
        "categories": cats,
        "attacks": attacks,
        "timing": {
            "train_seconds": train_seconds,
            "score_seconds": infer_s,
            "events_per_s": y.size / infer_s if infer_s else None,
        },
    }
    if opts["out"] is not None:
        opts["out"].mkdir(parents=True, exist_ok=True)
        scores_path = opts["out"] / "scores.csv"
        pd.DataFrame({"row": np.arange(y.size), "label": y, "score": score}).to_csv(
            scores_path, index=False, float_format="%.10g"
        )
        result.setdefault("outputs", {})["scores"] = str(scores_path)
    thresholds = {"label-free": label_free}
    if "best_f1" in m:
        thresholds = {"best F1": m["best_f1"]["threshold"], **thresholds}
    view = SeriesView(
        f"{path.name} (row order)",
        np.arange(y.size),
        None,
        score,
        y,
        thresholds.get("best F1", label_free),
    )
    data = ReportData(
        f"KDD: {name}",
        y,
        score,
        thresholds,
        [view],
        cost_fn=opts["cost_fn"],
        cost_fp=opts["cost_fp"],
    )
    return result, data, [card]


# -- generic CSV ----------------------------------------------------------------------------
def _evaluate_csv(
    path: Path, opts: dict[str, Any]
) -> tuple[dict[str, Any], ReportData, list[ModelCard]]:
    table = _readers.read_labeled_csv(path, opts["label_column"])
    feats = opts["features"] or "raw"
    if feats not in ("raw", "diff"):
        raise ValueError("CSV features must be 'raw' or 'diff'")

    def transform(mat: np.ndarray) -> np.ndarray:
        return (
            np.vstack([np.zeros((1, mat.shape[1])), np.diff(mat, axis=0)])
            if feats == "diff"
            else mat
        )

    mat = transform(table.features)
    names = table.feature_names
    source = "sensors" if mat.shape[1] == 1 else "connections"
    name = _resolve_name(opts["detector"], source)
    params = dict(opts["params"])
    if name == DEFAULT_ENSEMBLE and source == "sensors":
        params.setdefault("time_columns", None)
    _, det = make_detector(name, params, source)
    train_rows, train_seconds = 0, 0.0
    if opts["train"] is not None:
        tr = _readers.read_labeled_csv(opts["train"], opts["label_column"])
        mat_tr = transform(tr.features)[tr.labels == 0]
        fit_pos, cal_pos = _split_normal(mat_tr.shape[0], opts["seed"])
        train_seconds = _fit_detector(det, mat_tr[fit_pos], names)
        train_rows = fit_pos.size
        calibrator: ReferenceCalibrator | None = ReferenceCalibrator(
            score_in_batches(det, mat_tr[cal_pos])[0]
        )
        calibration = "tail probability under held-out normal TRAIN rows"
    else:
        calibrator = None
        calibration = f"running tail probability (window {_ONLINE_CALIBRATION_WINDOW})"
    bar = _progress(opts["progress"], mat.shape[0], "csv")
    rr = replay_online(
        det,
        mat,
        learn=opts["learn"],
        batch_size=opts["batch_size"],
        warmup=0 if opts["train"] is not None else _WARMUP,
        feature_names=names,
        progress=bar.update,
    )
    bar.close()
    if calibrator is not None:
        score = np.where(np.isfinite(rr.raw), calibrator.transform(np.nan_to_num(rr.raw)), 0.0)
    elif is_calibrated(det):
        score = np.clip(np.nan_to_num(rr.raw, nan=0.0), 0.0, 1.0)
        calibration = "the detector's own (ensemble)"
    else:
        score = RunningCalibrator(_ONLINE_CALIBRATION_WINDOW, _WARMUP).run(rr.raw)
    y = table.labels
    label_free = 1.0 - opts["alpha"]
    m = _binary_metrics(y, score, label_free, opts["alpha"], opts["cost_fn"], opts["cost_fp"])
    card = build_model_card(
        det,
        entity=path.name,
        train_rows=train_rows + rr.n_learned,
        train_seconds=train_seconds + rr.learn_seconds,
        inference_seconds=rr.score_seconds,
        inference_rows=rr.n_scored,
        inference_mode=f"online, batch {opts['batch_size']}",
        metrics={"roc_auc": m.get("roc_auc"), "average_precision": m.get("average_precision")},
    )
    result: dict[str, Any] = {
        "n_rows": int(y.size),
        "n_anomalous_rows": int(y.sum()),
        "detector": name,
        "features": f"{feats}: {', '.join(names)}",
        "calibration": calibration,
        "metrics": m,
        "timing": {"score_seconds": rr.score_seconds, "learn_seconds": rr.learn_seconds},
    }
    if opts["out"] is not None:
        opts["out"].mkdir(parents=True, exist_ok=True)
        scores_path = opts["out"] / "scores.csv"
        pd.DataFrame({"row": np.arange(y.size), "label": y, "score": score}).to_csv(
            scores_path, index=False, float_format="%.10g"
        )
        result.setdefault("outputs", {})["scores"] = str(scores_path)
    thresholds = {"label-free": label_free}
    if "best_f1" in m:
        thresholds = {"best F1": m["best_f1"]["threshold"], **thresholds}
    x = table.timestamps if table.timestamps is not None else np.arange(y.size)
    values = table.features[:, 0] if table.features.shape[1] == 1 else None
    view = SeriesView(path.name, x, values, score, y, thresholds.get("best F1", label_free))
    data = ReportData(
        f"CSV: {name}",
        y,
        score,
        thresholds,
        [view],
        cost_fn=opts["cost_fn"],
        cost_fp=opts["cost_fp"],
    )
    return result, data, [card]


_RUNNERS = {"nab": _evaluate_nab, "kdd": _evaluate_kdd, "csv": _evaluate_csv}


def run_evaluation(
    path: str | Path,
    *,
    format: str = "nab",
    detector: str | None = None,
    detector_params: Mapping[str, Any] | None = None,
    profiles: Sequence[str] | None = None,
    train: str | Path | None = None,
    out: str | Path | None = None,
    features: str | None = None,
    learn: bool | None = None,
    batch_size: int | None = None,
    alpha: float = 0.01,
    cost_fn: float = 1.0,
    cost_fp: float = 1.0,
    label_column: str | None = None,
    report: bool = True,
    progress: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    """Evaluate a detector on a labelled dataset; return the metrics as a JSON-ready dict.

    Parameters
    ----------
    path
        NAB corpus folder (``nab``), KDD test file (``kdd``) or labelled CSV (``csv``).
    format
        ``nab``, ``kdd`` or ``csv``.
    detector, detector_params
        Registry name (default: the source's default detector) and constructor parameters.
        ``ensemble`` uses ``detectors.ensemble.default_ensemble(source)`` once it exists.
    profiles
        NAB profiles to score (default all three).
    train
        Training file (KDD: required; CSV: optional): the detector is fitted on its normal
        rows, 20 % of which are held out to calibrate scores to [0, 1].
    out
        Folder for the NAB results layout or ``scores.csv``, the plots, ``report.html`` and
        the model cards. Nothing is written without it.
    features
        NAB: ``diff`` (default), ``level``, ``diff+level``; CSV: ``raw`` (default) or ``diff``.
    learn
        Learn online from the evaluated rows after scoring them (default: yes for NAB and
        CSV, no for KDD, whose test traffic is mostly attacks).
    batch_size
        Micro-batch of the online replay (default 1 for NAB/CSV: strictly one at a time,
        256 for KDD with ``learn``).
    alpha
        Label-free operating point: alert when the calibrated score is >= ``1 - alpha``.
    cost_fn, cost_fp
        Cost of a missed anomalous row and of a false alarm, for the min-cost threshold.
    """
    fmt = format.lower()
    if fmt not in _RUNNERS:
        raise ValueError(f"unknown format {format!r}; known: {', '.join(FORMATS)}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(path)
    opts: dict[str, Any] = {
        "detector": detector,
        "params": dict(detector_params or {}),
        "profiles": list(profiles) if profiles else None,
        "train": Path(train) if train is not None else None,
        "out": Path(out) if out is not None else None,
        "features": features,
        "learn": (fmt != "kdd") if learn is None else learn,
        "batch_size": batch_size or (256 if fmt == "kdd" else 1),
        "alpha": alpha,
        "cost_fn": cost_fn,
        "cost_fp": cost_fp,
        "label_column": label_column,
        "progress": progress,
        "seed": seed,
    }
    t0 = time.perf_counter()
    body, data, cards = _RUNNERS[fmt](path, opts)
    result: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "format": fmt,
        "path": str(path),
        "detector": body.pop("detector"),
        "detector_params": cards[0].params if cards else dict(opts["params"]),
        "online": {"learn": opts["learn"], "batch_size": opts["batch_size"]},
        **body,
    }
    card_dicts = cards_to_json(cards)
    result["model_cards"] = card_dicts
    if opts["out"] is not None:
        outputs = result.setdefault("outputs", {})
        outputs["dir"] = str(opts["out"])
        outputs["model_cards"] = [str(p) for p in write_model_cards(cards, opts["out"])]
        if report:
            result["timing"]["total_seconds"] = time.perf_counter() - t0
            written = write_report(opts["out"], data, _clean(result), card_dicts)
            outputs["plots"] = [str(p) for p in written[:-1]]
            outputs["report"] = str(written[-1])
        outputs["json"] = str(opts["out"] / "evaluation.json")
    result["timing"]["total_seconds"] = time.perf_counter() - t0
    if opts["out"] is not None:
        (opts["out"] / "evaluation.json").write_text(to_json(result) + "\n")
    return _clean(result)
