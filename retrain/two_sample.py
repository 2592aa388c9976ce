"""Two-sample Kolmogorov–Smirnov tests on many features at once, and their corrections.

:func:`ks_distance` computes the two-sample KS distance ``D`` of every column of a current
window against an already sorted reference, ties handled exactly (both empirical CDFs are
evaluated at every pooled value), identical to :func:`scipy.stats.ks_2samp`'s statistic.
:func:`ks_pvalue` is the asymptotic Kolmogorov tail with Stephens' small-sample
correction, ``Q_KS((sqrt(n_e) + 0.12 + 0.11 / sqrt(n_e)) D)``, ``n_e = n m / (n + m)``.

Why not ``ks_2samp`` itself: for 10 features, a 2000-event reference and a 1000-event
window it takes ~10 ms per check (its exact method, chosen automatically at these sizes)
or ~5 ms (``method="asymp"``); this module takes ~0.8 ms (the reference is sorted once,
and one searchsorted per CDF replaces the merge). At these sizes the asymptotic p-value
is 3-9 % below the exact one between 1e-2 and 1e-6.

Autocorrelated streams make the i.i.d. p-value too small (neighbouring events carry
little new information), so :func:`lag1_autocorrelation` estimates, on ranks, how much,
and :func:`effective_fraction` shrinks the sample sizes by the variance inflation of an
empirical CDF under an AR(1) dependence with that lag-1 correlation. Dependence that
decays more slowly than an AR(1)'s (long memory, slow cycles) is under-corrected.

:func:`holm` and :func:`benjamini_hochberg` adjust the per-feature p-values: when no
feature drifted, both keep the probability of *any* adjusted p below ``alpha`` at most
``alpha`` (Holm under any dependence between features, Benjamini–Hochberg under positive
dependence), which is what a false-alarm budget needs; Benjamini–Hochberg names more of
the drifted features when several drifted.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

__all__ = [
    "CORRECTIONS",
    "adjust_pvalues",
    "benjamini_hochberg",
    "effective_fraction",
    "holm",
    "ks_distance",
    "ks_pvalue",
    "lag1_autocorrelation",
    "right_ranks",
]

CORRECTIONS = ("holm", "bh")


def right_ranks(sorted_rows: np.ndarray) -> np.ndarray:
    """Per row, how many values are ``<=`` each value (the empirical CDF × n at it).

    Depends only on the reference, so a monitor computes it once per reference.

    >>> right_ranks(np.array([[1.0, 2.0, 2.0, 5.0]])).tolist()
    [[1, 3, 3, 4]]
    """
    s = np.asarray(sorted_rows)
    return np.stack([np.searchsorted(row, row, side="right") for row in s])


def ks_distance(
    ref_sorted: np.ndarray, current: np.ndarray, ref_ranks: np.ndarray | None = None
) -> np.ndarray:
    """Two-sample KS distance of each row of ``current`` against the same row of ``ref_sorted``.

    Arrays are feature-major (one row per feature): ``searchsorted`` copies a strided
    column on every call, and that copy was most of the cost of a test.

    Parameters
    ----------
    ref_sorted
        ``(d, n)`` reference, each row sorted ascending.
    current
        ``(d, m)`` current window, any order.
    ref_ranks
        :func:`right_ranks` of ``ref_sorted`` (computed if not given).

    >>> from scipy import stats
    >>> rng = np.random.default_rng(1)
    >>> ref, cur = rng.normal(size=(2, 300)), rng.normal(0.5, 1, size=(2, 200)).round(1)
    >>> d = ks_distance(np.sort(ref, axis=1), cur)
    >>> bool(np.allclose(d, [stats.ks_2samp(ref[j], cur[j]).statistic for j in (0, 1)]))
    True
    """
    ref = np.asarray(ref_sorted)
    cur = np.sort(np.asarray(current), axis=1)
    n, m = ref.shape[1], cur.shape[1]
    ranks = right_ranks(ref) if ref_ranks is None else ref_ranks
    out = np.empty(ref.shape[0])
    for j in range(ref.shape[0]):
        r, c = ref[j], cur[j]
        # Both CDFs at the reference values, then both at the window's values: the sup of
        # the difference of two step functions is reached at one of the pooled points.
        at_ref = np.abs(ranks[j] / n - np.searchsorted(c, r, side="right") / m).max()
        at_cur = np.abs(
            np.searchsorted(r, c, side="right") / n - np.searchsorted(c, c, side="right") / m
        ).max()
        out[j] = max(at_ref, at_cur)
    return out


def ks_pvalue(d: Any, n: Any, m: Any) -> np.ndarray:
    """Asymptotic two-sided p-value of KS distances ``d`` between samples of sizes n, m.

    ``n`` and ``m`` may be effective (non-integer) sizes, per feature.

    >>> import math
    >>> from scipy import stats
    >>> rng = np.random.default_rng(2)
    >>> a, b = rng.normal(size=2000), rng.normal(0.15, 1, size=1000)
    >>> res = stats.ks_2samp(a, b, method="asymp")
    >>> p = float(ks_pvalue(res.statistic, 2000, 1000)[0])
    >>> bool(abs(math.log(p / res.pvalue)) < 0.05)
    True
    """
    d = np.atleast_1d(np.asarray(d, dtype=np.float64))
    n_e = np.asarray(n, dtype=np.float64) * np.asarray(m, dtype=np.float64)
    n_e = n_e / (np.asarray(n, dtype=np.float64) + np.asarray(m, dtype=np.float64))
    root = np.sqrt(np.maximum(n_e, 1e-12))
    return np.clip(special.kolmogorov((root + 0.12 + 0.11 / root) * d), 0.0, 1.0)


def lag1_autocorrelation(columns: np.ndarray) -> np.ndarray:
    """Lag-1 autocorrelation of the ranks of each column, in time order.

    Ranks make it robust to heavy tails (one huge value would dominate a Pearson
    estimate). A constant column gives 0.

    >>> rng = np.random.default_rng(3)
    >>> e = rng.normal(size=(5000, 2))
    >>> x = e.copy()
    >>> for t in range(1, 5000):
    ...     x[t, 1] = 0.7 * x[t - 1, 1] + e[t, 1]
    >>> rho = lag1_autocorrelation(x)
    >>> bool(abs(rho[0]) < 0.05), round(float(rho[1]), 1)
    (True, 0.7)
    """
    x = np.asarray(columns, dtype=np.float64)
    if x.shape[0] < 3:
        return np.zeros(x.shape[1])
    ranks = np.argsort(np.argsort(x, axis=0, kind="stable"), axis=0).astype(np.float64)
    ranks -= ranks.mean(axis=0)
    denom = (ranks**2).sum(axis=0)
    num = (ranks[1:] * ranks[:-1]).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(denom > 0, num / np.where(denom > 0, denom, 1.0), 0.0)
    # A constant column has ranks 0..n-1 by position (stable sort): no information.
    const = np.ptp(x, axis=0) == 0
    return np.where(const, 0.0, rho)


def holm(pvalues: Any) -> np.ndarray:
    """Holm step-down adjusted p-values (family-wise error under any dependence).

    >>> holm([0.01, 0.04, 0.03, 0.5]).tolist()
    [0.04, 0.09, 0.09, 0.5]
    """
    p = np.asarray(pvalues, dtype=np.float64)
    k = p.size
    order = np.argsort(p, kind="stable")
    scaled = (k - np.arange(k)) * p[order]
    adj = np.minimum(np.maximum.accumulate(scaled), 1.0)
    out = np.empty(k)
    out[order] = adj
    return out


def benjamini_hochberg(pvalues: Any) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values).

    >>> benjamini_hochberg([0.01, 0.04, 0.03, 0.5]).round(4).tolist()
    [0.04, 0.0533, 0.0533, 0.5]
    """
    p = np.asarray(pvalues, dtype=np.float64)
    k = p.size
    order = np.argsort(p, kind="stable")
    scaled = k * p[order] / (np.arange(k) + 1)
    adj = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    out = np.empty(k)
    out[order] = adj
    return out


def adjust_pvalues(pvalues: Any, correction: str) -> np.ndarray:
    """:func:`holm` (``"holm"``) or :func:`benjamini_hochberg` (``"bh"``)."""
    if correction == "holm":
        return holm(pvalues)
    if correction == "bh":
        return benjamini_hochberg(pvalues)
    raise ValueError(f"unknown correction {correction!r}; known: {', '.join(CORRECTIONS)}")


def effective_fraction(rho: Any) -> np.ndarray:
    """Share of the sample size an empirical CDF is worth under lag-1 rank correlation ``rho``.

    The variance of an empirical CDF at ``x`` is ``F(1 - F) / n`` times ``1 + 2 sum_k
    c_k(x)``, ``c_k`` the lag-``k`` correlation of the indicators ``X_t <= x``. For a
    Gaussian AR(1) (in any monotone transform: ranks only) with coefficient ``phi``,
    ``c_k = (2 / pi) arcsin(phi^k)`` at the median, where it is largest; ``phi`` follows
    from the lag-1 rank correlation as ``2 sin(pi rho / 6)``. The fraction is the inverse of
    that inflation; ``rho`` is clipped to ``[0, 0.99]``. The plain AR(1) factor for a mean,
    ``(1 - phi) / (1 + phi)``, is smaller (0.18 against 0.25 at ``phi = 0.7``): it wastes
    power (measured: no false alarm at all on AR(1) streams at 100 times the budget).

    >>> effective_fraction([-0.2, 0.0, 0.683, 0.95]).round(3).tolist()
    [1.0, 1.0, 0.243, 0.034]
    """
    r = np.clip(np.asarray(rho, dtype=np.float64), 0.0, 0.99)
    phi = 2.0 * np.sin(np.pi * r / 6.0)
    k = np.arange(1, 2001)[:, None]
    with np.errstate(under="ignore"):
        terms = (2.0 / np.pi) * np.arcsin(np.power(phi[None, ...].reshape(1, -1), k))
    inflation = 1.0 + 2.0 * terms.sum(axis=0)
    return (1.0 / inflation).reshape(r.shape)
