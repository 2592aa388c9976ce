"""Drift monitors on long synthetic streams: false alarms against the budget, detection delays.

Usage::

    PYTHONPATH=. .venv/bin/python tests/benchmarks/bench_drift.py [--quick] [--seed N]

Part 1, false alarms: each monitor runs over long **stationary** streams (seeded) at
several budgets and the table gives the false alarms counted and the events between them
(``events / alarms``) next to the budget. A monitor re-takes its reference after an alarm,
as it does in the stream, so each alarm costs a reference's worth of blind events; these
are counted in the stream length. Streams (unit variance, one value per event):

* ``gaussian``: i.i.d. N(0, 1);
* ``t3``: Student t with 3 degrees of freedom, scaled to unit variance (heavy tails);
* ``ar1``: AR(1) with coefficient 0.7 (autocorrelated; lag-10 correlation 0.03);
* ``quantised``: N(0, 1) rounded to multiples of 0.5 (heavy ties);
* ``seasonal``: ``sin(2 pi t / 1440) + N(0, 1)``, a daily cycle at one event a minute.

What each monitor sees:

* features (``FeatureDriftMonitor``): 10 independent copies of the stream as 10 features.
  On the seasonal stream both windows must be whole days (reference 2880, window 1440):
  the row ``seasonal (defaults)`` shows what 2000 / 1000 does to a cycle of 1440;
* scores (``ScoreDriftMonitor``): the score of a model that believes the stream is N(0, 1),
  ``P(|Z| < |x|)`` — stationary but not uniform for ``t3``, ``quantised``; on the seasonal
  stream the model knows half the cycle (``x - 0.5 sin``), so its scores keep a daily cycle;
* exceedances (``ExceedanceMonitor``, alert threshold 0.9995): exactly calibrated scores
  (the stream's own marginal distribution), since the test takes calibration at its word.

Part 2, delays: a stationary stretch (20,000 events; 150,000 for exceedances, whose window
is 100,000), then a change; the delay is the events from the change to the first report
(median and 90th percentile over repetitions; ``missed`` = none within the horizon; a
report before the change counts in ``early``). Changes: mean shift of 0.5, 1 and 2
standard deviations, variance x2 (on the gaussian stream, one feature of 10 for the
feature monitor), and on the seasonal stream the daily peak 6 hours later or its
amplitude doubled. All at each monitor's own budget (``--budget``, default 1e6).

Part 3: river's own ``PageHinkley`` and ``ADWIN`` with their defaults on the probits of
calibrated scores of the i.i.d. gaussian and the AR(1) stream (no drift at all).

Not a unit test: pytest does not collect it and nothing here asserts on wall-clock time.
"""

from __future__ import annotations

import os

# One core: numpy's BLAS threads confined before numpy loads.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from scipy import signal, special  # noqa: E402
from scipy import stats as sps  # noqa: E402

from retrain import (  # noqa: E402
    ExceedanceMonitor,
    FeatureDriftMonitor,
    ScoreDriftMonitor,
    probit_scores,
)

__all__ = ["main"]

PERIOD = 1440  # events per day at one reading a minute
STREAMS = ("gaussian", "t3", "ar1", "quantised", "seasonal")
ALERT_THRESHOLD = 0.9995
CHUNK = 100_000


# -- streams --------------------------------------------------------------------------------
@dataclass
class Stream:
    """A seeded stationary stream, generated in chunks (continuous across chunks)."""

    kind: str
    rng: np.random.Generator
    width: int = 1
    amplitude: float = 1.0  # seasonal cycle
    phase: float = 0.0  # seasonal cycle, in events
    t: int = 0
    zi: np.ndarray | None = None
    mean: np.ndarray = field(default_factory=lambda: np.zeros(1))
    scale: np.ndarray = field(default_factory=lambda: np.ones(1))

    def cycle(self, t: np.ndarray) -> np.ndarray:
        return np.sin(2 * np.pi * (t - self.phase) / PERIOD)

    def next(self, n: int) -> np.ndarray:
        """``(n, width)`` values; regime changes act through ``mean``, ``scale``, the cycle."""
        shape = (n, self.width)
        t = self.t + np.arange(n)
        self.t += n
        if self.kind == "gaussian":
            x = self.rng.normal(size=shape)
        elif self.kind == "t3":
            x = self.rng.standard_t(3, size=shape) / np.sqrt(3.0)
        elif self.kind == "ar1":
            phi = 0.7
            e = self.rng.normal(size=shape) * np.sqrt(1 - phi**2)
            if self.zi is None:
                self.zi = self.rng.normal(size=(1, self.width)) * phi
            x, self.zi = signal.lfilter([1.0], [1.0, -phi], e, axis=0, zi=self.zi)
        elif self.kind == "quantised":
            x = np.round(self.rng.normal(size=shape) * 2.0) / 2.0
        elif self.kind == "seasonal":
            x = self.amplitude * self.cycle(t)[:, None] + self.rng.normal(size=shape)
        else:
            raise ValueError(self.kind)
        return x * self.scale + self.mean


def gaussian_score(x: np.ndarray) -> np.ndarray:
    """``P(|Z| < |x|)``: a model that believes in N(0, 1)."""
    return 1.0 - special.erfc(np.abs(x) / np.sqrt(2.0))


def _seasonal_abs_cdf() -> Callable[[np.ndarray], np.ndarray]:
    # Marginal CDF of |sin(phase) + N(0, 1)| over a uniform phase, tabulated once.
    grid = np.linspace(0.0, 12.0, 24_001)
    phases = np.sin(2 * np.pi * (np.arange(PERIOD) + 0.5) / PERIOD)
    cdf = np.zeros_like(grid)
    for a in np.array_split(phases, 16):
        cdf += (sps.norm.cdf(grid[:, None] - a) - sps.norm.cdf(-grid[:, None] - a)).sum(axis=1)
    cdf /= PERIOD
    return lambda v: np.interp(v, grid, cdf, right=1.0)


_SEASONAL_CDF: Callable[[np.ndarray], np.ndarray] | None = None


def exact_score(kind: str, x: np.ndarray) -> np.ndarray:
    """Calibrated scores, ``P(|X| < |x|)`` under the stream's own stationary marginal."""
    global _SEASONAL_CDF
    v = np.abs(x)
    if kind in ("gaussian", "ar1"):
        return gaussian_score(x)
    if kind == "t3":
        return 2.0 * sps.t.cdf(v * np.sqrt(3.0), 3) - 1.0
    if kind == "quantised":
        # ``1 - P(|X| >= |x|)``, the calibrator's convention for ties (conservative).
        return np.where(v > 0, 1.0 - special.erfc((v - 0.25) / np.sqrt(2.0)), 0.0)
    if kind == "seasonal":
        if _SEASONAL_CDF is None:
            _SEASONAL_CDF = _seasonal_abs_cdf()
        return _SEASONAL_CDF(v)
    raise ValueError(kind)


# -- monitors -------------------------------------------------------------------------------
def feature_monitor(kind: str, budget: float, defaults: bool = False) -> FeatureDriftMonitor:
    if kind == "seasonal" and not defaults:
        return FeatureDriftMonitor(reference_size=2 * PERIOD, window_size=PERIOD,
                                   budget_events=budget)
    return FeatureDriftMonitor(budget_events=budget)


@dataclass
class Runner:
    """How one monitor consumes one stream."""

    name: str
    width: int
    make: Callable[[str, float], Any]
    feed: Callable[[Any, str, Stream, np.ndarray], list[Any]]


def _feed_features(mon: Any, kind: str, stream: Stream, x: np.ndarray) -> list[Any]:
    return mon.update_many(x)


def _feed_scores(mon: Any, kind: str, stream: Stream, x: np.ndarray) -> list[Any]:
    v = x[:, 0]
    if kind == "seasonal":  # the model knows half the daily cycle
        t = stream.t - x.shape[0] + np.arange(x.shape[0])
        v = v - 0.5 * np.sin(2 * np.pi * t / PERIOD)
    return mon.update_many(gaussian_score(v))


def _feed_exceedance(mon: Any, kind: str, stream: Stream, x: np.ndarray) -> list[Any]:
    return mon.update_many(exact_score(kind, x[:, 0]))


RUNNERS = {
    "features": Runner("FeatureDriftMonitor (10 features)", 10, feature_monitor,
                       _feed_features),
    "scores": Runner("ScoreDriftMonitor", 1,
                     lambda kind, b: ScoreDriftMonitor(budget_events=b), _feed_scores),
    "exceedance": Runner(f"ExceedanceMonitor (threshold {ALERT_THRESHOLD})", 1,
                         lambda kind, b: ExceedanceMonitor(ALERT_THRESHOLD, budget_events=b),
                         _feed_exceedance),
}


def false_alarms(
    runner: Runner, kind: str, budget: float, events: int, seed: int, defaults: bool = False
) -> tuple[int, float]:
    """Alarms on ``events`` stationary events, and the seconds it took."""
    stream = Stream(kind, np.random.default_rng(seed), width=runner.width)
    mon = feature_monitor(kind, budget, True) if defaults else runner.make(kind, budget)
    alarms = 0
    start = time.perf_counter()
    for lo in range(0, events, CHUNK):
        x = stream.next(min(CHUNK, events - lo))
        alarms += len(runner.feed(mon, kind, stream, x))
    return alarms, time.perf_counter() - start


# -- regime changes -------------------------------------------------------------------------
def _mean(delta: float) -> Callable[[Stream], None]:
    def apply(s: Stream) -> None:
        s.mean = np.zeros(s.width)
        s.mean[0] = delta

    return apply


def _variance(factor: float) -> Callable[[Stream], None]:
    def apply(s: Stream) -> None:
        s.scale = np.ones(s.width)
        s.scale[0] = np.sqrt(factor)

    return apply


def _phase(s: Stream) -> None:
    s.phase += PERIOD / 4  # the daily peak 6 hours later


def _amplitude(s: Stream) -> None:
    s.amplitude *= 2.0


CHANGES: list[tuple[str, str, Callable[[Stream], None]]] = [
    ("mean +0.5 sd", "gaussian", _mean(0.5)),
    ("mean +1 sd", "gaussian", _mean(1.0)),
    ("mean +2 sd", "gaussian", _mean(2.0)),
    ("variance x2", "gaussian", _variance(2.0)),
    ("mean +1 sd, AR(1)", "ar1", _mean(1.0)),
    ("season: peak +6 h", "seasonal", _phase),
    ("season: amplitude x2", "seasonal", _amplitude),
]
HORIZON = {"features": 30_000, "scores": 30_000, "exceedance": 400_000}
BEFORE = {"features": 20_000, "scores": 20_000, "exceedance": 150_000}


def delay_once(
    runner_key: str, kind: str, change: Callable[[Stream], None], budget: float, seed: int
) -> tuple[str, int]:
    """('early' | 'missed' | 'found', delay) for one stationary stretch + change."""
    runner = RUNNERS[runner_key]
    stream = Stream(kind, np.random.default_rng(seed), width=runner.width)
    mon = runner.make(kind, budget)
    before, horizon = BEFORE[runner_key], HORIZON[runner_key]
    step = 5000 if runner_key == "exceedance" else 500
    for lo in range(0, before, CHUNK):
        if runner.feed(mon, kind, stream, stream.next(min(CHUNK, before - lo))):
            return "early", 0
    change(stream)
    for _ in range(0, horizon, step):
        reports = runner.feed(mon, kind, stream, stream.next(step))
        if reports:
            return "found", reports[0].event_count - before
    return "missed", horizon


# -- river's defaults -----------------------------------------------------------------------
def river_defaults(events: int, seed: int) -> list[tuple[str, str, int, int]]:
    """river's PageHinkley and ADWIN, defaults, on probits of i.i.d. and AR(1) scores."""
    from river import drift

    rows = []
    for kind in ("gaussian", "ar1"):
        x = Stream(kind, np.random.default_rng(seed)).next(events)[:, 0]
        z = probit_scores(gaussian_score(x)).tolist()
        for name, det in (("PageHinkley()", drift.PageHinkley()), ("ADWIN()", drift.ADWIN())):
            alarms = 0
            for v in z:
                det.update(v)
                alarms += det.drift_detected
            rows.append((name, kind, events, alarms))
    return rows


# -- report ---------------------------------------------------------------------------------
def _fmt_events(x: float) -> str:
    if not np.isfinite(x):
        return "> run"
    return f"{x:,.0f}" if x < 1e5 else f"{x:.2g}".replace("e+0", "e").replace("e+", "e")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description="False-alarm rates and detection delays of the retrain drift monitors "
        "on seeded synthetic streams (docs/drift.md).",
    )
    ap.add_argument("--quick", action="store_true",
                    help="short streams and few repetitions (about a tenth of the time)")
    ap.add_argument("--seed", type=int, default=2026, help="base seed (default 2026)")
    ap.add_argument("--budget", type=float, default=1e6,
                    help="budget for the delay runs, events between false alarms (1e6)")
    ap.add_argument("--only", choices=["false-alarms", "delays", "river"], action="append",
                    help="run only these parts (repeatable)")
    ap.add_argument("--monitor", choices=list(RUNNERS), action="append",
                    help="run only these monitors (repeatable)")
    ap.add_argument("--stream", choices=list(STREAMS), action="append",
                    help="false alarms: only these streams (repeatable)")
    ap.add_argument("--events", type=int, default=None,
                    help="false alarms: events per stream for every monitor (default: "
                    "1M features, 10M scores, 20M exceedances; a tenth with --quick)")
    ap.add_argument("--budgets", type=float, nargs="+", default=[1e4, 1e5, 1e6],
                    help="false alarms: budgets to run (default 1e4 1e5 1e6)")
    args = ap.parse_args(argv)
    parts = set(args.only or ["false-alarms", "delays", "river"])
    runners = {k: v for k, v in RUNNERS.items() if not args.monitor or k in args.monitor}
    kinds = [k for k in STREAMS if not args.stream or k in args.stream]
    quick = args.quick
    events = {"features": 200_000 if quick else 1_000_000,
              "scores": 1_000_000 if quick else 10_000_000,
              "exceedance": 2_000_000 if quick else 20_000_000}
    if args.events:
        events = dict.fromkeys(events, args.events)
    budgets = args.budgets
    reps = 5 if quick else 20

    print(f"# bench_drift {' '.join(sys.argv[1:] if argv is None else argv) or '(defaults)'}"
          f"  ({dt.date.today().isoformat()}, numpy {np.__version__})\n")
    if "false-alarms" in parts:
        print("## False alarms on stationary streams\n")
        print("events between false alarms (alarms counted); budget = expected events "
              "between false alarms\n")
        header = "| monitor | stream | events | " + " | ".join(
            f"budget {_fmt_events(b)}" for b in budgets) + " | s / 1M events |"
        print(header)
        print("|" + "---|" * (header.count("|") - 1))
        for key, runner in runners.items():
            rows = [(k, False) for k in kinds]
            if key == "features" and "seasonal" in kinds:
                rows.append(("seasonal", True))
            for kind, defaults in rows:
                cells, secs = [], 0.0
                n = events[key] // 5 if defaults else events[key]
                for i, budget in enumerate(budgets):
                    alarms, took = false_alarms(runner, kind, budget, n,
                                                args.seed + 101 * i, defaults)
                    secs += took
                    cells.append(f"{_fmt_events(n / alarms if alarms else np.inf)} ({alarms})")
                label = f"{kind} (defaults)" if defaults else kind
                print(f"| {runner.name} | {label} | {n:,} | " + " | ".join(cells)
                      + f" | {secs / len(budgets) / n * 1e6:.1f} |", flush=True)
        print()
    if "delays" in parts:
        print(f"## Detection delays, events after the change (budget {args.budget:.0e}, "
              f"{reps} runs each)\n")
        print("| change | monitor | median | p90 | found | missed | early |")
        print("|---|---|---|---|---|---|---|")
        for label, kind, change in CHANGES:
            for key, runner in runners.items():
                results = [delay_once(key, kind, change, args.budget, args.seed + 7919 * r)
                           for r in range(reps)]
                found = [d for what, d in results if what == "found"]
                missed = sum(what == "missed" for what, _ in results)
                early = sum(what == "early" for what, _ in results)
                med = f"{np.median(found):,.0f}" if found else "-"
                p90 = f"{np.percentile(found, 90):,.0f}" if found else "-"
                print(f"| {label} | {runner.name} | {med} | {p90} | {len(found)} | "
                      f"{missed} (>{HORIZON[key]:,}) | {early} |", flush=True)
        print()
    if "river" in parts:
        n = 200_000 if quick else 1_000_000
        print("## river's detectors with their defaults on stationary scores "
              "(probits of calibrated scores)\n")
        print("| detector | scores of | events | alarms | events between alarms |")
        print("|---|---|---|---|---|")
        for name, kind, n_events, alarms in river_defaults(n, args.seed):
            between = _fmt_events(n_events / alarms if alarms else np.inf)
            print(f"| {name} | {kind} | {n_events:,} | {alarms} | {between} |", flush=True)
        print()


if __name__ == "__main__":
    main()
