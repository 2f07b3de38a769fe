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

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, stdtr


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


def welch(a, b) -> tuple[RowTest, np.ndarray, np.ndarray]:
    """Welch t per row; also returns (difference of means a − b, its SE)."""
    a, b = _rows(a, b)
    na, ma, va = _moments(a)
    nb, mb, vb = _moments(b)
    with np.errstate(invalid="ignore", divide="ignore"):
        qa, qb = va / na, vb / nb
        se = np.sqrt(qa + qb)
        t = (ma - mb) / se
        df = (qa + qb) ** 2 / (qa**2 / (na - 1) + qb**2 / (nb - 1))
    bad = (na < 2) | (nb < 2) | ~(se > 0)
    t, df = np.where(bad, np.nan, t), np.where(bad, np.nan, df)
    return RowTest(t, df, _t_p(t, df)), ma - mb, np.where(bad, np.nan, se)


def _ranks(x: np.ndarray) -> np.ndarray:
    """Mid-ranks within each row among the finite values (NaN stays NaN); O(n²) per row, vectorised."""
    ok = np.isfinite(x)
    xi, xj = x[:, :, None], x[:, None, :]
    okj = ok[:, None, :]
    with np.errstate(invalid="ignore"):
        less = ((xj < xi) & okj).sum(axis=2)
        ties = ((xj == xi) & okj).sum(axis=2)
    return np.where(ok, less + (ties + 1) / 2.0, np.nan)


def mann_whitney(a, b) -> RowTest:
    """Mann–Whitney U per row, normal approximation with tie and continuity correction.

    Statistic = U of ``a`` (number of pairs a > b, ties ½). Same p as scipy
    ``mannwhitneyu(method="asymptotic")`` and R ``wilcox.test(exact=FALSE)``.
    """
    a, b = _rows(a, b)
    x = np.concatenate([a, b], axis=1)
    r = _ranks(x)
    ok = np.isfinite(x)
    na = np.isfinite(a).sum(axis=1).astype(float)
    nb = np.isfinite(b).sum(axis=1).astype(float)
    n = na + nb
    u = np.nansum(r[:, : a.shape[1]], axis=1) - na * (na + 1) / 2.0
    # tie correction: Σ (t³ − t) over tie groups = Σ_i (t_i² − 1) over values, t_i = size of i's group
    with np.errstate(invalid="ignore"):
        tsize = ((x[:, :, None] == x[:, None, :]) & ok[:, None, :]).sum(axis=2)
    tie = np.where(ok, tsize.astype(float) ** 2 - 1.0, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(na * nb / 12.0 * ((n + 1) - tie / (n * (n - 1))))
        z = (np.abs(u - na * nb / 2.0) - 0.5).clip(min=0.0) / sd
    bad = (na < 1) | (nb < 1) | ~(sd > 0)
    p = np.where(bad, np.nan, np.minimum(1.0, 2.0 * ndtr(-z)))
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
        denom = (na + nb) * np.sqrt(na * sa + nb * sb)
        w = na * nb * (mb - ma) / denom
        df = (na * sa + nb * sb) ** 2 / ((na * sa) ** 2 / (na - 1) + (nb * sb) ** 2 / (nb - 1))
    separated = (sa == 0) & (sb == 0) & (ma != mb)
    with np.errstate(invalid="ignore", over="ignore"):
        p_sep = np.minimum(1.0, 2.0 / np.exp(_log_comb(na + nb, na)))
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
        t = (ta - tb) / np.sqrt(da + db)
        df = (da + db) ** 2 / (da**2 / (ha - 1) + db**2 / (hb - 1))
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


#: The candidates of the benchmark (name -> row test).
TESTS = {
    "yuen": lambda a, b: yuen(a, b, 0.1),
    "yuen20": lambda a, b: yuen(a, b, 0.2),
    "welch": lambda a, b: welch(a, b)[0],
    "mann_whitney": mann_whitney,
    "brunner_munzel": brunner_munzel,
}
