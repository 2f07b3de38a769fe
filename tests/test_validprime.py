"""ValidPrime (methods §1): worked example §1.8 (gh-validprime resources/demo1.txt), rules of §1.3–§1.5."""

import numpy as np
import pandas as pd
import pytest

from ctc_qpcr import validprime as vp
from ctc_qpcr.chip_options import chip_options
from ctc_qpcr.parsers.biomark import sample_inlets

LOD = chip_options().lod  # the config's default LOD (35 cycles)


def vpo(**settings):
    """``validprime:`` options: the schema's defaults and ``settings``."""
    return chip_options({"validprime": settings}).validprime


REPLICATE = {"vpa_assay": "V", "mode": "replicate", "vpa_lod": LOD, "options": vpo()}


# resources/demo1.txt of jiaco/gh-validprime (mouse kidney cDNA spiked with gDNA; mVPA1 = VPA).
DEMO1 = {
    "RT(+)": [25.97444916, 24.13012505, 27.02088547, 24.15687496, 32.83277893],
    "RT(+) +200": [25.62573814, 24.21214104, 26.93549347, 24.20789623, 27.59299278],
    "RT(+) +800": [25.20882797, 23.89814377, 26.42021751, 24.10586475, 25.551548],
    "RT(+) +1200": [24.78981018, 23.8975544, 25.94077873, 24.03145835, 24.92182922],
    "RT(+) +1600": [24.89405441, 23.66352272, 25.92913055, 24.13487695, 24.631464],
    "gDNA 50": [30.4654007, 30.68925858, 31.7248291, np.nan, 29.38924408],
    "gDNA 200": [28.52072906, 28.58776093, 29.55647469, np.nan, 27.38975143],
    "gDNA 800": [26.00839996, 26.21575546, 27.41721725, np.nan, 25.41900444],
    "gDNA 2400": [24.43593216, 24.60364151, 25.52462921, np.nan, 23.68484497],
}
ASSAYS = ["GOI1", "GOI2", "GOI3", "GOI4", "mVPA1"]
GDNA = ["gDNA 50", "gDNA 200", "gDNA 800", "gDNA 2400"]


def demo_wells(plate="P1"):
    rows = []
    for si, (sample, values) in enumerate(DEMO1.items(), start=1):
        for ai, (assay, cq) in enumerate(zip(ASSAYS, values, strict=True), start=1):
            rows.append(
                {
                    "plate": plate,
                    "well": f"S{si:02d}-A{ai:02d}",
                    "sample": sample,
                    "assay": assay,
                    "cq": cq,
                    "state": "NOAMP" if np.isnan(cq) else "CALC",
                }
            )
    return pd.DataFrame(rows)


def run_demo(wells=None, **kw):
    wells = demo_wells() if wells is None else wells
    table = vp.validate_assays(wells, vpa_assay="mVPA1", gdna_samples=GDNA, lod=45.0, options=vpo())
    goi = wells[~wells["sample"].isin(GDNA) & (wells["assay"] != "mVPA1")]
    res = vp.apply_validprime(
        goi, wells, vpa_assay="mVPA1", assay_table=table, mode="replicate", vpa_lod=45.0, options=vpo(**kw)
    )
    return table, res.set_index(["sample", "assay"])


def test_demo1_assay_validation():
    table, _ = run_demo()
    t = table.set_index("assay")
    assert t.loc["GOI1", "dcq_gdna"] == pytest.approx(0.8869, abs=5e-5)
    assert t.loc["GOI1", "sd"] == pytest.approx(0.2597, abs=5e-5)
    assert t.loc["GOI2", "dcq_gdna"] == pytest.approx(1.0534, abs=5e-5)
    assert t.loc["GOI2", "sd"] == pytest.approx(0.2350, abs=5e-5)
    assert t.loc["GOI3", "dcq_gdna"] == pytest.approx(2.0851, abs=5e-5)
    assert t.loc["GOI3", "sd"] == pytest.approx(0.2138, abs=5e-5)
    assert (t.loc[["GOI1", "GOI2", "GOI3"], "n"] == 4).all()
    assert (t.loc[["GOI1", "GOI2", "GOI3"], "confidence"] == "High").all()
    # GOI4 never amplifies the 4 gDNA rows: 4 × NOAMP = 8 points -> A+++
    assert t.loc["GOI4", "score"] == 8 and t.loc["GOI4", "score_grade"] == "A+++"
    assert t.loc["GOI1", "score"] == -4 and t.loc["GOI1", "score_grade"] == ""


@pytest.mark.parametrize(
    "sample, cq_dna, pct, grade, cq_rna",
    [
        ("RT(+)", 33.7197, 0.47, "A", 25.9744),
        ("RT(+) +200", 28.4799, 13.83, "B", 25.8405),
        ("RT(+) +800", 26.4385, 42.64, "C", 26.0108),
        ("RT(+) +1600", 25.5184, 64.87, "F", None),
    ],
)
def test_demo1_goi1_samples(sample, cq_dna, pct, grade, cq_rna):
    _, res = run_demo()
    r = res.loc[(sample, "GOI1")]
    assert r["cq_dna"] == pytest.approx(cq_dna, abs=5e-5)
    assert 100 * r["gdna_fraction"] == pytest.approx(pct, abs=5e-3)
    assert r["vp_grade"] == grade
    if cq_rna is None:
        assert np.isnan(r["cq_rna"]) and r["vp_flag"] == "HIGHDNA" and r["use"] == "excluded"
    else:
        assert r["cq_rna"] == pytest.approx(cq_rna, abs=5e-5) and r["use"] == "value"


def test_demo1_goi2_goi3_lines():
    _, res = run_demo()
    r = res.loc[("RT(+) +1600", "GOI2")]
    assert 100 * r["gdna_fraction"] == pytest.approx(24.63, abs=5e-3)
    assert r["vp_grade"] == "B" and r["cq_rna"] == pytest.approx(24.0715, abs=5e-5)
    r = res.loc[("RT(+) +800", "GOI3")]
    assert 100 * r["gdna_fraction"] == pytest.approx(43.04, abs=5e-3)
    assert r["vp_grade"] == "C" and r["cq_rna"] == pytest.approx(27.2321, abs=5e-5)
    r = res.loc[("RT(+) +800", "GOI4")]
    assert r["vp_grade"] == "A+++" and r["cq_rna"] == pytest.approx(24.10586475)


def test_correct_a_option():
    _, res = run_demo(correct_a=True)
    assert res.loc[("RT(+)", "GOI1"), "cq_rna"] == pytest.approx(25.9812, abs=5e-5)


def test_grade_bounds_strict():
    o = vpo()
    g = vp.grade_from_percent(
        [2.999999, 3.0, 24.99999, 25.0, 59.9999, 60.0, 100.0], o.grade_a, o.grade_b, o.grade_c
    )
    assert g.tolist() == ["A", "B", "B", "C", "C", "F", "F"]


def _one(cq_na, vpa_cq, dcq=0.0, goi_state="CALC", vpa_state="CALC", confidence="High", **kw):
    lod = kw.pop("vpa_lod", LOD)
    return vp.correct(
        [cq_na], [goi_state], [vpa_cq], [vpa_state], [dcq], [confidence], vpa_lod=lod, options=vpo(**kw)
    ).iloc[0]


@pytest.mark.parametrize("pct, grade", [(3.0, "B"), (25.0, "C"), (60.0, "F")])
def test_grade_bounds_through_correct(pct, grade):
    # Cq_DNA − Cq_NA = −log2(f): a hair above the bound lands in the next grade, a hair below stays.
    delta = -np.log2(pct / 100)
    assert _one(20.0, 20.0 + delta - 1e-9)["vp_grade"] == grade
    below = {"B": "A", "C": "B", "F": "C"}[grade]
    assert _one(20.0, 20.0 + delta + 1e-9)["vp_grade"] == below


def test_vpa_expfail_gives_nd():
    r = _one(25.0, np.nan, vpa_state="EXPFAIL")
    assert (
        r["vp_grade"] == "ND"
        and np.isnan(r["cq_rna"])
        and r["vp_flag"] == "VPA_EXPFAIL"
        and r["use"] == "excluded"
    )
    # a GOI non-detect stays a non-detect
    r = _one(np.nan, np.nan, goi_state="NOAMP", vpa_state="EXPFAIL")
    assert r["vp_grade"] == "ND" and r["use"] == "nondetect"


def test_vpa_noamp_gives_astar_or_upper_bound():
    r = _one(25.0, np.nan, vpa_state="NOAMP", vpa_lod=35.0)
    assert r["vp_grade"] == "A*" and r["cq_rna"] == 25.0 and np.isnan(r["gdna_fraction"])
    r = _one(34.0, np.nan, vpa_state="NOAMP", vpa_lod=35.0, vpa_noamp_upper_bound=True)
    # VPA := 36; f = 2^(34-36) = 25 % -> C, corrected
    assert r["vp_grade"] == "C" and r["cq_dna"] == 36.0
    assert r["cq_rna"] == pytest.approx(34.0 - np.log2(0.75))
    assert "VPA_NOAMP_UPPER_BOUND" in r["vp_flag"]


def test_vpa_lowsignal_is_lod_plus_one():
    r = _one(33.0, 37.2, vpa_state="LOWSIGNAL", vpa_lod=35.0)
    assert r["cq_dna"] == 36.0 and r["vp_grade"] == "B" and r["vp_flag"] == "VPA_LOWSIGNAL"
    assert r["cq_rna"] == pytest.approx(33.0 - np.log2(1 - 2**-3))


def test_goi_not_calc_is_not_corrected():
    r = _one(np.nan, 25.0, goi_state="NOAMP")
    assert r["vp_grade"] == "" and np.isnan(r["cq_rna"]) and r["use"] == "nondetect"
    r = _one(22.0, 25.0, goi_state="EXPFAIL")
    assert r["use"] == "excluded" and np.isnan(r["cq_rna"])


def test_highsd_path():
    r = _one(25.0, 26.0, confidence="Low")  # f = 50 % -> C, low confidence
    assert (
        r["vp_grade"] == "C" and r["vp_flag"] == "HIGHSD" and np.isnan(r["cq_rna"]) and r["use"] == "excluded"
    )
    r = _one(25.0, 35.0, confidence="Low")  # grade A is never corrected: value kept
    assert r["vp_grade"] == "A" and r["cq_rna"] == 25.0


def test_f_path():
    r = _one(25.0, 25.5)
    assert r["vp_grade"] == "F" and r["vp_flag"] == "HIGHDNA" and np.isnan(r["cq_rna"])
    r = _one(26.0, 25.0)  # f > 1 capped at 1
    assert r["gdna_fraction"] == 1.0 and r["vp_grade"] == "F"


def test_low_confidence_with_few_gdna_rows():
    w = demo_wells()
    w = w[w["sample"] != "gDNA 2400"]
    table, res = run_demo(w)
    assert table.set_index("assay").loc["GOI1", "confidence"] == "Low"
    assert res.loc[("RT(+) +200", "GOI1"), "vp_flag"] == "HIGHSD"


def test_leave_one_out():
    w = demo_wells()
    extra = w[w["sample"] == "gDNA 800"].copy()
    extra["sample"] = "gDNA 5000"
    extra["well"] = extra["well"].str.replace("S08", "S20")
    extra.loc[extra["assay"] == "GOI1", "cq"] += 2.0  # an outlying concentration
    w = pd.concat([w, extra], ignore_index=True)
    gd = GDNA + ["gDNA 5000"]
    no = vp.validate_assays(w, vpa_assay="mVPA1", gdna_samples=gd, lod=LOD, options=vpo()).set_index("assay")
    yes = vp.validate_assays(w, vpa_assay="mVPA1", gdna_samples=gd, lod=LOD, options=vpo(loo=True))
    yes = yes.set_index("assay")
    assert no.loc["GOI1", "confidence"] == "Low" and no.loc["GOI1", "n"] == 5
    assert yes.loc["GOI1", "loo_outlier"] == "gDNA 5000"
    assert yes.loc["GOI1", "sd_loo"] == pytest.approx(0.2597, abs=5e-5)
    assert yes.loc["GOI1", "dcq_gdna"] == pytest.approx(0.8869, abs=5e-5)
    assert yes.loc["GOI1", "confidence"] == "Low"  # 0.2597 > loo_sd 0.2 and all-SD > 0.3


def test_replicate_pairing_by_sample_inlet():
    # two replicates of one sample in sample inlets S01 and S02; each GOI well uses its own VPA well
    w = pd.DataFrame(
        {
            "plate": "P",
            "sample": "s",
            "well": ["S01-A01", "S01-A02", "S02-A01", "S02-A02"],
            "assay": ["G", "V", "G", "V"],
            "cq": [25.0, 27.0, 25.2, np.nan],
            "state": ["CALC", "CALC", "CALC", "EXPFAIL"],
        }
    )
    table = pd.DataFrame(
        {"plate": ["P"], "assay": ["G"], "dcq_gdna": [1.0], "confidence": ["High"], "score_grade": [""]}
    )
    res = vp.apply_validprime(w[w["assay"] == "G"], w, assay_table=table, **REPLICATE)
    assert res["vp_grade"].tolist() == ["B", "ND"]
    assert res["cq_dna"].iloc[0] == 28.0
    # unpaired replicate (its VPA well absent from the export) uses the sample's VPA summary
    res = vp.apply_validprime(w[w["assay"] == "G"], w.iloc[:3], assay_table=table, **REPLICATE)
    assert res["vp_grade"].tolist() == ["B", "B"] and "VPA_UNPAIRED" in res["vp_flag"].iloc[1]


def test_rt_minus():
    plus = pd.DataFrame({"sample": ["a", "b", "c"], "assay": "G", "cq": [25.0, 25.0, 25.0], "state": "CALC"})
    minus = pd.DataFrame(
        {
            "sample": ["a", "b", "c"],
            "assay": "G",
            "cq": [27.0, np.nan, np.nan],
            "state": ["CALC", "NOAMP", "EXPFAIL"],
        }
    )
    res = vp.rt_minus_correction(plus, minus, lod=LOD, options=vpo())
    assert res["vp_grade"].tolist() == ["C", "A*", "ND"]
    assert res["cq_rna"].iloc[0] == pytest.approx(25.0 - np.log2(0.75))
    # QIAGEN FAQ: ΔCq 5 -> 3 % (grade B at the strict bound 3.125 %)
    assert 100 * vp.rt_minus_correction(
        plus.iloc[:1], minus.iloc[:1].assign(cq=30.0), lod=LOD, options=vpo()
    )["gdna_fraction"].iloc[0] == pytest.approx(3.125)


# --------------------------------------------------------------------------- A+ per §1.3 (issue 16 item 9)

SERIES = {"g10": 10.0, "g50": 50.0, "g250": 250.0, "g1000": 1000.0, "g5000": 5000.0}
VPA_CQ = {"g10": 33.9, "g50": 31.6, "g250": 29.3, "g1000": 27.3, "g5000": 25.0}


def series_wells(goi_cq: dict) -> pd.DataFrame:
    """One chip, the help text's series 10–5000 copies; ``goi_cq`` NaN = NOAMP."""
    rows = []
    for i, s in enumerate(SERIES, start=1):
        rows.append(
            {
                "plate": "P1",
                "well": f"S{i:02d}-A01",
                "sample": s,
                "assay": "VPA",
                "cq": VPA_CQ[s],
                "state": "CALC",
            }
        )
        cq = goi_cq[s]
        rows.append(
            {
                "plate": "P1",
                "well": f"S{i:02d}-A02",
                "sample": s,
                "assay": "GOI",
                "cq": cq,
                "state": "NOAMP" if np.isnan(cq) else "CALC",
            }
        )
    return pd.DataFrame(rows)


def score_of(wells, copies=SERIES):
    t = vp.validate_assays(
        wells, vpa_assay="VPA", gdna_samples=list(SERIES), gdna_copies=copies, lod=LOD, options=vpo()
    ).set_index("assay")
    return t.loc["GOI", "score"], t.loc["GOI", "score_grade"], t.loc["GOI", "confidence"]


def test_goi_amplifying_gdna_at_1000_and_5000_copies_is_not_aplus():
    w = series_wells({"g10": np.nan, "g50": np.nan, "g250": np.nan, "g1000": 28.1, "g5000": 25.8})
    # NOAMP at 10 copies earns 1 point (< 20 copies), 50 and 250 earn 2, the two CALC rows −1 each
    score, grade, confidence = score_of(w)
    assert score == 1 + 2 + 2 - 1 - 1 == 3
    assert grade == "" and confidence == "Low"  # amplifies gDNA: validated (2 valid rows < 4), not A+
    # without the amounts (gh-validprime's own scoring): 2 + 2 + 2 − 1 − 1 = 4 → A+
    assert score_of(w, copies=None)[:2] == (4, "A+")


def test_noamp_below_20_copies_earns_one_point():
    never = series_wells(dict.fromkeys(SERIES, np.nan))
    assert score_of(never)[:2] == (1 + 2 * 4, "A+++")
    four = never[never["sample"] != "g5000"]
    copies = {k: v for k, v in SERIES.items() if k != "g5000"}
    t = vp.validate_assays(
        four, vpa_assay="VPA", gdna_samples=list(copies), gdna_copies=copies, lod=LOD, options=vpo()
    ).set_index("assay")
    assert (t.loc["GOI", "score"], t.loc["GOI", "score_grade"]) == (
        7,
        "A++",
    )  # 1 + 2·3; 8 (A+++) without the rule
    # a stray CALC at a low amount with the top sample NOAMP stays A+ (noise, not gDNA amplification)
    stray = series_wells({"g10": 30.0, "g50": np.nan, "g250": np.nan, "g1000": np.nan, "g5000": np.nan})
    assert score_of(stray)[:2] == (-1 + 2 * 4, "A++")


@pytest.mark.parametrize(
    "ids",
    [
        ["S01-A01", "S02-A96", "S10-A01", "S01-A01"],  # one layout: read from the bytes
        ["S001-A1", "S002-A2"],
        ["S1-A1", "S12-A3"],  # the dash moves: the pattern
        ["A1", "B12"],
        ["S01-A01", "X01-A01", "S0a-A01", "S-A1", "chip1:S01-A01"],
        ["S\u0661-A1", "S01-A01"],  # a non-ASCII digit: the pattern (\d matches it)
        ["S01-", "S02-"],
    ],
)
def test_sample_inlets_as_the_pattern_reads_them(ids):
    values = np.array(ids, dtype=object)
    want = pd.Series(values).str.extract(r"^(S\d+)-", expand=False).to_numpy(dtype=object)
    got = sample_inlets(values)
    assert [None if pd.isna(v) else v for v in got] == [None if pd.isna(v) else v for v in want]
