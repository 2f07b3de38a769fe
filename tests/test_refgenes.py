"""geNorm and NormFinder against the worked examples and published vectors (algorithms §4.1, §4.2)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ctc_qpcr.refgenes import genorm, genorm_m, normfinder, normfinder_pair_value

TOY = pd.DataFrame(
    {
        "ACTB": [18.2, 18.9, 18.5, 19.6, 19.1, 19.9],
        "GAPDH": [20.1, 20.6, 20.4, 21.3, 21.2, 21.9],
        "B2M": [17.0, 17.9, 17.1, 17.8, 17.6, 18.7],
        "PPIA": [21.5, 22.1, 21.6, 22.9, 22.2, 23.3],
    },
    index=[f"S{i}" for i in range(1, 7)],
)
TOY_GROUPS = ["A"] * 3 + ["B"] * 3


def step_m(res, step):
    s = res.steps[res.steps["step"] == step]
    return dict(zip(s["gene"], s["M"], strict=True))


# ------------------------------------------------------------------ geNorm, toy (§4.1)


def test_genorm_toy_steps():
    res = genorm(TOY)
    m1 = step_m(res, 1)
    assert {g: round(v, 4) for g, v in m1.items()} == {
        "ACTB": 0.1875,
        "GAPDH": 0.2325,
        "B2M": 0.2981,
        "PPIA": 0.2102,
    }
    m2 = step_m(res, 2)
    assert {g: round(v, 4) for g, v in m2.items()} == {"ACTB": 0.1407, "GAPDH": 0.1885, "PPIA": 0.1690}
    m3 = step_m(res, 3)
    assert set(m3) == {"ACTB", "PPIA"} and m3["ACTB"] == m3["PPIA"]
    assert round(res.final_m, 4) == 0.1211
    assert set(res.final_pair) == {"ACTB", "PPIA"}
    assert res.ranking == ["ACTB", "PPIA", "GAPDH", "B2M"]
    v = dict(zip(res.pairwise_v["n"], res.pairwise_v["V"], strict=True))
    assert round(v[3], 4) == 0.0704 and round(v[2], 4) == 0.0602
    assert res.optimal_n == 2 and res.optimal_genes == ["ACTB", "PPIA"]
    assert res.mean_m["excluded"].tolist() == ["B2M", "GAPDH", ""]
    assert res.dropped_samples == []


def test_genorm_sign_and_shift_invariant():
    a = genorm(TOY)
    b = genorm(-TOY + 40.0)
    pd.testing.assert_frame_equal(a.steps, b.steps)
    pd.testing.assert_frame_equal(a.pairwise_v, b.pairwise_v)


def test_genorm_drops_incomplete_samples():
    m = TOY.copy()
    m.loc["S7"] = [19.0, np.nan, 18.0, 22.0]
    res = genorm(m)
    assert res.dropped_samples == ["S7"]
    assert res.n_samples == 6
    assert round(res.final_m, 4) == 0.1211


def test_genorm_no_v_below_cutoff_uses_all_genes():
    res = genorm(TOY, v_cutoff=0.01)
    assert res.optimal_n == 4 and res.optimal_genes == res.ranking
    assert "no V" in res.optimal_reason


def test_genorm_two_genes_slqpcr_example():
    # SLqPCR vignette: geneStabM(relData[, c("HK1","HK2")]) = 0.2574717 (Cq data, E = 2)
    hk1 = [12.8, 13.2, 13.1, 13.4, 12.9, 13.1, 12.9, 13.8, 13.1, 13.2, 12.9, 13.3, 12.9, 12.7, 13.0, 13.1]
    hk2 = [18.5, 19.2, 19.2, 19.5, 18.8, 18.7, 18.7, 19.4, 19.1, 18.5, 18.6, 19.1, 19.0, 18.4, 18.6, 18.4]
    m = genorm_m(pd.DataFrame({"HK1": hk1, "HK2": hk2}))
    assert m["HK1"] == pytest.approx(0.2574717, abs=1e-7)
    res = genorm(pd.DataFrame({"HK1": hk1, "HK2": hk2}))
    assert res.optimal_n == 2 and len(res.pairwise_v) == 0


def test_genorm_rejects_single_gene():
    with pytest.raises(ValueError):
        genorm(TOY[["ACTB"]])


# ------------------------------------------------------------------ geNorm, Vandesompele 2002 data


@pytest.fixture(scope="module")
def vandesompele(public_data):
    df = pd.read_csv(
        public_data / "vandesompele2002" / "vandesompele2002_geNorm_relative_quantities.csv", index_col=0
    )
    # linear relative quantities -> log2 (README)
    return {t: np.log2(g.drop(columns="tissue")) for t, g in df.groupby("tissue")}


# NormqPCR vignette (selectHKs, res.BM, trace = TRUE) and SLqPCR vignette (selectHKgenes):
# M values at every step, sorted ascending; mean M and V_{n/n+1} at every step.
BM_STEP_M = [
    [
        0.5160313,
        0.5314564,
        0.5335963,
        0.5700961,
        0.6064919,
        0.6201470,
        0.6397969,
        0.7206013,
        0.7747634,
        0.8498739,
    ],
    [0.4705664, 0.5141375, 0.5271169, 0.5554718, 0.5575295, 0.5738460, 0.6042110, 0.6759176, 0.7671985],
    [0.4391222, 0.4733732, 0.5243665, 0.5253471, 0.5403137, 0.5560120, 0.5622094, 0.6210820],
    [0.4389069, 0.4696398, 0.4879728, 0.5043292, 0.5178634, 0.5245346, 0.5563591],
    [0.4292808, 0.4447874, 0.4594181, 0.4728920, 0.5012107, 0.5566762],
    [0.4195958, 0.4204997, 0.4219179, 0.4424631, 0.4841646],
    [0.3699163, 0.3978736, 0.4173706, 0.4419220],
    [0.3559286, 0.3761358, 0.3827933],
    [0.3492712, 0.3492712],
]
BM_MEAN_M = [
    0.6362855,
    0.5828883,
    0.5302283,
    0.4999437,
    0.4773775,
    0.4377282,
    0.4067706,
    0.3716192,
    0.3492712,
]
# V_{n/n+1}, n = 9 … 2 (SLqPCR vignette trace; V values printed with 7 significant digits)
BM_V = {
    9: 0.07646901,
    8: 0.07765343,
    7: 0.067112,
    6: 0.06813202,
    5: 0.08061944,
    4: 0.08416531,
    3: 0.09767827,
    2: 0.113745,
}
BM_STEP1 = {  # gene names of step 1 from the vignette ("HPRT1 0.5160313 … ACTB 0.8498739")
    "HPRT1": 0.5160313,
    "ACTB": 0.8498739,
}


def test_genorm_bm_all_steps(vandesompele):
    res = genorm(vandesompele["BM"])
    for step, expected in enumerate(BM_STEP_M, start=1):
        got = sorted(step_m(res, step).values())
        np.testing.assert_allclose(got, expected, atol=1e-6)
    m1 = step_m(res, 1)
    for gene, val in BM_STEP1.items():
        assert m1[gene] == pytest.approx(val, abs=1e-6)
    np.testing.assert_allclose(res.mean_m["mean_M"], BM_MEAN_M, atol=1e-6)
    v = dict(zip(res.pairwise_v["n"], res.pairwise_v["V"], strict=True))
    for n, val in BM_V.items():
        assert v[n] == pytest.approx(val, abs=1e-6)
    # ranking of Table 3 in Vandesompele 2002 (NormqPCR vignette "ranks")
    assert set(res.final_pair) == {"RPL13A", "UBC"}
    assert res.ranking[2:] == ["YWHAZ", "HPRT1", "GAPD", "SDHA", "TBP", "HMBS", "B2M", "ACTB"]
    assert res.optimal_n == 2  # V2/3 = 0.113745 < 0.15


@pytest.mark.parametrize(
    "tissue, n, value",
    [
        ("FIB", 3, 0.109409),
        ("BM", 2, 0.113745),
        ("LEU", 3, 0.116988),
        ("POOL", 2, 0.202805),
        ("NB", 4, 0.138337),
    ],
)
def test_genorm_published_v(vandesompele, tissue, n, value):
    res = genorm(vandesompele[tissue])
    v = dict(zip(res.pairwise_v["n"], res.pairwise_v["V"], strict=True))
    assert v[n] == pytest.approx(value, abs=1e-6)


def test_genorm_fib_final_pair(vandesompele, public_data):
    res = genorm(vandesompele["FIB"])
    assert set(res.final_pair) == {"GAPD", "HPRT1"}
    assert round(res.final_m, 4) == 0.2770
    # FIBct.csv = 18 − log2(RQ): same M on Cq input
    ct = pd.read_csv(public_data / "vandesompele2002" / "FIBct.csv", index_col=0)
    res_ct = genorm(ct)
    np.testing.assert_allclose(res_ct.steps["M"], res.steps["M"], atol=1e-6)
    assert res_ct.ranking == res.ranking


def test_genorm_pool_has_no_v_below_cutoff(vandesompele):
    res = genorm(vandesompele["POOL"])
    assert (res.pairwise_v["V"] >= 0.15).sum() >= 1
    # internal consistency: M of the final pair equals the SD of their log-ratio
    a, b = res.final_pair
    sd = np.std(vandesompele["POOL"][a] - vandesompele["POOL"][b], ddof=1)
    assert res.final_m == pytest.approx(sd, abs=1e-12)


# ------------------------------------------------------------------ NormFinder, toy (§4.2)


def test_normfinder_toy_terms():
    res = normfinder(TOY, TOY_GROUPS)
    t = res.terms.set_index(["gene", "group"])
    raw_a = [t.loc[(g, "A"), "sigma2_raw"] for g in ["ACTB", "GAPDH", "B2M", "PPIA"]]
    np.testing.assert_allclose(raw_a, [-0.00333, 0.03, 0.04667, -0.00333], atol=5e-6)
    assert round(t.loc[("ACTB", "A"), "sigma2"], 4) == 0.0025
    assert round(t.loc[("PPIA", "A"), "sigma2"], 4) == 0.0025
    raw_b = [t.loc[(g, "B"), "sigma2_raw"] for g in ["ACTB", "GAPDH", "B2M", "PPIA"]]
    np.testing.assert_allclose(raw_b, [0.01556, 0.02722, 0.04556, 0.03722], atol=5e-6)
    d_a = [t.loc[(g, "A"), "d"] for g in ["ACTB", "GAPDH", "B2M", "PPIA"]]
    np.testing.assert_allclose(d_a, [-0.0167, -0.0667, 0.1333, -0.05], atol=5e-5)
    assert round(res.gamma2, 6) == 0.008032


def test_normfinder_toy_rho_and_pair():
    res = normfinder(TOY, TOY_GROUPS)
    rho = dict(zip(res.table["gene"], res.table["stability"], strict=True))
    assert {g: round(v, 4) for g, v in rho.items()} == {
        "ACTB": 0.0782,
        "PPIA": 0.1181,
        "GAPDH": 0.1484,
        "B2M": 0.1895,
    }
    assert res.table["rank"].tolist() == [1, 2, 3, 4]
    assert res.table["gene"].tolist() == ["ACTB", "PPIA", "GAPDH", "B2M"]
    assert set(res.best_pair) == {"ACTB", "PPIA"}
    assert round(res.best_pair_stability, 4) == 0.0860
    # k = 4 < 4 candidates below 0.25 -> all four genes are candidates
    assert len(res.pairs) == 6


def test_normfinder_toy_zero_rule():
    res = normfinder(TOY, TOY_GROUPS, negative_variance="zero")
    rho = dict(zip(res.table["gene"], res.table["stability"], strict=True))
    assert round(rho["ACTB"], 4) == 0.0592 and round(rho["PPIA"], 4) == 0.1009
    t = res.terms.set_index(["gene", "group"])
    assert t.loc[("ACTB", "A"), "sigma2"] == 0.0


def test_normfinder_toy_one_group():
    res = normfinder(TOY)
    sigma = dict(zip(res.table["gene"], res.table["stability"], strict=True))
    assert {g: round(v, 4) for g, v in sigma.items()} == {
        "ACTB": 0.0236,
        "PPIA": 0.1206,
        "GAPDH": 0.1690,
        "B2M": 0.2730,
    }
    assert np.isnan(res.gamma2)
    # pair value: sigma of the averaged pair among k − 1 genes (corrected one-group helper)
    assert res.best_pair == ("ACTB", "PPIA")
    assert np.isfinite(res.best_pair_stability)


def test_normfinder_rejects_bad_input():
    with pytest.raises(ValueError):
        normfinder(TOY[["ACTB", "PPIA"]], TOY_GROUPS)
    with pytest.raises(ValueError):
        normfinder(TOY, ["A"] * 5 + ["B"])  # group B with one sample
    with pytest.raises(ValueError):
        normfinder(TOY, TOY_GROUPS, negative_variance="nope")


def test_normfinder_drops_incomplete_and_ungrouped():
    m = TOY.copy()
    m.loc["S7"] = [19.0, np.nan, 18.0, 22.0]
    m.loc["S8"] = [19.0, 20.0, 18.0, 22.0]
    res = normfinder(m, TOY_GROUPS + ["A", None])
    assert res.dropped_samples == ["S7", "S8"]
    assert round(res.table.set_index("gene").loc["ACTB", "stability"], 4) == 0.0782


# ------------------------------------------------------------------ NormFinder, Andersen 2004 data

COLON_RHO = {"UBC": 0.1821707, "GAPD": 0.2146061, "TPT1": 0.2202956, "UBB": 0.2471573, "FLJ20030": 0.3935173}
COLON_SORTED = [0.1821707, 0.2146061, 0.2202956, 0.2471573, 0.2700641, 0.2813039, 0.2862397,
                0.2870467, 0.3139404, 0.3235918, 0.3692880, 0.3784909, 0.3935173]  # fmt: skip
# NormqPCR selectHKs(method = "NormFinder") step 2: UBC averaged with each other gene
COLON_UBC_PAIRS = [0.1375298, 0.1424519, 0.1578360, 0.1657364, 0.1729069, 0.1837057, 0.1849021,
                   0.2065531, 0.2131651, 0.2188277, 0.2359623, 0.2447588]  # fmt: skip
BLADDER_SORTED = [0.1539598, 0.1966556, 0.1987227, 0.2033477, 0.2139626, 0.2147852, 0.2666129,
                  0.2672918, 0.2691553, 0.2826051, 0.2960429, 0.3408742, 0.3453435, 0.3497295]  # fmt: skip


@pytest.fixture(scope="module")
def colon(public_data):
    df = pd.read_csv(public_data / "andersen2004" / "andersen2004_Colon_linear_quantities.csv", index_col=0)
    return np.log2(df.drop(columns="Classification")), df["Classification"]


def test_normfinder_colon(colon):
    y, groups = colon
    res = normfinder(y, groups)
    rho = dict(zip(res.table["gene"], res.table["stability"], strict=True))
    for gene, val in COLON_RHO.items():
        assert rho[gene] == pytest.approx(val, abs=1e-6)
    np.testing.assert_allclose(res.table["stability"], COLON_SORTED, atol=1e-6)
    assert res.table["gene"].head(4).tolist() == ["UBC", "GAPD", "TPT1", "UBB"]
    assert round(res.gamma2, 5) == 0.04603
    assert set(res.best_pair) == {"UBC", "GAPD"}
    assert res.best_pair_stability == pytest.approx(0.1375298, abs=1e-6)
    assert res.candidates == ["UBC", "GAPD", "TPT1", "UBB"]  # ρ < 0.25
    pairs = sorted(normfinder_pair_value(res, "UBC", g) for g in y.columns if g != "UBC")
    np.testing.assert_allclose(pairs, COLON_UBC_PAIRS, atol=1e-6)


def test_normfinder_colon_one_group(colon):
    y, _ = colon
    res = normfinder(y)
    top = res.table.head(4)
    assert top["gene"].tolist() == ["TPT1", "UBC", "UBB", "TUBA6"]
    assert [round(v, 2) for v in top["stability"]] == [0.33, 0.35, 0.38, 0.40]


def test_normfinder_bladder_both_rules(public_data):
    df = pd.read_csv(public_data / "andersen2004" / "andersen2004_Bladder_linear_quantities.csv", index_col=0)
    y = np.log2(df.drop(columns="Grade"))
    for rule in ("original", "zero"):  # no negative variances in this set: both rules agree
        res = normfinder(y, df["Grade"], negative_variance=rule)
        np.testing.assert_allclose(res.table["stability"], BLADDER_SORTED, atol=1e-6)
