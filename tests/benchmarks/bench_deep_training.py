"""Training and micro-batch inference time of the deep window models on this machine.

The retraining loop's budget: an autoencoder and a Seq2Seq LSTM trained on 100,000
windows in under a minute each on 2 CPU cores, and scoring a 1,000-event micro-batch in a
few milliseconds. Windows are sensor-like (a daily wave, a trend, noise), standardised.

    .venv/bin/python tests/benchmarks/bench_deep_training.py [--windows N] [--width W]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from detectors.deep import Autoencoder, Seq2SeqLSTM


def windows(n: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    start = rng.uniform(0, 288, size=(n, 1))
    t = start + np.arange(width)
    x = np.sin(2 * np.pi * t / 288) + 0.001 * t + 0.1 * rng.normal(size=(n, width))
    return ((x - x.mean()) / x.std()).astype(np.float64)


def measure(name: str, det: object, X: np.ndarray, batch: np.ndarray) -> dict:
    t0 = time.perf_counter()
    det.fit(X)  # type: ignore[attr-defined]
    train = time.perf_counter() - t0
    det.score_many(batch)  # type: ignore[attr-defined]  # warm
    runs = []
    for _ in range(20):
        t0 = time.perf_counter()
        det.score_many(batch)  # type: ignore[attr-defined]
        runs.append(time.perf_counter() - t0)
    report = getattr(det, "training_report_", {})
    return {"model": name, "train_s": train, "epochs": report.get("epochs"),
            "infer_ms_per_1000": 1000 * float(np.median(runs)) * 1000 / len(batch)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=100_000, help="training windows")
    ap.add_argument("--width", type=int, default=32, help="readings per window")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--seq2seq-epochs", type=int, default=None,
                    help="cap the Seq2Seq epochs (default: its own, with early stopping)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    X = windows(args.windows, args.width)
    batch = windows(1000, args.width, seed=1)
    rows = [measure("autoencoder", Autoencoder(progress=False), X, batch)]
    s2s = {"progress": False}
    if args.seq2seq_epochs:
        s2s["epochs"] = args.seq2seq_epochs
    rows.append(measure("seq2seq_lstm", Seq2SeqLSTM(**s2s), X, batch))
    print(f"{args.windows:,} windows of {args.width}, {args.threads} torch threads")
    print("| model | train s | epochs | inference ms per 1,000-event batch |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['train_s']:.1f} | {r['epochs']} | "
              f"{r['infer_ms_per_1000']:.2f} |")


if __name__ == "__main__":
    main()
