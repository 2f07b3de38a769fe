"""MIQE summary: standard curves against worked numbers and scipy, checklist statuses."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ctc_qpcr.miqe import NOT_APPLICABLE, PROVIDED, assay_table, checklist, standard_curves

QUANTITIES = [10.0, 100.0, 1000.0, 10000.0, 100000.0]


def _series(
    slope_by_assay: dict[str, float], noise: float = 0.0, kind: str = "standard"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(7)
    samples = pd.DataFrame(
        {"sample": [f"std_{q:g}" for q in QUANTITIES], "kind": kind, "quantity": [str(q) for q in QUANTITIES]}
    )
    rows = []
    for assay, slope in slope_by_assay.items():
        for sample, q in zip(samples["sample"], QUANTITIES, strict=True):
            for _ in range(3):
                rows.append(
                    {
                        "sample": sample,
                        "assay": assay,
                        "cq": 38 + slope * np.log10(q) + rng.normal(0, noise),
                        "state": "CALC",
                        "fate": "kept",
                    }
                )
    return pd.DataFrame(rows), samples


def test_perfect_doubling_gives_E_2_and_worked_efficiencies():
    # slope −3.3219 = −1/log10(2): E = 2.00 (100 %); slope −3.6 → E = 1.8957 (89.6 %).
    wells, samples = _series({"A": -1 / np.log10(2), "B": -3.6})
    curves = standard_curves(wells, samples).set_index("assay")
    assert curves.loc["A", "E"] == pytest.approx(2.0, abs=1e-9)
    assert curves.loc["B", "E"] == pytest.approx(10 ** (1 / 3.6), abs=1e-9)
    assert curves.loc["B", "E"] == pytest.approx(1.8957, abs=1e-4)
    assert curves.loc["A", "r2"] == pytest.approx(1.0)
    assert curves.loc["A", "n_points"] == 15 and curves.loc["A", "n_quantities"] == 5


def test_slope_ci_and_r2_match_scipy_linregress():
    wells, samples = _series({"A": -3.4}, noise=0.25)
    curves = standard_curves(wells, samples).iloc[0]
    x = np.log10(wells["sample"].map(dict(zip(samples["sample"], QUANTITIES, strict=True))))
    fit = stats.linregress(x, wells["cq"])
    half = stats.t.ppf(0.975, len(x) - 2) * fit.stderr
    assert curves["slope"] == pytest.approx(fit.slope, rel=1e-10)
    assert curves["intercept"] == pytest.approx(fit.intercept, rel=1e-10)
    assert curves["r2"] == pytest.approx(fit.rvalue**2, rel=1e-10)
    assert curves["slope_ci_low"] == pytest.approx(fit.slope - half, rel=1e-10)
    assert curves["slope_ci_high"] == pytest.approx(fit.slope + half, rel=1e-10)
    # E = 10^(−1/slope) falls as the slope gets steeper: the lower E bound is at slope − t·SE.
    assert curves["E_ci_low"] == pytest.approx(10 ** (-1 / (fit.slope - half)), rel=1e-10)
    assert curves["E_ci_high"] == pytest.approx(10 ** (-1 / (fit.slope + half)), rel=1e-10)
    assert curves["E_ci_low"] < curves["E"] < curves["E_ci_high"]


def test_standards_preferred_over_gdna_and_excluded_wells_ignored():
    std_wells, std_samples = _series({"A": -3.3})
    gdna_wells, gdna_samples = _series({"A": -3.6, "B": -3.5}, kind="gdna")
    gdna_wells["sample"] = "g" + gdna_wells["sample"]
    gdna_samples["sample"] = "g" + gdna_samples["sample"]
    wells = pd.concat([std_wells, gdna_wells], ignore_index=True)
    wells.loc[0, ["cq", "fate"]] = [5.0, "excluded"]  # an outlier the workflow excluded
    curves = standard_curves(wells, pd.concat([std_samples, gdna_samples])).set_index("assay")
    assert curves.loc["A", "series"] == "standard" and curves.loc["A", "slope"] == pytest.approx(-3.3)
    assert curves.loc["B", "series"] == "gdna" and curves.loc["B", "slope"] == pytest.approx(-3.5)


def test_fewer_than_three_quantities_give_no_curve():
    wells, samples = _series({"A": -3.3})
    wells = wells[wells["sample"].isin(["std_10", "std_100"])]
    assert standard_curves(wells, samples).empty


def _checklist(with_ipc: bool, ntc: pd.DataFrame | None = None):
    wells, samples = _series({"A": -3.32})
    curves = standard_curves(wells, samples)
    assays = pd.DataFrame(
        {
            "assay": ["A", "R"],
            "gene": ["A", "R"],
            "role": ["target", "reference"],
            "efficiency": ["", "1.9"],
            "lod": ["", "33"],
        }
    )
    cells = pd.DataFrame(
        {
            "sample": ["p1", "p1", "p2", "p2"],
            "kind": "patient",
            "assay": ["A", "R", "A", "R"],
            "detected": [True, True, False, True],
            "n_replicates": 2,
            "flags": "",
            "vp_grade": "",
        }
    )
    per_assay = assay_table(assays, curves, cells, 35.0)
    empty = pd.DataFrame(columns=["plate", "ipc_mean", "offset", "flags"])
    calibration = pd.DataFrame(
        {"plate": ["c1", "c2"], "ipc_mean": [23.0, 23.4], "offset": [-0.2, 0.2], "flags": ["", "offset"]}
    )
    tables = {
        "wells_summary": pd.DataFrame(
            {
                "plate": ["c1"],
                "read": [10],
                "kept": [8],
                "excluded": [2],
                "non_detected": [1],
                "excluded_EXPFAIL": [2],
            }
        ),
        "calibration": calibration if with_ipc else empty,
        "validprime": pd.DataFrame(columns=["plate", "assay", "confidence"]),
        "genorm": pd.DataFrame({"step": [1, 1], "n_genes": [2, 2], "gene": ["R", "S"], "M": [0.3, 0.3]}),
        "genorm_v": pd.DataFrame({"n": [2], "V": [0.1]}),
        "normfinder": pd.DataFrame({"gene": ["R"], "stability": [0.05], "rank": [1]}),
        "chosen": pd.DataFrame({"strategy": ["reference"], "genes": ["R;S"], "reason": ["geNorm"]}),
    }
    if ntc is not None:
        tables["ntc"] = ntc
    settings = {
        "lod": 35,
        "replicates": {"max_delta": 0.5},
        "ipc": {"max_sd": 0.25, "max_offset": 1.0},
        "normalisation": {"v_cutoff": 0.15},
    }
    record = {
        "workflow": "ctc-qpcr",
        "workflow_version": "9.9",
        "packages": {"pandas": "2"},
        "inputs": {"a.tsv": "ab12"},
    }
    return per_assay, checklist(per_assay, cells, tables, record, settings).set_index("item")


def test_assay_table_lod_detection_rate_and_efficiency_source():
    per_assay, _ = _checklist(True)
    a, r = per_assay.set_index("assay").loc["A"], per_assay.set_index("assay").loc["R"]
    assert a["efficiency_source"] == "standard series" and a["efficiency_pct"] == pytest.approx(
        100 * (10 ** (1 / 3.32) - 1)
    )
    assert r["efficiency_source"] == "assays sheet" and r["efficiency_pct"] == pytest.approx(90.0)
    assert (a["lod_used"], r["lod_used"]) == (35.0, 33.0)
    assert (a["detection_rate"], r["detection_rate"]) == (0.5, 1.0)


def test_checklist_marks_items_provided_or_not_applicable():
    _, items = _checklist(with_ipc=True)
    assert items.loc["Inter-plate calibration (IPC)", "status"] == PROVIDED
    assert "1 flagged" in items.loc["Inter-plate calibration (IPC)", "value"]
    assert items.loc["ValidPrime gDNA correction", "status"] == NOT_APPLICABLE
    assert items.loc["No-template controls", "status"] == NOT_APPLICABLE
    assert "EXPFAIL 2" in items.loc["Wells read, kept and excluded by reason", "value"]
    assert "except 1 with their own LOD" in items.loc["Limit of detection (Cq) used", "value"]
    assert items.loc["SHA-256 of a.tsv", "value"] == "ab12"
    _, items = _checklist(with_ipc=False)
    assert items.loc["Inter-plate calibration (IPC)", "status"] == NOT_APPLICABLE
    assert set(items["status"]) == {PROVIDED, NOT_APPLICABLE}


def test_miqe_page_lists_every_item_escaped():
    from ctc_qpcr.miqe import miqe_html

    per_assay, items = _checklist(with_ipc=False)
    page = miqe_html(items.reset_index(), per_assay)
    assert page.count("<tr>") >= len(items) + len(per_assay)
    assert "– not applicable" in page and "✓ provided" in page
    assert "EXPFAIL 2" in page
    assert "<h2>Software and data</h2>" in page


def _ntc_tsv(flags: list[str]) -> pd.DataFrame:
    """results/qc/ntc.tsv rows (as ntc.ntc_table writes them) for plates c1, c2 and assays A, R."""
    from ctc_qpcr.ntc import NTC_COLUMNS

    keys = [("c1", "A"), ("c1", "R"), ("c2", "A"), ("c2", "R")][: len(flags)]
    rank = {"ok": 0, "ntc_amplified": 1, "ntc_close_to_samples": 2}
    table = pd.DataFrame(
        {
            "batch": "B1",
            "plate": [p for p, _ in keys],
            "assay": [a for _, a in keys],
            "ntc_wells": 1,
            "ntc_amplified": [int(f != "ok") for f in flags],
            "ntc_min_cq": [np.nan if f == "ok" else 30.0 for f in flags],
            "samples_median_cq": 25.0,
            "max_cq": 35.0,
            "flag": flags,
        }
    )
    table["delta_cq"] = table["ntc_min_cq"] - table["samples_median_cq"]
    worst = table.groupby("plate")["flag"].transform(lambda f: max(f, key=rank.get))
    return table.assign(plate_flag=worst)[NTC_COLUMNS]


def test_ntc_item_provided_flagged_or_not_applicable_from_the_ntc_table():
    from ctc_qpcr.miqe import FLAGGED

    item = "No-template controls"
    _, items = _checklist(True, ntc=_ntc_tsv(["ok", "ok", "ok", "ok"]))
    assert items.loc[item, "status"] == PROVIDED and items.loc[item, "source"] == "results/qc/ntc.tsv"
    assert items.loc[item, "value"] == (
        "4 plate × assay with NTC wells on 2 plate(s): 4 ok, 0 ntc_amplified, 0 ntc_close_to_samples"
    )
    _, items = _checklist(True, ntc=_ntc_tsv(["ok", "ntc_amplified", "ok", "ntc_close_to_samples"]))
    assert items.loc[item, "status"] == FLAGGED
    assert items.loc[item, "value"] == (
        "4 plate × assay with NTC wells on 2 plate(s): 2 ok, 1 ntc_amplified, 1 ntc_close_to_samples"
        " — c1/R (ntc_amplified), c2/R (ntc_close_to_samples)"
    )
    _, items = _checklist(True, ntc=_ntc_tsv([]))
    assert items.loc[item, "status"] == NOT_APPLICABLE and items.loc[item, "value"] == ""


def test_ntc_page_gives_the_plate_verdict_and_the_flagged_rows():
    from ctc_qpcr.miqe import miqe_html
    from ctc_qpcr.ntc import ntc_html, plate_summary

    table = _ntc_tsv(["ok", "ntc_amplified", "ok", "ntc_close_to_samples"])
    summary = plate_summary(table).set_index("plate")
    assert summary.loc["c1", ["assays", "ntc_amplified", "ntc_close_to_samples", "plate_flag"]].tolist() == [
        2,
        1,
        0,
        "ntc_amplified",
    ]
    assert summary.loc["c2", "plate_flag"] == "ntc_close_to_samples"
    page = ntc_html(table, "the LOD (35 cycles, or the batch's own)", 3.32)
    assert "Cq ≤ the LOD (35 cycles, or the batch's own)" in page and "less than 3.32 cycles" in page
    assert (
        "Flagged plate × assay (2 of 4)" in page and page.count("<tr") == 1 + 2 + 1 + 2
    )  # header + rows of both tables
    assert "No NTC wells on any plate" in ntc_html(table.iloc[:0], "30", 3.32)
    per_assay, items = _checklist(True, ntc=table)
    assert "⚠ flagged" in miqe_html(items.reset_index(), per_assay)


def test_series_wells_read_in_arrow_give_the_curves_of_all_wells(tmp_path):
    """series_wells keeps only the rows standard_curves uses, in table order (the sums, and
    so the fitted numbers, are the same to the bit), from batch files read one at a time."""
    from ctc_qpcr.miqe import series_wells

    wells, samples = _series({"A": -3.4, "B": -3.2}, noise=0.3)
    patients = wells.assign(sample="P01", cq=wells["cq"] + 1)
    wells = pd.concat([wells, patients], ignore_index=True).sample(frac=1, random_state=5)
    wells.iloc[:10, wells.columns.get_loc("state")] = ["NOAMP", None, "EXPFAIL", *["CALC"] * 7]
    wells.iloc[10:14, wells.columns.get_loc("fate")] = ["excluded", None, "kept", "kept"]
    paths = [tmp_path / "B1.parquet", tmp_path / "B2.parquet"]
    wells.iloc[:50].to_parquet(paths[0], index=False)
    wells.iloc[50:].to_parquet(paths[1], index=False)
    columns = ["sample", "assay", "cq", "state", "fate"]
    chosen = series_wells(paths, samples, columns)
    used = wells[wells["fate"].eq("kept") & wells["state"].eq("CALC") & wells["sample"].ne("P01")]
    assert chosen["cq"].tolist() == used["cq"].tolist()
    pd.testing.assert_frame_equal(standard_curves(chosen, samples), standard_curves(wells, samples))


def test_text_counts_are_the_counts_of_the_printed_texts():
    from ctc_qpcr.miqe import _text_counts

    values = pd.Series(["b", None, "a", "b", np.nan, "", 1.0, "1.0"], dtype=object)
    expected = values.fillna("").astype(str).value_counts().sort_index()
    assert _text_counts(values).to_dict() == expected.to_dict()
    assert list(_text_counts(values).index) == ["", "1.0", "a", "b"]
