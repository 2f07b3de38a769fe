"""One gene's rank and trimmed-mean tests in one pass (issue 17), the numbers of :mod:`ctc_qpcr.robust_tests`.

The differential tables test each gene on its detected values, one gene at a time: one row of
:mod:`ctc_qpcr.robust_tests`, whose 2-D bookkeeping (NaN masks, three separate rankings for
Brunner–Munzel, one for Mann–Whitney, two sorts for Yuen) cost more than the arithmetic. Here both
groups are sorted once, every mid-rank (within each group and in the pooled sample) comes from
:func:`ctc_qpcr.stats_signed_rank.midranks` (the package's one mid-rank computation), and the same
formulas run on 1-D arrays:

* mid-ranks, tie sizes, rank sums and tie terms are multiples of ½ (exact in floating point), so
  they equal the general path's whatever the order of the work;
* every floating-point sum (variances, placement deviations, trimmed and winsorised sums) runs over
  the same values in the same order and length as the general path's one-row sum, and every other
  operation is the same IEEE operation in the same order (a scalar square is a product, as
  numpy's array square is),

so the statistics and p-values are those of ``robust_tests`` bit for bit (checked on random inputs
with ties in tests/test_differential.py). Inputs: two 1-D arrays of finite values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln, ndtr, stdtr

from . import robust_tests as rt
from .stats_signed_rank import midranks


@dataclass(frozen=True)
class LevelTests:
    """Statistic and p of each level test of one gene (NaN where a group is too small)."""

    welch_calibrated_p: float
    yuen_t: float
    yuen_p: float
    bm_w: float
    bm_p: float
    mw_p: float


def _sq(x):
    """x² of a scalar as the arrays' ``x ** 2`` computes it (a product; the scalar ``**`` calls
    ``pow``, which differs from it in the last bit now and then)."""
    return x * x


def _t_p(t, df) -> float:
    if np.isfinite(t) and np.isfinite(df) and df > 0:
        return float(2.0 * stdtr(df, -np.abs(t)))
    return np.nan


def _welch_p(xa: np.ndarray, xb: np.ndarray, na, nb) -> float:
    """``robust_tests.welch`` p of one row."""
    ma, mb = xa.sum() / na, xb.sum() / nb
    va, vb = ((xa - ma) ** 2).sum() / (na - 1), ((xb - mb) ** 2).sum() / (nb - 1)
    qa, qb = va / na, vb / nb
    se = np.sqrt(qa + qb)
    t = (ma - mb) / se
    df = _sq(qa + qb) / (_sq(qa) / (na - 1) + _sq(qb) / (nb - 1))
    if na < 2 or nb < 2 or not se > 0:
        return np.nan
    return _t_p(t, df)


def _trimmed(s: np.ndarray, trim: float):
    """``robust_tests._trimmed`` of one sorted row: trimmed mean, d and h."""
    n = s.size
    g = int(np.floor(trim * n))
    h = n - 2 * g
    kept = s.copy()  # the general path sums the whole row with the trimmed cells as 0
    kept[:g] = 0.0
    kept[n - g :] = 0.0
    wins = np.clip(s, s[min(g, n - 1)], s[min(max(n - g - 1, 0), n - 1)])
    tmean = kept.sum() / np.int64(h)
    wmean = wins.sum() / np.int64(n)
    wvar = ((wins - wmean) ** 2).sum() / np.int64(n - 1)
    d = np.int64(n - 1) * wvar / np.int64(h * (h - 1))
    return tmean, d, np.float64(h)


def _yuen(sa: np.ndarray, sb: np.ndarray, trim: float) -> tuple[float, float]:
    ta, da, ha = _trimmed(sa, trim)
    tb, db, hb = _trimmed(sb, trim)
    t = (ta - tb) / np.sqrt(da + db)
    df = _sq(da + db) / (_sq(da) / (ha - 1) + _sq(db) / (hb - 1))
    if ha < 2 or hb < 2 or not da + db > 0:
        return np.nan, np.nan
    return float(t), _t_p(t, df)


def _mann_whitney_p(rca: np.ndarray, tie_a, tie_b, na, nb) -> float:
    """``robust_tests.mann_whitney`` p from the pooled mid-ranks of A and every value's tie size."""
    n = na + nb
    u = rca.sum() - na * (na + 1) / 2.0
    tie = (tie_a**2 - 1.0).sum() + (tie_b**2 - 1.0).sum()  # integers: exact in any order
    sd = np.sqrt(na * nb / 12.0 * ((n + 1) - tie / (n * (n - 1))))
    z = max(np.abs(u - na * nb / 2.0) - 0.5, 0.0) / sd
    if na < 1 or nb < 1 or not sd > 0:
        return np.nan
    return float(min(1.0, 2.0 * ndtr(-z)))


def _brunner_munzel(rca, rcb, ra, rb, na, nb) -> tuple[float, float]:
    """``robust_tests.brunner_munzel`` of one row from pooled and within-group mid-ranks."""
    ma, mb = rca.sum() / na, rcb.sum() / nb
    sa = ((rca - ra - ma + (na + 1) / 2.0) ** 2).sum() / (na - 1)
    sb = ((rcb - rb - mb + (nb + 1) / 2.0) ** 2).sum() / (nb - 1)
    denom = (na + nb) * np.sqrt(na * sa + nb * sb)
    w = na * nb * (mb - ma) / denom
    df = _sq(na * sa + nb * sb) / (_sq(na * sa) / (na - 1) + _sq(nb * sb) / (nb - 1))
    if na < 2 or nb < 2 or (sa == 0 and sb == 0 and ma == mb):
        return np.nan, np.nan
    if sa == 0 and sb == 0:  # separated groups: the exact permutation p of that arrangement
        log_comb = gammaln(na + nb + 1) - gammaln(na + 1) - gammaln(na + nb - na + 1)
        return float(w), float(min(1.0, 2.0 / np.exp(log_comb)))
    return float(w), _t_p(w, df)


def level_tests(xa: np.ndarray, xb: np.ndarray, trim: float, calibrate: bool = True) -> LevelTests:
    """Welch (size-calibrated p), Yuen, Brunner–Munzel and Mann–Whitney of A vs B, as
    ``robust_tests`` computes them for one row; ``calibrate=False`` leaves the calibrated p NaN."""
    xa, xb = np.asarray(xa, float), np.asarray(xb, float)
    if min(xa.size, xb.size) < 2 or not (np.isfinite(xa).all() and np.isfinite(xb).all()):
        return _general(xa, xb, trim, calibrate)
    na, nb = np.float64(xa.size), np.float64(xb.size)
    sa, sb = np.sort(xa), np.sort(xb)
    with np.errstate(all="ignore"):
        rc, _, tie = midranks(np.concatenate([xa, xb]))  # pooled mid-ranks and tie sizes
        rca, rcb, tie_a, tie_b = rc[: xa.size], rc[xa.size :], tie[: xa.size], tie[xa.size :]
        ra, rb = midranks(xa, ties=False)[0], midranks(xb, ties=False)[0]  # within each group (BM)
        welch_p = np.nan
        if calibrate:
            small = min(xa.size, xb.size) < rt.CALIBRATE_BELOW
            welch_p = float(rt.welch_calibrated(xa, xb).p[0]) if small else _welch_p(xa, xb, na, nb)
        yuen_t, yuen_p = _yuen(sa, sb, trim)
        bm_w, bm_p = _brunner_munzel(rca, rcb, ra, rb, na, nb)
        mw_p = _mann_whitney_p(rca, tie_a, tie_b, na, nb)
    return LevelTests(welch_p, yuen_t, yuen_p, bm_w, bm_p, mw_p)


def _general(xa: np.ndarray, xb: np.ndarray, trim: float, calibrate: bool) -> LevelTests:
    """The same tests through ``robust_tests`` (groups under 2 values, or non-finite values)."""
    yu, bm = rt.yuen(xa, xb, trim), rt.brunner_munzel(xa, xb)
    welch_p = float(rt.welch_calibrated(xa, xb).p[0]) if calibrate else np.nan
    return LevelTests(
        welch_p,
        float(yu.statistic[0]),
        float(yu.p[0]),
        float(bm.statistic[0]),
        float(bm.p[0]),
        float(rt.mann_whitney(xa, xb).p[0]),
    )
