"""Detector micro-benchmark: scores per second, batch and one at a time, relative to numpy.

Absolute scores/s depend on the machine and on whatever else runs on it, so every number
comes with a ratio to a trivial numpy z-score "detector" timed in the same process, the
same way, on the same data: a ratio of 0.5 means "half as fast as the cheapest thing that
could possibly be called a detector", which stays comparable across machines.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import detectors

__all__ = ["baseline_scores", "print_microbench", "run_microbench"]


def baseline_scores(mu: np.ndarray, sd: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The reference "detector": largest absolute z-score of the row.

    >>> float(baseline_scores(np.zeros(2), np.ones(2), np.array([[1.0, -3.0]]))[0])
    3.0
    """
    return np.abs((rows - mu) / sd).max(axis=1)


def _best_of(fn: Callable[[], Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return max(best, 1e-12)


def _one_at_a_time(score_one: Callable[[np.ndarray], Any], rows: np.ndarray) -> Callable[[], None]:
    def run() -> None:
        for row in rows:
            score_one(row)

    return run


#: Detectors whose input has a layout: where it is in the synthetic rows (the seasonal
#: profile reads its slot number from the last column instead of four calendar columns).
_LAYOUT_PARAMS: dict[str, dict[str, Any]] = {
    "seasonal_profile": {"time_encoding": "slot", "time_columns": (-1,)},
}


def run_microbench(
    detector_names: Sequence[str] | None = None,
    *,
    n_events: int = 20_000,
    n_one: int = 2_000,
    n_train: int = 2_000,
    n_features: int = 4,
    repeat: int = 3,
    seed: int = 0,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    print_table: bool = True,
    console: Console | None = None,
) -> dict[str, Any]:
    """Time every detector (default: all registered) on synthetic Gaussian data.

    For each detector: ``batch_scores_per_s`` (one ``score_many`` over ``n_events`` rows,
    best of ``repeat``), ``one_scores_per_s`` (``score_one`` per row over ``n_one`` rows),
    ``online_events_per_s`` (``score_one`` then ``learn_one``, online detectors only) and the
    ratios of the first two to the numpy baseline. A detector that fails records ``error``
    and the run goes on.

    >>> res = run_microbench(["robust_zscore"], n_events=200, n_one=20, n_train=100,
    ...                      repeat=1, print_table=False)
    >>> sorted(res["detectors"]["robust_zscore"])[:3]
    ['batch_ratio', 'batch_scores_per_s', 'error']
    >>> res = run_microbench(["seasonal_profile"], n_events=200, n_one=20, n_train=100,
    ...                      repeat=1, print_table=False)
    >>> res["detectors"]["seasonal_profile"]["error"] is None
    True
    """
    rng = np.random.default_rng(seed)
    x_train = rng.normal(size=(n_train, n_features))
    x_all = rng.normal(size=(n_events, n_features))
    x_one = x_all[:n_one]
    names = list(detector_names) if detector_names is not None else detectors.available()
    params = params or {}

    mu, sd = x_train.mean(axis=0), x_train.std(axis=0)
    base_batch = n_events / _best_of(lambda: baseline_scores(mu, sd, x_all), repeat)
    base_one = len(x_one) / _best_of(
        _one_at_a_time(lambda r: baseline_scores(mu, sd, r.reshape(1, -1))[0], x_one), repeat
    )
    result: dict[str, Any] = {
        "n_events": n_events,
        "n_one": len(x_one),
        "n_train": n_train,
        "n_features": n_features,
        "baseline": {
            "name": "numpy |z| max",
            "batch_scores_per_s": base_batch,
            "one_scores_per_s": base_one,
        },
        "detectors": {},
    }
    for name in names:
        entry: dict[str, Any] = {
            "batch_scores_per_s": None,
            "one_scores_per_s": None,
            "online_events_per_s": None,
            "batch_ratio": None,
            "one_ratio": None,
            "fit_seconds": None,
            "error": None,
        }
        try:
            det = detectors.create(
                name, **{**_LAYOUT_PARAMS.get(name, {}), **dict(params.get(name, {}))}
            )
            t0 = time.perf_counter()
            det.fit(x_train)
            entry["fit_seconds"] = time.perf_counter() - t0
            entry["batch_scores_per_s"] = n_events / _best_of(
                lambda d=det: d.score_many(x_all), repeat
            )
            entry["one_scores_per_s"] = len(x_one) / _best_of(
                _one_at_a_time(det.score_one, x_one), repeat
            )
            entry["batch_ratio"] = entry["batch_scores_per_s"] / base_batch
            entry["one_ratio"] = entry["one_scores_per_s"] / base_one
            if getattr(det, "online", False):

                def online(d: Any = det) -> None:
                    for row in x_one:
                        d.score_one(row)
                        d.learn_one(row)

                entry["online_events_per_s"] = len(x_one) / _best_of(online, 1)
        except Exception as exc:  # a broken detector must not hide the others' numbers
            entry["error"] = f"{type(exc).__name__}: {exc}"
        result["detectors"][name] = entry
    if print_table:
        print_microbench(result, console)
    return result


def _rate(v: float | None) -> str:
    return "–" if v is None else f"{v:,.0f}"


def _ratio(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


def print_microbench(result: Mapping[str, Any], console: Console | None = None) -> None:
    """The result of :func:`run_microbench` as a table."""
    t = Table(
        title=f"Detector micro-benchmark ({result['n_events']:,} events, "
        f"{result['n_features']} features)"
    )
    for col in (
        "detector",
        "batch scores/s",
        "× numpy",
        "one-at-a-time/s",
        "× numpy",
        "score+learn/s",
        "fit s",
    ):
        t.add_column(col, justify="right")
    b = result["baseline"]
    t.add_row(
        b["name"],
        _rate(b["batch_scores_per_s"]),
        "1.000",
        _rate(b["one_scores_per_s"]),
        "1.000",
        "–",
        "–",
    )
    for name, d in result["detectors"].items():
        if d["error"]:
            err = d["error"] if len(d["error"]) <= 60 else d["error"][:57] + "..."
            t.add_row(name, f"[red]{escape(err)}[/]", "", "", "", "", "")
            continue
        t.add_row(
            name,
            _rate(d["batch_scores_per_s"]),
            _ratio(d["batch_ratio"]),
            _rate(d["one_scores_per_s"]),
            _ratio(d["one_ratio"]),
            _rate(d["online_events_per_s"]),
            "–" if d["fit_seconds"] is None else f"{d['fit_seconds']:.3f}",
        )
    (console or Console()).print(t)
