"""The harness measures the stream's own windowing pipelines: same readers, same features."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

import detectors
from detectors.base import Detector
from evaluation import run_evaluation
from evaluation.features import (
    FeatureMode,
    fill_refused,
    parse_sensor_mode,
    sensor_features,
)
from evaluation.harness import _sensor_detector
from evaluation.kdd_categories import KDD_COLUMNS
from evaluation.online import DEFAULT_ENSEMBLE
from windowing import (
    NUMERIC_FIELDS,
    TRAFFIC_FIELDS,
    SensorFeaturePipeline,
    epoch_seconds,
    read_nab_csv,
)

from .conftest import _kdd_rows, write_kdd, write_nab_corpus

FAST = {"detector": "robust_zscore", "detector_params": {"window": 100}}


class _Recorder(Detector):
    """Online detector that keeps every row it learns (score: |first column|)."""

    name = "test_eval_recorder"
    online = True
    instances: ClassVar[list[_Recorder]] = []

    def __init__(self) -> None:
        _Recorder.instances.append(self)
        self.rows: list[np.ndarray] = []

    def _learn(self, X: np.ndarray) -> None:
        self.rows.append(X.copy())
        self.seen_ = True

    def score_many(self, X: Any) -> np.ndarray:
        return np.abs(self._check_input(X)[:, 0])

    def get_params(self) -> dict[str, Any]:
        return {}


detectors.register(_Recorder)


# -- sensors --------------------------------------------------------------------------------
def test_nab_detector_learns_exactly_the_sensor_pipelines_rows(nab_corpus: Path) -> None:
    _Recorder.instances.clear()
    res = run_evaluation(
        nab_corpus, format="nab", detector=_Recorder.name, features="auto", report=False
    )
    assert res["feature_names"] == ["value_z"] and res["features"] == "auto"
    assert res["scoring_path"].startswith("offline:")
    assert len(_Recorder.instances) == 3  # a fresh detector per series
    df = read_nab_csv(nab_corpus / "data" / "groupA" / "spike.csv")
    expected = SensorFeaturePipeline("x").update_many(
        epoch_seconds(df["timestamp"]), df["value"].to_numpy()
    )
    learned = np.vstack(_Recorder.instances[0].rows)
    np.testing.assert_array_equal(learned, expected.values[:, [0]])
    assert res["calibration"].startswith("running tail probability")


def test_default_ensemble_gets_value_then_time_columns(nab_corpus: Path) -> None:
    res = run_evaluation(
        nab_corpus, format="nab", detector=DEFAULT_ENSEMBLE, batch_size=50, report=False
    )
    assert res["detector"] == DEFAULT_ENSEMBLE and res["features"] == "auto+time"
    assert res["feature_names"] == ["value_z", "hour_sin", "hour_cos", "dow_sin", "dow_cos"]
    # The worker's detector with the worker's defaults: the sensor agent's own code.
    assert res["scoring_path"].startswith("stream:")
    assert res["calibration"].startswith("stream: the sensor agent's own")
    assert {c["n_features"] for c in res["model_cards"]} == {5}
    # (How well the ensemble detects is the detectors' business; this checks the wiring.)
    # Without time columns the ensemble is told it has none.
    res = run_evaluation(
        nab_corpus,
        format="nab",
        detector=DEFAULT_ENSEMBLE,
        features="auto",
        batch_size=50,
        report=False,
    )
    assert {c["n_features"] for c in res["model_cards"]} == {1}
    assert res["scoring_path"].startswith("offline:")
    assert res["calibration"].startswith("the detector's own")


def test_default_sensor_detector_is_the_stream_agents(nab_corpus: Path) -> None:
    res = run_evaluation(nab_corpus, format="nab", batch_size=50, report=False)
    assert res["detector"] == "knn_likelihood"
    assert res["scoring_path"].startswith("stream:")
    # The level in its own units (not a z-score), and the calendar context.
    assert res["feature_names"] == ["value", "hour_sin", "hour_cos", "dow_sin", "dow_cos"]


def test_ensemble_time_columns_follow_extra_channels() -> None:
    t = np.arange(400) * 300.0
    fx = sensor_features(
        t, np.sin(t / 5000), {"temp": np.cos(t / 7000)}, mode=FeatureMode("auto", True)
    )
    assert fx.names == ["value_z", "temp_z", "hour_sin", "hour_cos", "dow_sin", "dow_cos"]
    ens = _sensor_detector(DEFAULT_ENSEMBLE, {}, fx)
    cols = {m["name"]: m["columns"] for m in ens.members}
    assert cols == {"zscore": [0, 1], "seasonal": [0, 1, 2, 3, 4, 5]}
    det = _sensor_detector("robust_zscore", {"window": 10}, fx)
    assert det.window == 10


def _corpus_with_refused_rows(root: Path) -> tuple[Path, list[int]]:
    write_nab_corpus(root)
    path = root / "data" / "groupA" / "spike.csv"
    df = pd.read_csv(path)
    stamps = df["timestamp"].tolist()
    stamps[300] = stamps[299]  # duplicate
    stamps[450:453] = stamps[440:443]  # the clock steps back: three late readings
    df["timestamp"] = stamps
    df.to_csv(path, index=False)
    return root, [300, 450, 451, 452]


def test_refused_readings_keep_their_rows_with_the_previous_score(tmp_path: Path) -> None:
    corpus, refused = _corpus_with_refused_rows(tmp_path / "nab")
    out = tmp_path / "out"
    res = run_evaluation(corpus, format="nab", out=out, report=False, **FAST)
    rej = res["rejected"]
    assert rej["rows"] == 4 and rej["reasons"] == {"duplicate": 1, "out_of_order": 3}
    assert rej["series"]["groupA/spike.csv"]["positions"] == refused
    assert "previous" in rej["score"]
    scores = pd.read_csv(out / "robust_zscore" / "groupA" / "robust_zscore_spike.csv")
    assert len(scores) == 600  # NAB's layout: one score per input row
    s = scores["anomaly_score"].to_numpy()
    assert s[300] == s[299] and s[450] == s[451] == s[452] == s[449]
    # Pooled metrics: non-probation rows that were scored (3 series x (600 - 90) - 4).
    assert res["metrics"]["n_rows"] == 3 * 510 - 4
    assert res["n_rows"] == 1800 and res["stationarity"]["groupA/spike.csv"]["rows"] == 596


def test_fill_refused_and_modes() -> None:
    assert fill_refused(np.array([]), np.array([], dtype=int), 3, carry=True).tolist() == [0] * 3
    assert fill_refused(np.array([0.3]), np.array([0]), 3, carry=True).tolist() == [0.3] * 3
    assert parse_sensor_mode("raw", default_time=True) == FeatureMode("level", False)
    assert parse_sensor_mode("LEVEL+time", default_time=False).label == "level+time"
    with pytest.raises(ValueError, match="features"):
        parse_sensor_mode("diff+hour", default_time=False)


def test_csv_sensor_ids_are_separate_series(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    n = 300
    stamps = pd.date_range("2024-01-01", periods=n, freq="5min").strftime("%Y-%m-%dT%H:%M:%S")
    parts = []
    for sensor, spike in (("a", None), ("b", 250)):
        value = 10 + rng.normal(0, 0.2, n)
        label = np.zeros(n, dtype=int)
        if spike is not None:
            value[spike] += 8.0
            label[spike] = 1
        parts.append(
            pd.DataFrame(
                {
                    "ts": stamps,
                    "sensor_id": sensor,
                    "value": value,
                    "anomaly": label,
                    "row": np.arange(n),
                }
            )
        )
    # Interleaved, as a multi-sensor export would be (the "row" helper is not written).
    frame = pd.concat(parts).sort_values(["row", "sensor_id"], kind="stable")
    path = tmp_path / "multi.csv"
    frame.drop(columns="row").to_csv(path, index=False)
    out = tmp_path / "out"
    res = run_evaluation(path, format="csv", out=out, **FAST)
    assert res["n_series"] == 2 and set(res["stationarity"]) == {"a", "b"}
    assert len(res["model_cards"]) == 2 and res["rejected"]["rows"] == 0
    assert res["feature_names"] == ["value_z"]
    scores = pd.read_csv(out / "scores.csv")
    assert len(scores) == 2 * n
    spike_row = int(np.flatnonzero(scores["label"].to_numpy())[0])
    assert spike_row == 2 * 250 + 1  # file order kept: sensor b's row 250
    assert scores["score"].iloc[spike_row] > 0.99
    assert res["metrics"]["best_f1"]["recall"] == 1.0
    assert (out / "timeline_multi.csv_a.png").is_file()


# -- connections ----------------------------------------------------------------------------
def test_kdd_features_are_the_connection_pipelines_and_bad_rows_are_refused(
    kdd_files: tuple[Path, Path], tmp_path: Path
) -> None:
    train, test = kdd_files
    text = test.read_text()
    bad = text.splitlines()[0].split(",")
    bad[KDD_COLUMNS.index("serror_rate")] = "1.5"  # a rate above 1: out_of_range
    test.write_text(text + ",".join(bad) + "\n")
    out = tmp_path / "kdd"
    res = run_evaluation(test, format="kdd", train=train, out=out, report=False, **FAST)
    names = res["feature_names"]
    assert names[: len(NUMERIC_FIELDS)] == list(NUMERIC_FIELDS)
    assert "service=http" in names and names[-1] == "flag=other"
    assert "ConnectionFeaturePipeline" in res["features"]
    assert res["n_rows"] == 496 and res["metrics"]["n_rows"] == 495
    assert res["rejected"]["rows"] == 1 and res["rejected"]["reasons"] == {"out_of_range": 1}
    assert res["rejected"]["series"]["test.txt"]["positions"] == [495]
    scores = pd.read_csv(out / "scores.csv")
    assert len(scores) == 496 and scores["score"].iloc[495] == 0.0
    # windowing.read_kdd strips the trailing dot of KDD labels.
    assert set(res["attacks"]) == {
        "normal",
        "smurf",
        "portsweep",
        "guess_passwd",
        "buffer_overflow",
    }
    assert res["categories"]["dos"]["recall_best_f1"] > 0.9


def _connection_csv(path: Path, seed: int, counts: dict[str, int], raw: bool) -> Path:
    rng = np.random.default_rng(seed)
    rows = [r for label, n in counts.items() for r in _kdd_rows(rng, n, label)]
    rows = [rows[i] for i in rng.permutation(len(rows))]
    frame = pd.DataFrame(rows, columns=[*KDD_COLUMNS, "label"])
    if raw:  # what a flow exporter gives: no derived traffic fields, but time and host
        frame = frame.drop(columns=list(TRAFFIC_FIELDS))
        frame.insert(0, "timestamp", 1.7e9 + np.arange(len(frame)) * 0.5)
        frame.insert(1, "dst_host", rng.choice(["10.0.0.1", "10.0.0.2"], len(frame)))
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("raw", [False, True])
def test_connection_csv_is_evaluated_like_kdd(tmp_path: Path, raw: bool) -> None:
    train = _connection_csv(tmp_path / "train.csv", 5, {"normal": 400, "smurf": 40}, raw)
    test = _connection_csv(tmp_path / "test.csv", 6, {"normal": 200, "portsweep": 20}, raw)
    res = run_evaluation(test, format="csv", train=train, **FAST)
    assert res["n_rows"] == 220 and res["n_anomalous_rows"] == 20
    assert res["feature_names"][: len(NUMERIC_FIELDS)] == list(NUMERIC_FIELDS)
    assert res["n_fit_rows"] + res["n_calibration_rows"] == 400
    assert res["metrics"]["roc_auc"] > 0.9
    with pytest.raises(ValueError, match="--train"):
        run_evaluation(test, format="csv", **FAST)


def test_kdd_gzip_train_and_json_is_strict(tmp_path: Path) -> None:
    train = write_kdd(tmp_path / "train.gz", 7, {"normal": 300, "neptune": 30})
    test = write_kdd(tmp_path / "test.txt", 8, {"normal": 100, "apache2": 5})
    res = run_evaluation(test, format="kdd", train=train, report=False, **FAST)
    assert set(res["categories"]) == {"normal", "unknown"}
    json.dumps(res, allow_nan=False)


def test_without_a_detector_evaluate_runs_the_one_the_worker_is_configured_with(
    nab_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANOMSTREAM_SENSOR_DETECTOR__DETECTOR", "default_ensemble")
    res = run_evaluation(nab_corpus, format="nab", report=False)
    assert res["detector"] == "default_ensemble"
    assert res["scoring_path"].startswith("stream:")
    assert res["feature_names"][0] == "value_z"


def test_a_classifier_over_known_classes_learns_train_s_labelled_attacks(tmp_path: Path) -> None:
    train = write_kdd(tmp_path / "train.gz", 7, {"normal": 600, "smurf": 80, "portsweep": 40})
    test = write_kdd(
        tmp_path / "test.txt", 8, {"normal": 300, "smurf": 30, "portsweep": 20, "guess_passwd": 10}
    )
    res = run_evaluation(test, format="kdd", train=train, detector="open_set_classifier",
                         detector_params={"progress": False}, report=False)
    card = res["model_cards"][0]
    # Fitted on the normal fit rows (80 % of 600) and the 120 labelled attacks as well.
    assert card["train_rows"] == 480 + 120
    assert res["metrics"]["roc_auc"] > 0.99
