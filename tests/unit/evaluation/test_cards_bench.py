"""Model cards and the detector micro-benchmark (shapes and bookkeeping, no timings)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from rich.console import Console

import detectors
from evaluation.microbench import baseline_scores, run_microbench
from evaluation.model_card import (
    build_model_card,
    cards_to_json,
    cards_to_markdown,
    profile_detector,
    serialized_size,
    write_model_cards,
)


def _fitted() -> detectors.Detector:
    det = detectors.create("robust_zscore", window=64)
    det.fit(np.random.default_rng(0).normal(size=(100, 3)))
    return det


def test_build_model_card_fields() -> None:
    det = _fitted()
    card = build_model_card(
        det,
        entity="sensor-1",
        train_rows=100,
        train_seconds=0.5,
        inference_seconds=0.2,
        inference_rows=5000,
        inference_mode="batch",
        metrics={"roc_auc": 0.91, "f1": float("nan")},
    )
    assert card.detector == "robust_zscore" and card.n_features == 3
    assert card.params["window"] == 64
    assert card.inference_seconds_per_10k == 0.4
    assert card.size_bytes == serialized_size(det) > 0
    d = cards_to_json([card])[0]
    assert d["metrics"] == {"roc_auc": 0.91, "f1": None}
    json.dumps(d, allow_nan=False)


def test_markdown_table_has_one_row_per_card_and_union_of_metrics() -> None:
    det = _fitted()
    a = build_model_card(
        det,
        entity="a",
        train_rows=1,
        train_seconds=0.1,
        inference_seconds=0.1,
        inference_rows=10,
        inference_mode="batch",
        metrics={"roc_auc": 0.9},
    )
    b = build_model_card(
        det,
        entity="b",
        train_rows=1,
        train_seconds=0.1,
        inference_seconds=0.1,
        inference_rows=10,
        inference_mode="batch",
        metrics={"nab": 1.5},
    )
    lines = cards_to_markdown([a, b]).strip().splitlines()
    assert len(lines) == 4
    assert lines[0].endswith("| roc_auc | nab |")
    assert lines[3].startswith("| robust_zscore | b |") and lines[3].endswith("| – | 1.5 |")


def test_profile_detector_and_write(tmp_path: Path) -> None:
    x = np.random.default_rng(1).normal(size=(300, 2))
    card = profile_detector(
        lambda: detectors.create("robust_zscore"),
        x[:200],
        x[200:],
        entity="synthetic",
        metrics={"roc_auc": 0.5},
    )
    assert card.train_rows == 200 and card.inference_mode == "batch"
    assert card.train_seconds >= 0 and card.inference_seconds_per_10k >= 0
    md, js = write_model_cards([card], tmp_path / "cards")
    assert md.read_text().startswith("# Model cards")
    assert json.loads(js.read_text())[0]["entity"] == "synthetic"


def test_microbench_reports_rates_ratios_and_errors() -> None:
    buf = io.StringIO()
    res = run_microbench(
        ["robust_zscore", "no_such_detector"],
        n_events=500,
        n_one=50,
        n_train=200,
        n_features=3,
        repeat=1,
        console=Console(file=buf, width=200),
    )
    assert res["n_events"] == 500 and res["baseline"]["batch_scores_per_s"] > 0
    rz = res["detectors"]["robust_zscore"]
    assert rz["error"] is None
    for key in ("batch_scores_per_s", "one_scores_per_s", "online_events_per_s"):
        assert rz[key] > 0
    assert rz["batch_ratio"] == rz["batch_scores_per_s"] / res["baseline"]["batch_scores_per_s"]
    assert rz["one_ratio"] > 0
    assert "KeyError" in res["detectors"]["no_such_detector"]["error"]
    table = buf.getvalue()
    assert "robust_zscore" in table and "numpy" in table and "no_such_detector" in table


def test_baseline_is_max_abs_z() -> None:
    rows = np.array([[1.0, -4.0], [0.5, 0.5]])
    np.testing.assert_allclose(baseline_scores(np.zeros(2), np.full(2, 2.0), rows), [2.0, 0.25])
