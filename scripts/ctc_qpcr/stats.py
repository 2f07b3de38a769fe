"""Test primitives for differential expression (docs/methods.md §6).

Every function takes plain sequences of numbers on the log scale (ΔCq or
log2 NRQ, §0) and returns a small frozen dataclass, so the callers in
:mod:`ctc_qpcr.differential` can pick fields by name. NaN inputs are dropped
by each function (``_clean``); too few values give NaN results, never an
exception, because one empty gene must not stop a whole comparison.

Conventions (§0): for ΔCq data a *smaller* value is *higher* expression, so the
log2 fold change of group A relative to group B is ``−(mean_A − mean_B)`` and
the linear fold change ``2^−Δ`` (:func:`fold_change_dcq`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import special as _sp

from .stats_pairwise import _pairwise_order_stats
from .stats_signed_rank import _rank_sum_exact_p, _signed_rank_exact, _signed_rank_normal, sorted_ties

ArrayLike = Sequence[float] | np.ndarray


def _scipy_stats():
    """``scipy.stats``, imported on first use: 1-2 s of CPU that only the exact tests and the
    multi-group tests need (issue 17: the differential job's imports)."""
    from scipy import stats

    return stats


def _clean(x: ArrayLike) -> np.ndarray:
    arr = np.asarray(x, dtype=float).ravel()
    return arr[np.isfinite(arr)]


def _has_ties(x: np.ndarray) -> bool:
    return np.unique(x).size < x.size


def _t_two_sided_p(t: float, df: float) -> float:
    """Two-sided p of Student t (scipy.special ufunc; the distribution objects are slow)."""
    return float(2.0 * _sp.stdtr(df, -abs(t)))


def _t_quantile(q: float, df: float) -> float:
    return float(_sp.stdtrit(df, q))


# --------------------------------------------------------------------------------------------
# Two independent groups


@dataclass(frozen=True)
class WelchResult:
    """Welch two-sample t-test, §6. ``diff = mean_a − mean_b``."""

    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    diff: float
    se: float
    df: float
    t: float
    p: float
    ci_low: float
    ci_high: float


def welch_t(a: ArrayLike, b: ArrayLike, conf: float = 0.95) -> WelchResult:
    """Welch t-test with the §6 formulas for SE, Welch–Satterthwaite df and CI.

    Needs ≥ 2 values per group; otherwise the statistics are NaN (means are
    still reported). Two constant groups with equal means give p = 1; with
    different means (SE = 0) t = ±inf and p = 0.
    """
    a, b = _clean(a), _clean(b)
    na, nb = a.size, b.size
    ma = float(a.mean()) if na else math.nan
    mb = float(b.mean()) if nb else math.nan
    diff = ma - mb
    if na < 2 or nb < 2:
        return WelchResult(na, nb, ma, mb, diff, *([math.nan] * 6))
    va, vb = a.var(ddof=1) / na, b.var(ddof=1) / nb
    se = math.sqrt(va + vb)
    if se == 0.0:
        if diff == 0.0:
            return WelchResult(na, nb, ma, mb, diff, 0.0, math.nan, 0.0, 1.0, diff, diff)
        t = math.copysign(math.inf, diff)
        return WelchResult(na, nb, ma, mb, diff, 0.0, math.nan, t, 0.0, diff, diff)
    df = se**4 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    t = diff / se
    p = _t_two_sided_p(t, df)
    half = _t_quantile(0.5 + conf / 2.0, df) * se
    return WelchResult(na, nb, ma, mb, diff, se, float(df), t, p, diff - half, diff + half)


@dataclass(frozen=True)
class FoldChange:
    """Fold change of A relative to B from ΔCq data (§0, §6)."""

    log2fc: float
    log2fc_low: float
    log2fc_high: float
    fc: float
    fc_low: float
    fc_high: float


def fold_change_dcq(diff: float, ci_low: float, ci_high: float) -> FoldChange:
    """``log2FC = −Δ``; CI of the log2FC is ``(−upper, −lower)``; ``FC = 2^−Δ``, CI
    ``[2^−upper, 2^−lower]`` (§6). ``diff`` is ``mean_dcq_a − mean_dcq_b``."""
    return FoldChange(
        log2fc=-diff,
        log2fc_low=-ci_high,
        log2fc_high=-ci_low,
        fc=2.0 ** (-diff),
        fc_low=2.0 ** (-ci_high),
        fc_high=2.0 ** (-ci_low),
    )


@dataclass(frozen=True)
class MannWhitneyResult:
    """Mann–Whitney U for group A (``u`` = U_A) with Hodges–Lehmann shift (A − B).

    ``hl_shift``, ``hl_low``, ``hl_high`` are computed on first use (the differential
    stage asks for the U test's p of every gene but never for its shift: issue 17)."""

    n_a: int
    n_b: int
    u: float
    p: float
    method: str  # "exact" or "asymptotic"
    _a: np.ndarray = field(repr=False, compare=False)
    _b: np.ndarray = field(repr=False, compare=False)
    _conf: float = field(repr=False, compare=False)

    @functools.cached_property
    def _shift(self) -> tuple[float, float, float]:
        return hodges_lehmann(self._a, self._b, self._conf)

    @property
    def hl_shift(self) -> float:
        return self._shift[0]

    @property
    def hl_low(self) -> float:
        return self._shift[1]

    @property
    def hl_high(self) -> float:
        return self._shift[2]


# Above this many pairwise differences the Hodges–Lehmann order statistics are found by
# selection (:func:`_pairwise_order_stats`) instead of materialising all n_a·n_b differences.
HL_DIRECT_MAX = 60_000


def hodges_lehmann(a: ArrayLike, b: ArrayLike, conf: float = 0.95) -> tuple[float, float, float]:
    """Hodges–Lehmann shift ``median(a_i − b_j)`` with its distribution-free CI.

    The CI takes order statistics ``k`` and ``N − k + 1`` of the ``N = n_a·n_b``
    sorted pairwise differences, ``k`` from the normal approximation to the null
    distribution of U (no continuity or tie correction; accurate enough for an
    effect-size interval, and cheap). [extension of §6: the CI is not in the spec]

    Up to :data:`HL_DIRECT_MAX` differences they are materialised and partitioned; above,
    the same order statistics are found exactly by selection without materialising them
    (:func:`_pairwise_order_stats`, O((n_a + n_b) log) per step, memory O(n_a + n_b)),
    so the result does not depend on the path taken.
    """
    a, b = _clean(a), _clean(b)
    if a.size == 0 or b.size == 0:
        return math.nan, math.nan, math.nan
    n_pairs = a.size * b.size
    z = float(_sp.ndtri(0.5 + conf / 2.0))
    k = int(math.floor(n_pairs / 2.0 - z * math.sqrt(a.size * b.size * (a.size + b.size + 1) / 12.0)))
    mid = [(n_pairs - 1) // 2, n_pairs // 2]  # 0-based; equal when N is odd
    ranks = sorted(set(mid + ([k - 1, n_pairs - k] if k >= 1 else [])))
    if n_pairs <= HL_DIRECT_MAX:
        d = np.partition((a[:, None] - b[None, :]).ravel(), ranks)
        value = {r: float(d[r]) for r in ranks}
    else:
        value = _pairwise_order_stats(a, b, ranks, cap=max(4 * (a.size + b.size), 1 << 14))
    est = float(np.mean([value[mid[0]], value[mid[1]]])) if mid[0] != mid[1] else value[mid[0]]
    if k < 1:
        return est, math.nan, math.nan
    return est, value[k - 1], value[n_pairs - k]


#: :func:`hodges_lehmann_shift` materialises the differences up to this many (selection is cheaper above).
HL_SHIFT_DIRECT_MAX = 8192
#: From this many differences :func:`hodges_lehmann_shift` starts from a 256 × 256 subsample (quantiles
#: ± 0.005) and partitions a band of ≤ n/64 of them (issue 17: 1,000 chips, 8,000 × 5,000 patients,
#: 5.8 → 1.3 s CPU for one strategy's shifts, the same values); below, the 64 × 64 start is cheaper.
HL_SHIFT_FINE_MIN = 2**20


def hodges_lehmann_shift(a: ArrayLike, b: ArrayLike) -> float:
    """``hodges_lehmann(a, b)[0]`` (the shift ``median(a_i − b_j)``) without its CI: only the one or two
    middle order statistics are selected, both in one band from a close start (64 × 64 subsample,
    quantiles ± 0.02; from :data:`HL_SHIFT_FINE_MIN` differences 256 × 256, ± 0.005), so the same
    value for a fraction of the work (issue 17: the differential table reports the shift only). Up
    to :data:`HL_SHIFT_DIRECT_MAX` differences they are sorted."""
    a, b = _clean(a), _clean(b)
    if a.size == 0 or b.size == 0:
        return math.nan
    n_pairs = a.size * b.size
    mid = [(n_pairs - 1) // 2, n_pairs // 2]
    ranks = sorted(set(mid))
    if n_pairs <= HL_SHIFT_DIRECT_MAX:
        d = np.partition((a[:, None] - b[None, :]).ravel(), ranks)
        value = {r: float(d[r]) for r in ranks}
    elif n_pairs < HL_SHIFT_FINE_MIN:  # a start close enough for one band of ≤ n/16 differences
        value = _pairwise_order_stats(a, b, ranks, cap=max(n_pairs // 16, 4096), warm=(64, 0.02))
    else:  # large groups: a finer start, a band of ≤ n/64 (a quarter of the partitioning)
        value = _pairwise_order_stats(a, b, ranks, cap=max(n_pairs // 64, 4096), warm=(256, 0.005))
    return float(np.mean([value[mid[0]], value[mid[1]]])) if mid[0] != mid[1] else value[mid[0]]


MW_EXACT_MAX_N = 50  # exact Mann–Whitney only when both groups are smaller (R wilcox.test)


def mann_whitney(a: ArrayLike, b: ArrayLike, conf: float = 0.95) -> MannWhitneyResult:
    """Two-sided Mann–Whitney U, §9 / R ``wilcox.test`` rule: exact (scipy
    ``method="exact"``) when there are no ties and both groups have fewer than
    :data:`MW_EXACT_MAX_N` (50) values; otherwise the normal approximation with tie and
    continuity correction (HTqPCR/R style). The exact null distribution costs
    O(n_a·n_b·min(n)) and is numerically unusable for hundreds of values; at n ≥ 50 the
    approximation is accurate to well below the precision that matters for a p-value."""
    a, b = _clean(a), _clean(b)
    hl = (a, b, conf)  # the shift is computed when asked for (MannWhitneyResult)
    if a.size == 0 or b.size == 0:
        return MannWhitneyResult(a.size, b.size, math.nan, math.nan, "", *hl)
    both = np.concatenate([a, b])
    order = np.argsort(both, kind="stable")
    ties, ranks = sorted_ties(both[order])  # tie-group sizes and mid-ranks (ascending), once for every use
    rank_sum_a = float(ranks[order < a.size].sum())  # halves: exact in any order
    if ties.size == 1:  # all tied: no information
        return MannWhitneyResult(a.size, b.size, a.size * b.size / 2.0, 1.0, "asymptotic", *hl)
    if a.size < MW_EXACT_MAX_N and b.size < MW_EXACT_MAX_N and ties.size == both.size:
        u_a = rank_sum_a - a.size * (a.size + 1) / 2.0
        p = _rank_sum_exact_p(a.size, b.size, u_a)  # scipy's exact p, without importing scipy.stats
        if p is None:
            res = _scipy_stats().mannwhitneyu(a, b, alternative="two-sided", method="exact")
            u_a, p = float(res.statistic), float(res.pvalue)
        return MannWhitneyResult(a.size, b.size, u_a, p, "exact", *hl)
    # normal approximation with tie and continuity correction (same as scipy
    # method="asymptotic", use_continuity=True; written out because it is called per gene)
    n1, n2 = a.size, b.size
    n = n1 + n2
    u1 = rank_sum_a - n1 * (n1 + 1) / 2.0
    mu = n1 * n2 / 2.0
    var = n1 * n2 / 12.0 * ((n + 1) - float(np.sum(ties**3 - ties)) / (n * (n - 1)))
    z = (abs(u1 - mu) - 0.5) / math.sqrt(var)
    p = min(1.0, float(2.0 * _sp.ndtr(-z))) if z > 0 else 1.0
    return MannWhitneyResult(n1, n2, u1, p, "asymptotic", *hl)


@dataclass(frozen=True)
class FisherResult:
    """Fisher exact test on a 2×2 detection table (detected / not, A / B)."""

    detected_a: int
    n_a: int
    detected_b: int
    n_b: int
    odds_ratio: float
    p: float


@functools.lru_cache(maxsize=4096)
def fisher_detection(detected_a: int, n_a: int, detected_b: int, n_b: int) -> FisherResult:
    """Two-sided Fisher exact test of detection frequency, §6 ("many non-detects"). Remembered per
    table (issue 17: genes detected in every sample of a comparison share theirs)."""
    if n_a == 0 or n_b == 0:
        return FisherResult(detected_a, n_a, detected_b, n_b, math.nan, math.nan)
    # two-sided p: sum of hypergeometric probabilities ≤ that of the table (as R / scipy)
    total_det = detected_a + detected_b
    lo, hi = max(0, total_det - n_b), min(n_a, total_det)
    x = np.arange(lo, hi + 1)
    logp = (
        _sp.gammaln(n_a + 1)
        - _sp.gammaln(x + 1)
        - _sp.gammaln(n_a - x + 1)
        + _sp.gammaln(n_b + 1)
        - _sp.gammaln(total_det - x + 1)
        - _sp.gammaln(n_b - total_det + x + 1)
        - _sp.gammaln(n_a + n_b + 1)
        + _sp.gammaln(total_det + 1)
        + _sp.gammaln(n_a + n_b - total_det + 1)
    )
    prob = np.exp(logp)
    observed = prob[detected_a - lo]
    p = min(1.0, float(prob[prob <= observed * (1.0 + 1e-7)].sum()))
    a, b = detected_a, n_a - detected_a
    c, d = detected_b, n_b - detected_b
    odds = (a * d) / (b * c) if b * c > 0 else (math.inf if a * d > 0 else math.nan)
    return FisherResult(detected_a, n_a, detected_b, n_b, float(odds), p)


# --------------------------------------------------------------------------------------------
# More than two groups


@dataclass(frozen=True)
class OmnibusResult:
    """One-way ANOVA / Welch ANOVA / Kruskal–Wallis result."""

    statistic: float
    p: float
    df_num: float
    df_denom: float


_NAN_OMNIBUS = OmnibusResult(math.nan, math.nan, math.nan, math.nan)


def _groups(groups: Sequence[ArrayLike], min_n: int) -> list[np.ndarray] | None:
    cleaned = [_clean(g) for g in groups]
    cleaned = [g for g in cleaned if g.size > 0]
    if len(cleaned) < 2 or any(g.size < min_n for g in cleaned):
        return None
    return cleaned


def anova_oneway_classic(groups: Sequence[ArrayLike]) -> OmnibusResult:
    """Classic one-way ANOVA (equal variances), §6."""
    g = _groups(groups, 1)
    if g is None or sum(x.size for x in g) <= len(g):
        return _NAN_OMNIBUS
    res = _scipy_stats().f_oneway(*g)
    n = sum(x.size for x in g)
    return OmnibusResult(float(res.statistic), float(res.pvalue), len(g) - 1.0, float(n - len(g)))


def welch_anova(groups: Sequence[ArrayLike]) -> OmnibusResult:
    """Welch ANOVA (statsmodels ``anova_oneway(use_var="unequal")``), §6.

    Needs ≥ 2 values per group and a positive variance in each; otherwise NaN.
    """
    g = _groups(groups, 2)
    if g is None or any(np.var(x) == 0.0 for x in g):
        return _NAN_OMNIBUS
    from statsmodels.stats.oneway import anova_oneway

    res = anova_oneway(g, use_var="unequal")
    return OmnibusResult(float(res.statistic), float(res.pvalue), float(res.df_num), float(res.df_denom))


def kruskal_wallis(groups: Sequence[ArrayLike]) -> OmnibusResult:
    """Kruskal–Wallis H with tie correction (scipy), §6. All values tied → p = 1."""
    g = _groups(groups, 1)
    if g is None:
        return _NAN_OMNIBUS
    if np.unique(np.concatenate(g)).size == 1:
        return OmnibusResult(0.0, 1.0, len(g) - 1.0, math.nan)
    res = _scipy_stats().kruskal(*g)
    return OmnibusResult(float(res.statistic), float(res.pvalue), len(g) - 1.0, math.nan)


# --------------------------------------------------------------------------------------------
# Paired


@dataclass(frozen=True)
class PairedResult:
    """Paired test on ``d = a − b`` (pairs with a NaN are dropped)."""

    n: int
    mean_diff: float
    statistic: float
    p: float
    ci_low: float
    ci_high: float
    method: str


def _pairs(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError("paired tests need two sequences of equal length")
    d = a - b
    return d[np.isfinite(d)]


def paired_t(a: ArrayLike, b: ArrayLike, conf: float = 0.95) -> PairedResult:
    """Paired t-test on the within-pair differences ``a − b`` (§6)."""
    d = _pairs(a, b)
    n = d.size
    if n < 2:
        return PairedResult(
            n, float(d.mean()) if n else math.nan, math.nan, math.nan, math.nan, math.nan, "paired_t"
        )
    m = float(d.mean())
    se = float(d.std(ddof=1)) / math.sqrt(n)
    if se == 0.0:
        p = 1.0 if m == 0.0 else 0.0
        t = 0.0 if m == 0.0 else math.copysign(math.inf, m)
        return PairedResult(n, m, t, p, m, m, "paired_t")
    t = m / se
    p = _t_two_sided_p(t, n - 1)
    half = _t_quantile(0.5 + conf / 2.0, n - 1) * se
    return PairedResult(n, m, t, p, m - half, m + half, "paired_t")


def wilcoxon_signed_rank(a: ArrayLike, b: ArrayLike) -> PairedResult:
    """Wilcoxon signed-rank on ``a − b``: exact when there are no zero differences, no
    ties among |d| and fewer than :data:`MW_EXACT_MAX_N` (50) pairs (R ``wilcox.test``
    rule; with n = 5 the smallest p is 0.0625, §6), otherwise the normal approximation
    with zeros dropped (``zero_method="wilcox"``) and tie correction. (The exact null
    distribution costs O(n³) and takes seconds per gene at n in the hundreds.)"""
    d = _pairs(a, b)
    n = d.size
    m = float(np.median(d)) if n else math.nan
    nonzero = d[d != 0.0]
    if nonzero.size == 0:
        return PairedResult(n, m, 0.0, 1.0 if n else math.nan, math.nan, math.nan, "wilcoxon")
    exact = nonzero.size == n and n < MW_EXACT_MAX_N and not _has_ties(np.abs(d))
    # scipy wilcoxon(d, zero_method="wilcox", method="exact" / "approx") to the bit, without scipy.stats
    statistic, p = _signed_rank_exact(d) if exact else _signed_rank_normal(nonzero)
    return PairedResult(n, m, statistic, p, math.nan, math.nan, "wilcoxon")


# --------------------------------------------------------------------------------------------
# Multiple testing and p-value combination


def bh_qvalues(p: ArrayLike) -> np.ndarray:
    """Benjamini–Hochberg q-values, ``q_(i) = min_{j ≥ i} min(1, m·p_(j)/j)`` (§6).

    NaN p-values stay NaN and are not counted in ``m`` (same as R
    ``p.adjust(method="BH")`` with ``n = sum(!is.na(p))``).
    """
    p = np.asarray(p, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return q
    pv = p[ok]
    order = np.argsort(pv, kind="mergesort")
    ranked = pv[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(ranked, 1.0)
    q[ok] = out
    return q


def fisher_combine(pvalues: ArrayLike) -> float:
    """Fisher's method ``−2 Σ ln p ~ χ²(2k)`` for independent p-values (NaNs dropped)."""
    p = _clean(pvalues)
    if p.size == 0:
        return math.nan
    if np.any(p == 0.0):
        return 0.0
    return float(_sp.chdtrc(2 * p.size, -2.0 * np.log(p).sum()))  # = chi2.sf, without the distribution object
