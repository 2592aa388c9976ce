"""The default sensor ensemble on the NAB development series, online, scored by NAB's rules.

Run from the repository root::

    .venv/bin/python tests/benchmarks/bench_detectors_nab.py [--data DIR] [--out DIR]

Every CSV under ``DIR/data/**`` is replayed row by row: the features of a reading are the
first difference of the value (NAB series are not stationary) and the hour / day-of-week
sin/cos of its timestamp; ``default_ensemble("sensors")`` scores the reading with what it has
learned so far, then learns it (no look-ahead). Rows before the ensemble has seen anything get
score 0 (they fall in NAB's probation period anyway). Per-row scores are written to
``OUT/<group>/<file>.csv`` (``timestamp,value,anomaly_score,label``), and the NAB score
per profile comes from :mod:`detectors.nab` (one threshold for the whole corpus).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from detectors import default_ensemble, nab  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "nab"


def sensor_features(df: pd.DataFrame) -> np.ndarray:
    """[first difference, hour sin, hour cos, dow sin, dow cos] per row."""
    ts = pd.to_datetime(df["timestamp"])
    hour = ts.dt.hour.to_numpy() + ts.dt.minute.to_numpy() / 60
    dow = ts.dt.day_of_week.to_numpy()
    value = df["value"].to_numpy(dtype=np.float64)
    diff = np.r_[0.0, np.diff(value)]
    return np.column_stack([diff, np.sin(2 * np.pi * hour / 24), np.cos(2 * np.pi * hour / 24),
                            np.sin(2 * np.pi * dow / 7), np.cos(2 * np.pi * dow / 7)])


def run_series(x: np.ndarray) -> np.ndarray:
    ens = default_ensemble("sensors")
    scores = np.zeros(len(x))
    for i, row in enumerate(x):
        if ens.is_fitted:
            scores[i] = ens.score_one(row)
        ens.learn_one(row)
    return scores


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out", type=Path, default=Path("/tmp/anomstream-nab-scores"))
    ap.add_argument("--markdown", type=Path, default=None)
    args = ap.parse_args(argv)

    windows = json.loads((args.data / "windows.json").read_text())
    corpus, lines = [], []
    t_all = time.perf_counter()
    for path in sorted((args.data / "data").glob("**/*.csv")):
        rel = str(path.relative_to(args.data / "data"))
        df = pd.read_csv(path)
        t0 = time.perf_counter()
        scores = run_series(sensor_features(df))
        secs = time.perf_counter() - t0
        win = nab.windows_to_indices(df["timestamp"].to_numpy(), windows.get(rel, []))
        label = np.zeros(len(df), dtype=int)
        for lo, hi in win:
            label[lo : hi + 1] = 1
        out = args.out / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"timestamp": df["timestamp"], "value": df["value"],
                      "anomaly_score": scores, "label": label}).to_csv(out, index=False)
        corpus.append(nab.LabeledSeries(rel, scores, win))
        print(f"{rel}: {len(df):,} rows, {len(win)} windows, {secs:.1f} s "
              f"({len(df) / secs:,.0f} readings/s score+learn)", flush=True)
    results = nab.score_corpus(corpus)
    lines += ["| profile | NAB score | threshold | TP | FP | FN |", "|---|---|---|---|---|---|"]
    for name, res in results.items():
        lines.append(f"| {name} | {res.score:.1f} | {res.threshold:.6f} | {res.counts['tp']} | "
                     f"{res.counts['fp']} | {res.counts['fn']} |")
    lines.append("")
    lines.append(f"{len(corpus)} series, {time.perf_counter() - t_all:.0f} s in total; per-row "
                 f"scores in `{args.out}`.")
    print("\n".join(lines))
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
