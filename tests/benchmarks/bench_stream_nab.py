"""The stream's own sensor scoring on a NAB corpus, scored by NAB's rules.

`anomstream evaluate` replays detectors through windowing; this script replays readings
through exactly the code the sensor agent runs (``streams.scoring.score_sensor_batch`` with
the worker's settings: feature pipeline, detector, calibration, chunking, warm-up) in
micro-batches of ``--batch`` readings, so the NAB score printed is the pipeline's.

    .venv/bin/python tests/benchmarks/bench_stream_nab.py ../shared/data/nab

Two readings are scored: the calibrated per-event scores (NAB picks the best threshold),
and the alerts alone (1 at each alert's first event, else 0: what an operator is paged
for). Refused readings (late or duplicate) keep the previous score, as in `evaluate`. The
null detector (constant score) is printed alongside; NAB normalises it to 0.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from evaluation import nab
from evaluation.datasets import find_nab_corpus
from streams.scoring import (
    AlertPolicy,
    RawRecord,
    SensorModelConfig,
    score_sensor_batch,
    sensor_alert_policy,
    sensor_model_config,
)
from streams.settings import Settings
from windowing.readers import epoch_seconds, read_nab_csv


def stream_scores(
    path: Path, entity: str, config: SensorModelConfig, policy: AlertPolicy, batch: int
) -> tuple[np.ndarray, int, float]:
    frame = read_nab_csv(path)
    ts = epoch_seconds(frame["timestamp"])
    values = frame["value"].to_numpy(dtype=float)
    records = [
        RawRecord(
            entity.encode(),
            json.dumps({"sensor_id": entity, "timestamp": float(t), "value": float(v)}).encode(),
            "sensors",
            0,
            i,
        )
        for i, (t, v) in enumerate(zip(ts, values, strict=True))
    ]
    scores = np.full(len(records), np.nan)
    alerts = np.zeros(len(records))
    scorers: dict = {}
    t0 = time.perf_counter()
    for lo in range(0, len(records), batch):
        result = score_sensor_batch(records[lo : lo + batch], scorers, policy, config)
        scored, _dead = result.scored, result.dead
        for ev in scored:
            scores[ev.record.offset] = ev.score
            if ev.alert is not None:
                alerts[ev.record.offset] = 1.0
    seconds = time.perf_counter() - t0
    refused = int(np.isnan(scores).sum())
    # Refused rows carry the previous score (0 before the first), like `evaluate`.
    last = 0.0
    for i in range(len(scores)):
        if np.isnan(scores[i]):
            scores[i] = last
        last = scores[i]
    return scores, alerts, refused, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--batch", type=int, default=100, help="readings per micro-batch")
    ap.add_argument("--detector", default=None, help="override the sensor detector")
    args = ap.parse_args()
    settings = Settings()
    if args.detector:
        settings.sensor_detector.detector = args.detector
    config = sensor_model_config(settings)
    policy = sensor_alert_policy(settings)
    corpus = find_nab_corpus(args.corpus)
    series, null, alert_series = [], [], []
    total_rows = total_s = 0.0
    for s in corpus.series:
        scores, alerts, refused, seconds = stream_scores(
            s.path, s.file.removesuffix(".csv"), config, policy, args.batch
        )
        ts = read_nab_csv(s.path)["timestamp"]
        windows = nab.windows_to_indices(ts, s.windows)
        series.append(nab.LabeledSeries(s.name, scores, windows))
        null.append(nab.LabeledSeries(s.name, np.zeros_like(scores), windows))
        alert_series.append(nab.LabeledSeries(s.name, alerts, windows))
        total_rows += len(scores)
        total_s += seconds
        print(
            f"{s.name}: {len(scores):,} rows ({refused} refused), {len(scores) / seconds:,.0f} "
            f"readings/s through score_sensor_batch"
        )
    results = nab.score_corpus(series)
    baseline = nab.score_corpus(null)
    by_alert = nab.score_corpus(alert_series)
    print(f"\nstream sensor scoring ({config.detector}), {total_rows / total_s:,.0f} readings/s")
    print("| profile | NAB score, calibrated scores | NAB score, alerts only | null detector |")
    print("|---|---|---|---|")
    for name, res in results.items():
        print(
            f"| {name} | {res.score:.1f} (threshold {res.threshold:.6f}) | "
            f"{by_alert[name].score:.1f} | {baseline[name].score:.1f} |"
        )


if __name__ == "__main__":
    main()
