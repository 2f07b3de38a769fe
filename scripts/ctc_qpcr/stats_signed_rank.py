"""Signed-rank and exact rank-sum p-values written out (split from :mod:`ctc_qpcr.stats`, which uses them).

Exact (subset counts) and normal-approximation p-values with scipy ``wilcoxon``'s numbers, and the
exact Mann–Whitney p with scipy ``mannwhitneyu(method="exact")``'s, bit for bit, without importing
``scipy.stats`` (1.5-2 s of a job's CPU: issue 17). Tests: tests/test_stats.py.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import special as _sp


def _average_ranks(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mid-ranks (1-based) of ``x`` and the sizes of its tie groups (ascending values)."""
    ranks, sizes, _ = midranks(x, ties=False)
    return ranks, sizes


def midranks(x: np.ndarray, ties: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Mid-ranks (1-based) of the values of a 1-D array, the sizes of its tie groups in ascending
    order of value, and (``ties``) each value's tie-group size: the one mid-rank computation of
    the package (Mann–Whitney, Brunner–Munzel, signed rank; 1-D and per row). A tie group ending
    at 1-based sorted position u with s members has mid-rank u − (s − 1)/2, a multiple of ½
    (exact in floating point, whatever the order of the work). Finite values: computed by
    :func:`sorted_ties` on the sorted values."""
    order = np.argsort(x, kind="stable")
    sizes, mid = sorted_ties(x[order])
    ranks = np.empty(x.size)
    ranks[order] = mid
    if not ties:
        return ranks, sizes, None
    each = np.empty(x.size)
    each[order] = sizes.repeat(sizes)
    return ranks, sizes, each


def sorted_ties(ascending: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The tie-group sizes of ascending values (in order) and each value's 1-based mid-rank, by one
    pass over them: a group of s values ending at 1-based position u has :func:`midranks`' mid-rank
    u − (s − 1)/2 (issue 17: the rank tests of a gene sort its values once, with ``np.argsort``, and
    need no ``np.unique`` besides)."""
    last = np.empty(ascending.size, dtype=bool)
    last[-1:] = True
    np.not_equal(ascending[1:], ascending[:-1], out=last[:-1])
    ends = np.flatnonzero(last) + 1
    sizes = ends.copy()
    sizes[1:] -= ends[:-1]
    return sizes, (ends - (sizes - 1) / 2.0).repeat(sizes)


@functools.lru_cache(maxsize=64)
def _signed_rank_counts(n: int) -> tuple[int, ...]:
    """Number of subsets of {1..n} with each sum 0..n(n+1)/2 (the exact null of R+ is this / 2ⁿ)."""
    counts = np.zeros(n * (n + 1) // 2 + 1, dtype=np.int64)  # ≤ 2⁴⁹ for n < 50: exact
    counts[0] = 1
    for i in range(1, n + 1):
        counts[i:] = counts[i:] + counts[:-i]
    return tuple(int(c) for c in counts)


def _signed_rank_exact(d: np.ndarray) -> tuple[float, float]:
    """Exact signed-rank test for n < 50 differences without zeros or ties: min(R+, R−) and
    ``2·min(P(R+ ≥ r), P(R+ ≤ r))`` capped at 1. Every probability is a count / 2ⁿ, exact in
    floating point, so this is scipy ``wilcoxon(d, method="exact")`` to the bit without
    importing ``scipy.stats``."""
    ranks, _ = _average_ranks(np.abs(d))
    r_plus = float(ranks[d > 0].sum())
    r_minus = float(ranks[d < 0].sum())
    counts = _signed_rank_counts(d.size)
    k = int(r_plus)
    tail = min(sum(counts[k:]), sum(counts[: k + 1]))
    return min(r_plus, r_minus), min(1.0, float(2 * tail) / 2.0**d.size)


def _signed_rank_normal(d: np.ndarray) -> tuple[float, float]:
    """Signed-rank statistic min(R+, R−) and its two-sided normal p (tie-corrected variance, no
    continuity correction) of the non-zero differences: scipy ``wilcoxon(d, zero_method="wilcox",
    method="approx")`` of all of them (zeros dropped) to the bit (ranks, rank sums and tie terms
    are exact in floating point; the few divisions and the square root are the same operations),
    without importing ``scipy.stats`` (issue 17).

    ``E[R+] = n(n + 1)/4``, ``var = (n(n + 1)(2n + 1) − Σ(t³ − t)/2) / 24`` over the tie groups t of |d|.
    """
    ranks, ties = _average_ranks(np.abs(d))
    count = float(d.size)
    r_plus = float(ranks[d > 0].sum())
    r_minus = float(ranks[d < 0].sum())
    mean = count * (count + 1.0) * 0.25
    var = count * (count + 1.0) * (2.0 * count + 1.0)
    tie_correct = float(np.sum(ties.astype(float) ** 3 - ties))
    se = math.sqrt((var - tie_correct / 2) / 24)
    z = (r_plus - mean) / se
    return min(r_plus, r_minus), float(2 * _sp.ndtr(-abs(z)))


@functools.lru_cache(maxsize=256)
def _rank_sum_counts(n1: int, n2: int) -> np.ndarray:
    """How many of the C(n1 + n2, n1) arrangements give each U = 0 … n1·n2 (no ties): the coefficients
    of the Gaussian binomial [n1 + n2 choose n1]_q = Π_{i ≤ n1} (1 − q^(n2+i)) / (1 − q^i), built one
    factor at a time (each partial product is a Gaussian binomial: integer coefficients, exact in
    int64). Coefficients above degree n1·n2 are dropped: dividing by (1 − q^i) is a running sum, so
    a coefficient never depends on higher ones."""
    size = n1 * n2 + 1
    poly = np.zeros(size, dtype=np.int64)
    poly[0] = 1
    for i in range(1, n1 + 1):
        m = n2 + i
        if m < size:
            poly[m:] -= poly[: size - m].copy()  # × (1 − q^m)
        for r in range(i):
            poly[r::i] = np.cumsum(poly[r::i])  # ÷ (1 − q^i)
    poly.flags.writeable = False
    return poly


def _rank_sum_exact_p(n_a: int, n_b: int, u_a: float) -> float | None:
    """Two-sided exact Mann–Whitney p of U_A (no ties) as scipy ``mannwhitneyu(method="exact")``
    computes it: its null frequencies / ``binom(n, min(n_a, n_b))``, summed from the lower tail up to
    min(U_A, U_B), doubled, at most 1. scipy builds the frequencies by a floating-point recurrence,
    exact (so equal to these counts) while its dot products stay below 2⁵³: checked by the bound
    C(n, k)·n(n + 1)/2 (each coefficient of its recurrence is at most Σ d ≤ n(n + 1)/2); above it,
    None (the caller asks scipy)."""
    k, m = min(n_a, n_b), max(n_a, n_b)
    n = k + m
    total = _sp.binom(n, k)
    if total * (n * (n + 1) / 2.0) >= 2.0**53:
        return None
    kc = int(min(u_a, n_a * n_b - u_a))
    cdf = np.cumsum(_rank_sum_counts(k, m)[: kc + 1] / total)[kc]
    return float(np.clip(cdf * 2, 0.0, 1.0))
