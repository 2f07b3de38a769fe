"""Per-batch orchestrator (data-model.md §2 Cells; algorithms §0.1 order)."""

import numpy as np
import pandas as pd
import pytest

from ctc_qpcr.audit import build_audit, summarise_audit
from ctc_qpcr.chip_options import chip_options
from ctc_qpcr.errors import ConfigError
from ctc_qpcr.preprocess import CELL_COLUMNS, ipc_reference_from, preprocess_batch
from ctc_qpcr.wells import assign_states

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
    {
        "assay": ["GOI1", "REF1", "VPA", "IPCa"],
        "gene": ["GENE1", "ACTB", "VPA", "IPC"],
        "role": ["target", "reference", "validprime", "ipc"],
        "lod": ["", "", "", ""],
        "efficiency": ["", "", "", ""],
    }
)


def small_batch():
    rows = []

    def add(plate, inlet, sample, assay, cq):
        rows.append(
            {
                "plate": plate,
                "run": "",
                "well": f"S{inlet:02d}-A{['GOI1', 'REF1', 'VPA', 'IPCa'].index(assay) + 1:02d}",
                "sample": sample,
                "assay": assay,
                "cq": cq,
                "cq_raw": "" if np.isnan(cq) else str(cq),
                "quality": 0.9,
                "quality_threshold": 0.65,
                "call": "Pass" if np.isfinite(cq) else "Fail",
                "sample_type": "",
                "quantity": np.nan,
                "instrument_flags": "",
                "line": 0,
            }
        )

    for plate, ipc in (("P1", [24.90, 25.02, 24.96]), ("P2", [25.48, 25.52, 25.56])):
        for k, (name, (goi, vpa)) in enumerate(GDNA.items()):
            add(plate, 20 + k, name, "GOI1", goi)
            add(plate, 20 + k, name, "VPA", vpa)
            add(plate, 20 + k, name, "REF1", np.nan)  # REF1 never amplifies gDNA -> A+++
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
    assert (wf["flag"] == "NOAMP").any()
    assert set(out["efficiency"].columns) >= {"assay", "slope", "intercept", "E", "r2", "source"}
    assert ipc_reference_from(out["plate_calibration"]) == pytest.approx(25.24)


def test_averaged_mode_matches_on_equal_replicates():
    rep = preprocess_batch(small_batch(), SAMPLES, ASSAYS)["cells"].set_index(["plate", "sample", "assay"])
    avg = preprocess_batch(
        small_batch(), SAMPLES, ASSAYS, chip_options({"validprime": {"mode": "averaged"}})
    )["cells"].set_index(["plate", "sample", "assay"])
    for plate in ("P1", "P2"):
        assert avg.loc[(plate, "pat1", "GOI1"), "cq"] == pytest.approx(
            rep.loc[(plate, "pat1", "GOI1"), "cq"], abs=1e-9
        )
        assert avg.loc[(plate, "pat1", "GOI1"), "vp_grade"] == "B"


def test_ipc_reference_and_per_assay_and_off():
    out = preprocess_batch(small_batch(), SAMPLES, ASSAYS, chip_options({"ipc": {"reference": 25.0}}))
    assert out["plate_calibration"]["offset"].tolist() == pytest.approx([-0.04, 0.52])
    out = preprocess_batch(small_batch(), SAMPLES, ASSAYS, chip_options({"ipc": {"activate": False}}))
    assert (out["cells"]["plate_offset"] == 0).all()
    assert not out["cells"]["flags"].str.contains("ipc_missing").any()
    per_assay = {"ipc": {"calibrators": ["IPC"], "on_missing": "uncalibrated"}}
    out = preprocess_batch(small_batch(), SAMPLES, ASSAYS, chip_options(per_assay))
    ac = out["assay_calibration"].set_index(["plate", "assay"])
    assert ac.loc[("P1", "IPCa"), "offset"] == pytest.approx(-0.28)
    assert ac.loc[("P1", "GOI1"), "flags"] == "IRC_MISSING"
    c = out["cells"].set_index(["plate", "sample", "assay"])
    # the calibrator was run with IPCa only: every other assay is uncalibrated and says so
    assert "ipc_missing" in c.loc[("P1", "pat1", "GOI1"), "flags"]
    assert "ipc_missing" not in c.loc[("P1", "IPC", "IPCa"), "flags"]
    with pytest.raises(ConfigError, match=r"chip P1 \(IRC_MISSING: assays GOI1, REF1, VPA\)"):
        preprocess_batch(
            small_batch(), SAMPLES, ASSAYS, chip_options({"ipc": {"calibrators": ["IPC"]}}), batch="B1"
        )


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
    out = preprocess_batch(w, SAMPLES, ASSAYS, chip_options({"detection": {"ntc_margin": 2.0}}))
    c = out["cells"].set_index(["plate", "sample", "assay"])
    assert not c.loc[("P1", "pat1", "GOI1"), "detected"]  # 25.63 > 27 − 2
    assert (out["well_flags"]["flag"] == "NTC_MARGIN").sum() == 4


def test_options_defaults_come_from_the_schema_and_bad_keys_are_named():
    with pytest.raises(ConfigError, match=r"replicates\.max_delt"):
        chip_options({"replicates": {"max_delt": 0.4}})
    with pytest.raises(
        ConfigError, match=r"ipc\.on_missing: 'ignore' is not one of stop, exclude, uncalibrated"
    ):
        chip_options({"ipc": {"on_missing": "ignore"}})
    with pytest.raises(ConfigError, match=r"detection\.min_detected"):
        chip_options({"detection": {"min_detected": 0}})
    o = chip_options()
    assert (o.lod, o.validprime.min_gdna, o.ipc.max_sd, o.ipc.on_missing, o.replicates.outliers) == (
        35.0,
        4,
        0.25,
        "stop",
        "none",
    )
    assert chip_options({"validprime": {"sd_max": 0.4}}).validprime.sd_max == 0.4


def big_batch(n_chips=12, seed=1):
    rng = np.random.default_rng(seed)
    n_s, n_a = 96, 96
    assays = [f"G{i:02d}" for i in range(n_a - 2)] + ["VPA", "IPCa"]
    roles = ["target"] * (n_a - 5) + ["reference"] * 3 + ["validprime", "ipc"]
    samples = [f"g{i}" for i in range(4)] + ["IPC"] * 3 + ["NTC"] * 2 + [f"p{i // 2}" for i in range(n_s - 9)]
    kinds = {
        **{f"g{i}": "gdna" for i in range(4)},
        "IPC": "ipc",
        "NTC": "ntc",
        **{f"p{i}": "patient" for i in range(50)},
    }
    si, ai = np.meshgrid(np.arange(n_s), np.arange(n_a), indexing="ij")
    frames = []
    for c in range(n_chips):
        cq = rng.normal(26, 3, size=si.shape)
        cq[rng.random(si.shape) < 0.2] = np.nan
        frames.append(
            pd.DataFrame(
                {
                    "plate": f"C{c:02d}",
                    "run": "",
                    "well": [
                        f"S{s + 1:02d}-A{a + 1:02d}" for s, a in zip(si.ravel(), ai.ravel(), strict=True)
                    ],
                    "sample": np.array(samples)[si.ravel()],
                    "assay": np.array(assays)[ai.ravel()],
                    "cq": cq.ravel(),
                    "quality": rng.uniform(0.5, 1, si.size),
                    "quality_threshold": 0.65,
                    "call": "Pass",
                    "instrument_flags": "",
                }
            )
        )
    wells = pd.concat(frames, ignore_index=True)
    s = pd.DataFrame({"sample": list(kinds), "kind": list(kinds.values())})
    a = pd.DataFrame({"assay": assays, "gene": assays, "role": roles})
    return wells, s, a


def test_12_chips_one_cell_per_plate_sample_assay():
    """A 12-chip batch (its speed is timed by benchmarks/bench_stages.py)."""
    wells, s, a = big_batch()
    out = preprocess_batch(
        wells, s, a, chip_options({"ipc": {"on_missing": "uncalibrated"}})
    )  # random IPC wells
    assert len(out["cells"]) == out["cells"][["plate", "sample", "assay"]].drop_duplicates().shape[0]


def test_batch_wells_not_modified_and_working_table_optional():
    """The steps work on a shallow frame of the caller's wells (no copy of every column): the
    caller's table is left as it was, and keep_wells=False changes nothing but ``wells``."""
    wells, s, a = big_batch(n_chips=3, seed=4)
    before = wells.copy()
    o = chip_options({"ipc": {"on_missing": "uncalibrated"}})
    full = preprocess_batch(wells, s, a, o)
    pd.testing.assert_frame_equal(wells, before)
    lean = preprocess_batch(wells, s, a, o, keep_wells=False)
    pd.testing.assert_frame_equal(wells, before)
    assert "wells" in full and "wells" not in lean
    for key in ("cells", "well_flags", "validprime_assays", "plate_calibration", "efficiency"):
        pd.testing.assert_frame_equal(full[key], lean[key])


def test_config_yaml_keys_are_accepted():
    cfg = {
        "validprime": {
            "activate": True,
            "mode": "per_replicate",
            "sd_max": 0.3,
            "min_gdna": 4,
            "loo": False,
            "loo_sd": 0.2,
            "grade_a": 3,
            "grade_b": 25,
            "grade_c": 60,
            "correct_a": False,
            "vpa_noamp_upper_bound": False,
        },
        "ipc": {
            "activate": True,
            "reference": None,
            "max_sd": 0.25,
            "max_offset": 1.0,
            "calibrators": [],
            "on_missing": "stop",
        },
        "replicates": {"max_delta": 0.5, "max_sd": 0.354, "outliers": "none"},
        "detection": {"min_detected": "all", "ntc_margin": None},
        "efficiency": {"apply": False, "from_standards": True},
    }
    a = preprocess_batch(small_batch(), SAMPLES, ASSAYS, chip_options(cfg))["cells"]
    b = preprocess_batch(small_batch(), SAMPLES, ASSAYS)["cells"]
    pd.testing.assert_frame_equal(a, b)
    off = preprocess_batch(
        small_batch(),
        SAMPLES,
        ASSAYS,
        chip_options({"ipc": {"activate": False}, "validprime": {"activate": False}}),
    )
    assert (off["cells"]["plate_offset"] == 0).all() and (off["cells"]["vp_grade"] == "").all()
    assert any("validprime.activate: false" in n for n in off["notes"]) and any(
        "ipc.activate: false" in n for n in off["notes"]
    )


# ------------------------------------------------------------------ IPC never silent (issue 16 item 8)


def without_ipc_on(plate, fail=False):
    w = small_batch()
    hit = (w["plate"] == plate) & (w["sample"] == "IPC")
    if fail:  # IPC wells there, none amplified
        w.loc[hit, "cq"] = np.nan
        w.loc[hit, "call"] = "Fail"
        return w
    return w[~hit].reset_index(drop=True)


@pytest.mark.parametrize("fail, reason", [(False, "IPC_MISSING"), (True, "IPC_FAILED")])
def test_chip_without_ipc_stops_by_default(fail, reason):
    with pytest.raises(ConfigError) as err:
        preprocess_batch(without_ipc_on("P2", fail), SAMPLES, ASSAYS, batch="B1")
    text = str(err.value)
    assert f"batch B1: no usable inter-plate calibrator on chip P2 ({reason})" in text
    assert "ipc.on_missing: exclude" in text and "ipc.on_missing: uncalibrated" in text
    assert "chip P1" not in text


def test_chip_without_ipc_excluded_in_the_audit():
    w = without_ipc_on("P2")
    out = preprocess_batch(w, SAMPLES, ASSAYS, chip_options({"ipc": {"on_missing": "exclude"}}), batch="B1")
    assert set(out["cells"]["plate"]) == {"P1"}
    pc = out["plate_calibration"].set_index("plate")
    assert pc.loc["P2", "flags"] == "CHIP_EXCLUDED;IPC_MISSING" and np.isnan(pc.loc["P2", "offset"])
    # P1 is the only chip with IPC: it is the reference, offset 0, values unchanged
    assert pc.loc["P1", "offset"] == 0.0
    audit = build_audit(assign_states(w).assign(batch="B1", excluded=""), out["well_flags"])
    p2 = audit[audit["plate"] == "P2"]
    assert (p2["fate"] == "excluded").all()
    answered = p2["state"] != "EXPFAIL"  # failed wells keep their own reason
    assert p2.loc[answered, "reason"].str.startswith("IPC_MISSING (ipc.on_missing: exclude)").all()
    summary = summarise_audit(audit).set_index("plate")
    assert summary.loc["P2", "excluded_IPC_MISSING"] == answered.sum() == 25
    assert "excluded_IPC_MISSING" not in summary.columns or summary.loc["P1", "excluded_IPC_MISSING"] == 0
    assert (summary["read"] == summary["kept"] + summary["excluded"]).all()


def test_chip_without_ipc_uncalibrated_is_flagged():
    out = preprocess_batch(
        without_ipc_on("P2"), SAMPLES, ASSAYS, chip_options({"ipc": {"on_missing": "uncalibrated"}})
    )
    c = out["cells"]
    p2, p1 = c[c["plate"] == "P2"], c[c["plate"] == "P1"]
    assert p2["flags"].str.contains("ipc_missing").all() and (p2["plate_offset"] == 0).all()
    assert not p1["flags"].str.contains("ipc_missing").any()
    assert out["plate_calibration"].set_index("plate").loc["P2", "flags"] == "IPC_MISSING;UNCALIBRATED"
    # pat1 GOI1 on P1: ValidPrime 25.8405, no offset (P1 is its own reference)
    assert p1.set_index(["sample", "assay"]).loc[("pat1", "GOI1"), "cq"] == pytest.approx(25.8405, abs=5e-5)


def test_first_batch_without_ipc_gives_later_batches_no_silent_offset():
    first = preprocess_batch(
        without_ipc_on("P1").pipe(lambda w: w[w["sample"] != "IPC"]),
        SAMPLES,
        ASSAYS,
        chip_options({"ipc": {"on_missing": "uncalibrated"}}),
    )
    ref = ipc_reference_from(first["plate_calibration"])
    assert np.isnan(ref)
    with pytest.raises(ConfigError, match="set ipc.reference"):
        preprocess_batch(
            small_batch(), SAMPLES, ASSAYS, chip_options({"ipc": {"reference": ref}}), batch="B2"
        )
    later = preprocess_batch(
        small_batch(),
        SAMPLES,
        ASSAYS,
        chip_options({"ipc": {"reference": ref, "on_missing": "uncalibrated"}}),
    )
    assert later["cells"]["flags"].str.contains("ipc_missing").all()
    assert (later["plate_calibration"]["flags"].str.contains("IPC_NO_REFERENCE")).all()


def test_design_without_ipc_assay_is_a_note_not_an_error():
    assays = ASSAYS[ASSAYS["role"] != "ipc"]
    w = small_batch()
    out = preprocess_batch(w[w["assay"].isin(assays["assay"])], SAMPLES, assays)
    assert any("no assay of role 'ipc'" in n for n in out["notes"])
    assert (out["plate_calibration"]["flags"] == "").all()


def test_per_assay_calibration_exclude_leaves_out_uncalibrated_assays():
    o = chip_options({"ipc": {"calibrators": ["IPC"], "on_missing": "exclude"}})
    out = preprocess_batch(small_batch(), SAMPLES, ASSAYS, o)
    assert set(out["cells"]["assay"]) == {"IPCa"}  # the only assay the calibrator was run with
    wf = out["well_flags"]
    left_out = wf[wf["flag"] == "IRC_MISSING"]
    assert left_out["excluded"].all() and set(left_out["assay"]) == {"GOI1", "REF1", "VPA"}
    assert (out["plate_calibration"]["flags"] == "CHIP_EXCLUDED;PER_ASSAY_CALIBRATION").all()


def _audit_rows(rows):
    """Audit rows from (plate, well, state, fate, reason) tuples (batch B1)."""
    frame = pd.DataFrame(rows, columns=["plate", "well", "state", "fate", "reason"])
    return frame.assign(batch="B1")[["batch", "plate", "well", "state", "fate", "reason"]]


def test_audit_summary_counts_and_reason_columns_in_plate_order():
    audit = _audit_rows(
        [
            ("P1", "A1", "CALC", "kept", ""),
            ("P1", "A2", "NOAMP", "kept", ""),
            ("P1", "A3", "CALC", "excluded", "ND (grade ND)"),
            ("P1", "A4", "CALC", "excluded", "HIGHDNA (grade F)"),
            ("P2", "A1", "LOWSIGNAL", "kept", ""),
            ("P2", "A2", "EXPFAIL", "excluded", "EXPFAIL:call_fail"),
            ("P2", "A3", "CALC", "excluded", "3 wells"),  # no leading word: "other"
            ("P2", "A4", "CALC", "excluded", "ND (grade ND)"),
            ("P0", "A1", "CALC", "kept", ""),  # a plate without exclusions, sorted first
        ]
    )
    out = summarise_audit(audit)
    # each plate's reasons sorted, a reason's column where a plate (in plate order) first has it
    assert list(out.columns) == [
        "batch",
        "plate",
        "read",
        "kept",
        "excluded",
        "non_detected",
        "excluded_HIGHDNA",
        "excluded_ND",
        "excluded_EXPFAIL",
        "excluded_other",
    ]
    assert out["plate"].tolist() == ["P0", "P1", "P2"]
    assert out["read"].tolist() == [1, 4, 4]
    assert out["kept"].tolist() == [1, 2, 1]
    assert out["excluded"].tolist() == [0, 2, 3]
    assert out["non_detected"].tolist() == [0, 1, 1]
    assert out["excluded_ND"].tolist() == [0, 1, 1]
    assert out["excluded_other"].tolist() == [0, 0, 1]
    assert all(out[c].dtype.kind == "i" for c in out.columns[2:])
    assert summarise_audit(audit[audit["fate"] == "kept"]).columns.tolist()[-1] == "non_detected"
    assert summarise_audit(audit.iloc[:0]).empty


def test_audit_takes_each_flag_on_its_own_plate_and_well():
    wells = pd.DataFrame(
        {
            "batch": "B1",
            "plate": ["P1", "P1", "P2", "P2"],
            "well": ["S01-A01", "S01-A02", "S01-A01", "S01-A02"],  # the same ids on both chips
            "line": [1, 2, 1, 2],
            "sample": "pat1",
            "assay": "GOI1",
            "cq": [25.0, 26.0, 27.0, np.nan],
            "state": ["CALC", "CALC", "CALC", "NOAMP"],
            "state_reason": ["", "", "", "no_amplification"],
            "excluded": ["", "", "", ""],
        }
    )
    flags = pd.DataFrame(
        {
            "plate": ["P2", "P2", "P1", "P9", "P2"],
            "well": ["S01-A01", "S01-A01", "S01-A02", "S01-A01", "S01-A02"],
            "flag": ["VPA_UNPAIRED", "HIGHDNA", "NTC_MARGIN", "HIGHDNA", "NOAMP"],
            "reason": ["", "grade F", "", "", ""],
        }
    )
    audit = build_audit(wells, flags)
    assert audit["fate"].tolist() == ["kept", "kept", "excluded", "kept"]
    assert audit["reason"].tolist() == ["", "", "HIGHDNA (grade F)", ""]
    # non-excluding flags listed; NOAMP restates the state; P9 is no plate of the table
    assert audit["flags"].tolist() == ["", "NTC_MARGIN", "VPA_UNPAIRED", ""]


def test_audit_joins_several_flags_of_a_well_sorted_and_distinct():
    wells = pd.DataFrame(
        {
            "batch": "B1",
            "plate": "P1",
            "well": ["S01-A01", "S01-A02", "S01-A03"],
            "line": [1, 2, 3],
            "sample": "pat1",
            "assay": "GOI1",
            "cq": [25.0, 26.0, 27.0],
            "state": "CALC",
            "state_reason": "",
            "excluded": "",
        }
    )
    flags = pd.DataFrame(
        {
            "plate": "P1",
            "well": ["S01-A02", "S01-A01", "S01-A02", "S01-A02", "S01-A03", "S01-A03"],
            "flag": ["VPA_UNPAIRED", "NTC_MARGIN", "NTC_MARGIN", "VPA_UNPAIRED", "HIGHSD", "HIGHDNA"],
            "reason": "",
        }
    )
    audit = build_audit(wells, flags)
    assert audit["flags"].tolist() == ["NTC_MARGIN", "NTC_MARGIN;VPA_UNPAIRED", ""]
    assert audit["reason"].tolist() == ["", "", "HIGHDNA;HIGHSD"]


def test_chip_level_job_hands_the_wells_over_in_memory_as_the_parquet_round_trip_did(tmp_path):
    """One chip-level job per batch: the Wells tables go from reading to preprocessing in
    memory; the tables are those the separate read job wrote and preprocessing read back."""
    import logging

    from ctc_qpcr import chip_batch, sheets
    from ctc_qpcr.tables import write_parquet

    rows, samples, assays, tables = _example_first_batch()
    log = logging.getLogger("test")
    assert [t["plate"].iloc[0] for t in tables] == list(rows["plate"])
    paths = []
    for table in tables:
        paths.append(tmp_path / f"{table['plate'].iloc[0]}.parquet")
        write_parquet(table, paths[-1])
    round_trip = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    round_trip.attrs = {}
    in_memory = chip_batch.batch_wells(tables)
    pd.testing.assert_frame_equal(in_memory, round_trip)
    assert in_memory.attrs == {}
    options = chip_options({"ipc": {"on_missing": "uncalibrated"}})
    args = (sheets.samples_frame(samples), assays, options)
    a = chip_batch.preprocess_and_audit(in_memory, *args, batch="B1", exports={}, log=log)
    b = chip_batch.preprocess_and_audit(round_trip, *args, batch="B1", exports={}, log=log)
    # the reader's states kept (read with LOD 35 and the assays sheet's LODs, as preprocessing applies)
    c = chip_batch.preprocess_and_audit(in_memory, *args, batch="B1", exports={}, log=log, read_lod=35.0)
    for key in ("cells", "audit", "audit_summary", "validprime_assays", "plate_calibration", "efficiency"):
        pd.testing.assert_frame_equal(a[key], b[key])
        pd.testing.assert_frame_equal(a[key], c[key])
    audit = a["audit"]
    assert len(audit) == len(in_memory)  # every well read is in the audit, once
    assert audit[["plate", "line"]].equals(
        audit.sort_values(["plate", "line"], kind="stable")[["plate", "line"]]
    )


def test_states_read_with_the_same_limits_are_kept_not_assigned_again(monkeypatch):
    """preprocess_batch(states_of=...): the reader's states are kept where its limits (LOD and
    the assays' LODs, as applied) are preprocessing's; other limits assign them again."""
    from ctc_qpcr import preprocess as pp

    wells = assign_states(small_batch(), lod=35.0, assay_lod={"GOI1": 30.0})
    assays = ASSAYS.assign(lod=[30.0, np.nan, np.nan, np.inf])  # inf: no limit, as NaN
    calls = []
    real = pp.assign_states
    monkeypatch.setattr(pp, "assign_states", lambda *a, **k: calls.append(1) or real(*a, **k))
    base = preprocess_batch(wells, SAMPLES, assays, batch="B1")
    assert calls == [1]
    kept = preprocess_batch(
        wells, SAMPLES, assays, batch="B1", states_of=(35, {"GOI1": 30, "IPCa": float("inf")})
    )
    assert calls == [1]  # the same limits: kept
    for key in ("cells", "well_flags", "plate_calibration", "validprime_assays"):
        pd.testing.assert_frame_equal(kept[key], base[key])
    stale = assign_states(small_batch(), lod=20.0)  # read with another LOD: assigned again
    again = preprocess_batch(stale, SAMPLES, assays, batch="B1", states_of=(20.0, {}))
    assert calls == [1, 1]
    pd.testing.assert_frame_equal(again["cells"], base["cells"])
    preprocess_batch(wells, SAMPLES, assays, batch="B1", states_of=(35.0, {}))  # GOI1's LOD differs
    assert calls == [1, 1, 1]


def test_chip_job_leaves_out_the_state_flags_the_audit_drops():
    """state_flags=False: well_flags without EXPFAIL/NOAMP/LOWSIGNAL, the other flags as they were,
    and the same well audit."""
    from ctc_qpcr.audit import STATE_FLAGS

    wells = small_batch()
    full = preprocess_batch(wells, SAMPLES, ASSAYS, batch="B1")["well_flags"]
    lean = preprocess_batch(wells, SAMPLES, ASSAYS, batch="B1", state_flags=False)["well_flags"]
    assert full["flag"].isin(STATE_FLAGS).any() and not lean["flag"].isin(STATE_FLAGS).any()
    others = full[~full["flag"].isin(STATE_FLAGS)].reset_index(drop=True)
    pd.testing.assert_frame_equal(lean, others)
    read = assign_states(wells).assign(batch="B1", excluded="")
    pd.testing.assert_frame_equal(build_audit(read, full), build_audit(read, lean))


def test_worst_grade_per_cell_as_a_grouped_max_of_the_severities():
    """worst_per_cell: the worst grade of each cell's wells (missing or unknown grades count as "")."""
    from ctc_qpcr import validprime as vp
    from ctc_qpcr.replicates import worst_per_cell

    rng = np.random.default_rng(8)
    grades = pd.Series(rng.choice(np.array([*vp.GRADE_SEVERITY, None, "X"], dtype=object), 400), dtype=object)
    cid = rng.integers(0, 60, 400)
    cid[:60] = np.arange(60)  # every cell has a well
    sev = grades.map(vp.GRADE_SEVERITY).fillna(0).astype(int).groupby(cid).max()
    want = sev.map({v: k for k, v in vp.GRADE_SEVERITY.items()}).fillna("").to_numpy()
    assert worst_per_cell(grades, cid, 60, vp.GRADE_SEVERITY).tolist() == want.tolist()


def test_distinct_flag_columns_are_the_pivot_of_each_cells_kth_flag():
    """distinct_flag_columns: the pivot (cell × k-th distinct flag, "" elsewhere) it replaces."""
    from ctc_qpcr.replicates import distinct_flag_columns

    rng = np.random.default_rng(9)
    flags = pd.Series(rng.choice(np.array(["", "", "VPA_UNPAIRED", "HIGHSD", None], dtype=object), 300))
    cid = rng.integers(0, 50, 300)
    has = (flags != "").to_numpy()
    fl = pd.DataFrame({"cid": cid[has], "vp_flag": flags.to_numpy()[has]}).drop_duplicates()
    fl["_k"] = fl.groupby("cid", sort=False).cumcount()
    wide = fl.pivot(index="cid", columns="_k", values="vp_flag").reindex(range(50)).fillna("")
    got = distinct_flag_columns(flags, cid, 50)
    assert list(got) == [f"v{k}" for k in wide.columns]
    assert all(got[f"v{k}"].tolist() == wide[k].tolist() for k in wide.columns)
    assert distinct_flag_columns(pd.Series(["", ""], dtype=object), np.array([0, 1]), 2) == {}


def test_unknown_names_get_kind_other_role_target_and_their_own_gene():
    """annotate_wells: names not in the sheets are kind 'other', role 'target', gene = the assay
    name (each noted); known names take the sheets' words."""
    from ctc_qpcr.preprocess import annotate_wells

    wells = pd.DataFrame(
        {
            "plate": "P1",
            "well": ["A1", "A2", "A3", "A4"],
            "sample": ["pat1", "stranger", "pat1", "NTC"],
            "assay": ["GOI1", "GOI1", "NEW9", "IPCa"],
        }
    )
    notes: list[str] = []
    w, _ = annotate_wells(wells, SAMPLES, ASSAYS, "B1", notes)
    assert w["kind"].tolist() == ["patient", "other", "patient", "ntc"]
    assert w["role"].tolist() == ["target", "target", "target", "ipc"]
    assert w["gene"].tolist() == ["GENE1", "GENE1", "NEW9", "IPC"]
    assert len(notes) == 2 and "stranger" in notes[0] and "NEW9" in notes[1]


@pytest.mark.parametrize("plate_order", ["as listed", "reversed"])
def test_audit_from_the_plates_arrow_writes_the_bytes_of_the_audit_converted(tmp_path, plate_order):
    """The chip job writes wells.parquet/wells.tsv from the plates' Arrow conversions (results/cq):
    the same bytes as converting the audit, also when the audit's sort moves the rows."""
    import logging

    from ctc_qpcr import chip_batch, sheets
    from ctc_qpcr.tables import write_parquet_tsv

    rows, samples, assays, tables = _example_first_batch()
    log = logging.getLogger("test")
    tables = tables[::-1] if plate_order == "reversed" else tables
    parts = [
        chip_batch.audit_part(write_parquet_tsv(t, tmp_path / f"{i}.parquet", tmp_path / f"{i}.tsv"))
        for i, t in enumerate(tables)
    ]
    options = chip_options({"ipc": {"on_missing": "uncalibrated"}})
    out = chip_batch.preprocess_and_audit(
        chip_batch.batch_wells(tables),
        sheets.samples_frame(samples),
        assays,
        options,
        batch="B1",
        exports={},
        log=log,
    )
    assert (out["audit_rows"] is None) == (plate_order == "as listed" or len(tables) < 2)
    arrow = chip_batch.audit_in_arrow(out["audit"], parts, out["audit_rows"])
    assert arrow is not None
    write_parquet_tsv(out["audit"], tmp_path / "a.parquet", tmp_path / "a.tsv")
    write_parquet_tsv(out["audit"], tmp_path / "b.parquet", tmp_path / "b.tsv", arrow=arrow)
    for name in ("parquet", "tsv"):
        assert (tmp_path / f"a.{name}").read_bytes() == (tmp_path / f"b.{name}").read_bytes()
    other = [
        (t.set_column(t.schema.get_field_index("line"), "line", t["line"].cast("double")), x)
        for t, x in parts
    ]
    assert (
        chip_batch.audit_in_arrow(out["audit"], other, out["audit_rows"]) is None
    )  # a plate's column differs


def test_counts_per_key_is_the_grouped_sum():
    """rowkeys.counts_per_key: summarise_audit's grouped sum by batch and plate (sorted, missing keys out)."""
    from ctc_qpcr.rowkeys import counts_per_key

    rng = np.random.default_rng(0)
    for n in (0, 1, 40, 200):
        table = pd.DataFrame(
            {
                "batch": np.array(["B2", "B1", "B10", np.nan], dtype=object)[rng.integers(0, 4, n)],
                "plate": np.array(["chip2", "chip10", "=x", np.nan], dtype=object)[rng.integers(0, 4, n)],
            }
        )
        marks = {"read": np.ones(n, bool), "kept": rng.random(n) < 0.5}
        as_ints = {k: v.astype(np.int64) for k, v in marks.items()}
        want = table.assign(**as_ints).groupby(["batch", "plate"], sort=True).sum().reset_index()
        pd.testing.assert_frame_equal(counts_per_key(table, ["batch", "plate"], marks), want)


def _example_first_batch():
    """The example study's first batch as the chip job reads it: (plate rows, samples sheet,
    assays frame, the batch's Wells tables in plates.tsv order)."""
    import logging
    from pathlib import Path

    from ctc_qpcr import chip_batch, sheets

    repo = Path(__file__).resolve().parents[1]
    example = repo / "resources" / "example"
    plates = pd.read_csv(example / "plates.tsv", sep="\t", dtype=str, keep_default_na=False)
    rows = plates[plates["batch"] == plates["batch"].iloc[0]].assign(assay="")
    rows["path"] = [str(repo / p) for p in rows["path"]]
    samples = sheets.load_samples(example / "samples.tsv")
    assays = sheets.assays_frame(sheets.load_assays(example / "assays.tsv"))
    records = rows.to_dict("records")
    kwargs = {
        "lod": 35.0,
        "unknown_names": "error",
        "on_incomplete": "stop",
        "log": logging.getLogger("test"),
    }
    return rows, samples, assays, chip_batch.read_batch(records, "B1", samples, assays, **kwargs)
