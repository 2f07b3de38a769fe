"""Replicates (algorithms §3.2) and detection/imputation (§3.3)."""

import numpy as np
import pandas as pd
import pytest

from ctc_qpcr import detection as det
from ctc_qpcr import replicates as reps
from ctc_qpcr.chip_options import chip_options


def cells_of(groups, states=None):
    rows = []
    for name, values in groups.items():
        for i, v in enumerate(values):
            st = "CALC" if np.isfinite(v) else "NOAMP"
            if states and name in states:
                st = states[name][i]
            rows.append(
                {"plate": "P", "sample": name, "assay": "G", "well": f"{name}{i}", "cq": v, "state": st}
            )
    return pd.DataFrame(rows)


def summary(groups, states=None, **settings):
    """Cells of ``groups`` with the ``replicates:`` options (schema defaults and ``settings``)."""
    options = chip_options({"replicates": settings}).replicates
    cells, out = reps.summarise_replicates(cells_of(groups, states), options)
    return cells.set_index("sample"), out


def test_worked_examples():
    c, _ = summary({"a": [27.10, 27.40], "b": [30.2, 31.1]})
    assert c.loc["a", "cq"] == pytest.approx(27.25)
    assert c.loc["a", "replicate_sd"] == pytest.approx(0.2121, abs=5e-5)
    assert c.loc["a", "replicate_delta"] == pytest.approx(0.30)
    assert c.loc["a", "flags"] == ""
    assert c.loc["b", "cq"] == pytest.approx(30.65)
    assert c.loc["b", "replicate_sd"] == pytest.approx(0.6364, abs=5e-5)
    assert c.loc["b", "replicate_delta"] == pytest.approx(0.90)
    assert c.loc["b", "flags"] == "replicate_delta>0.5"


def test_single_replicate_and_counts():
    c, _ = summary(
        {"one": [25.0, np.nan], "none": [np.nan, np.nan], "fail": [25.0, 26.0]},
        states={"fail": ["EXPFAIL", "EXPFAIL"]},
    )
    assert c.loc["one", "cq"] == 25.0 and c.loc["one", "flags"] == "single_replicate"
    assert (c.loc["one", "n_replicates"], c.loc["one", "n_detected"]) == (2, 1)
    assert np.isnan(c.loc["none", "cq"]) and c.loc["none", "n_replicates"] == 2
    assert c.loc["fail", "n_replicates"] == 0 and c.loc["fail", "flags"] == "no_valid_replicate"


def test_sd_flag_for_triplicates_and_median():
    c, _ = summary({"t": [25.0, 25.3, 25.9]})
    assert c.loc["t", "replicate_sd"] > 0.5 / np.sqrt(2)
    assert c.loc["t", "flags"] == "replicate_sd>0.354"
    c, _ = summary({"t": [25.0, 25.3, 25.9]}, outliers="median")
    assert c.loc["t", "cq"] == 25.3


def test_grubbs():
    assert reps.grubbs_critical(3) == pytest.approx(1.1543, abs=1e-4)
    assert reps.grubbs_critical(10) == pytest.approx(2.2900, abs=1e-4)
    c, out = summary(
        {"g": [25.0, 25.02, 24.98, 25.01, 24.99, 27.0], "h": [25.0, 25.1, 25.2]}, outliers="grubbs"
    )
    assert len(out) == 1
    assert c.loc["g", "cq"] == pytest.approx(25.0) and "grubbs_outlier_removed" in c.loc["g", "flags"]
    assert c.loc["h", "n_detected"] == 3


def test_detection_call_and_imputation():
    assert det.detection_call([2, 1, 0, 1], [2, 2, 2, 1]).tolist() == [True, False, False, True]
    assert det.detection_call([2, 1, 0], [2, 2, 2], 1).tolist() == [True, True, False]
    imp = det.impute_nondetects(
        [25.0, 30.0, np.nan, np.nan], [True, False, False, False], [35.0, 35.0, 32.0, 35.0], [2, 2, 2, 0]
    )
    assert imp[:3].tolist() == [25.0, 36.0, 33.0] and np.isnan(imp[3])
    cells = pd.DataFrame(
        {"assay": ["G", "H"], "cq": [30.0, np.nan], "n_detected": [1, 0], "n_replicates": [2, 2]}
    )
    out = det.call_cells(cells, lod=35.0, assay_lod={"H": 30.0})
    assert out["detected"].tolist() == [False, False]
    assert out["cq_imputed"].tolist() == [36.0, 31.0]
    assert out["cq"].iloc[0] == 30.0  # the un-imputed value is kept


def test_ntc_margin():
    w = pd.DataFrame(
        {
            "plate": "P",
            "sample": ["NTC", "NTC", "s", "s", "s"],
            "assay": ["G", "H", "G", "G", "H"],
            "cq": [34.0, np.nan, 30.0, 31.0, 31.0],
            "state": ["CALC", "NOAMP", "CALC", "CALC", "CALC"],
        }
    )
    thr = det.ntc_thresholds(w, ["NTC"], 3.32)
    assert thr["ntc_threshold"].tolist() == pytest.approx([30.68])
    assert det.above_ntc(w, thr).tolist() == [True, False, False, True, False]


# ----------------------------------------------------------------- replicate design (two samples, one name)


def chip_wells(layout: dict[str, tuple[str, list[int]]], assays=("G1", "G2")) -> pd.DataFrame:
    """BioMark-like wells: sample → (kind, inlets); one chamber per inlet × assay, line = file order."""
    rows = []
    for sample, (kind, inlets) in layout.items():
        for inlet in inlets:
            for a, assay in enumerate(assays):
                rows.append(
                    {
                        "plate": "C1",
                        "well": f"S{inlet:02d}-A{a + 1:02d}",
                        "sample": sample,
                        "assay": assay,
                        "kind": kind,
                        "cq": 25.0 + inlet / 10,
                        "state": "CALC",
                    }
                )
    w = pd.DataFrame(rows).sort_values("well").reset_index(drop=True)
    w["line"] = np.arange(len(w)) + 12
    return w


DUPLICATES = {
    "P01": ("patient", [1, 2]),
    "P02": ("patient", [3, 4, 17, 18]),  # two samples labelled P02
    "H01": ("healthy", [5, 6]),
    "IPC": ("ipc", [7, 8, 9]),  # controls sit on other counts
    "STD": ("standard", [10, 11, 12, 13]),
    "NTC": ("ntc", [14]),
}


def test_design_is_the_most_common_count_of_study_samples():
    w = chip_wells(DUPLICATES)
    assert reps.replicate_design(w).to_dict() == {"C1": 2}
    assert reps.replicate_design(w, expected=4).to_dict() == {"C1": 4}
    # a tie (one cell on 2 wells, one on 3) goes to the larger count: no false alarm
    tie = chip_wells({"a": ("patient", [1, 2]), "b": ("healthy", [3, 4, 5])}, assays=("G1",))
    assert reps.replicate_design(tie).to_dict() == {"C1": 3}
    assert reps.extra_replicates(tie).empty


def test_extra_replicates_names_only_the_study_sample_above_the_design():
    over = reps.extra_replicates(chip_wells(DUPLICATES))
    assert over.to_dict("records") == [
        {"plate": "C1", "sample": "P02", "assay": "G1", "n_wells": 4, "expected": 2},
        {"plate": "C1", "sample": "P02", "assay": "G2", "n_wells": 4, "expected": 2},
    ]
    assert reps.extra_replicates(chip_wells(DUPLICATES), expected=4).empty
    hit = reps.extra_wells_mask(chip_wells(DUPLICATES), over)
    assert hit.sum() == 8


def _sheets_for(layout, assays=("G1", "G2")):
    samples = pd.DataFrame({"sample": list(layout), "kind": [k for k, _ in layout.values()]})
    a = pd.DataFrame({"assay": list(assays), "gene": list(assays), "role": "target"})
    return samples, a


def _preprocess_input(layout):
    w = chip_wells(layout).drop(columns="kind")
    w = w.assign(run="", cq_raw="25", quality=np.nan, quality_threshold=np.nan, call="", sample_type="")
    return w.assign(quantity=np.nan, instrument_flags="")


def test_preprocess_stops_naming_export_sample_inlets_and_line():
    from ctc_qpcr.chip_options import chip_options
    from ctc_qpcr.errors import InputError
    from ctc_qpcr.preprocess import preprocess_batch

    samples, assays = _sheets_for(DUPLICATES)
    opts = chip_options({"ipc": {"activate": False}, "validprime": {"activate": False}})
    with pytest.raises(InputError) as err:
        preprocess_batch(_preprocess_input(DUPLICATES), samples, assays, opts, exports={"C1": "chips/c1.csv"})
    # wells sorted by chamber: P02's third G1 well (S17-A01) is the 29th chamber → line 12 + 28
    assert str(err.value) == (
        "chips/c1.csv (plate C1), line 40, column sample: sample 'P02' has 4 wells for each of 2 assay(s) "
        "where the plate's replicate design is 2 (the most common count) — on inlets S03, S04, S17, S18: "
        "two samples seem to carry one name and would be averaged into one — give each sample its own "
        "name in the export (or rename it in the samples sheet); if this sample really was run on 4 "
        "wells, set replicates.expected: 4; or set replicates.on_extra: flag to go on with its cells "
        "flagged extra_replicates"
    )
    # a design of 4 declared: no error
    ok = chip_options({"replicates": {"expected": 4}, "ipc": {"activate": False}})
    preprocess_batch(_preprocess_input(DUPLICATES), samples, assays, ok)


def test_preprocess_flag_keeps_the_wells_flags_cells_and_lists_them_in_the_audit():
    from ctc_qpcr.audit import build_audit
    from ctc_qpcr.chip_options import chip_options
    from ctc_qpcr.preprocess import preprocess_batch

    samples, assays = _sheets_for(DUPLICATES)
    opts = chip_options({"ipc": {"activate": False}, "replicates": {"on_extra": "flag"}})
    wells = _preprocess_input(DUPLICATES)
    out = preprocess_batch(wells, samples, assays, opts)
    cells = out["cells"].set_index(["sample", "assay"])
    # the two samples under one name differ by 1.4 cycles: the SD flag fires too
    assert cells.loc[("P02", "G1"), "flags"] == "extra_replicates;replicate_sd>0.354"
    assert cells.loc[("P02", "G1"), "n_replicates"] == 4
    assert cells.loc[("P01", "G1"), "flags"] == ""
    audit = build_audit(out["wells"].assign(excluded=""), out["well_flags"])
    flagged = audit[audit["flags"].str.contains("EXTRA_REPLICATES", regex=False)]
    assert sorted(set(flagged["sample"])) == ["P02"] and len(flagged) == 8
    assert (flagged["fate"] == "kept").all()
    assert set(flagged["flags"]) == {"EXTRA_REPLICATES (4 wells, design 2)"}
    assert any("extra_replicates" in n and "C1/P02" in n for n in out["notes"])


def test_expected_must_be_a_positive_whole_number():
    from ctc_qpcr.chip_options import chip_options
    from ctc_qpcr.errors import ConfigError

    # the schema's type and minimum (ctc_qpcr.options)
    with pytest.raises(ConfigError, match=r"replicates\.expected: 0 is less than the minimum of 1"):
        chip_options({"replicates": {"expected": 0}})
    with pytest.raises(ConfigError, match=r"replicates\.expected: 2\.5 must be of type integer or null"):
        chip_options({"replicates": {"expected": 2.5}})
    with pytest.raises(ConfigError, match=r"replicates\.on_extra: 'warn' is not one of stop, flag"):
        chip_options({"replicates": {"on_extra": "warn"}})
    assert chip_options().replicates.expected is None and chip_options().replicates.on_extra == "stop"


#: Real exports where some sample name sits on more wells per assay than the file's most common count
#: (every sample taken as a patient): dilution series labelled Unknown, placeholder names
#: ('no preamp', 'Not relevant'), a sample run on extra wells. With a sheet these are kind
#: standard/other (exempt) or set replicates.expected / on_extra: flag.
UNEVEN_REAL = {
    "htqpcr/BioMark_sample.csv": ["no preamp"],
    "biomark_biologger/CheeseSamples_validation_rawdata.csv": ["Not relevant"],
    "htqpcr/SDS_sample.txt": ["Sample01"],
    "rdml_rpkg/BioRad_qPCR_melt.rdml": ["Alm12", "Alm13", "Alm14", "H2O", "katG 315"],
    "rdml_tools/two_plate_correction.rdml": ["10"],
    "rdml_tools/relative.rdml": ["Adult 1"],
}
EVEN_REAL = [
    "autoqpcr/2019-09-10_120614_exp1.csv",
    "readqpcr_normqpcr/exampleTechReps.txt",
    "rdml_tools/sample.rdml",
]


@pytest.mark.parametrize("name", sorted(UNEVEN_REAL) + EVEN_REAL)
def test_real_exports_with_uneven_replicate_counts(public_data, name):
    from ctc_qpcr.parsers.registry import read_export

    w = read_export(public_data / name, fmt="auto", plate="P1")
    w = w[(w["sample"] != "") & (w["assay"] != "")].assign(kind="patient")
    assert sorted(set(reps.extra_replicates(w)["sample"])) == UNEVEN_REAL.get(name, [])


def test_cell_counts_are_the_grouped_counts():
    """replicates._cell_counts (np.bincount) = the grouping it replaced, id −1 (a missing key) left out."""
    rng = np.random.default_rng(7)
    cid = rng.integers(-1, 30, 500)
    cid[cid == 13] = 14  # an id with no well
    value, answer = rng.random(500) < 0.5, rng.random(500) < 0.8
    grouped = (
        pd.DataFrame({"_cid": cid, "_value": value, "_answer": answer})
        .groupby("_cid", sort=True)
        .agg(n_wells=("_value", "size"), n_replicates=("_answer", "sum"), _n_value_all=("_value", "sum"))
    )
    grouped = grouped[grouped.index >= 0]
    ours = reps._cell_counts(cid, value, answer)
    assert ours.index.tolist() == grouped.index.tolist()
    assert ours.to_numpy().tolist() == grouped.to_numpy().tolist() and (ours.dtypes == grouped.dtypes).all()
    assert reps._cell_counts(cid[:0], value[:0], answer[:0]).empty
