"""Every real Cq export in ../shared/data/public/ goes through reading, well states,
preprocessing and the well audit, and its wells reconcile: read = kept + excluded,
every excluded well with a reason (issues 2 and 9)."""

from __future__ import annotations

import pandas as pd
import pytest

from ctc_qpcr.audit import build_audit, summarise_audit
from ctc_qpcr.chip_options import chip_options
from ctc_qpcr.importing import check_names
from ctc_qpcr.parsers.registry import read_export
from ctc_qpcr.preprocess import preprocess_batch
from ctc_qpcr.wells import assign_states

REAL_EXPORTS = [
    "htqpcr/BioMark_sample.csv",
    "biomark_biologger/CheeseSamples_validation_rawdata.csv",
    "biomark_biologger/Assayvalidation_triplicates_rawdata.csv",
    "autoqpcr/2019-09-10_120614_exp1.csv",
    "autoqpcr/2019-09-10_120614exp2-relative.csv",
    "autoqpcr/2019-04-25_135946-ACTB.csv",
    "htqpcr/CFX_sample.txt",
    "htqpcr/SDS_sample.txt",
    "htqpcr/sample1.txt",
    "htqpcr/sample6.txt",
    "readqpcr_normqpcr/example.txt",
    "readqpcr_normqpcr/exampleTechReps.txt",
    "readqpcr_normqpcr/qPCR.example.txt",
    "htqpcr/LightCycler_sample.txt",
    "easyqpcr/qPCR_run1.csv",
    "easyqpcr/Gene_maximisation.csv",
    "rdml_rpkg/BioRad_qPCR_melt.rdml",
    "rdml_rpkg/BioRad_384.rdml",
    "rdml_rpkg/stepone_std.rdml",
    "rdml_rpkg/lc96_bACTXY.rdml",
    "rdml_tools/two_plate_correction.rdml",
    "rdml_tools/six_plate_correction.rdml",
    "rdml_tools/relative.rdml",
    "rdml_tools/absolute.rdml",
    "rdml_tools/sample.rdml",
]


def _sheets_from(wells: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sheets naming every sample (as patients) and assay (as targets) on the plate, except one
    of each, left out on purpose so that the 'not in sheet' exclusion is exercised too."""
    names = sorted(n for n in wells["sample"].unique() if n)
    assays = sorted(a for a in wells["assay"].unique() if a)
    samples = pd.DataFrame({"sample": names[1:] if len(names) > 1 else names, "kind": "patient"})
    for col in ("patient", "timepoint", "response", "sites"):
        samples[col] = ""
    samples["quantity"] = float("nan")
    assay_sheet = pd.DataFrame(
        {"assay": assays, "gene": assays, "role": "target", "efficiency": float("nan"), "lod": float("nan")}
    )
    return samples, assay_sheet


@pytest.mark.parametrize("name", REAL_EXPORTS)
def test_real_export_audit_reconciles(public_data, name):
    path = public_data / name
    wells = read_export(path, fmt="auto", plate="P1")
    if name.startswith("htqpcr/LightCycler"):
        # LC480 Abs Quant has no target column: plates.tsv `assay` names it
        wells.loc[wells["assay"] == "", "assay"] = "demo_assay"
    wells.insert(0, "batch", "B1")
    samples, assays = _sheets_from(wells)
    wells = check_names(wells, samples, assays, path=str(path), unknown_names="exclude")
    wells = assign_states(wells, lod=35.0)
    # Every sample is declared a patient here (no real sheet): dilution series and placeholder names on
    # many wells would stop the replicate-design rule (tests/test_replicates.py lists them), so flag.
    options = chip_options({"replicates": {"on_extra": "flag"}})
    result = preprocess_batch(wells[wells["excluded"] == ""], samples, assays, options, batch="B1")
    audit = build_audit(wells, result["well_flags"])
    assert len(audit) == len(wells)
    summary = summarise_audit(audit)
    assert int(summary["read"].sum()) == len(wells)
    assert (summary["read"] == summary["kept"] + summary["excluded"]).all()
    excluded = audit[audit["fate"] == "excluded"]
    assert (excluded["reason"].astype(str).str.len() > 0).all()
    if len(names := sorted(n for n in wells["sample"].unique() if n)) > 1:
        left_out = names[0]
        assert (
            audit.loc[audit["sample"] == left_out, "reason"]
            .isin(["sample_not_in_sheet", "no_assay_name"])
            .all()
        )
    kept_cells = result["cells"]
    assert set(kept_cells["sample"]) <= set(samples["sample"])
