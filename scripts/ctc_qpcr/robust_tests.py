"""Two-group tests on many rows at once (genes or simulation replicates), NaN = no value.

Every function takes two 2-D arrays ``a`` (rows x n_a) and ``b`` (rows x n_b); a NaN
cell is "not measured" (a non-detect when the caller passes detected values only)
and is left out of that row. One row is one test; a 1-D input is one row. Results
are arrays with one value per row (NaN where a row has too few values).

The same code serves the workflow (one gene per row) and the simulation benchmark
(``benchmarks/bench_differential.py``: thousands of replicates per row block), so
the error rates the benchmark prints are those of the code the workflow runs.
Formulas: docs/methods.md §6 (Welch, Mann–Whitney, Brunner–Munzel, Yuen).
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.special import gammaincinv, ndtr, stdtr, stdtrit

from .stats_signed_rank import midranks, sorted_ties


@dataclass(frozen=True)
class RowTest:
    """Per-row statistic, degrees of freedom (NaN for normal-reference tests) and two-sided p."""

    statistic: np.ndarray
    df: np.ndarray
    p: np.ndarray


def _rows(a, b) -> tuple[np.ndarray, np.ndarray]:
    a = np.atleast_2d(np.asarray(a, float))
    b = np.atleast_2d(np.asarray(b, float))
    if a.shape[0] != b.shape[0]:
        raise ValueError("a and b need the same number of rows")
    return a, b


def _moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ok = np.isfinite(x)
    n = ok.sum(axis=1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(ok, x, 0.0).sum(axis=1) / n
        var = np.where(ok, (x - mean[:, None]) ** 2, 0.0).sum(axis=1) / (n - 1)
    return n, mean, var


def _t_p(t: np.ndarray, df: np.ndarray) -> np.ndarray:
    ok = np.isfinite(t) & np.isfinite(df) & (df > 0)
    with np.errstate(invalid="ignore"):
        return np.where(ok, 2.0 * stdtr(np.where(ok, df, 1.0), -np.abs(np.where(ok, t, 0.0))), np.nan)


def _sq(x):
    """x² as a product: numpy's array ``x ** 2`` (a square) for arrays and scalars alike (a scalar's
    ``**`` calls ``pow``, which differs from it in the last bit now and then)."""
    return x * x


# The formulas of each test from its per-row pieces, written once for the rows of a matrix (arrays)
# and for one gene's row (:func:`level_tests`, numpy scalars): the same operations in the same order,
# so both give the same bits.


def _welch_formula(ma, va, na, mb, vb, nb):
    """Welch's t, Welch–Satterthwaite df and SE from each group's mean, variance and size."""
    qa, qb = va / na, vb / nb
    se = np.sqrt(qa + qb)
    return (ma - mb) / se, _sq(qa + qb) / (_sq(qa) / (na - 1) + _sq(qb) / (nb - 1)), se


def _yuen_formula(ta, da, ha, tb, db, hb):
    """Yuen's t and df from each group's trimmed mean, d and h (:func:`yuen`)."""
    return (ta - tb) / np.sqrt(da + db), _sq(da + db) / (_sq(da) / (ha - 1) + _sq(db) / (hb - 1))


def _mw_formula(rank_sum_a, tie, na, nb):
    """Mann–Whitney U of A, the SD of U under H0 (tie term Σ(t² − 1) over values) and the normal p
    with continuity correction (before the size checks)."""
    n = na + nb
    u = rank_sum_a - na * (na + 1) / 2.0
    sd = np.sqrt(na * nb / 12.0 * ((n + 1) - tie / (n * (n - 1))))
    z = np.maximum(np.abs(u - na * nb / 2.0) - 0.5, 0.0) / sd
    return u, sd, np.minimum(1.0, 2.0 * ndtr(-z))


def _bm_formula(ma, sa, na, mb, sb, nb):
    """Brunner–Munzel W and df from the mean pooled rank and placement variance of each group."""
    denom = (na + nb) * np.sqrt(na * sa + nb * sb)
    w = na * nb * (mb - ma) / denom
    return w, _sq(na * sa + nb * sb) / (_sq(na * sa) / (na - 1) + _sq(nb * sb) / (nb - 1))


def _bm_separated_p(na, nb):
    """p of completely separated groups: the exact permutation p ``2 / C(n_a + n_b, n_a)``."""
    return np.minimum(1.0, 2.0 / np.exp(_log_comb(na + nb, na)))


def welch(a, b) -> tuple[RowTest, np.ndarray, np.ndarray]:
    """Welch t per row; also returns (difference of means a − b, its SE)."""
    a, b = _rows(a, b)
    na, ma, va = _moments(a)
    nb, mb, vb = _moments(b)
    with np.errstate(invalid="ignore", divide="ignore"):
        t, df, se = _welch_formula(ma, va, na, mb, vb, nb)
    bad = (na < 2) | (nb < 2) | ~(se > 0)
    t, df = np.where(bad, np.nan, t), np.where(bad, np.nan, df)
    return RowTest(t, df, _t_p(t, df)), ma - mb, np.where(bad, np.nan, se)


#: Welch's p is size-calibrated when the smaller group has fewer values than this (docs/methods.md §6).
CALIBRATE_BELOW = 5
_NODES = 48  # Gauss–Legendre nodes per χ² variable
_LOG_U = np.linspace(-8.0, 0.0, 33)  # log10 of the nominal p grid
_RATIO = 1.0 / (1.0 + np.exp(-np.linspace(-8.0, 8.0, 33)))  # share c_a of group A in var(mean_A − mean_B)


def welch_calibrated(a, b) -> RowTest:
    """Welch's t with a size-calibrated p for small groups (the workflow's primary two-group test).

    Welch's t-reference with Welch–Satterthwaite df is liberal when a group has very few
    values (3 vs 10–17: 0.064–0.073 at α 0.05 and 0.021–0.030 at α 0.01 under normality).
    When the smaller group has fewer than :data:`CALIBRATE_BELOW` values, the p of a row
    is replaced by the largest probability, over every ratio of the two groups' variances,
    that Welch's p falls at or below the observed one (the supremum p-value over the
    nuisance parameter), computed exactly under normality by quadrature
    (:func:`_welch_size_curve`). It is never smaller than Welch's p and is a valid p
    whatever the variance ratio. Statistic and df are Welch's.
    """
    a, b = _rows(a, b)
    test = welch(a, b)[0]
    na, nb = np.isfinite(a).sum(axis=1), np.isfinite(b).sum(axis=1)
    p = test.p.copy()
    small = np.isfinite(p) & (np.minimum(na, nb) < CALIBRATE_BELOW)
    if small.any():
        pairs = np.stack([np.minimum(na, nb), np.maximum(na, nb)], axis=1)
        for k_small, k_large in np.unique(pairs[small], axis=0):
            rows = small & (pairs[:, 0] == k_small) & (pairs[:, 1] == k_large)
            log_u, log_g = _welch_size_curve(int(k_small), int(k_large))
            lp = np.log10(np.maximum(p[rows], 1e-300))
            cal = np.where(lp < log_u[0], lp + log_g[0] - log_u[0], np.interp(lp, log_u, log_g))
            p[rows] = np.clip(10.0**cal, p[rows], 1.0)
    return RowTest(test.statistic, test.df, p)


@lru_cache(maxsize=256)
def _chi2_nodes(df: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of E[f(X/df)], X ~ χ²(df); df > 200: X/df = 1.

    Gauss–Legendre in the probability scale v = w^r (r = min(df, 8)), so the sqrt-like
    behaviour of the integrand near X = 0, which drives the tail of Welch's T, is smooth in w.
    """
    if df > 200:
        return _read_only(np.ones(1)), _read_only(np.ones(1))
    w, weight = np.polynomial.legendre.leggauss(_NODES)
    w, weight = (w + 1.0) / 2.0, weight / 2.0
    r = min(df, 8)
    return _read_only(2.0 * gammaincinv(df / 2.0, w**r) / df), _read_only(weight * r * w ** (r - 1))


def _read_only(x: np.ndarray) -> np.ndarray:
    """A cached array, write-protected (the nodes of one df serve every size curve: issue 17)."""
    x.flags.writeable = False
    return x


def welch_size(k_a: int, k_b: int, share_a, u: float) -> np.ndarray:
    """P(Welch p ≤ u) under H0 for k_a and k_b normal values, per share c_a of group A in var(Δ).

    With var(mean_A − mean_B) scaled to 1, Welch's T = Z / sqrt(c_a·X_A/d_A + (1 − c_a)·X_B/d_B)
    (Z normal, X χ² with d = k − 1 df) and its df ν is Welch–Satterthwaite's on the same two
    terms, so P(p ≤ u) = E[2Φ(−t_{1−u/2, ν} · sqrt(c_a·X_A/d_A + (1 − c_a)·X_B/d_B))], a double
    integral over X_A, X_B done by Gauss–Legendre quadrature (:func:`_chi2_nodes`).
    """
    da, db = k_a - 1, k_b - 1
    xa, wa = _chi2_nodes(da)
    xb, wb = _chi2_nodes(db)
    weight = (wa[:, None] * wb[None, :]).ravel()
    ca = np.atleast_1d(np.asarray(share_a, float))[:, None]
    qa = ca * np.repeat(xa, xb.size)[None, :]
    qb = (1.0 - ca) * np.tile(xb, xa.size)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        nu = (qa + qb) ** 2 / (qa**2 / da + qb**2 / db)
    tail = 2.0 * ndtr(-stdtrit(nu, 1.0 - u / 2.0) * np.sqrt(qa + qb))
    return (tail * weight).sum(axis=1)


@lru_cache(maxsize=4096)
def _welch_size_curve(k_small: int, k_large: int) -> tuple[np.ndarray, np.ndarray]:
    """(log10 u, log10 of the largest :func:`welch_size` over 33 shares c_a in 0.0003–0.9997).

    Read from the shipped table (:data:`SIZE_TABLE`, k_small < :data:`CALIBRATE_BELOW`,
    k_large ≤ :data:`SIZE_TABLE_MAX`) when it was built for these grids, else computed
    (:func:`_size_curve`, ≈ 1.3 s CPU a curve: issue 17)."""
    stored = _size_table().get((k_small, k_large))
    return _LOG_U, stored if stored is not None else _size_curve(k_small, k_large)


def _size_curve(k_small: int, k_large: int) -> np.ndarray:
    """The log10 size curve of :func:`_welch_size_curve`, computed by quadrature."""
    sup = np.array([max(welch_size(k_small, k_large, _RATIO, 10.0**lu).max(), 10.0**lu) for lu in _LOG_U])
    return np.log10(np.minimum(np.maximum.accumulate(sup), 1.0))


#: The size curves of every (k_small, k_large) with 2 ≤ k_small < CALIBRATE_BELOW and k_small ≤ k_large
#: ≤ SIZE_TABLE_MAX (CTC groups are small: the example study needs 3 vs 8-23 and 4 vs 7-15), computed
#: once by :func:`write_size_table` (≈ 1.3 s CPU a curve, 114 curves); values as Python's shortest
#: round-trip repr, so they read back bit for bit. Larger groups are computed when first met.
SIZE_TABLE = Path(__file__).with_name("welch_size_curves.tsv")
SIZE_TABLE_MAX = 40


def size_table_key() -> str:
    """What the stored curves depend on: the quadrature nodes, the p grid and the variance shares."""
    h = hashlib.sha256(f"nodes={_NODES};".encode())
    for grid in (_LOG_U, _RATIO):
        h.update(np.ascontiguousarray(grid, dtype="<f8").tobytes())
    return h.hexdigest()[:16]


def _size_table_rows(k_large_max: int = SIZE_TABLE_MAX):
    """Text lines of the table: k_large ascending, then k_small."""
    for k_large in range(2, k_large_max + 1):
        for k_small in range(2, min(CALIBRATE_BELOW - 1, k_large) + 1):
            curve = _size_curve(k_small, k_large)
            yield "\t".join([str(k_small), str(k_large), *(repr(float(v)) for v in curve)]) + "\n"


def write_size_table(path=SIZE_TABLE, k_large_max: int = SIZE_TABLE_MAX) -> None:
    """Compute and write the size-curve table (≈ 2.5 min CPU; rebuild after changing the grids:
    :func:`size_table_key` no longer matches and the table is ignored)."""
    header = ["k_small", "k_large", *(f"log10_u={u:g}" for u in _LOG_U)]
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write(f"# Welch size curves (robust_tests._welch_size_curve), key {size_table_key()}\n")
        out.write("\t".join(header) + "\n")
        out.writelines(_size_table_rows(k_large_max))


@lru_cache(maxsize=1)
def _size_table() -> dict[tuple[int, int], np.ndarray]:
    """The shipped curves, or none when the file is absent or was built for other grids."""
    try:
        lines = SIZE_TABLE.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    if not lines or not lines[0].endswith(f"key {size_table_key()}"):
        return {}
    table = {}
    for line in lines[2:]:
        k_small, k_large, *values = line.split("\t")
        table[int(k_small), int(k_large)] = _read_only(np.array([float(v) for v in values]))
    return table


def _ranks_and_ties(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mid-ranks within each row among the finite values, and the size of each
    value's tie group (NaN stays NaN / 0). One stable sort per row: O(n log n).

    The mid-rank of a tie group at sorted positions f..l is (f + l) / 2, the mean
    of its positions (a multiple of ½, exact in floating point).
    """
    if x.shape[0] == 1 and np.isfinite(x).all():
        return _ranks_and_ties_row(x[0])
    order = np.argsort(x, axis=1, kind="stable")  # NaN sorts last
    xs = np.take_along_axis(x, order, axis=1)
    start = np.ones(xs.shape, dtype=bool)
    start[:, 1:] = xs[:, 1:] != xs[:, :-1]  # NaN != NaN: every NaN its own group
    group = np.cumsum(start.ravel()) - 1
    position = np.broadcast_to(np.arange(1, xs.shape[1] + 1, dtype=float), xs.shape).ravel()
    size = np.bincount(group)
    mid = np.bincount(group, weights=position) / size
    ok = np.isfinite(x)
    ranks, ties = np.empty(x.shape), np.empty(x.shape)
    np.put_along_axis(ranks, order, mid[group].reshape(xs.shape), axis=1)
    np.put_along_axis(ties, order, size[group].reshape(xs.shape).astype(float), axis=1)
    return np.where(ok, ranks, np.nan), np.where(ok, ties, 0.0)


def _ranks_and_ties_row(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_ranks_and_ties` of one row of finite values (one gene of the workflow), 1-D work only
    (:func:`ctc_qpcr.stats_signed_rank.midranks`: the same multiples of ½ as the general path's mean
    of positions, so the same numbers; issue 17: the per-gene tests spent most of their time in
    the 2-D bookkeeping)."""
    ranks, _, ties = midranks(v)
    return ranks[None, :], ties[None, :]


def _ranks(x: np.ndarray) -> np.ndarray:
    """Mid-ranks within each row among the finite values (NaN stays NaN)."""
    return _ranks_and_ties(x)[0]


def mann_whitney(a, b) -> RowTest:
    """Mann–Whitney U per row, normal approximation with tie and continuity correction.

    Statistic = U of ``a`` (number of pairs a > b, ties ½). Same p as scipy
    ``mannwhitneyu(method="asymptotic")`` and R ``wilcox.test(exact=FALSE)``.
    """
    a, b = _rows(a, b)
    x = np.concatenate([a, b], axis=1)
    r, tsize = _ranks_and_ties(x)
    ok = np.isfinite(x)
    na = np.isfinite(a).sum(axis=1).astype(float)
    nb = np.isfinite(b).sum(axis=1).astype(float)
    # tie correction: Σ (t³ − t) over tie groups = Σ_i (t_i² − 1) over values, t_i = size of i's group
    tie = np.where(ok, tsize**2 - 1.0, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        u, sd, p = _mw_formula(np.nansum(r[:, : a.shape[1]], axis=1), tie, na, nb)
    bad = (na < 1) | (nb < 1) | ~(sd > 0)
    p = np.where(bad, np.nan, p)
    return RowTest(np.where(bad, np.nan, u), np.full(u.shape, np.nan), p)


def brunner_munzel(a, b) -> RowTest:
    """Brunner–Munzel test per row (t reference with Satterthwaite-type df), as scipy ``brunnermunzel``.

    Tests P(A < B) + ½P(A = B) = ½ without assuming equal variances or shapes. When
    the groups are completely separated (both placement variances 0) the statistic is
    infinite and the t reference undefined; p is then the exact permutation p of that
    most extreme arrangement, ``2 / C(n_a + n_b, n_a)`` (e.g. 0.1 for 3 vs 3).
    """
    a, b = _rows(a, b)
    na = np.isfinite(a).sum(axis=1).astype(float)
    nb = np.isfinite(b).sum(axis=1).astype(float)
    rc = _ranks(np.concatenate([a, b], axis=1))
    rca, rcb = rc[:, : a.shape[1]], rc[:, a.shape[1] :]
    ra, rb = _ranks(a), _ranks(b)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # rows with an empty group -> NaN
        ma, mb = np.nanmean(rca, axis=1), np.nanmean(rcb, axis=1)
        sa = np.nansum((rca - ra - ma[:, None] + (na[:, None] + 1) / 2.0) ** 2, axis=1) / (na - 1)
        sb = np.nansum((rcb - rb - mb[:, None] + (nb[:, None] + 1) / 2.0) ** 2, axis=1) / (nb - 1)
        w, df = _bm_formula(ma, sa, na, mb, sb, nb)
    separated = (sa == 0) & (sb == 0) & (ma != mb)
    with np.errstate(invalid="ignore", over="ignore"):
        p_sep = _bm_separated_p(na, nb)
    p = np.where(separated, p_sep, _t_p(w, df))
    bad = (na < 2) | (nb < 2) | ((sa == 0) & (sb == 0) & (ma == mb))
    return RowTest(np.where(bad, np.nan, w), np.where(bad | separated, np.nan, df), np.where(bad, np.nan, p))


def _log_comb(n: np.ndarray, k: np.ndarray) -> np.ndarray:
    from scipy.special import gammaln

    return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)


def yuen(a, b, trim: float = 0.2) -> RowTest:
    """Yuen's trimmed-means t per row (Welch-type df on winsorised variances).

    ``g = floor(trim · n)`` values are trimmed from each end of each group; the
    statistic is (trimmed mean a − trimmed mean b) / sqrt(d_a + d_b) with
    ``d = (n − 1) s²_w / (h (h − 1))``, ``h = n − 2g``, ``s²_w`` the winsorised variance.
    """
    a, b = _rows(a, b)
    ta, da, ha = _trimmed(a, trim)
    tb, db, hb = _trimmed(b, trim)
    with np.errstate(invalid="ignore", divide="ignore"):
        t, df = _yuen_formula(ta, da, ha, tb, db, hb)
    bad = (ha < 2) | (hb < 2) | ~(da + db > 0)
    t, df = np.where(bad, np.nan, t), np.where(bad, np.nan, df)
    return RowTest(t, df, _t_p(t, df))


def _trimmed(x: np.ndarray, trim: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = np.sort(x, axis=1)  # NaN sorted last
    n = np.isfinite(x).sum(axis=1)
    g = np.floor(trim * n).astype(int)
    h = n - 2 * g
    pos = np.arange(x.shape[1])[None, :]
    keep = (pos >= g[:, None]) & (pos < (n - g)[:, None])
    rows = np.arange(x.shape[0])
    lo = s[rows, np.minimum(g, x.shape[1] - 1)]
    hi = s[rows, np.clip(n - g - 1, 0, x.shape[1] - 1)]
    wins = np.clip(s, lo[:, None], hi[:, None])
    valid = pos < n[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        tmean = np.where(keep, s, 0.0).sum(axis=1) / h
        wmean = np.where(valid, wins, 0.0).sum(axis=1) / n
        wvar = np.where(valid, (wins - wmean[:, None]) ** 2, 0.0).sum(axis=1) / (n - 1)
        d = (n - 1) * wvar / (h * (h - 1))
    return tmean, d, h.astype(float)


def off_mask(x, off_z: float = 3.5, min_sd: float = 0.5) -> np.ndarray:
    """Per row, values more than ``off_z`` robust SDs above the row median ("off", background level).

    Robust SD = 1.4826 · MAD, at least ``min_sd``; NaN cells are never off. The matrix form
    of ``differential.call_on`` (same rule), for the benchmark.
    """
    x = np.atleast_2d(np.asarray(x, float))
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(x, axis=1, keepdims=True)
        sd = np.maximum(1.4826 * np.nanmedian(np.abs(x - med), axis=1, keepdims=True), min_sd)
        return np.isfinite(x) & ((x - med) > off_z * sd)


# --------------------------------------------------------------------------------------------
# One row: a gene of the differential tables (issue 17)
#
# The differential tables test each gene on its detected values, one gene at a time, where the 2-D
# bookkeeping above (NaN masks, three rankings for Brunner–Munzel, one for Mann–Whitney, two sorts
# for Yuen) costs more than the arithmetic. :func:`level_tests` computes the per-row pieces on 1-D
# arrays and applies the same formula functions (``_*_formula``):
#
# * mid-ranks, tie sizes, rank sums and tie terms are multiples of ½ (exact in floating point), so
#   they equal the matrix path's whatever the order of the work;
# * every floating-point sum (variances, placement deviations, trimmed and winsorised sums) runs
#   over the same values in the same order and length as the matrix path's one-row sum,
#
# so statistics and p-values are those of the functions above bit for bit (tests/test_differential.py).


@dataclass(frozen=True)
class LevelTests:
    """Statistic and p of each level test of one gene (NaN where a group is too small)."""

    welch_calibrated_p: float
    yuen_t: float
    yuen_p: float
    bm_w: float
    bm_p: float
    mw_p: float


def _row_t_p(t, df) -> float:
    if np.isfinite(t) and np.isfinite(df) and df > 0:
        return float(2.0 * stdtr(df, -np.abs(t)))
    return np.nan


def _row_welch_p(xa: np.ndarray, xb: np.ndarray, na, nb) -> float:
    """:func:`welch`'s p of one row."""
    ma, mb = xa.sum() / na, xb.sum() / nb
    va, vb = ((xa - ma) ** 2).sum() / (na - 1), ((xb - mb) ** 2).sum() / (nb - 1)
    t, df, se = _welch_formula(ma, va, na, mb, vb, nb)
    if na < 2 or nb < 2 or not se > 0:
        return np.nan
    return _row_t_p(t, df)


def _row_trimmed(s: np.ndarray, trim: float):
    """:func:`_trimmed` of one sorted row: trimmed mean, d and h."""
    n = s.size
    g = int(np.floor(trim * n))
    h = n - 2 * g
    kept = s.copy()  # the matrix path sums the whole row with the trimmed cells as 0
    kept[:g] = 0.0
    kept[n - g :] = 0.0
    wins = np.clip(s, s[min(g, n - 1)], s[min(max(n - g - 1, 0), n - 1)])
    tmean = kept.sum() / np.int64(h)
    wmean = wins.sum() / np.int64(n)
    wvar = ((wins - wmean) ** 2).sum() / np.int64(n - 1)
    d = np.int64(n - 1) * wvar / np.int64(h * (h - 1))
    return tmean, d, np.float64(h)


def _row_yuen(sa: np.ndarray, sb: np.ndarray, trim: float) -> tuple[float, float]:
    ta, da, ha = _row_trimmed(sa, trim)
    tb, db, hb = _row_trimmed(sb, trim)
    t, df = _yuen_formula(ta, da, ha, tb, db, hb)
    if ha < 2 or hb < 2 or not da + db > 0:
        return np.nan, np.nan
    return float(t), _row_t_p(t, df)


def _row_brunner_munzel(rca, rcb, ra, rb, na, nb) -> tuple[float, float]:
    """:func:`brunner_munzel` of one row from pooled and within-group mid-ranks."""
    ma, mb = rca.sum() / na, rcb.sum() / nb
    sa = ((rca - ra - ma + (na + 1) / 2.0) ** 2).sum() / (na - 1)
    sb = ((rcb - rb - mb + (nb + 1) / 2.0) ** 2).sum() / (nb - 1)
    w, df = _bm_formula(ma, sa, na, mb, sb, nb)
    if na < 2 or nb < 2 or (sa == 0 and sb == 0 and ma == mb):
        return np.nan, np.nan
    if sa == 0 and sb == 0:  # separated groups: the exact permutation p of that arrangement
        return float(w), float(_bm_separated_p(na, nb))
    return float(w), _row_t_p(w, df)


def level_tests(xa: np.ndarray, xb: np.ndarray, trim: float, calibrate: bool = True) -> LevelTests:
    """Welch (size-calibrated p), Yuen, Brunner–Munzel and Mann–Whitney of A vs B: the numbers of
    :func:`welch_calibrated`, :func:`yuen`, :func:`brunner_munzel` and :func:`mann_whitney` for one
    row, by 1-D work; ``calibrate=False`` leaves the calibrated p NaN."""
    xa, xb = np.asarray(xa, float), np.asarray(xb, float)
    if min(xa.size, xb.size) < 2 or not (np.isfinite(xa).all() and np.isfinite(xb).all()):
        return _level_tests_matrix(xa, xb, trim, calibrate)
    na, nb = np.float64(xa.size), np.float64(xb.size)
    ranks = _RowRanks(xa, xb)
    with np.errstate(all="ignore"):
        rca, rcb = ranks.pooled[: xa.size], ranks.pooled[xa.size :]
        ra, rb = ranks.within(xa, ranks.order_a), ranks.within(xb, ranks.order_b)  # (BM)
        welch_p = np.nan
        if calibrate:
            small = min(xa.size, xb.size) < CALIBRATE_BELOW
            welch_p = float(welch_calibrated(xa, xb).p[0]) if small else _row_welch_p(xa, xb, na, nb)
        yuen_t, yuen_p = _row_yuen(xa[ranks.order_a], xb[ranks.order_b], trim)
        bm_w, bm_p = _row_brunner_munzel(rca, rcb, ra, rb, na, nb)
        tie_sum = np.float64((ranks.ties**3 - ranks.ties).sum())  # integers: exact in any order
        _, sd, mw_p = _mw_formula(rca.sum(), tie_sum, na, nb)
    return LevelTests(welch_p, yuen_t, yuen_p, bm_w, bm_p, float(mw_p) if sd > 0 else np.nan)


class _RowRanks:
    """One gene's ranks for :func:`level_tests` from one stable argsort of both groups' values: the
    pooled mid-ranks (A's values, then B's), the tie-group sizes, and each group's ascending order,
    the pooled order's members of that group (issue 17: three ``np.unique`` and two ``np.sort`` per
    gene before; mid-ranks are multiples of ½, :func:`~ctc_qpcr.stats_signed_rank.sorted_ties`)."""

    def __init__(self, xa: np.ndarray, xb: np.ndarray):
        both = np.concatenate([xa, xb])
        order = np.argsort(both, kind="stable")
        self.ties, ranks = sorted_ties(both[order])
        self.pooled = _placed(ranks, order)
        in_a = order < xa.size
        self.order_a, self.order_b = order[in_a], order[~in_a] - xa.size

    @staticmethod
    def within(x: np.ndarray, ascending: np.ndarray) -> np.ndarray:
        """Mid-ranks of ``x`` within its group (``ascending``: its ascending order)."""
        return _placed(sorted_ties(x[ascending])[1], ascending)


def _placed(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``values`` of the positions ``order`` put back at those positions."""
    out = np.empty_like(values)
    out[order] = values
    return out


def _level_tests_matrix(xa: np.ndarray, xb: np.ndarray, trim: float, calibrate: bool) -> LevelTests:
    """:func:`level_tests` through the matrix functions (a group under 2 values, or non-finite values)."""
    yu, bm = yuen(xa, xb, trim), brunner_munzel(xa, xb)
    welch_p = float(welch_calibrated(xa, xb).p[0]) if calibrate else np.nan
    return LevelTests(
        welch_p,
        float(yu.statistic[0]),
        float(yu.p[0]),
        float(bm.statistic[0]),
        float(bm.p[0]),
        float(mann_whitney(xa, xb).p[0]),
    )


#: The candidates of the benchmark (name -> row test).
TESTS = {
    "yuen": lambda a, b: yuen(a, b, 0.1),
    "yuen20": lambda a, b: yuen(a, b, 0.2),
    "welch": lambda a, b: welch(a, b)[0],
    "mann_whitney": mann_whitney,
    "brunner_munzel": brunner_munzel,
}
