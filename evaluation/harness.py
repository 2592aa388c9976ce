"""``run_evaluation``: replay a labelled dataset through a detector online and measure it.

Three input formats:

* ``nab`` — a NAB-layout corpus (``PATH/data/**.csv`` + ``PATH/labels/combined_windows.json``
  or ``PATH/windows.json``). One fresh feature pipeline and detector per series,
  score-then-learn on every row, scores calibrated online to [0, 1]; NAB scores under the
  three profiles; with ``out``, the NAB results layout
  ``<out>/<detector>/<group>/<detector>_<file>.csv``.
* ``kdd`` — raw KDD Cup 99 files: fit on the normal rows of ``train``, score ``PATH`` in file
  order; ranking metrics, operating points, per-attack-category results; with ``out``,
  ``scores.csv`` (``row,label,score``).
* ``csv`` — a CSV with a label column: timestamped sensor readings (one series per
  ``sensor_id``) replayed online like NAB series (optionally pre-fitted on the normal rows of
  ``train``), or connections (KDD columns) evaluated like KDD.

Events become feature rows exactly as in the stream: the files are read by
:mod:`windowing.readers` and featurised by :class:`windowing.SensorFeaturePipeline` /
:class:`windowing.ConnectionFeaturePipeline` (see :mod:`evaluation.features`).
The detector never sees a label: labels are used only to measure. The returned dict is the
``--json`` output; its keys are documented in ``docs/evaluation.md``.
"""

from __future__ import annotations

import inspect
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from detectors import metrics
from detectors.base import Detector
from evaluation import nab
from evaluation.datasets import (
    NABSeries,
    binary_labels,
    find_label_column,
    find_nab_corpus,
    kdd_categories,
    naive_utc,
)
from evaluation.features import (
    FeatureMode,
    SensorFeatures,
    connection_features,
    fill_refused,
    parse_sensor_mode,
    rejection_summary,
    sensor_features,
)
from evaluation.kdd_categories import CATEGORIES
from evaluation.model_card import (
    ModelCard,
    build_model_card,
    cards_to_json,
    write_model_cards,
)
from evaluation.online import (
    DEFAULT,
    DEFAULT_ENSEMBLE,
    ONLINE_CALIBRATION,
    ReplayResult,
    calibrate_online,
    default_detector_name,
    is_calibrated,
    make_detector,
    reference_calibrator,
    replay_online,
    score_in_batches,
)
from evaluation.report import ReportData, SeriesView, write_report
from evaluation.stream import stream_calibration, stream_series
from streams.scoring import make_sensor_detector, sensor_model_config
from streams.settings import Settings
from windowing.readers import epoch_seconds, read_csv_events, read_kdd, read_nab_csv

__all__ = ["FORMATS", "SCHEMA_VERSION", "run_evaluation", "to_json"]

FORMATS = ("nab", "kdd", "csv")
#: Bumped when a key of the result dict changes meaning or disappears.
SCHEMA_VERSION = 1

_WARMUP = 30
_PATHS = {
    True: "stream: streams.scoring.score_sensor_batch with the worker's settings",
    False: "offline: windowing features + the detector replayed online",
}
_CALIBRATION_FRACTION = 0.2
_MAX_FIT_ROWS = 50_000
_MAX_CALIBRATION_ROWS = 20_000
_MAX_TIMELINES = 20

_ONLINE_CALIBRATION = (
    "running tail probability: detectors.calibration.ScoreCalibrator over the detector's "
    f"last {ONLINE_CALIBRATION['window']} raw scores (GPD tail beyond the "
    f"{ONLINE_CALIBRATION['tail_quantile']} quantile)"
)
_REFERENCE_CALIBRATION = (
    "tail probability under held-out normal TRAIN rows: detectors.calibration."
    "ScoreCalibrator over their raw scores"
)
_OWN_CALIBRATION = "the detector's own (ensemble: a ScoreCalibrator per member)"
_SENSOR_FILL = (
    "a reading the feature pipeline refused gets the score of the previous scored row "
    "(0 before the first); it is left out of the pooled metrics"
)
_CONNECTION_FILL = "a refused connection gets score 0; it is left out of the metrics"


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


#: What ``evaluate`` fits on a connection TRAIN file when no detector is named: the model
#: ``anomstream train`` builds by default from the same file, so the number measured is the
#: one of the model a worker would serve.
CONNECTION_TRAIN_DEFAULT = "open_set_classifier"


def _resolve_name(name: str | None, source: str) -> str:
    """The detector to evaluate: the one named, else the one the stream would use
    (sensors: the worker's ``sensor_detector.detector``; connections, which are always
    fitted on TRAIN: the trained model's default, :data:`CONNECTION_TRAIN_DEFAULT`)."""
    if name not in (None, DEFAULT):
        return name
    if source == "sensors":
        return Settings().sensor_detector.detector
    # ``--detector default``: the connection agent's online ensemble.
    return CONNECTION_TRAIN_DEFAULT if name is None else default_detector_name(source)


def _fit_supervised(
    det: Detector, cf: Any, train: pd.DataFrame, train_normal: np.ndarray
) -> tuple[float, int]:
    """Fit ``det`` on the normal fit rows plus every labelled attack row of TRAIN; the
    seconds it took and the rows it learned."""
    attacks = train.iloc[np.flatnonzero(~np.asarray(train_normal))]
    batch = cf.pipeline.update_many(attacks)
    kept = np.arange(len(attacks)) if batch.index is None else np.asarray(batch.index)
    X = np.vstack([cf.fit, batch.values])
    y = np.concatenate([
        np.full(len(cf.fit), "normal", dtype=object),
        attacks["label"].astype(str).to_numpy(dtype=object)[kept],
    ])
    t0 = time.perf_counter()
    det.fit(X, y=y, feature_names=cf.names)  # type: ignore[call-arg]
    return time.perf_counter() - t0, len(X)


def _fit_detector(det: Detector, mat: np.ndarray, names: list[str] | None) -> float:
    t0 = time.perf_counter()
    det.fit(mat, feature_names=names)
    return time.perf_counter() - t0


# -- sensor series (NAB, CSV) -----------------------------------------------------------------
@dataclass
class _SeriesRun:
    """One series replayed: scores for every input row, and what produced them."""

    fx: SensorFeatures
    score: np.ndarray
    scored: np.ndarray
    replay: ReplayResult
    detector: Detector
    calibration: str
    train_rows: int = 0
    train_seconds: float = 0.0


@dataclass
class _SeriesInput:
    timestamps: np.ndarray  # epoch seconds
    values: np.ndarray
    channels: dict[str, np.ndarray]
    labels: np.ndarray | None = None


def _sensor_detector(name: str, params: Mapping[str, Any], fx: SensorFeatures) -> Detector:
    p = dict(params)
    if name == DEFAULT_ENSEMBLE:
        # The sensor ensemble reads hour/day-of-week at these positions (None: it has
        # none), and the values everywhere else.
        p.setdefault("time_columns", fx.time_columns)
        times = set(fx.time_columns or ())
        p.setdefault("value_columns", [i for i in range(len(fx.names)) if i not in times])
    return make_detector(name, p, "sensors")[1]


def _stream_settings(name: str) -> Settings:
    """The worker's settings with ``name`` as its sensor detector."""
    settings = Settings()
    detector = settings.sensor_detector.model_copy(update={"detector": name})
    return settings.model_copy(update={"sensor_detector": detector})


def _stream_path(opts: dict[str, Any], name: str) -> bool:
    """Whether a sensor evaluation can run the sensor agent's own code: a detector the
    worker can be configured with, its features and calibration, learning online, nothing
    fitted beforehand (then the score is what a worker with that detector publishes)."""
    if not (
        opts["train"] is None and not opts["params"] and opts["features"] is None and opts["learn"]
    ):
        return False
    try:
        make_sensor_detector(sensor_model_config(_stream_settings(name)), ["value"])
    except (KeyError, ValueError):
        return False
    return True


def _stream_run(
    entity: str, series: _SeriesInput, opts: dict[str, Any], name: str, progress: Any
) -> _SeriesRun:
    """One series through :func:`streams.scoring.score_sensor_batch`, as a worker running
    detector ``name`` scores it."""
    settings = _stream_settings(name)
    run = stream_series(
        entity,
        series.timestamps,
        series.values,
        series.channels,
        settings=settings,
        batch_size=opts["batch_size"],
        progress=progress,
    )
    fx = run.features
    scored = np.zeros(fx.n_input, dtype=bool)
    scored[fx.index] = True
    detector = run.scorer.detector if run.scorer is not None else None
    if detector is None:  # nothing accepted: an unfitted detector describes the run
        detector = make_sensor_detector(sensor_model_config(settings), fx.names or ["value"])
    return _SeriesRun(
        fx,
        fill_refused(run.scores, fx.index, fx.n_input, carry=True),
        scored,
        run.replay,
        detector,
        stream_calibration(settings),
    )


def _run_series(
    entity: str,
    series: _SeriesInput,
    mode: FeatureMode,
    name: str,
    opts: dict[str, Any],
    progress: Any,
    train: _SeriesInput | None = None,
) -> _SeriesRun:
    """Features (windowing), then score-then-learn, then calibration, for one series.

    With the worker's detector and defaults this is the sensor agent's own code
    (:mod:`evaluation.stream`); otherwise an offline replay of the chosen detector.
    """
    if train is None and opts["stream"]:
        return _stream_run(entity, series, opts, name, progress)
    fx = sensor_features(
        series.timestamps, series.values, series.channels, mode=mode, sensor_id=entity
    )
    det = _sensor_detector(name, opts["params"], fx)
    calibrator = None
    train_rows, train_seconds = 0, 0.0
    if train is not None:
        assert train.labels is not None
        tfx = sensor_features(
            train.timestamps, train.values, train.channels, mode=mode, sensor_id=entity
        )
        normal = np.flatnonzero(train.labels[tfx.index] == 0)
        if normal.size < 10:
            raise ValueError(f"{entity}: fewer than 10 normal training readings to fit on")
        fit_pos, cal_pos = _split_normal(normal.size, opts["seed"])
        train_seconds = _fit_detector(det, tfx.matrix[normal[fit_pos]], fx.names)
        train_rows = int(fit_pos.size)
        calibrator = reference_calibrator(score_in_batches(det, tfx.matrix[normal[cal_pos]])[0])
    rr = replay_online(
        det,
        fx.matrix,
        learn=opts["learn"],
        batch_size=opts["batch_size"],
        warmup=0 if train is not None else _WARMUP,
        feature_names=fx.names,
        progress=progress,
    )
    progress(len(fx.rejected))
    if calibrator is not None:
        finite = np.isfinite(rr.raw)
        accepted = np.where(finite, calibrator.transform(np.where(finite, rr.raw, 0.0)), 0.0)
        calibration = _REFERENCE_CALIBRATION
    elif is_calibrated(det):
        accepted = np.clip(np.nan_to_num(rr.raw, nan=0.0), 0.0, 1.0)
        calibration = _OWN_CALIBRATION
    else:
        accepted = calibrate_online(rr.raw, min_history=_WARMUP, batch_size=opts["batch_size"])
        calibration = _ONLINE_CALIBRATION
    scored = np.zeros(fx.n_input, dtype=bool)
    scored[fx.index] = True
    return _SeriesRun(
        fx,
        fill_refused(accepted, fx.index, fx.n_input, carry=True),
        scored,
        rr,
        det,
        calibration,
        train_rows,
        train_seconds,
    )


def _series_card(run: _SeriesRun, entity: str, batch_size: int, card_metrics: dict) -> ModelCard:
    rr = run.replay
    return build_model_card(
        run.detector,
        entity=entity,
        train_rows=run.train_rows + rr.n_learned,
        train_seconds=run.train_seconds + rr.learn_seconds,
        inference_seconds=rr.score_seconds,
        inference_rows=rr.n_scored,
        inference_mode=f"online, batch {batch_size}",
        metrics=card_metrics,
    )


# -- NAB ------------------------------------------------------------------------------------
def _evaluate_nab(
    path: Path, opts: dict[str, Any]
) -> tuple[dict[str, Any], ReportData, list[ModelCard]]:
    corpus = find_nab_corpus(path)
    name = _resolve_name(opts["detector"], "sensors")
    opts["stream"] = _stream_path(opts, name)
    if opts["stream"] and not opts["batch_size_given"]:
        opts["batch_size"] = Settings().worker.batch_size
    mode = parse_sensor_mode(opts["features"], default_time=name == DEFAULT_ENSEMBLE)
    frames = [(s, read_nab_csv(s.path)) for s in corpus.series]
    total = sum(len(frame) for _, frame in frames)
    bar = _progress(opts["progress"], total, "nab")
    labeled, runs = [], []
    replay_seconds = 0.0
    for s, frame in frames:
        t0 = time.perf_counter()
        run = _run_series(
            s.name,
            _SeriesInput(epoch_seconds(frame["timestamp"]), frame["value"].to_numpy(), {}),
            mode,
            name,
            opts,
            bar.update,
        )
        replay_seconds += time.perf_counter() - t0
        stamps = naive_utc(frame["timestamp"])
        win = nab.windows_to_indices(stamps, s.windows)
        labeled.append(nab.LabeledSeries(s.name, run.score, win))
        label = np.zeros(run.score.size, dtype=np.int8)
        for left, right in win:
            label[left : right + 1] = 1
        runs.append((s, stamps, frame["value"].to_numpy(), label, run))
    bar.close()

    profiles = opts["profiles"] or list(nab.PROFILES)
    res = nab.score_corpus(labeled, profiles=profiles)
    first = next(iter(res.values()))

    # Pooled row-level metrics over the rows NAB scores (probation excluded) that the
    # detector scored (refused readings excluded).
    ys, ss, series_views, cards, results_files = [], [], [], [], []
    for s, stamps, values, label, run in runs:
        scorable = (np.arange(run.score.size) >= nab.probation_length(run.score.size)) & run.scored
        ys.append(label[scorable])
        ss.append(run.score[scorable])
        series_views.append(
            SeriesView(s.name, stamps, values, run.score, label, first.threshold, scorable)
        )
        sres = first.series[s.name]
        card_metrics: dict[str, Any] = {
            f"nab_raw_{first.profile}": sres["raw_score"],
            "windows_detected": f"{sres['windows_detected']}/{sres['windows']}",
            "fp_rows": sres["fp"],
        }
        if 0 < label[scorable].sum() < scorable.sum():
            card_metrics["roc_auc"] = metrics.roc_auc(label[scorable], run.score[scorable])
        cards.append(_series_card(run, s.name, opts["batch_size"], card_metrics))
        if opts["out"] is not None:
            results_files.append(
                _write_nab_result(opts["out"], name, s, stamps, values, run.score, label)
            )
    y, sc = np.concatenate(ys), np.concatenate(ss)
    label_free = 1.0 - opts["alpha"]
    first_run = runs[0][4]
    result: dict[str, Any] = {
        "n_series": len(runs),
        "n_rows": int(total),
        "n_anomalous_rows": int(sum(r[3].sum() for r in runs)),
        "detector": name,
        "features": mode.label,
        "feature_pipeline": "windowing.SensorFeaturePipeline (one per series, stream defaults)",
        "scoring_path": _PATHS[opts["stream"]],
        "feature_names": first_run.fx.names,
        "calibration": first_run.calibration,
        "nab": {p: r.to_dict() for p, r in res.items()},
        "metrics": _binary_metrics(
            y, sc, label_free, opts["alpha"], opts["cost_fn"], opts["cost_fp"]
        ),
        "skipped": corpus.skipped,
        "rejected": rejection_summary({r[0].name: r[4].fx.rejected for r in runs}, _SENSOR_FILL),
        "stationarity": {r[0].name: r[4].fx.stationarity() for r in runs},
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
        s=sc,
        thresholds={f"NAB {first.profile}": first.threshold, **thresholds},
        series=series_views,
        nab_curves=curves,
        cost_fn=opts["cost_fn"],
        cost_fp=opts["cost_fp"],
    )
    return result, data, cards


def _write_nab_result(
    out: Path,
    detector: str,
    s: NABSeries,
    stamps: np.ndarray,
    values: np.ndarray,
    score: np.ndarray,
    label: np.ndarray,
) -> Path:
    group_dir = out / detector / s.group if s.group else out / detector
    group_dir.mkdir(parents=True, exist_ok=True)
    path = group_dir / f"{detector}_{s.file}"
    pd.DataFrame(
        {
            "timestamp": pd.to_datetime(stamps).strftime("%Y-%m-%d %H:%M:%S"),
            "value": values,
            "anomaly_score": score,
            "label": label,
        }
    ).to_csv(path, index=False)
    return path


# -- connections (KDD, connection CSVs) ------------------------------------------------------
def _connection_detector_params(name: str, params: Mapping[str, Any], n_fit: int) -> dict:
    out = dict(params)
    if name == "robust_zscore":
        # The stream's default window (one day of 5-min sensor readings) is meaningless
        # here: keep every fitted normal row. Most connection features are constant on
        # normal traffic (MAD 0): measure departures in hundredths of the training range.
        out.setdefault("window", int(n_fit))
        out.setdefault("min_scale", 0.01)
    return out


def _evaluate_connections(
    path: Path,
    train: pd.DataFrame,
    train_normal: np.ndarray,
    test: pd.DataFrame,
    y: np.ndarray,
    opts: dict[str, Any],
    title: str,
) -> tuple[dict[str, Any], ReportData, list[ModelCard], np.ndarray, np.ndarray]:
    """Fit on normal TRAIN rows, score TEST in order. Also returns the score of every TEST
    row and which rows were scored (the pipeline may refuse some)."""
    normal = np.flatnonzero(train_normal)
    if normal.size < 10:
        raise ValueError(f"{opts['train']}: fewer than 10 normal rows to fit on")
    fit_pos, cal_pos = _split_normal(normal.size, opts["seed"])
    t0 = time.perf_counter()
    cf = connection_features(train, normal[fit_pos], normal[cal_pos], test)
    feature_seconds = time.perf_counter() - t0
    batch = cf.test
    mat_test = batch.values
    index = np.asarray(batch.index if batch.index is not None else np.arange(len(batch)))

    name = _resolve_name(opts["detector"], "connections")
    params = _connection_detector_params(name, opts["params"], cf.fit.shape[0])
    _, det = make_detector(name, params, "connections")
    fitted_rows = cf.fit.shape[0]
    if "y" in inspect.signature(det.fit).parameters and "label" in train:
        # A classifier over known classes (open_set_classifier) also learns TRAIN's
        # labelled attacks; its calibration stays on held-out normal rows.
        train_seconds, fitted_rows = _fit_supervised(det, cf, train, train_normal)
    else:
        train_seconds = _fit_detector(det, cf.fit, cf.names)
    raw_cal, _ = score_in_batches(det, cf.calibration)
    calibrator = reference_calibrator(raw_cal)

    bar = _progress(opts["progress"], len(test), title.lower())
    if opts["learn"]:
        rr = replay_online(
            det, mat_test, learn=True, batch_size=opts["batch_size"], warmup=0, progress=bar.update
        )
        raw, infer_s, mode = rr.raw, rr.score_seconds, f"online, batch {opts['batch_size']}"
    else:
        raw, infer_s = score_in_batches(det, mat_test, progress=bar.update)
        mode = "batch 10000"
    bar.update(len(batch.rejected))
    bar.close()
    n = len(test)
    score = fill_refused(calibrator.transform(raw), index, n, carry=False)
    scored = np.zeros(n, dtype=bool)
    scored[index] = True
    label_free = 1.0 - opts["alpha"]
    m = _binary_metrics(
        y[scored], score[scored], label_free, opts["alpha"], opts["cost_fn"], opts["cost_fp"]
    )
    card = build_model_card(
        det,
        entity=Path(opts["train"]).name,
        train_rows=fitted_rows,
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
        "n_train_rows": len(train),
        "n_fit_rows": int(cf.fit.shape[0]),
        "n_calibration_rows": int(cf.calibration.shape[0]),
        "n_rows": int(n),
        "n_anomalous_rows": int(y.sum()),
        "detector": name,
        "features": (
            f"windowing.ConnectionFeaturePipeline fitted on normal TRAIN rows: {len(cf.names)} "
            "features (38 numeric, log1p on heavy-tailed fields, min-max scaled and clipped; "
            "one-hot protocol_type, service, flag with an 'other' bucket)"
        ),
        "feature_names": cf.names,
        "calibration": _REFERENCE_CALIBRATION,
        "metrics": m,
        "rejected": {
            **rejection_summary({path.name: tuple(batch.rejected)}, _CONNECTION_FILL),
            "train": rejection_summary(
                {Path(opts["train"]).name: cf.train_rejected},
                "refused training rows are not fitted on",
            ),
        },
        "timing": {
            "feature_seconds": feature_seconds,
            "train_seconds": train_seconds,
            "score_seconds": infer_s,
            "events_per_s": mat_test.shape[0] / infer_s if infer_s else None,
        },
    }
    if opts["out"] is not None:
        opts["out"].mkdir(parents=True, exist_ok=True)
        scores_path = opts["out"] / "scores.csv"
        pd.DataFrame({"row": np.arange(n), "label": y, "score": score}).to_csv(
            scores_path, index=False, float_format="%.10g"
        )
        result.setdefault("outputs", {})["scores"] = str(scores_path)
    thresholds = {"label-free": label_free}
    if "best_f1" in m:
        thresholds = {"best F1": m["best_f1"]["threshold"], **thresholds}
    view = SeriesView(
        f"{path.name} (row order)",
        np.arange(n),
        None,
        score,
        y,
        thresholds.get("best F1", label_free),
        None if scored.all() else scored,
    )
    data = ReportData(
        f"{title}: {name}",
        y[scored],
        score[scored],
        thresholds,
        [view],
        cost_fn=opts["cost_fn"],
        cost_fp=opts["cost_fp"],
    )
    return result, data, [card], score, scored


def _evaluate_kdd(
    path: Path, opts: dict[str, Any]
) -> tuple[dict[str, Any], ReportData, list[ModelCard]]:
    if opts["train"] is None:
        raise ValueError(
            "format kdd needs --train TRAIN: the detector is fitted on its normal rows"
        )
    train = read_kdd(opts["train"])
    test = read_kdd(path)
    categories = kdd_categories(test["label"])
    y = (categories != "normal").astype(np.int8)
    result, data, cards, score, scored = _evaluate_connections(
        path, train, kdd_categories(train["label"]) == "normal", test, y, opts, "KDD"
    )
    m = result["metrics"]
    label_free = 1.0 - opts["alpha"]
    t_best = m.get("best_f1", {}).get("threshold", label_free)
    labels = test["label"].to_numpy(dtype=object)
    # Per category and attack, over the rows that were scored.
    categories, labels, score = categories[scored], labels[scored], score[scored]
    cats: dict[str, Any] = {}
    is_normal = categories == "normal"
    for cat in CATEGORIES:
        rows = categories == cat
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
    for lab in np.unique(labels.astype(str)):
        rows = labels == lab
        attacks[str(lab)] = {
            "rows": int(rows.sum()),
            "detected_best_f1": float(np.mean(score[rows] >= t_best)),
            "detected_label_free": float(np.mean(score[rows] >= label_free)),
        }
    result["categories"] = cats
    result["attacks"] = attacks
    return result, data, cards


# -- generic CSV ----------------------------------------------------------------------------
def _read_labelled_csv(path: Path, label_column: str | None) -> pd.DataFrame:
    header = list(pd.read_csv(path, nrows=0).columns)
    return read_csv_events(path, label_col=find_label_column(header, label_column, path))


def _entities(frame: pd.DataFrame) -> list[tuple[str, np.ndarray]]:
    """``(entity, input positions)`` in order of first appearance (one series without ids)."""
    if "sensor_id" not in frame:
        return [("", np.arange(len(frame)))]
    codes, uniques = pd.factorize(frame["sensor_id"])
    return [(str(u), np.flatnonzero(codes == k)) for k, u in enumerate(uniques)]


def _series_input(frame: pd.DataFrame, rows: np.ndarray, with_labels: bool) -> _SeriesInput:
    part = frame.iloc[rows]
    channels = {c: part[c].to_numpy() for c in frame.attrs.get("channels", [])}
    labels = binary_labels(part["label"]) if with_labels else None
    return _SeriesInput(
        epoch_seconds(part["timestamp"]), part["value"].to_numpy(), channels, labels
    )


def _evaluate_csv(
    path: Path, opts: dict[str, Any]
) -> tuple[dict[str, Any], ReportData, list[ModelCard]]:
    frame = _read_labelled_csv(path, opts["label_column"])
    train = (
        _read_labelled_csv(opts["train"], opts["label_column"])
        if opts["train"] is not None
        else None
    )
    y = binary_labels(frame["label"])
    if frame.attrs.get("kind") == "connections":
        if train is None or train.attrs.get("kind") != "connections":
            raise ValueError(
                "a connection CSV needs --train TRAIN (a connection CSV too): the feature "
                "pipeline and the detector are fitted on its normal rows"
            )
        result, data, cards, _, _ = _evaluate_connections(
            path, train, binary_labels(train["label"]) == 0, frame, y, opts, "CSV"
        )
        return result, data, cards
    if train is not None and train.attrs.get("kind") != "sensors":
        raise ValueError(f"{opts['train']}: a sensor CSV needs a sensor CSV to train on")

    name = _resolve_name(opts["detector"], "sensors")
    opts["stream"] = _stream_path(opts, name)
    if opts["stream"] and not opts["batch_size_given"]:
        opts["batch_size"] = Settings().worker.batch_size
    mode = parse_sensor_mode(opts["features"], default_time=name == DEFAULT_ENSEMBLE)
    train_groups = dict(_entities(train)) if train is not None else {}
    n = len(frame)
    score = np.zeros(n)
    scored = np.zeros(n, dtype=bool)
    bar = _progress(opts["progress"], n, "csv")
    runs: list[tuple[str, np.ndarray, _SeriesRun]] = []
    score_s = learn_s = 0.0
    for entity, rows in _entities(frame):
        train_input = None
        if train is not None:
            if entity not in train_groups:
                raise ValueError(f"{opts['train']}: no training rows for sensor {entity!r}")
            train_input = _series_input(train, train_groups[entity], with_labels=True)
        run = _run_series(
            entity or path.stem,
            _series_input(frame, rows, with_labels=False),
            mode,
            name,
            opts,
            bar.update,
            train_input,
        )
        score[rows] = run.score
        scored[rows] = run.scored
        score_s += run.replay.score_seconds
        learn_s += run.train_seconds + run.replay.learn_seconds
        runs.append((entity, rows, run))
    bar.close()
    label_free = 1.0 - opts["alpha"]
    m = _binary_metrics(
        y[scored], score[scored], label_free, opts["alpha"], opts["cost_fn"], opts["cost_fp"]
    )
    card_metrics = {"roc_auc": m.get("roc_auc"), "average_precision": m.get("average_precision")}
    cards = [
        _series_card(run, entity or path.name, opts["batch_size"], card_metrics)
        for entity, _, run in runs
    ]
    first = runs[0][2]
    result: dict[str, Any] = {
        "n_rows": int(n),
        "n_anomalous_rows": int(y.sum()),
        "n_series": len(runs),
        "detector": name,
        "features": mode.label,
        "feature_pipeline": "windowing.SensorFeaturePipeline (one per sensor, stream defaults)",
        "scoring_path": _PATHS[opts["stream"]],
        "feature_names": first.fx.names,
        "calibration": first.calibration,
        "metrics": m,
        "rejected": rejection_summary(
            {entity or path.name: run.fx.rejected for entity, _, run in runs}, _SENSOR_FILL
        ),
        "stationarity": {entity or path.name: run.fx.stationarity() for entity, _, run in runs},
        "timing": {"score_seconds": score_s, "learn_seconds": learn_s},
    }
    if opts["out"] is not None:
        opts["out"].mkdir(parents=True, exist_ok=True)
        scores_path = opts["out"] / "scores.csv"
        pd.DataFrame({"row": np.arange(n), "label": y, "score": score}).to_csv(
            scores_path, index=False, float_format="%.10g"
        )
        result.setdefault("outputs", {})["scores"] = str(scores_path)
    thresholds = {"label-free": label_free}
    if "best_f1" in m:
        thresholds = {"best F1": m["best_f1"]["threshold"], **thresholds}
    views = []
    for entity, rows, run in runs[:_MAX_TIMELINES]:
        views.append(
            SeriesView(
                f"{path.name} {entity}".strip() if entity else path.name,
                naive_utc(frame["timestamp"].iloc[rows]),
                frame["value"].to_numpy()[rows],
                run.score,
                y[rows],
                thresholds.get("best F1", label_free),
                None if run.scored.all() else run.scored,
            )
        )
    data = ReportData(
        f"CSV: {name}",
        y[scored],
        score[scored],
        thresholds,
        views,
        cost_fn=opts["cost_fn"],
        cost_fp=opts["cost_fp"],
    )
    return result, data, cards


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
        ``default`` / ``default_ensemble`` is ``detectors.ensemble.default_ensemble(source)``.
    profiles
        NAB profiles to score (default all three).
    train
        Training file (KDD: required; CSV: optional): the detector is fitted on its normal
        rows, 20 % of which are held out to calibrate scores to [0, 1].
    out
        Folder for the NAB results layout or ``scores.csv``, the plots, ``report.html`` and
        the model cards. Nothing is written without it.
    features
        Sensor series (NAB, sensor CSVs): ``auto`` (the feature pipeline's stationarity
        test decides whether to difference), ``diff`` or ``level`` (forced), each optionally
        ``+time`` (hour and weekday columns). Default: ``auto+time`` for the default
        ensemble, ``auto`` for other detectors. Connections: not used.
    learn
        Learn online from the evaluated rows after scoring them (default: yes for NAB and
        CSV, no for KDD, whose test traffic is mostly attacks).
    batch_size
        Micro-batch of the online replay (default for NAB/CSV: the worker's micro-batch when
        the sensor agent's own code runs — its scores do not depend on it — else 1, strictly
        one at a time; 256 for KDD with ``learn``).
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
        # Sensor series through the agent's code default to the worker's micro-batch (the
        # scores do not depend on it); offline replays to strictly one at a time.
        "batch_size": batch_size or (256 if fmt == "kdd" else 1),
        "batch_size_given": batch_size is not None,
        "stream": False,
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
