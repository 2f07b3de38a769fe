"""Survival estimators against algorithms.md §8.2 worked example and statsmodels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctc_qpcr.survival import (
    benjamini_hochberg,
    cox_ph,
    design_matrix,
    kaplan_meier,
    km_median,
    logrank,
    numbers_at_risk,
)

# §8.2 worked example
TIME = np.array([2.1, 3.5, 4.0, 4.0, 4.0, 7.9, 9.0, 11.5, 14.0, 18.0])
EVENT = np.array([1, 1, 1, 0, 1, 1, 0, 1, 0, 0])
CTC = np.array([12, 8, 5, 30, 0, 6, 2, 1, 0, 3])
AGE = np.array([61, 55, 70, 48, 66, 59, 52, 63, 45, 57], dtype=float)
HIGH = (CTC >= 5).astype(int)
GROUP = np.where(HIGH == 1, "high", "low")


def test_km_worked_example_high():
    km = kaplan_meier(TIME, EVENT, GROUP)
    hi = km[km["group"] == "high"].set_index("time")
    ev = hi[hi["n_events"] > 0]
    assert list(ev.index) == [2.1, 3.5, 4.0, 7.9]
    np.testing.assert_allclose(ev["survival"], [0.8, 0.6, 0.4, 0.0], atol=1e-12)
    np.testing.assert_allclose(ev["se"].iloc[:3], [0.1789, 0.2191, 0.2191], atol=5e-5)
    assert np.isnan(ev["se"].iloc[3])  # S = 0: Greenwood undefined (statsmodels NaN)
    assert ev.loc[2.1, "ci_low"] == pytest.approx(0.2038, abs=5e-5)
    assert ev.loc[2.1, "ci_high"] == pytest.approx(0.9692, abs=5e-5)
    assert hi.loc[4.0, "n_at_risk"] == 3 and hi.loc[4.0, "n_censored"] == 1
    med, lo, up = km_median(TIME[HIGH == 1], EVENT[HIGH == 1])
    assert med == 4.0
    assert (lo, up) == (2.1, 7.9)  # = statsmodels quantile_ci(0.5, "cloglog")


def test_km_worked_example_low():
    km = kaplan_meier(TIME, EVENT, GROUP)
    lo = km[(km["group"] == "low") & (km["n_events"] > 0)]
    np.testing.assert_allclose(lo["survival"], [0.8, 0.5333], atol=5e-5)
    assert list(lo["time"]) == [4.0, 11.5]
    med, a, b = km_median(TIME[HIGH == 0], EVENT[HIGH == 0])
    assert np.isnan(med)
    assert a == 4.0 and b == np.inf


def test_logrank_worked_example():
    r = logrank(TIME, EVENT, GROUP)
    t = r.table.set_index("group")
    assert t.loc["high", "observed"] == 4
    assert t.loc["high", "expected"] == pytest.approx(1.8944, abs=5e-5)
    assert r.variance[0, 0] == pytest.approx(1.0587, abs=5e-5)
    assert r.chi2 == pytest.approx(4.1876, abs=5e-5)
    assert r.p == pytest.approx(0.04072, abs=5e-6)
    assert r.df == 1


def test_cox_worked_example_efron_and_breslow():
    X = np.column_stack([HIGH, AGE])
    fit = cox_ph(TIME, EVENT, X, ["high", "age"])
    assert fit.converged
    np.testing.assert_allclose(fit.coef, [1.7247, 0.1037], atol=5e-5)
    np.testing.assert_allclose(fit.hr, [5.61, 1.109], atol=5e-3)
    assert fit.p[0] == pytest.approx(0.135, abs=5e-4)
    lo, hi = fit.ci()
    assert lo[0] == pytest.approx(0.584, abs=5e-4)
    assert hi[0] == pytest.approx(53.9, abs=0.05)
    assert fit.n == 10 and fit.events == 6
    assert fit.lr_df == 2 and 0 < fit.lr_p < 1
    br = cox_ph(TIME, EVENT, X, ["high", "age"], ties="breslow")
    np.testing.assert_allclose(br.coef, [1.7088, 0.0948], atol=5e-5)
    assert br.hr[0] == pytest.approx(5.52, abs=5e-3)


def _random_cohort(seed, n=80, k=3):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, k, n)
    x = rng.normal(size=n)
    t = (
        np.round(rng.exponential(1 / np.exp(0.4 * g + 0.5 * x)), 1) + 0.1
    )  # rounding → ties
    c = rng.uniform(0.5, 3, n)
    e = (t <= c).astype(int)
    return np.minimum(t, np.round(c, 1)), e, g, x


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_against_statsmodels(seed):
    from statsmodels.duration.hazard_regression import PHReg
    from statsmodels.duration.survfunc import SurvfuncRight, survdiff

    t, e, g, x = _random_cohort(seed)
    # KM + median CI
    sf = SurvfuncRight(t, e)
    km = kaplan_meier(t, e)
    ev = km[km["n_events"] > 0]
    np.testing.assert_allclose(ev["time"], sf.surv_times)
    np.testing.assert_allclose(ev["survival"], sf.surv_prob, rtol=1e-12)
    ok = ev["survival"] > 0
    np.testing.assert_allclose(ev["se"][ok], sf.surv_prob_se[ok.to_numpy()], rtol=1e-10)
    med, lo, hi = km_median(t, e)
    assert med == pytest.approx(sf.quantile(0.5)) or (
        np.isnan(med) and np.isnan(sf.quantile(0.5))
    )
    np.testing.assert_allclose((lo, hi), sf.quantile_ci(0.5, method="cloglog"))
    # k-group log-rank
    chi2, p = survdiff(t, e, g)
    r = logrank(t, e, g)
    assert r.chi2 == pytest.approx(chi2, rel=1e-9) and r.p == pytest.approx(p, rel=1e-8)
    assert r.df == 2
    # Cox, both ties
    X = np.column_stack([(g == 1).astype(float), (g == 2).astype(float), x])
    for ties in ("efron", "breslow"):
        ref = PHReg(t, X, status=e, ties=ties).fit()
        fit = cox_ph(t, e, X, ties=ties)
        np.testing.assert_allclose(fit.coef, ref.params, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(fit.se, ref.bse, rtol=1e-6)
        assert fit.loglik == pytest.approx(ref.llf, rel=1e-9)


def test_logrank_two_groups_equals_formula():
    r = logrank(TIME, EVENT, GROUP)
    o, ex = r.table["observed"].iloc[0], r.table["expected"].iloc[0]
    assert r.chi2 == pytest.approx((o - ex) ** 2 / r.variance[0, 0])


def test_numbers_at_risk():
    assert numbers_at_risk(TIME, [0, 4.0, 4.1, 20]) == [10, 8, 5, 0]


def test_design_matrix_reference_named():
    df = pd.DataFrame(
        {"subtype": ["TNBC", "HR+", "HER2+", "HR+"], "age": [1.0, 2, 3, 4]}
    )
    X, terms = design_matrix(df, ["subtype", "age"], reference={"subtype": "HR+"})
    names = [t.name for t in terms]
    assert names == ["subtype=HER2+ (ref HR+)", "subtype=TNBC (ref HR+)", "age"]
    np.testing.assert_array_equal(X[:, 0], [0, 0, 1, 0])


def test_cox_monotone_likelihood_flagged():
    t = np.array([1.0, 2, 3, 4, 5, 6])
    e = np.array([1, 1, 1, 0, 0, 0])
    x = np.array([1.0, 1, 1, 0, 0, 0])  # all events in one group
    fit = cox_ph(t, e, x)
    assert not fit.converged and "monotone" in fit.note


def test_schoenfeld_ph_detects_crossing_hazards():
    rng = np.random.default_rng(7)
    n = 400
    g = rng.integers(0, 2, n)
    # group 1: early failures, group 0: later failures → non-proportional
    t = np.where(g == 1, rng.weibull(0.5, n), rng.weibull(3.0, n))
    e = np.ones(n, dtype=int)
    fit = cox_ph(t, e, g.astype(float))
    assert fit.ph_p[0] < 0.001
    t2 = rng.exponential(1 / np.exp(0.7 * g))
    fit2 = cox_ph(t2, e, g.astype(float))
    assert fit2.ph_p[0] > 0.01


def test_bh_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = np.array([0.01, 0.04, 0.03, np.nan, 0.2, 0.001])
    q = benjamini_hochberg(p)
    ok = ~np.isnan(p)
    np.testing.assert_allclose(q[ok], multipletests(p[ok], method="fdr_bh")[1])
    assert np.isnan(q[3])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 20), st.booleans()), min_size=1, max_size=30))
def test_km_properties(rows):
    t = np.array([r[0] for r in rows], float)
    e = np.array([int(r[1]) for r in rows])
    km = kaplan_meier(t, e)
    s = km["survival"].to_numpy()
    assert np.all(np.diff(s) <= 1e-15) and np.all((s >= 0) & (s <= 1))
    assert km["n_events"].sum() == e.sum() and km["n_censored"].sum() == (1 - e).sum()
    ok = km["ci_low"].notna()
    assert np.all(km["ci_low"][ok] <= s[ok] + 1e-12) and np.all(
        km["ci_high"][ok] >= s[ok] - 1e-12
    )


def test_km_median_midpoint_r_sas_convention():
    """S(t) = 0.5 exactly on [2, 3): R survival / SAS LIFETEST report (2 + 3)/2."""
    from statsmodels.duration.survfunc import SurvfuncRight

    t = np.array([1.0, 2.0, 3.0, 4.0])
    e = np.ones(4, dtype=int)
    med, lo, hi = km_median(t, e)
    assert med == 2.5
    # statsmodels takes the first time with S < 0.5 (the end of the flat interval);
    # the former rule here (first S <= 0.5) gave its start, 2.0
    assert SurvfuncRight(t, e).quantile(0.5) == 3.0
    # censoring inside the flat interval does not move the upper end: next EVENT time
    t2 = np.array([1.0, 2.0, 2.5, 3.0, 5.0, 6.0])
    e2 = np.array([1, 1, 0, 1, 0, 1])
    km = kaplan_meier(t2, e2)
    assert km.loc[km["time"] == 2.0, "survival"].iloc[0] == pytest.approx(4 / 6)
    # S: 5/6, 4/6, (2.5 censored), 4/6·2/3 = 0.444 at 3 → first ≤ 0.5 at 3.0, not exact
    assert km_median(t2, e2)[0] == 3.0
    # flat at 0.5 until the end of follow-up (no later event): the start of the interval
    t3 = np.array([1.0, 2.0, 3.0, 4.0])
    e3 = np.array([1, 1, 0, 0])
    assert km_median(t3, e3)[0] == 2.0
    # the CI is unchanged by the convention (statsmodels quantile_ci, cloglog)
    np.testing.assert_allclose((lo, hi), SurvfuncRight(t, e).quantile_ci(0.5, method="cloglog"))


def test_km_median_differs_from_statsmodels_only_on_exact_half():
    from statsmodels.duration.survfunc import SurvfuncRight

    for seed in range(20):
        t, e, _, _ = _random_cohort(seed)
        km = kaplan_meier(t, e)
        ev = km[km["n_events"] > 0]
        exact = np.isclose(ev["survival"], 0.5).any()
        med = km_median(t, e)[0]
        ref = SurvfuncRight(t, e).quantile(0.5)
        if not exact and np.isfinite(ref):
            assert med == pytest.approx(ref)
