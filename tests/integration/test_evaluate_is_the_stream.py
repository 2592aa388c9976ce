"""`anomstream evaluate --format nab` scores exactly what the sensor agent publishes: a series
replayed through the real worker on the real Kafka gets, event by event, the same scores
as `evaluate` gives it (so evaluate's NAB number is the stream's)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from kafka import KafkaProducer

from evaluation.harness import run_evaluation
from evaluation.stream import sensor_records
from streams.observe import read_topic, wait_for_lag_zero
from windowing.readers import epoch_seconds, read_nab_csv

pytestmark = pytest.mark.integration

N = 1500


def write_series(root: Path) -> Path:
    """One NAB-layout series (daily cycle, noise, a spike and a level shift in windows)."""
    rng = np.random.default_rng(21)
    stamps = pd.date_range("2024-03-01", periods=N, freq="5min")
    t = np.arange(N)
    values = 50 + 8 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 0.8, N)
    values[900] += 20.0
    values[1200:] += 10.0
    path = root / "data" / "groupA" / "series.csv"
    path.parent.mkdir(parents=True)
    pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%d %H:%M:%S"), "value": values}).to_csv(
        path, index=False
    )
    fmt = "%Y-%m-%d %H:%M:%S.%f"
    windows = [[stamps[880].strftime(fmt), stamps[920].strftime(fmt)],
               [stamps[1180].strftime(fmt), stamps[1240].strftime(fmt)]]
    (root / "windows.json").write_text(json.dumps({"groupA/series.csv": windows}))
    return path


def test_the_worker_publishes_the_scores_evaluate_reports(pipeline: Any, tmp_path: Path) -> None:
    corpus = tmp_path / "nab"
    series = write_series(corpus)
    result = run_evaluation(corpus, format="nab", out=tmp_path / "out", report=False)
    assert result["scoring_path"].startswith("stream:")
    evaluated = pd.read_csv(next((tmp_path / "out").rglob("*series.csv")))
    assert len(evaluated) == N

    s = pipeline.settings
    frame = read_nab_csv(series)
    entity = f"nab-{pipeline.uid}"
    producer = KafkaProducer(bootstrap_servers=s.kafka.bootstrap_servers, acks="all")
    for rec in sensor_records(entity, epoch_seconds(frame["timestamp"]), frame["value"]):
        producer.send(s.topics.sensors, key=rec.key, value=rec.value)
    producer.flush()
    producer.close()
    pipeline.start_worker()
    assert wait_for_lag_zero(s, s.worker.app_id, s.topics.sensors, timeout_s=180) == 0, (
        pipeline.worker_log()[-3000:]
    )
    streamed = sorted(
        (r.json() for r in read_topic(s, s.topics.scores)), key=lambda sc: sc["timestamp"]
    )
    assert len(streamed) == N
    # Event by event, to the last bit: same code, same settings, batch-independent.
    assert [sc["score"] for sc in streamed] == evaluated["anomaly_score"].tolist()
    assert sum(sc["is_anomaly"] for sc in streamed) > 0
