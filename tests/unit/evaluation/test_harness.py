"""run_evaluation / anomstream evaluate on synthetic NAB, KDD and CSV data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

import detectors
from detectors.base import Detector
from detectors.calibration import ScoreCalibrator
from evaluation import run_evaluation, to_json
from evaluation.cli import evaluate_command
from evaluation.online import (
    calibrate_online,
    make_detector,
    reference_calibrator,
    replay_online,
)

from .conftest import WINDOW, write_nab_corpus

FAST = {"detector": "robust_zscore", "detector_params": {"window": 100}}
PNG = b"\x89PNG\r\n\x1a\n"


# -- online replay ------------------------------------------------------------------------
def test_replay_scores_before_learning_and_never_looks_ahead() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 1))
    x_future = x.copy()
    x_future[200:] += 50.0  # a different future
    a = replay_online(detectors.create("robust_zscore", window=50), x, warmup=20).raw
    b = replay_online(detectors.create("robust_zscore", window=50), x_future, warmup=20).raw
    np.testing.assert_array_equal(a[:200], b[:200])
    assert np.isnan(a[:20]).all() and np.isfinite(a[20:]).all()
    # Row 200 is scored by a detector that has not learned it yet: a big surprise.
    assert b[200] > 10 * np.nanmax(a[20:200])


class _BatchMeanDistance(Detector):
    """A minimal batch-only detector (overrides the public methods only)."""

    name = "test_batch_mean_distance"
    online = False

    def fit(self, X: Any, feature_names: Any = None) -> _BatchMeanDistance:
        self.mean_ = np.asarray(X, dtype=float).mean(axis=0)
        self.n_features_in_ = self.mean_.size
        return self

    def score_many(self, X: Any) -> np.ndarray:
        return np.abs(np.asarray(X, dtype=float) - self.mean_).max(axis=1)


def test_replay_batch_detector_is_fitted_on_the_warmup_prefix() -> None:
    x = np.random.default_rng(1).normal(size=(200, 2))
    rr = replay_online(_BatchMeanDistance(), x, warmup=50)
    assert rr.n_learned == 50 and np.isnan(rr.raw[:50]).all() and rr.n_scored == 150


def test_online_calibration_is_causal_and_is_the_detectors_calibrator() -> None:
    raw = np.abs(np.random.default_rng(2).standard_t(3, size=1000))
    raw[:5] = np.nan  # detector not ready yet
    cal = calibrate_online(raw, window=200, min_history=30)
    assert (cal[:35] == 0).all() and ((cal >= 0) & (cal <= 1)).all()
    changed = raw.copy()
    changed[600:] *= 10
    np.testing.assert_array_equal(
        cal[:600], calibrate_online(changed, window=200, min_history=30)[:600]
    )
    # Row 600 is calibrated by detectors.calibration.ScoreCalibrator over the 200 raw
    # scores before it (never itself), as the stream's ensembles calibrate their members.
    ref = ScoreCalibrator(window=200, tail_quantile=0.95).fit(raw[400:600])
    assert cal[600] == pytest.approx(ref.transform([raw[600]])[0])
    # Micro-batches: every row of a batch is calibrated against what came before the batch.
    batched = calibrate_online(raw, window=200, min_history=30, batch_size=50)
    ref = ScoreCalibrator(window=200, tail_quantile=0.95).fit(raw[400:600])
    np.testing.assert_allclose(batched[600:650], ref.transform(raw[600:650]))


def test_reference_calibration_is_uniform_on_reference_like_data() -> None:
    rng = np.random.default_rng(3)
    cal = reference_calibrator(rng.normal(size=5000))
    assert cal.window == 5000  # the whole held-out sample is the reference
    p = cal.transform(rng.normal(size=5000))
    assert abs(np.mean(p >= 0.99) - 0.01) < 0.005
    high = cal.transform(np.array([10.0, 20.0]))
    assert high[0] < high[1]  # beyond the reference, the fitted tail keeps them ordered
    with pytest.raises(ValueError):
        reference_calibrator(np.array([np.nan]))


def test_default_detector_resolution() -> None:
    name, det = make_detector("robust_zscore", {"window": 7})
    assert name == "robust_zscore" and det.window == 7
    with pytest.raises(KeyError):
        make_detector("no_such_detector")


# -- NAB ----------------------------------------------------------------------------------
def test_nab_evaluation_writes_nab_results_layout_and_scores(
    nab_corpus: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    res = run_evaluation(nab_corpus, format="nab", out=out, **FAST)
    assert res["format"] == "nab" and res["detector"] == "robust_zscore"
    assert res["n_series"] == 3 and res["skipped"] == ["groupC/unlabelled.csv"]
    assert set(res["nab"]) == {"standard", "reward_low_FP_rate", "reward_low_FN_rate"}
    std = res["nab"]["standard"]
    # Both anomalies are obvious and early in their windows: close to a perfect score.
    assert std["score"] > 80
    assert std["null_score"] == -2.0 and std["perfect_score"] == 2.0
    assert std["series"]["groupA/spike.csv"]["windows_detected"] == 1
    for key in ("roc_auc", "average_precision", "best_f1", "label_free", "min_cost"):
        assert key in res["metrics"]

    f = out / "robust_zscore" / "groupA" / "robust_zscore_spike.csv"
    df = pd.read_csv(f)
    assert list(df.columns) == ["timestamp", "value", "anomaly_score", "label"]
    assert len(df) == 600 and df["anomaly_score"].between(0, 1).all()
    assert df["label"].sum() == WINDOW[1] - WINDOW[0] + 1
    assert df["label"].iloc[WINDOW[0]] == 1 and df["label"].iloc[WINDOW[0] - 1] == 0
    assert (out / "robust_zscore" / "groupB" / "robust_zscore_quiet.csv").is_file()

    # Report: every PNG is a PNG, and the HTML inlines them all.
    html = (out / "report.html").read_text()
    for name in res["outputs"]["plots"]:
        assert Path(name).read_bytes()[:8] == PNG
    assert html.count("data:image/png;base64,") == len(res["outputs"]["plots"])
    names = {Path(p).name for p in res["outputs"]["plots"]}
    assert {
        "roc.png",
        "pr.png",
        "threshold_sweep.png",
        "score_hist.png",
        "confusion.png",
        "nab_threshold.png",
        "timeline_groupA_spike.png",
    } <= names
    assert "<script" not in html and "http" not in html.split("<pre>")[0]
    cards = json.loads((out / "model_cards.json").read_text())
    assert len(cards) == 3 and cards[0]["inference_seconds_per_10k"] > 0
    assert (
        json.loads((out / "evaluation.json").read_text())["nab"]["standard"]["score"]
        == std["score"]
    )
    json.loads(to_json(res))  # strict JSON: no NaN


def test_nab_scores_do_not_depend_on_the_future_or_on_labels(tmp_path: Path) -> None:
    a = write_nab_corpus(tmp_path / "a")
    b = write_nab_corpus(tmp_path / "b", tail_shift=30.0)
    labels = json.loads((b / "windows.json").read_text())
    labels["groupA/spike.csv"] = []  # the detector must not care what is labelled
    (b / "windows.json").write_text(json.dumps(labels))
    run_evaluation(a, format="nab", out=tmp_path / "oa", report=False, **FAST)
    run_evaluation(b, format="nab", out=tmp_path / "ob", report=False, **FAST)
    rel = Path("robust_zscore/groupA/robust_zscore_spike.csv")
    sa = pd.read_csv(tmp_path / "oa" / rel)["anomaly_score"].to_numpy()
    sb = pd.read_csv(tmp_path / "ob" / rel)["anomaly_score"].to_numpy()
    np.testing.assert_array_equal(sa[:500], sb[:500])
    assert not np.array_equal(sa[500:], sb[500:])


def test_nab_profile_selection_and_features(nab_corpus: Path) -> None:
    res = run_evaluation(
        nab_corpus, format="nab", profiles=["reward_low_FN"], features="diff+time", **FAST
    )
    assert list(res["nab"]) == ["reward_low_FN_rate"] and res["features"] == "diff+time"
    assert res["feature_names"] == ["value_z", "hour_sin", "hour_cos", "dow_sin", "dow_cos"]
    # Forced differencing: every row after the first is the z-score of a difference.
    assert all(st["differenced_share"] > 0.99 for st in res["stationarity"].values())
    assert "outputs" not in res  # nothing written without --out
    level = run_evaluation(nab_corpus, format="nab", features="level", **FAST)
    assert level["feature_names"] == ["value_z"]
    assert all(st["differenced_share"] == 0 for st in level["stationarity"].values())
    for bad in ("fourier", "diff+level"):
        with pytest.raises(ValueError, match="features"):
            run_evaluation(nab_corpus, format="nab", features=bad, **FAST)


# -- KDD ----------------------------------------------------------------------------------
def test_kdd_evaluation(kdd_files: tuple[Path, Path], tmp_path: Path) -> None:
    train, test = kdd_files
    out = tmp_path / "kdd"
    res = run_evaluation(test, format="kdd", train=train, out=out, detector="robust_zscore")
    m = res["metrics"]
    assert res["n_rows"] == 495 and res["n_anomalous_rows"] == 95
    assert m["roc_auc"] > 0.9 and m["average_precision"] > 0.8
    for point in ("best_f1", "label_free"):
        assert {"threshold", "precision", "recall", "f1", "f2", "tp", "fp", "tn", "fn"} <= set(
            m[point]
        )
    assert m["label_free"]["threshold"] == pytest.approx(0.99)
    assert set(res["categories"]) == {"normal", "dos", "probe", "r2l", "u2r"}
    assert res["categories"]["dos"]["rows"] == 60
    assert "fpr_label_free" in res["categories"]["normal"]
    assert res["attacks"]["buffer_overflow"]["rows"] == 5
    # Fit and calibration rows are disjoint subsets of TRAIN's normal rows.
    assert res["n_fit_rows"] + res["n_calibration_rows"] == 800

    scores = pd.read_csv(out / "scores.csv")
    assert list(scores.columns) == ["row", "label", "score"]
    assert scores["row"].tolist() == list(range(495))
    assert scores["label"].sum() == 95 and scores["score"].between(0, 1).all()
    assert (out / "report.html").is_file() and (out / "timeline_test.txt_row_order.png").is_file()


def test_kdd_isolation_forest(kdd_files: tuple[Path, Path]) -> None:
    assert "isolation_forest" in detectors.available()
    train, test = kdd_files
    res = run_evaluation(
        test,
        format="kdd",
        train=train,
        detector="isolation_forest",
        detector_params={"n_estimators": 30},
    )
    assert res["detector"] == "isolation_forest" and res["metrics"]["roc_auc"] > 0.75


def test_kdd_needs_train(kdd_files: tuple[Path, Path]) -> None:
    with pytest.raises(ValueError, match="--train"):
        run_evaluation(kdd_files[1], format="kdd")


# -- generic CSV --------------------------------------------------------------------------
def test_csv_evaluation(labelled_csv: Path, tmp_path: Path) -> None:
    res = run_evaluation(labelled_csv, format="csv", out=tmp_path / "csv", **FAST)
    assert res["n_rows"] == 500 and res["n_anomalous_rows"] == 3
    assert res["metrics"]["roc_auc"] > 0.95
    assert res["metrics"]["best_f1"]["recall"] == 1.0
    assert (tmp_path / "csv" / "scores.csv").is_file()
    assert (tmp_path / "csv" / "timeline_events.png").is_file()


def test_csv_with_train_file(labelled_csv: Path) -> None:
    res = run_evaluation(labelled_csv, format="csv", train=labelled_csv, **FAST)
    assert res["calibration"].startswith("tail probability under held-out")
    assert res["metrics"]["roc_auc"] > 0.95


# -- command line -------------------------------------------------------------------------
def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("evaluate")(evaluate_command)

    @app.command("noop")
    def noop() -> None:  # a second command keeps "evaluate" a sub-command, as in anomstream
        pass

    return app


def test_cli_json_output(nab_corpus: Path) -> None:
    result = CliRunner().invoke(
        _app(),
        [
            "evaluate",
            str(nab_corpus),
            "--format",
            "nab",
            "--detector",
            "robust_zscore",
            "-p",
            "window=100",
            "--json",
            "--no-report",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["schema_version"] == 1 and payload["detector_params"]["window"] == 100
    assert set(payload["nab"]) == {"standard", "reward_low_FP_rate", "reward_low_FN_rate"}


def test_cli_human_output_and_errors(nab_corpus: Path, kdd_files: tuple[Path, Path]) -> None:
    app = _app()
    ok = CliRunner().invoke(app, ["evaluate", str(nab_corpus), "-d", "robust_zscore"])
    assert ok.exit_code == 0 and "NAB" in ok.stdout and "standard" in ok.stdout
    bad = CliRunner().invoke(app, ["evaluate", str(kdd_files[1]), "--format", "kdd"])
    assert bad.exit_code == 2 and "--train" in bad.output
    bad = CliRunner().invoke(app, ["evaluate", str(nab_corpus), "-p", "window"])
    assert bad.exit_code != 0
