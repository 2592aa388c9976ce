"""Candidate sensor detectors on a NAB corpus: NAB scores, calibration and speed, one table.

Every candidate runs online over each series (one pass, score-then-learn, no look-ahead,
no labels, the same parameters for every series), and NAB picks one threshold for the
whole corpus per profile, as NAB does. Rows:

* ``stream default``: the stream's own sensor scoring (``score_sensor_batch`` with the
  worker's settings, micro-batches of ``--batch`` readings), as
  ``bench_stream_nab.py`` runs it: today's baseline;
* ``<name> (stream)``: the candidate through ``score_sensor_batch`` too, selected by
  ``SensorModelConfig(detector=name, chunk=1)``: on the pipeline's ``value_z`` feature,
  recalibrated by the empirical calibrator ``make_sensor_detector`` wraps every
  non-default detector in;
* ``<name> (stream, as-is)``: through ``score_sensor_batch`` with a ``SensorScorer``
  whose feature pipeline hands over the level in its own units (``difference=False``,
  ``scaler_method="none"``) and whose ensemble passes the candidate's own score through
  (``"as_is"`` calibration): what the stream would publish if it selected the candidate
  this way (the lead engineer's wiring to do);
* ``<name> (direct)``: the detector alone on the raw values (``score_learn``).

Calibration columns: on rows outside labelled windows after NAB's probation, the share of
scores at or above ``t``, divided by ``1 - t`` (honest: between 1/3 and 3), and the count
of scores exactly 1.0 (honest: 0); ``standard at <t>``: NAB's standard score when a detection
is a score at or above a fixed threshold, by default the stream's alert threshold
(``--alert-threshold``; no threshold search);
``quiet max``: the highest score on the
``artificialNoAnomaly`` series after probation (must stay below the stream's alert
threshold, 0.99999). Speed: readings per second through the scoring path.

    PYTHONPATH=. .venv/bin/python tests/benchmarks/bench_nab_candidates.py ../shared/data/nab
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import detectors
from detectors.ensemble import Ensemble
from evaluation import nab
from evaluation.datasets import find_nab_corpus
from streams.scoring import (
    AlertPolicy,
    RawRecord,
    SensorModelConfig,
    SensorScorer,
    score_sensor_batch,
    sensor_alert_policy,
)
from streams.settings import Settings
from windowing.readers import epoch_seconds, read_nab_csv
from windowing.sensor import SensorFeaturePipeline

PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
LEVELS = (0.99, 0.999, 0.9999)
#: The stream's alert threshold (``AlertPolicy``'s default, the worker's setting).
ALERT_THRESHOLD = 0.99999

Series = tuple[str, np.ndarray, np.ndarray, np.ndarray]  # name, epoch s, values, windows
Runner = Callable[[str, np.ndarray, np.ndarray], np.ndarray]


def load_corpus(root: Path) -> list[Series]:
    out = []
    for s in find_nab_corpus(root).series:
        frame = read_nab_csv(s.path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            windows = nab.windows_to_indices(frame["timestamp"], s.windows)
        out.append((s.name, epoch_seconds(frame["timestamp"]),
                    frame["value"].to_numpy(dtype=float), windows))
    return out


def _records(entity: str, ts: np.ndarray, values: np.ndarray) -> list[RawRecord]:
    return [
        RawRecord(entity.encode(),
                  json.dumps({"sensor_id": entity, "timestamp": float(t),
                              "value": float(v)}).encode(), "sensors", 0, i)
        for i, (t, v) in enumerate(zip(ts, values, strict=True))
    ]


def stream_runner(config: SensorModelConfig, policy: AlertPolicy, batch: int,
                  make_scorer: Callable[[str], SensorScorer] | None = None) -> Runner:
    """Scores of one series through ``score_sensor_batch`` (refused rows keep the
    previous score, as in ``evaluate``)."""

    def run(entity: str, ts: np.ndarray, values: np.ndarray) -> np.ndarray:
        records = _records(entity, ts, values)
        scores = np.full(len(records), np.nan)
        scorers: dict[str, SensorScorer] = {}
        if make_scorer is not None:
            scorers[entity] = make_scorer(entity)
        for lo in range(0, len(records), batch):
            result = score_sensor_batch(records[lo : lo + batch], scorers, policy, config)
            for ev in result.scored:
                scores[ev.record.offset] = ev.score
        last = 0.0
        for i in range(len(scores)):
            if np.isnan(scores[i]):
                scores[i] = last
            last = scores[i]
        return scores

    return run


def as_is_scorer(name: str, params: dict[str, Any], config: SensorModelConfig,
                 settings: Settings) -> Callable[[str], SensorScorer]:
    """A ``SensorScorer`` whose pipeline keeps the level and whose ensemble passes the
    candidate's own (calibrated) score through."""
    sd = settings.sensor_detector

    def make(entity: str) -> SensorScorer:
        features = SensorFeaturePipeline(
            entity, cadence=config.cadence, seasonal_period=None, tz=config.tz,
            warmup=sd.stationarity_warmup, difference=False, scaler_method="none")
        member = detectors.create(name, **params)
        ensemble = Ensemble(members=[{"detector": member, "columns": [0], "name": name}],
                            method="max", calibration={"kind": "as_is"})
        return SensorScorer(entity, config, features=features, detector=ensemble)

    return make


def direct_runner(name: str, params: dict[str, Any]) -> Runner:
    def run(entity: str, ts: np.ndarray, values: np.ndarray) -> np.ndarray:
        det = detectors.create(name, **params)
        return det.score_learn(values.reshape(-1, 1))

    return run


def calibration(corpus: list[Series], scores: list[np.ndarray]) -> tuple[list[float], int]:
    normal = []
    for (_, _, _, windows), s in zip(corpus, scores, strict=True):
        keep = np.ones(len(s), dtype=bool)
        keep[: nab.probation_length(len(s))] = False
        for left, right in windows:
            keep[left : right + 1] = False
        normal.append(s[keep])
    rows = np.concatenate(normal)
    return [float((rows >= t).mean() / (1 - t)) for t in LEVELS], int((rows == 1.0).sum())


def evaluate(label: str, runner: Runner, corpus: list[Series], verbose: bool = False,
             alert_threshold: float = ALERT_THRESHOLD) -> dict[str, Any]:
    scores, seconds, rows = [], 0.0, 0
    for name, ts, values, _ in corpus:
        t0 = time.perf_counter()
        s = runner(name.rsplit("/", 1)[-1].removesuffix(".csv"), ts, values)
        seconds += time.perf_counter() - t0
        rows += len(s)
        scores.append(np.asarray(s, dtype=np.float64))
        if verbose:
            print(f"  {label}: {name} done", flush=True)
    labeled = [nab.LabeledSeries(n, s, w) for (n, _, _, w), s in zip(corpus, scores, strict=True)]
    res = nab.score_corpus(labeled)
    fixed = {}
    for p in PROFILES:
        raw = sum(nab.score_at_threshold(nab.sweep_series(ls, p), alert_threshold, p)["raw_score"]
                  for ls in labeled)
        fixed[p] = nab.normalized_score(raw, res[p].null_score, res[p].perfect_score)
    shares, ones = calibration(corpus, scores)
    quiet = [s[nab.probation_length(len(s)):].max()
             for (name, _, _, _), s in zip(corpus, scores, strict=True)
             if name.startswith("artificialNoAnomaly/")]
    return {"label": label, "nab": {p: res[p].score for p in PROFILES},
            "threshold": res["standard"].threshold, "shares": shares, "ones": ones,
            "quiet_max": max(quiet) if quiet else float("nan"), "fixed": fixed,
            "alert_threshold": alert_threshold,
            "speed": rows / seconds, "result": res, "scores": scores}


def print_table(rows: list[dict[str, Any]]) -> None:
    at = rows[0]["alert_threshold"] if rows else ALERT_THRESHOLD
    print(f"| detector | standard | low FP | low FN | threshold (std) | standard at {at:g} | "
          "share >= .99 | >= .999 | >= .9999 (x 1-t) | exactly 1.0 | quiet max | readings/s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        n, s = r["nab"], r["shares"]
        print(f"| {r['label']} | {n['standard']:.1f} | {n['reward_low_FP_rate']:.1f} | "
              f"{n['reward_low_FN_rate']:.1f} | {r['threshold']:.6f} | "
              f"{r['fixed']['standard']:.1f} | {s[0]:.2f} | "
              f"{s[1]:.2f} | {s[2]:.2f} | {r['ones']} | {r['quiet_max']:.6f} | "
              f"{r['speed']:,.0f} |")


def print_series(row: dict[str, Any]) -> None:
    res = row["result"]["standard"]
    print(f"\nper series, {row['label']}, standard profile at its corpus threshold")
    print("| series | raw score | windows detected | false-positive rows |")
    print("|---|---|---|---|")
    for name, s in res.series.items():
        print(f"| {name} | {s['raw_score']:.2f} | {s['windows_detected']}/{s['windows']} | "
              f"{s['fp']} |")


def print_categories(row: dict[str, Any], corpus: list[Series]) -> None:
    """Per NAB category, each profile at its corpus-wide threshold (NAB's one threshold),
    normalised with that category's own null and perfect scores."""
    res = row["result"]
    labeled = [nab.LabeledSeries(n, s, w)
               for (n, _, _, w), s in zip(corpus, row["scores"], strict=True)]
    groups: dict[str, list[nab.LabeledSeries]] = {}
    for ls in labeled:
        groups.setdefault(ls.name.split("/", 1)[0], []).append(ls)
    print(f"\nper category, {row['label']}, each profile at its corpus threshold")
    print("| category | series | windows detected | FP rows | standard | low FP | low FN |")
    print("|---|---|---|---|---|---|---|")
    for cat, members in sorted(groups.items()):
        names = {m.name for m in members}
        std = [v for k, v in res["standard"].series.items() if k in names]
        found = sum(v["windows_detected"] for v in std)
        total = sum(v["windows"] for v in std)
        cells = []
        for p in PROFILES:
            if not total:
                cells.append("n/a")
                continue
            raw = sum(nab.score_at_threshold(nab.sweep_series(m, p), res[p].threshold, p)
                      ["raw_score"] for m in members)
            own = nab.score_corpus(members)[p]
            cells.append(f"{nab.normalized_score(raw, own.null_score, own.perfect_score):.1f}")
        print(f"| {cat} | {len(members)} | {found}/{total} | {sum(v['fp'] for v in std)} | "
              f"{' | '.join(cells)} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", type=Path, help="NAB-layout folder (data/ + windows.json)")
    ap.add_argument("--candidates", nargs="*", default=["knn_likelihood"],
                    help="registered detectors to try (default: %(default)s)")
    ap.add_argument("--params", default="{}",
                    help="JSON parameters for the candidates (same for all series)")
    ap.add_argument("--paths", nargs="*", default=["default", "stream", "as-is", "direct"],
                    choices=["default", "stream", "as-is", "direct"],
                    help="which rows to run (default: all)")
    ap.add_argument("--batch", type=int, default=100, help="readings per micro-batch")
    ap.add_argument("--alert-threshold", type=float, default=None,
                    help="fixed threshold of the 'standard at' column (default: the "
                         "stream's alert threshold from the settings)")
    ap.add_argument("--series", action="store_true", help="also print per-series tables")
    ap.add_argument("--categories", action="store_true",
                    help="also print per-category tables")
    ap.add_argument("--verbose", action="store_true", help="print progress per series")
    args = ap.parse_args()
    params = json.loads(args.params)

    settings = Settings()
    sd = settings.sensor_detector
    base = SensorModelConfig(detector=sd.detector, cadence=sd.cadence_s,
                             seasonal_period=sd.seasonal_period_s, tz=sd.timezone,
                             stationarity_warmup=sd.stationarity_warmup)
    policy = AlertPolicy(threshold=sensor_alert_policy(settings).threshold, warmup=sd.warmup,
                         cooldown_events=settings.alerts.cooldown_events)
    alert = policy.threshold if args.alert_threshold is None else args.alert_threshold
    corpus = load_corpus(args.corpus)
    print(f"{len(corpus)} series, {sum(len(c[2]) for c in corpus):,} readings, "
          f"{sum(len(c[3]) for c in corpus)} windows", flush=True)

    rows = []
    if "default" in args.paths:
        rows.append(evaluate(f"stream default ({base.detector})",
                             stream_runner(base, policy, args.batch), corpus, args.verbose, alert))
    for name in args.candidates:
        if "stream" in args.paths:
            if params:
                print(f"(note: the stream row of {name} uses its default parameters)")
            cfg = SensorModelConfig(**{**base.__dict__, "detector": name, "chunk": 1})
            rows.append(evaluate(f"{name} (stream)", stream_runner(cfg, policy, args.batch),
                                 corpus, args.verbose, alert))
        if "as-is" in args.paths:
            cfg = SensorModelConfig(**{**base.__dict__, "detector": name, "chunk": 1})
            runner = stream_runner(cfg, policy, args.batch,
                                   as_is_scorer(name, params, cfg, settings))
            rows.append(evaluate(f"{name} (stream, as-is)", runner, corpus, args.verbose, alert))
        if "direct" in args.paths:
            rows.append(evaluate(f"{name} (direct)", direct_runner(name, params), corpus,
                                 args.verbose, alert))
        print_table(rows)
        print(flush=True)
    print_table(rows)
    if args.categories:
        for r in rows:
            print_categories(r, corpus)
    if args.series:
        for r in rows:
            print_series(r)


if __name__ == "__main__":
    main()
