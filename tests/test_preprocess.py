"""Per-batch orchestrator (data-model.md §2 Cells; algorithms §0.1 order)."""

import time

import numpy as np
import pandas as pd
import pytest

from ctc_qpcr.errors import ConfigError
from ctc_qpcr.preprocess import CELL_COLUMNS, DEFAULTS, ipc_reference_from, preprocess_batch

GDNA = {  # demo1: GOI1, mVPA1 on the gDNA series
    "gDNA 50": (30.4654007, 29.38924408),
    "gDNA 200": (28.52072906, 27.38975143),
    "gDNA 800": (26.00839996, 25.41900444),
    "gDNA 2400": (24.43593216, 23.68484497),
}
SAMPLES = pd.DataFrame(
    {
        "sample": ["pat1", "pat2", "IPC", "NTC", *GDNA],
        "kind": ["patient", "patient", "ipc", "ntc", "gdna", "gdna", "gdna", "gdna"],
    }
)
ASSAYS = pd.DataFrame(
    {"assay": ["GOI1", "REF1", "VPA", "IPCa"], "gene": ["GENE1", "ACTB", "VPA", "IPC"],
     "role": ["target", "reference", "validprime", "ipc"], "lod": ["", "", "", ""], "efficiency": ["", "", "", ""]}
)


def small_batch():
    rows = []

    def add(plate, inlet, sample, assay, cq):
        rows.append({"plate": plate, "run": "", "well": f"S{inlet:02d}-A{['GOI1', 'REF1', 'VPA', 'IPCa'].index(assay) + 1:02d}",
                     "sample": sample, "assay": assay, "cq": cq, "cq_raw": "" if np.isnan(cq) else str(cq),
                     "quality": 0.9, "quality_threshold": 0.65, "call": "Pass" if np.isfinite(cq) else "Fail",
                     "sample_type": "", "quantity": np.nan, "instrument_flags": "", "line": 0})

    for plate, ipc in (("P1", [24.90, 25.02, 24.96]), ("P2", [25.48, 25.52, 25.56])):
        for k, (name, (goi, vpa)) in enumerate(GDNA.items()):
            add(plate, 20 + k, name, "GOI1", goi)
            add(plate, 20 + k, name, "VPA", vpa)
            add(plate, 20 + k, name, "REF1", np.nan)   # REF1 never amplifies gDNA -> A+++
        for k, cq in enumerate(ipc):
            add(plate, 10 + k, "IPC", "IPCa", cq)
        add(plate, 30, "NTC", "GOI1", np.nan)
        # pat1 duplicates in sample inlets 1 and 2: demo1 "RT(+) +200" (grade B)
        for inlet in (1, 2):
            add(plate, inlet, "pat1", "GOI1", 25.62573814)
            add(plate, inlet, "pat1", "VPA", 27.59299278)
            add(plate, inlet, "pat1", "REF1", 20.0 + 0.3 * (inlet - 1) + (0.5 if plate == "P2" else 0))
        # pat2: "+1600" in one replicate (grade F), other replicate NOAMP for GOI1
        add(plate, 3, "pat2", "GOI1", 24.89405441)
        add(plate, 3, "pat2", "VPA", 24.631464)
        add(plate, 4, "pat2", "GOI1", np.nan)
        add(plate, 4, "pat2", "VPA", 24.7)
        add(plate, 3, "pat2", "REF1", 21.0)
        add(plate, 4, "pat2", "REF1", 21.9)
    return pd.DataFrame(rows)


def test_small_batch_end_to_end():
    out = preprocess_batch(small_batch(), SAMPLES, ASSAYS, batch="B1")
    cells = out["cells"]
    assert list(cells.columns) == CELL_COLUMNS
    assert not cells.duplicated(["plate", "sample", "assay"]).any()
    assert cells.equals(cells.sort_values(["plate", "sample", "assay"]).reset_index(drop=True))
    c = cells.set_index(["plate", "sample", "assay"])

    pc = out["plate_calibration"].set_index("plate")
    assert pc["offset"].tolist() == pytest.approx([-0.28, 0.28])
    # ValidPrime per replicate (grade B, 25.8405), then the IPC offset
    r = c.loc[("P1", "pat1", "GOI1")]
    assert r["vp_grade"] == "B" and r["detected"]
    assert r["cq"] == pytest.approx(25.8405 + 0.28, abs=5e-5)
    assert r["plate_offset"] == pytest.approx(-0.28)
    assert r["gdna_fraction"] == pytest.approx(0.1383, abs=5e-5)
    assert c.loc[("P2", "pat1", "GOI1"), "cq"] == pytest.approx(25.8405 - 0.28, abs=5e-5)
    # REF1 is A+++ (never amplifies gDNA): unchanged, replicate delta 0.3 passes
    r = c.loc[("P1", "pat1", "REF1")]
    assert r["vp_grade"] == "A+++" and r["cq"] == pytest.approx(20.15 + 0.28)
    assert r["replicate_delta"] == pytest.approx(0.3) and r["flags"] == ""
    assert c.loc[("P1", "pat2", "REF1"), "flags"] == "replicate_delta>0.5"
    # pat2 GOI1: replicate 1 is F (HIGHDNA, excluded), replicate 2 NOAMP -> not detected, imputed LOD + 1
    r = c.loc[("P1", "pat2", "GOI1")]
    assert r["vp_grade"] == "F" and "HIGHDNA" in r["flags"]
    assert not r["detected"] and np.isnan(r["cq"]) and r["cq_imputed"] == 36.0
    assert (r["n_replicates"], r["n_detected"]) == (1, 0)
    # gDNA, IPC and NTC cells are reported but not ValidPrime-corrected
    assert c.loc[("P1", "IPC", "IPCa"), "vp_grade"] == ""
    assert c.loc[("P1", "IPC", "IPCa"), "cq"] == pytest.approx(24.96 + 0.28)
    assert (cells["batch"] == "B1").all()

    va = out["validprime_assays"].set_index(["plate", "assay"])
    assert va.loc[("P1", "GOI1"), "dcq_gdna"] == pytest.approx(0.8869, abs=5e-5)
    assert va.loc[("P1", "GOI1"), "confidence"] == "High" and va.loc[("P1", "GOI1"), "gene"] == "GENE1"
    assert va.loc[("P1", "REF1"), "score_grade"] == "A+++"

    wf = out["well_flags"]
    assert list(wf.columns) == ["plate", "well", "sample", "assay", "flag", "reason"]
    assert ((wf["sample"] == "pat2") & (wf["flag"] == "HIGHDNA")).sum() == 2
    assert ((wf["flag"] == "NOAMP")).any()
    assert set(out["efficiency"].columns) >= {"assay", "slope", "intercept", "E", "r2", "source"}
    assert ipc_reference_from(out["plate_calibration"]) == pytest.approx(25.24)


def test_averaged_mode_matches_on_equal_replicates():
    rep = preprocess_batch(small_batch(), SAMPLES, ASSAYS)["cells"].set_index(["plate", "sample", "assay"])
    avg = preprocess_batch(small_batch(), SAMPLES, ASSAYS, validprime={"mode": "averaged"})["cells"].set_index(["plate", "sample", "assay"])
    for plate in ("P1", "P2"):
        assert avg.loc[(plate, "pat1", "GOI1"), "cq"] == pytest.approx(rep.loc[(plate, "pat1", "GOI1"), "cq"], abs=1e-9)
        assert avg.loc[(plate, "pat1", "GOI1"), "vp_grade"] == "B"


def test_ipc_reference_and_per_assay_and_off():
    out = preprocess_batch(small_batch(), SAMPLES, ASSAYS, ipc_reference=25.0)
    assert out["plate_calibration"]["offset"].tolist() == pytest.approx([-0.04, 0.52])
    out = preprocess_batch(small_batch(), SAMPLES, ASSAYS, ipc={"mode": "off"})
    assert (out["cells"]["plate_offset"] == 0).all()
    out = preprocess_batch(small_batch(), SAMPLES, ASSAYS, ipc={"mode": "per_assay"})
    ac = out["assay_calibration"].set_index(["plate", "assay"])
    assert ac.loc[("P1", "IPCa"), "offset"] == pytest.approx(-0.28)
    assert ac.loc[("P1", "GOI1"), "flags"] == "IRC_MISSING"


def test_no_validprime_no_ipc_notes():
    assays = ASSAYS[~ASSAYS["role"].isin(["validprime", "ipc"])]
    w = small_batch()
    w = w[w["assay"].isin(assays["assay"])]
    out = preprocess_batch(w, SAMPLES, assays)
    assert any("ValidPrime skipped" in n for n in out["notes"])
    assert any("inter-plate calibrator" in n for n in out["notes"])
    assert (out["cells"]["vp_grade"] == "").all()
    assert out["validprime_assays"].empty


def test_strict_vs_lenient_detection_and_ntc_margin():
    w = small_batch()
    ntc = (w["sample"] == "NTC") & (w["assay"] == "GOI1")
    w.loc[ntc, "cq"] = 27.0
    w.loc[ntc, "call"] = "Pass"
    out = preprocess_batch(w, SAMPLES, ASSAYS, detection={"ntc_margin": 2.0})
    c = out["cells"].set_index(["plate", "sample", "assay"])
    assert not c.loc[("P1", "pat1", "GOI1"), "detected"]  # 25.63 > 27 − 2
    assert (out["well_flags"]["flag"] == "NTC_MARGIN").sum() == 4


def test_unknown_option_is_a_config_error():
    with pytest.raises(ConfigError):
        preprocess_batch(small_batch(), SAMPLES, ASSAYS, replicates={"max_delt": 0.4})
    assert DEFAULTS["validprime"]["min_gdna"] == 4


def big_batch(n_chips=12, seed=1):
    rng = np.random.default_rng(seed)
    n_s, n_a = 96, 96
    assays = [f"G{i:02d}" for i in range(n_a - 2)] + ["VPA", "IPCa"]
    roles = ["target"] * (n_a - 5) + ["reference"] * 3 + ["validprime", "ipc"]
    samples = [f"g{i}" for i in range(4)] + ["IPC"] * 3 + ["NTC"] * 2 + [f"p{i // 2}" for i in range(n_s - 9)]
    kinds = {**{f"g{i}": "gdna" for i in range(4)}, "IPC": "ipc", "NTC": "ntc", **{f"p{i}": "patient" for i in range(50)}}
    si, ai = np.meshgrid(np.arange(n_s), np.arange(n_a), indexing="ij")
    frames = []
    for c in range(n_chips):
        cq = rng.normal(26, 3, size=si.shape)
        cq[rng.random(si.shape) < 0.2] = np.nan
        frames.append(pd.DataFrame({
            "plate": f"C{c:02d}", "run": "", "well": [f"S{s + 1:02d}-A{a + 1:02d}" for s, a in zip(si.ravel(), ai.ravel())],
            "sample": np.array(samples)[si.ravel()], "assay": np.array(assays)[ai.ravel()], "cq": cq.ravel(),
            "quality": rng.uniform(0.5, 1, si.size), "quality_threshold": 0.65, "call": "Pass", "instrument_flags": "",
        }))
    wells = pd.concat(frames, ignore_index=True)
    s = pd.DataFrame({"sample": list(kinds), "kind": list(kinds.values())})
    a = pd.DataFrame({"assay": assays, "gene": assays, "role": roles})
    return wells, s, a


def test_speed_12_chips():
    wells, s, a = big_batch()
    t0 = time.perf_counter()
    out = preprocess_batch(wells, s, a)
    elapsed = time.perf_counter() - t0
    assert len(out["cells"]) == out["cells"][["plate", "sample", "assay"]].drop_duplicates().shape[0]
    assert elapsed < 15, elapsed  # ~1–3 s on a developer machine; generous for CI


def test_config_yaml_keys_are_accepted():
    cfg = {
        "validprime": {"activate": True, "mode": "per_replicate", "sd_max": 0.3, "min_gdna": 4, "loo": False, "loo_sd": 0.2,
                       "grade_a": 3, "grade_b": 25, "grade_c": 60, "correct_a": False, "vpa_noamp_upper_bound": False},
        "ipc": {"activate": True, "reference": None, "max_sd": 0.25, "max_offset": 1.0, "calibrators": []},
        "replicates": {"max_delta": 0.5, "max_sd": 0.354, "outliers": "none"},
        "detection": {"min_detected": "all", "ntc_margin": None},
        "efficiency": {"apply": False, "from_standards": True},
    }
    a = preprocess_batch(small_batch(), SAMPLES, ASSAYS, **cfg)["cells"]
    b = preprocess_batch(small_batch(), SAMPLES, ASSAYS)["cells"]
    pd.testing.assert_frame_equal(a, b)
    off = preprocess_batch(small_batch(), SAMPLES, ASSAYS, ipc={"activate": False}, validprime={"activate": False})
    assert (off["cells"]["plate_offset"] == 0).all() and (off["cells"]["vp_grade"] == "").all()
    pa = preprocess_batch(small_batch(), SAMPLES, ASSAYS, ipc={"calibrators": ["IPC"]})
    assert len(pa["assay_calibration"]) > 0
