"""The Numenta Anomaly Benchmark (NAB v1.1) scoring rules, vectorised.

NAB rewards *early* detection of each labelled anomaly window and charges for false
alarms, and it scores a whole corpus of series with one threshold. The rules, as NAB's own
``Sweeper`` applies them (and this module reproduces, row for row):

* **probation** — the first ``min(floor(0.15 * n), 0.15 * 5000)`` rows of each series are
  not scored: detectors are still learning there;
* **windows** — a labelled window earns ``-A_FN`` if no row in it is detected; otherwise
  only its *earliest* detection counts, weighted by the scaled sigmoid
  ``sigma(y) = 2 / (1 + exp(5 y)) - 1`` of its position ``y = -(right - i + 1) / width``,
  normalised so that a detection on the left edge earns exactly ``A_TP``;
* **false positives** — each detected row outside every window costs
  ``A_FP * sigma(|prev_right - i| / (prev_width - 1))`` (little just after a window, the
  full ``A_FP`` far after it; ``sigma = -1`` when no window has ended yet, or at 3 window
  widths and beyond);
* **threshold** — one threshold for the whole corpus, the one with the largest total score
  (a row is detected when ``score >= threshold``);
* **normalisation** — ``100 * (S - S_null) / (S_perfect - S_null)``, where the null
  detector emits a constant score (NAB's ``null`` detector, threshold-optimised like any
  other, so it ends up missing every window) and the perfect one earns ``A_TP`` per window.

Plain numpy, no I/O: the evaluation harness reads files and hands arrays in.

Examples
--------
One 1000-row series, one window on rows 400..499, a single detection on the window's first
row: the full ``A_TP`` of 1, i.e. a perfect normalised score.

>>> import numpy as np
>>> scores = np.zeros(1000); scores[400] = 1.0
>>> series = LabeledSeries("s", scores, np.array([[400, 499]]))
>>> res = score_corpus([series], profiles=["standard"])["standard"]
>>> round(res.raw_score, 6), res.null_score, res.perfect_score, round(res.score, 3)
(1.0, -1.0, 1.0, 100.0)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "PROBATION_PERCENT",
    "PROFILES",
    "LabeledSeries",
    "NABProfile",
    "ProfileResult",
    "SeriesSweep",
    "ThresholdCurve",
    "get_profile",
    "normalized_score",
    "optimize_threshold",
    "probation_length",
    "scaled_sigmoid",
    "score_at_threshold",
    "score_by_threshold",
    "score_corpus",
    "sweep_series",
    "windows_to_indices",
]

#: Fraction of each series (capped at 5000 rows' worth) that is never scored.
PROBATION_PERCENT = 0.15
#: NAB's null detector emits this constant score.
_NULL_SCORE_VALUE = 0.5
#: NAB starts its threshold sweep here: above every score in [0, 1], so no detection.
_NO_DETECTION_THRESHOLD = 1.1


@dataclass(frozen=True, slots=True)
class NABProfile:
    """An application profile: the weights of true positives, false positives and misses."""

    name: str
    tp_weight: float
    fp_weight: float
    fn_weight: float


#: NAB's three profiles (``config/profiles.json``), under NAB's names.
PROFILES: dict[str, NABProfile] = {
    "standard": NABProfile("standard", 1.0, 0.11, 1.0),
    "reward_low_FP_rate": NABProfile("reward_low_FP_rate", 1.0, 0.22, 1.0),
    "reward_low_FN_rate": NABProfile("reward_low_FN_rate", 1.0, 0.11, 2.0),
}
_ALIASES = {
    "reward_low_fp": "reward_low_FP_rate",
    "reward_low_fn": "reward_low_FN_rate",
    "reward_low_fp_rate": "reward_low_FP_rate",
    "reward_low_fn_rate": "reward_low_FN_rate",
    "low_fp": "reward_low_FP_rate",
    "low_fn": "reward_low_FN_rate",
}


def get_profile(name: str | NABProfile) -> NABProfile:
    """A profile by NAB name or short alias (``reward_low_FP``, ``low_fn``, ...).

    >>> get_profile("reward_low_FN").fn_weight
    2.0
    """
    if isinstance(name, NABProfile):
        return name
    key = name if name in PROFILES else _ALIASES.get(name.lower(), name)
    try:
        return PROFILES[key]
    except KeyError:
        raise KeyError(f"unknown NAB profile {name!r}; known: {', '.join(PROFILES)}") from None


def probation_length(n_rows: int, percent: float = PROBATION_PERCENT) -> int:
    """Rows at the start of a series that are not scored.

    >>> probation_length(4032), probation_length(22695)
    (604, 750)
    """
    # NAB compares ``i >= min(floor(p*n), p*5000)``; the cap may be fractional, so round up.
    return math.ceil(min(math.floor(percent * n_rows), percent * 5000))


def scaled_sigmoid(x: Any) -> np.ndarray:
    """NAB's ``2 * sigmoid(-5 x) - 1``, and exactly ``-1`` from ``x >= 3`` on.

    >>> scaled_sigmoid([-1.0, 0.0, 1.0, 3.0]).round(5).tolist()
    [0.98661, 0.0, -0.98661, -1.0]
    """
    x = np.asarray(x, dtype=np.float64)
    # Clip only to keep exp() finite; the where() below overrides the clipped region.
    val = 2.0 / (1.0 + np.exp(5.0 * np.clip(x, -50.0, 50.0))) - 1.0
    return np.where(x >= 3.0, -1.0, val)


_MAX_TP = float(scaled_sigmoid(-1.0))


def _as_time(x: Any) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind in "iuf" or arr.dtype.kind == "M":
        return arr
    return np.asarray(arr, dtype="datetime64[ns]")


def windows_to_indices(timestamps: Any, windows: Iterable[Sequence[Any]]) -> np.ndarray:
    """``(k, 2)`` inclusive row ranges of labelled windows given as ``[start, end]`` times.

    Timestamps may be numbers, ``datetime64`` or ISO strings (NAB's label file writes
    ``"2014-04-10 16:15:00.000000"``, its data files ``"2014-04-10 16:15:00"``: both parse
    to the same instant). A window that covers no row is dropped.

    >>> windows_to_indices(["2024-01-01 00:00", "2024-01-01 00:05", "2024-01-01 00:10"],
    ...                    [["2024-01-01 00:05:00.000000", "2024-01-01 00:10:00.000000"]])
    array([[1, 2]])
    """
    t = _as_time(timestamps)
    out: list[tuple[int, int]] = []
    for start, end in windows:
        lo = _as_time([start])[0]
        hi = _as_time([end])[0]
        rows = np.flatnonzero((t >= lo) & (t <= hi))
        if rows.size:
            out.append((int(rows[0]), int(rows[-1])))
    return np.asarray(sorted(out), dtype=np.int64).reshape(-1, 2)


@dataclass(frozen=True)
class LabeledSeries:
    """One series of a corpus: a detector's scores and the labelled windows (row ranges).

    ``windows`` is an ``(k, 2)`` array of inclusive ``[left, right]`` row indices (see
    :func:`windows_to_indices`), sorted and non-overlapping.
    """

    name: str
    scores: np.ndarray
    windows: np.ndarray = field(default_factory=lambda: np.empty((0, 2), dtype=np.int64))


@dataclass(frozen=True)
class SeriesSweep:
    """NAB's per-row bookkeeping for one series under one profile.

    ``weight`` is the row's contribution if detected (NAB's ``sweepScore``), ``window`` the
    window number for rows inside a window (``-1`` outside), ``scorable`` False in probation.
    """

    name: str
    scores: np.ndarray
    weight: np.ndarray
    window: np.ndarray
    scorable: np.ndarray
    n_windows: int


def _check_windows(windows: np.ndarray, n: int) -> np.ndarray:
    w = np.asarray(windows, dtype=np.int64).reshape(-1, 2)
    if w.size == 0:
        return w
    w = w[np.argsort(w[:, 0], kind="mergesort")]
    if (w[:, 0] > w[:, 1]).any() or w.min() < 0 or w.max() >= n:
        raise ValueError("window rows must satisfy 0 <= left <= right < n_rows")
    if (w[1:, 0] <= w[:-1, 1]).any():
        raise ValueError("labelled windows overlap; NAB's combined labels never do")
    return w


def sweep_series(
    series: LabeledSeries,
    profile: str | NABProfile = "standard",
    probation_percent: float = PROBATION_PERCENT,
) -> SeriesSweep:
    """Per-row NAB weights of ``series`` (see the module docstring for the rules).

    >>> s = sweep_series(LabeledSeries("s", np.zeros(1000), np.array([[400, 499]])))
    >>> s.weight[[400, 499, 500, 990]].round(4).tolist()
    [1.0, 0.0253, -0.0028, -0.11]
    """
    prof = get_profile(profile)
    scores = np.asarray(series.scores, dtype=np.float64).reshape(-1)
    if not np.isfinite(scores).all():
        raise ValueError(f"{series.name}: scores contain NaN or infinite values")
    n = scores.size
    win = _check_windows(series.windows, n)
    idx = np.arange(n)
    weight = np.empty(n)
    window = np.full(n, -1, dtype=np.int64)
    for k, (left, right) in enumerate(win):
        width = right - left + 1
        i = idx[left : right + 1]
        # The "+ 1" is NAB's: the right edge scores sigma(-1/width), never exactly 0.
        weight[left : right + 1] = (
            scaled_sigmoid(-(right - i + 1) / width) * prof.tp_weight / _MAX_TP
        )
        window[left : right + 1] = k
    outside = window < 0
    if win.size:
        rights = win[:, 1]
        widths = rights - win[:, 0] + 1
        prev = np.searchsorted(rights, idx, side="left") - 1
        # NAB divides by (prev_width - 1), a ZeroDivisionError for one-row windows; such a
        # window is treated as two rows wide instead.
        denom = np.maximum(widths[np.maximum(prev, 0)] - 1, 1)
        pos = np.where(prev >= 0, np.abs(rights[np.maximum(prev, 0)] - idx) / denom, 3.0)
    else:
        pos = np.full(n, 3.0)
    weight[outside] = scaled_sigmoid(pos[outside]) * prof.fp_weight
    scorable = idx >= probation_length(n, probation_percent)
    return SeriesSweep(series.name, scores, weight, window, scorable, int(win.shape[0]))


@dataclass(frozen=True)
class ThresholdCurve:
    """Corpus score at every distinct threshold, highest threshold first.

    The first entry is NAB's starting point (threshold 1.1, or just above the largest
    score): no detection, every window missed. Counts are rows, as in NAB's output.
    """

    threshold: np.ndarray
    score: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    tn: np.ndarray
    fn: np.ndarray


def score_by_threshold(sweeps: Sequence[SeriesSweep], profile: str | NABProfile) -> ThresholdCurve:
    """The corpus score for every threshold at once (NAB's ``calcScoreByThreshold``).

    Rows are visited from the highest score down; a row, when reached, adds its FP weight,
    or raises its window's value to ``max(value, weight)`` (the earliest detection has the
    largest weight). The running total after each run of equal scores is the score at
    that threshold.
    """
    prof = get_profile(profile)
    scores, weights, gwin = [], [], []
    offset = 0
    for sw in sweeps:
        keep = sw.scorable
        scores.append(sw.scores[keep])
        weights.append(sw.weight[keep])
        w = sw.window[keep]
        gwin.append(np.where(w >= 0, w + offset, -1))
        offset += sw.n_windows
    s = np.concatenate(scores) if scores else np.empty(0)
    wt = np.concatenate(weights) if weights else np.empty(0)
    gw = np.concatenate(gwin) if gwin else np.empty(0, dtype=np.int64)

    order = np.argsort(-s, kind="mergesort")
    s_sorted, wt_sorted, gw_sorted = s[order], wt[order], gw[order]
    in_window = gw_sorted >= 0
    contrib = np.where(in_window, 0.0, wt_sorted)
    # Windows without a scorable row (entirely in probation) are not scored at all.
    present = np.unique(gw_sorted[in_window])
    base = -prof.fn_weight * present.size
    if present.size:
        pos = np.flatnonzero(in_window)
        by_window = pos[np.argsort(gw_sorted[pos], kind="mergesort")]
        bounds = np.flatnonzero(np.diff(gw_sorted[by_window])) + 1
        for group in np.split(by_window, bounds):
            running = np.maximum.accumulate(np.r_[-prof.fn_weight, wt_sorted[group]])
            contrib[group] += np.diff(running)
    total = base + np.cumsum(contrib)

    if s_sorted.size:
        ends = np.r_[np.flatnonzero(np.diff(s_sorted)), s_sorted.size - 1]
        start = max(_NO_DETECTION_THRESHOLD, float(np.nextafter(s_sorted[0], np.inf)))
    else:
        ends = np.empty(0, dtype=np.intp)
        start = _NO_DETECTION_THRESHOLD
    n_in, n_out = int(in_window.sum()), int((~in_window).sum())
    tp = np.r_[0, np.cumsum(in_window)[ends]]
    fp = np.r_[0, np.cumsum(~in_window)[ends]]
    return ThresholdCurve(
        threshold=np.r_[start, s_sorted[ends]],
        score=np.r_[base, total[ends]],
        tp=tp,
        fp=fp,
        tn=n_out - fp,
        fn=n_in - tp,
    )


def optimize_threshold(
    sweeps: Sequence[SeriesSweep], profile: str | NABProfile
) -> tuple[float, float]:
    """``(threshold, corpus score)`` with the largest corpus score.

    Ties go to the highest threshold, as NAB's stable sort of its descending sweep does.
    """
    curve = score_by_threshold(sweeps, profile)
    k = int(np.argmax(curve.score))
    return float(curve.threshold[k]), float(curve.score[k])


def score_at_threshold(
    sweep: SeriesSweep, threshold: float, profile: str | NABProfile
) -> dict[str, Any]:
    """Raw NAB score and counts of one series at one threshold.

    Keys: ``raw_score``, ``tp``, ``fp``, ``tn``, ``fn`` (rows), ``windows`` (scored
    windows), ``windows_detected``, ``detections`` (row indices detected, probation
    excluded), ``first_detection`` (per scored window: earliest detected row or -1).
    """
    prof = get_profile(profile)
    det = sweep.scorable & (sweep.scores >= threshold)
    inside = sweep.window >= 0
    raw = float(sweep.weight[det & ~inside].sum())
    first: dict[int, int] = {}
    for k in np.unique(sweep.window[sweep.scorable & inside]):
        rows = np.flatnonzero(det & (sweep.window == k))
        if rows.size:
            # Weights fall monotonically through a window: the earliest row is the max.
            raw += float(sweep.weight[rows[0]])
            first[int(k)] = int(rows[0])
        else:
            raw -= prof.fn_weight
            first[int(k)] = -1
    sc = sweep.scorable
    return {
        "raw_score": raw,
        "tp": int(np.sum(det & inside)),
        "fp": int(np.sum(det & ~inside)),
        "tn": int(np.sum(sc & ~det & ~inside)),
        "fn": int(np.sum(sc & ~det & inside)),
        "windows": len(first),
        "windows_detected": sum(v >= 0 for v in first.values()),
        "detections": np.flatnonzero(det),
        "first_detection": first,
    }


def normalized_score(raw: float, null: float, perfect: float) -> float:
    """``100 * (raw - null) / (perfect - null)``; NaN when the corpus has no window.

    >>> normalized_score(0.0, -2.0, 2.0)
    50.0
    """
    if perfect == null:
        return float("nan")
    return 100.0 * (raw - null) / (perfect - null)


@dataclass
class ProfileResult:
    """NAB result of a corpus under one profile."""

    profile: str
    threshold: float
    raw_score: float
    null_score: float
    perfect_score: float
    score: float
    counts: dict[str, int]
    series: dict[str, dict[str, Any]]
    curve: ThresholdCurve

    def to_dict(self, with_series: bool = True) -> dict[str, Any]:
        """JSON-friendly summary (no arrays; NaN becomes None)."""

        def clean(v: float) -> float | None:
            return None if isinstance(v, float) and math.isnan(v) else v

        out: dict[str, Any] = {
            "score": clean(self.score),
            "raw_score": self.raw_score,
            "threshold": self.threshold,
            "null_score": self.null_score,
            "perfect_score": self.perfect_score,
            **self.counts,
        }
        if with_series:
            out["series"] = {
                name: {k: v for k, v in d.items() if k not in ("detections", "first_detection")}
                for name, d in self.series.items()
            }
        return out


def score_corpus(
    series: Sequence[LabeledSeries] | Mapping[str, LabeledSeries],
    profiles: Iterable[str | NABProfile] = tuple(PROFILES),
    probation_percent: float = PROBATION_PERCENT,
) -> dict[str, ProfileResult]:
    """Score a corpus under each profile: optimise the threshold, then normalise.

    Returns ``{profile name: ProfileResult}``; each result also holds the per-series raw
    scores and counts at the corpus threshold and the whole threshold curve.
    """
    items = list(series.values()) if isinstance(series, Mapping) else list(series)
    n_windows = sum(np.asarray(s.windows).reshape(-1, 2).shape[0] for s in items)
    null_items = [
        LabeledSeries(s.name, np.full(np.asarray(s.scores).size, _NULL_SCORE_VALUE), s.windows)
        for s in items
    ]
    results: dict[str, ProfileResult] = {}
    for p in profiles:
        prof = get_profile(p)
        sweeps = [sweep_series(s, prof, probation_percent) for s in items]
        curve = score_by_threshold(sweeps, prof)
        k = int(np.argmax(curve.score))
        threshold, raw = float(curve.threshold[k]), float(curve.score[k])
        null_sweeps = [sweep_series(s, prof, probation_percent) for s in null_items]
        _, null = optimize_threshold(null_sweeps, prof)
        perfect = prof.tp_weight * n_windows
        per_series = {sw.name: score_at_threshold(sw, threshold, prof) for sw in sweeps}
        results[prof.name] = ProfileResult(
            profile=prof.name,
            threshold=threshold,
            raw_score=raw,
            null_score=null,
            perfect_score=perfect,
            score=normalized_score(raw, null, perfect),
            counts={
                "tp": int(curve.tp[k]),
                "fp": int(curve.fp[k]),
                "tn": int(curve.tn[k]),
                "fn": int(curve.fn[k]),
            },
            series=per_series,
            curve=curve,
        )
    return results
