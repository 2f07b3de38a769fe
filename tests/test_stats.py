"""Test primitives against the §6 worked example of algorithms.md."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.multitest import multipletests

from ctc_qpcr import stats

R = [5.1, 4.6, 5.8, 4.9, 5.3]
N = [6.4, 7.1, 5.9, 6.8, 7.4, 6.2]
GROUPS = [[5.1, 4.6, 5.8, 4.9], [6.4, 7.1, 5.9, 6.8], [5.0, 5.6, 6.1, 5.4]]
PRE = [6.1, 5.4, 7.0, 6.6, 5.9]
POST = [5.2, 5.0, 6.1, 6.4, 5.1]


def test_welch_worked_example():
    r = stats.welch_t(R, N)
    assert r.mean_a == pytest.approx(5.14)
    assert r.mean_b == pytest.approx(6.6333, abs=5e-5)
    assert round(r.diff, 4) == -1.4933
    assert round(r.se, 4) == 0.3072
    assert round(r.df, 3) == 8.993
    assert round(r.t, 3) == -4.861
    assert round(r.p, 6) == 0.000897
    assert (round(r.ci_low, 4), round(r.ci_high, 4)) == (-2.1884, -0.7983)


def test_fold_change_worked_example():
    r = stats.welch_t(R, N)
    fc = stats.fold_change_dcq(r.diff, r.ci_low, r.ci_high)
    assert round(fc.log2fc, 4) == 1.4933
    assert round(fc.fc, 4) == 2.8154
    assert (round(fc.fc_low, 3), round(fc.fc_high, 3)) == (1.739, 4.558)
    assert fc.log2fc_low == pytest.approx(0.7983, abs=5e-5)


def test_mann_whitney_worked_example():
    r = stats.mann_whitney(R, N)
    assert r.u == 0 and r.method == "exact"
    assert round(r.p, 6) == 0.004329
    # HTqPCR style (normal approximation with continuity) for comparison
    from scipy.stats import mannwhitneyu

    assert round(mannwhitneyu(R, N, method="asymptotic").pvalue, 6) == 0.008113
    # Hodges–Lehmann: median of the 30 pairwise differences, CI brackets it
    diffs = np.subtract.outer(R, N).ravel()
    assert r.hl_shift == pytest.approx(np.median(diffs))
    assert r.hl_low <= r.hl_shift <= r.hl_high < 0


def test_mann_whitney_ties_use_asymptotic():
    r = stats.mann_whitney([1, 1, 2, 3], [3, 4, 4, 5])
    assert r.method == "asymptotic" and 0 < r.p < 1
    assert stats.mann_whitney([1, 1], [1, 1]).p == 1.0


def test_bh_worked_example():
    q = stats.bh_qvalues([0.0004, 0.009, 0.021, 0.04, 0.30])
    np.testing.assert_allclose(q, [0.002, 0.0225, 0.035, 0.05, 0.30])


def test_bh_nan_aware():
    q = stats.bh_qvalues([0.0004, np.nan, 0.009, 0.021, 0.04, 0.30, np.nan])
    np.testing.assert_allclose(q, [0.002, np.nan, 0.0225, 0.035, 0.05, 0.30, np.nan])
    assert np.isnan(stats.bh_qvalues([np.nan, np.nan])).all()
    assert stats.bh_qvalues([]).size == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=40))
def test_bh_matches_statsmodels(p):
    ours = stats.bh_qvalues(p)
    ref = multipletests(p, method="fdr_bh")[1]
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-15)


def test_fisher_detection():
    r = stats.fisher_detection(10, 15, 3, 15)
    assert 0.005 < r.p < 0.05 and r.odds_ratio > 1
    assert math.isnan(stats.fisher_detection(0, 0, 1, 2).p)


def test_omnibus_worked_example():
    a = stats.anova_oneway_classic(GROUPS)
    assert (round(a.statistic, 3), round(a.p, 5)) == (9.020, 0.00708)
    w = stats.welch_anova(GROUPS)
    assert (round(w.statistic, 3), round(w.p, 5)) == (7.570, 0.02299)
    k = stats.kruskal_wallis(GROUPS)
    assert (round(k.statistic, 3), round(k.p, 5)) == (7.269, 0.02639)


def test_paired_worked_example():
    t = stats.paired_t(POST, PRE)
    assert (round(t.statistic, 3), round(t.p, 5)) == (-4.459, 0.01117)
    assert t.ci_low < t.mean_diff < t.ci_high < 0
    w = stats.wilcoxon_signed_rank(POST, PRE)
    assert w.p == pytest.approx(0.0625)


def test_degenerate_inputs_give_nan_not_errors():
    assert math.isnan(stats.welch_t([1.0], [2.0, 3.0]).p)
    assert stats.welch_t([1.0, 1.0], [1.0, 1.0]).p == 1.0
    assert stats.welch_t([1.0, 1.0], [2.0, 2.0]).p == 0.0
    assert math.isnan(stats.welch_anova([[1, 2], [3]]).p)
    assert math.isnan(stats.kruskal_wallis([[1, 2]]).p)
    assert math.isnan(stats.paired_t([1.0], [2.0]).p)
    assert stats.wilcoxon_signed_rank([1, 2, 3], [1, 2, 3]).p == 1.0
    assert math.isnan(stats.welch_t([np.nan, 1.0], [2.0, np.nan]).p)


def test_fisher_combine():
    assert stats.fisher_combine([1.0, 1.0]) == pytest.approx(1.0)
    assert stats.fisher_combine([0.01, 0.01]) < 0.01
    assert math.isnan(stats.fisher_combine([np.nan]))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 4), min_size=2, max_size=15), st.lists(st.integers(0, 4), min_size=2, max_size=15)
)
def test_mann_whitney_ties_match_scipy(a, b):
    from scipy.stats import mannwhitneyu

    ours = stats.mann_whitney(a, b)
    if len(set(a + b)) == 1:
        assert ours.p == 1.0
        return
    # without ties (small groups) the exact distribution is used (docs/methods.md §6), as scipy's exact
    tied = len(set(a + b)) < len(a + b)
    ref = mannwhitneyu(a, b, method="asymptotic" if tied else "exact", use_continuity=True)
    assert ours.u == pytest.approx(ref.statistic)
    assert ours.p == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-12)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 20), st.integers(1, 20), st.data())
def test_fisher_matches_scipy(n_a, n_b, data):
    from scipy.stats import fisher_exact

    da = data.draw(st.integers(0, n_a))
    db = data.draw(st.integers(0, n_b))
    ours = stats.fisher_detection(da, n_a, db, n_b)
    ref = fisher_exact([[da, n_a - da], [db, n_b - db]])
    assert ours.p == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-12)


def test_hodges_lehmann_selection_matches_all_pairwise_differences(monkeypatch):
    """The selection path (large n) returns exactly the order statistics of all sorted differences."""
    import math

    import numpy as np

    from ctc_qpcr import stats as st

    rng = np.random.default_rng(5)
    a = rng.normal(0.0, 2.0, 301)
    b = rng.normal(0.7, 2.0, 240)
    tied_a, tied_b = a.copy(), b.copy()
    tied_a[:200], tied_b[:150] = 40.0, 40.0  # bottom-tied non-detects: a huge tie at difference 0
    for x, y in [(a, b), (tied_a, tied_b), (np.round(a, 1), np.round(b, 1))]:
        d = np.sort((x[:, None] - y[None, :]).ravel())
        n = d.size
        k = int(
            math.floor(
                n / 2.0 - 1.959963984540054 * math.sqrt(x.size * y.size * (x.size + y.size + 1) / 12.0)
            )
        )
        monkeypatch.setattr(st, "HL_DIRECT_MAX", 0)
        assert st.hodges_lehmann(x, y) == (float(np.median(d)), float(d[k - 1]), float(d[n - k]))
        monkeypatch.setattr(st, "HL_DIRECT_MAX", 10**9)
        assert st.hodges_lehmann(x, y) == (float(np.median(d)), float(d[k - 1]), float(d[n - k]))


def test_mann_whitney_exact_only_below_50_per_group():
    """R wilcox.test rule (§9): exact only without ties and with both groups < 50."""
    import numpy as np

    from ctc_qpcr import stats as st

    rng = np.random.default_rng(6)
    small = st.mann_whitney(rng.normal(size=20), rng.normal(size=49))
    large = st.mann_whitney(rng.normal(size=600), rng.normal(0.1, 1.0, size=650))
    assert small.method == "exact"
    assert large.method == "asymptotic" and 0.0 <= large.p <= 1.0


def test_signed_rank_normal_is_scipy_approx_to_the_bit():
    """The written-out normal approximation (no scipy.stats import) = scipy wilcoxon(method="approx")."""
    from scipy.stats import wilcoxon

    rng = np.random.default_rng(17)
    checked = 0
    for i in range(400):
        n = int(rng.integers(2, 300))
        d = rng.normal(size=n)
        if i % 2:  # ties among |d| (and signs), as rounded ΔCq give
            d = rng.integers(-6, 7, size=n) / 4.0
        d = d[d != 0]
        if d.size < 2:
            continue
        ref = wilcoxon(d, zero_method="wilcox", method="approx")
        assert stats._signed_rank_normal(d) == (float(ref.statistic), float(ref.pvalue))
        checked += 1
    assert checked > 300
    for i in range(200):  # zero differences are dropped, as scipy's zero_method="wilcox"
        d = np.round(rng.normal(0.2, 1.0, size=int(rng.integers(2, 200))), i % 3)
        d[rng.random(d.size) < 0.15] = 0.0
        if np.count_nonzero(d) and np.count_nonzero(d) < d.size:
            ref = wilcoxon(d, zero_method="wilcox", method="approx")
            w = stats.wilcoxon_signed_rank(d, np.zeros_like(d))
            assert (w.statistic, w.p) == (float(ref.statistic), float(ref.pvalue))
    # the public test takes it for ≥ 50 pairs or ties (the exact test below that)
    a = rng.normal(size=80)
    b = a + rng.normal(0.3, 1.0, size=80)
    ref = wilcoxon(a - b, zero_method="wilcox", method="approx")
    w = stats.wilcoxon_signed_rank(a, b)
    assert (w.statistic, w.p) == (float(ref.statistic), float(ref.pvalue))


@pytest.mark.parametrize("direct_max, fine_min", [(0, 2**20), (10**9, 2**20), (0, 0)])
def test_hodges_lehmann_shift_is_the_full_estimate(monkeypatch, direct_max, fine_min):
    """The estimate-only HL (differential tables) = hodges_lehmann(...)[0], ties and NaN included;
    from the coarse start and the fine one (HL_SHIFT_FINE_MIN)."""
    from ctc_qpcr import stats as st

    monkeypatch.setattr(st, "HL_DIRECT_MAX", direct_max)
    monkeypatch.setattr(st, "HL_SHIFT_DIRECT_MAX", direct_max)
    monkeypatch.setattr(st, "HL_SHIFT_FINE_MIN", fine_min)
    rng = np.random.default_rng(11)
    for i in range(60):
        a = rng.normal(0.0, 2.0, int(rng.integers(1, 700)))
        b = rng.normal(0.5, 2.0, int(rng.integers(1, 700)))
        if i % 3 == 1:
            a, b = np.round(a, 1), np.round(b, 1)
        if i % 3 == 2:  # bottom-tied non-detects and missing values
            a[: a.size // 2], b[: b.size // 3] = 40.0, 40.0
            a[-1:] = np.nan
        assert st.hodges_lehmann_shift(a, b) == st.hodges_lehmann(a, b)[0]
    assert math.isnan(st.hodges_lehmann_shift([], [1.0]))
    big_a, big_b = np.round(rng.normal(0, 2, 1500), 2), np.round(rng.normal(0.4, 2, 1200), 2)
    big_a[:300] = 40.0  # 1.8 M differences (the fine start by default), bottom-tied values included
    d = (big_a[:, None] - big_b[None, :]).ravel()
    assert st.hodges_lehmann_shift(big_a, big_b) == float(np.median(d))


def test_one_row_ranks_are_the_general_ranks():
    """robust_tests: the 1-D path for one finite row (a gene) = the 2-D path, ranks and tie sizes."""
    from ctc_qpcr import robust_tests as rt

    rng = np.random.default_rng(8)
    for i in range(200):
        x = rng.normal(size=int(rng.integers(1, 400)))
        if i % 2:
            x = np.round(x, 1)
        row = rt._ranks_and_ties_row(x)
        both = rt._ranks_and_ties(np.vstack([x, x]))  # two rows: the general path
        assert np.array_equal(row[0][0], both[0][0]) and np.array_equal(row[1][0], both[1][0])


def test_midranks_are_scipy_average_ranks():
    """stats_signed_rank.midranks (every rank test's mid-ranks): scipy's average ranks, the tie-group
    sizes in ascending order of value and each value's group size, with and without ties."""
    from scipy.stats import rankdata

    from ctc_qpcr.stats_signed_rank import midranks

    rng = np.random.default_rng(9)
    for i in range(100):
        x = rng.normal(size=int(rng.integers(1, 300)))
        if i % 2:
            x = np.round(x, 1)
        ranks, sizes, ties = midranks(x)
        values, counts = np.unique(x, return_counts=True)
        assert np.array_equal(ranks, rankdata(x, method="average"))
        assert np.array_equal(sizes, counts) and sizes.sum() == x.size
        assert np.array_equal(ties, counts[np.searchsorted(values, x)].astype(float))
        assert midranks(x, ties=False)[2] is None


def test_sorted_ties_are_midranks():
    """stats_signed_rank.sorted_ties (one pass over sorted values: the per-gene rank tests, issue 17)
    = midranks of the sorted values: the same tie-group sizes and the same mid-ranks, bit for bit."""
    from ctc_qpcr.stats_signed_rank import midranks, sorted_ties

    rng = np.random.default_rng(19)
    for i in range(200):
        x = np.sort(rng.normal(size=int(rng.integers(1, 300))))
        if i % 3:
            x = np.round(x, i % 3 - 1)
        if i % 7 == 0:
            x = np.zeros(x.size)
        sizes, ranks = sorted_ties(x)
        ref_ranks, ref_sizes, _ = midranks(x)
        assert np.array_equal(sizes, ref_sizes) and np.array_equal(ranks, ref_ranks)


def test_mann_whitney_asymptotic_with_ties_is_scipy():
    """stats.mann_whitney with ties (normal approximation, tie correction; the detection test of every
    gene) = scipy ``mannwhitneyu(method="asymptotic")``: statistic exactly, p to rounding."""
    from scipy.stats import mannwhitneyu

    rng = np.random.default_rng(23)
    for i in range(60):
        a = np.round(rng.normal(0.3 * (i % 3), 1.0, int(rng.integers(2, 200))), 1)
        b = np.round(rng.normal(0.0, 1.0, int(rng.integers(2, 200))), 1)
        if i % 5 == 0:  # non-detects tied above every value
            a[: a.size // 3] = 9.0
        ours, ref = stats.mann_whitney(a, b), mannwhitneyu(a, b, method="asymptotic")
        assert ours.u == ref.statistic and ours.p == pytest.approx(ref.pvalue, rel=1e-12, abs=1e-300)
    assert stats.mann_whitney([1.0, 1.0], [1.0, 1.0, 1.0]).p == 1.0  # all tied


def test_exact_mann_whitney_is_scipy_exact_to_the_bit():
    """stats.mann_whitney's exact p (no ties, both groups < 50) = scipy ``mannwhitneyu(method="exact")``
    bit for bit, from the Gaussian-binomial counts where scipy's recurrence is exact and from scipy
    itself above that bound; the counts are the C(n, k) arrangements, symmetric."""
    from math import comb

    from scipy.stats import mannwhitneyu

    from ctc_qpcr import stats
    from ctc_qpcr.stats_signed_rank import _rank_sum_counts, _rank_sum_exact_p

    rng = np.random.default_rng(11)
    own = 0
    for i in range(400):
        n_a, n_b = (int(rng.integers(1, 50)) for _ in range(2))
        a, b = rng.normal(size=n_a), rng.normal(0.4 * (i % 3), 1.0, n_b)
        got = stats.mann_whitney(a, b)
        ref = mannwhitneyu(a, b, alternative="two-sided", method="exact")
        assert got.method == "exact" and got.u == float(ref.statistic)
        assert np.float64(got.p).tobytes() == np.float64(ref.pvalue).tobytes(), (n_a, n_b)
        own += _rank_sum_exact_p(n_a, n_b, got.u) is not None
    assert 100 < own < 400  # both paths taken
    for k, m in [(1, 1), (3, 4), (12, 30), (24, 25)]:
        counts = _rank_sum_counts(k, m)
        assert counts.size == k * m + 1 and int(counts.sum()) == comb(k + m, k)
        assert (counts == counts[::-1]).all() and (counts > 0).all()


def test_signed_rank_exact_is_scipy_exact_to_the_bit():
    """Exact signed-rank p (n < 50, no zeros or ties) from counts / 2ⁿ = scipy's exact test, bit for bit."""
    from scipy.stats import wilcoxon

    rng = np.random.default_rng(23)
    for i in range(300):
        d = rng.normal(0.25 * (i % 4), 1.0, size=int(rng.integers(1, 50)))
        ref = wilcoxon(d, zero_method="wilcox", method="exact")
        assert stats._signed_rank_exact(d) == (float(ref.statistic), float(ref.pvalue))
        w = stats.wilcoxon_signed_rank(d, np.zeros_like(d))
        assert (w.statistic, w.p) == (float(ref.statistic), float(ref.pvalue))


@pytest.mark.parametrize(
    "cap, warm", [(4096, (64, 0.02)), (64, (64, 0.02)), (4096, (8, 0.0001)), (16, (4, 0.3))]
)
def test_pairwise_order_stats_one_band_or_one_rank_at_a_time(cap, warm):
    """The middle order statistics by selection = those of all sorted differences, whether one band
    holds both (``common_band``) or each rank is narrowed on its own (start too far or band too big)."""
    from ctc_qpcr import stats_pairwise

    rng = np.random.default_rng(23)
    for i in range(30):
        a = rng.normal(0.0, 2.0, int(rng.integers(2, 400)))
        b = rng.gamma(2.0, 1.5, int(rng.integers(2, 400)))  # skewed: a subsample start can miss
        if i % 3 == 1:
            a, b = np.round(a, 1), np.round(b, 1)
        if i % 3 == 2:  # bottom-tied non-detects: a large tie at difference 0
            a[: a.size // 2], b[: b.size // 3] = 40.0, 40.0
        d = np.sort((a[:, None] - b[None, :]).ravel())
        ranks = sorted({(d.size - 1) // 2, d.size // 2})
        found = stats_pairwise._pairwise_order_stats(a, b, ranks, cap=cap, warm=warm)
        assert found == {r: float(d[r]) for r in ranks}


def test_row_counts_are_the_counts_of_the_differences():
    """_row_counts (searchsorted guess checked at ±inf sentinels) = counting the floating differences."""
    from ctc_qpcr import stats_pairwise

    rng = np.random.default_rng(29)
    for i in range(50):
        a = np.sort(rng.normal(0.0, 3.0, int(rng.integers(1, 200))))
        b = rng.normal(0.0, 3.0, int(rng.integers(1, 200)))
        if i % 2:
            a, b = np.sort(np.round(a, 1)), np.round(b, 1)
        b_asc = np.sort(b)
        c = b_asc[::-1].copy()
        diffs = a[:, None] - c[None, :]
        for t in [*rng.choice(diffs.ravel(), 5), diffs.min() - 1.0, diffs.max() + 1.0]:
            assert np.array_equal(stats_pairwise._row_counts(a, b_asc, c, float(t)), (diffs <= t).sum(axis=1))


def test_common_band_thresholds_next_to_the_middle():
    """Thresholds at the middle differences themselves: the band (L, H] must hold both middle ranks."""
    from ctc_qpcr import stats_pairwise

    rng = np.random.default_rng(31)
    for n_a, n_b in [(120, 90), (121, 91)]:  # even and odd number of differences
        a, b = rng.normal(size=n_a), rng.normal(size=n_b)
        d = np.sort((a[:, None] - b[None, :]).ravel())
        ranks = sorted({(d.size - 1) // 2, d.size // 2})
        diffs = stats_pairwise._SortedDifferences(a, b)
        for t in d[ranks[0] - 1 : ranks[-1] + 2]:  # counts ranks[0] ... ranks[-1] + 2
            diffs.count(float(t))
        L, H = diffs.common_band(ranks, cap=10)
        assert (diffs.known[L][0], diffs.known[H][0]) == (ranks[0], ranks[-1] + 1)
        assert diffs.kth_in_band(L, H, [r + 1 for r in ranks]) == [float(d[r]) for r in ranks]
