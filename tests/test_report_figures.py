"""Report figures that scale: one volcano per metastatic site, and the choice of
chip layouts shown in the report (flagged first, at most report.layout_chips)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ctc_qpcr.layout import chip_summary, report_name, report_selection
from ctc_qpcr.plots_de import site_volcanoes


def _site_table() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = []
    for site in ("bone", "liver"):
        for g in range(12):
            p = 10.0 ** -rng.uniform(0, 6)
            rows.append(
                {
                    "gene": f"G{g:02d}",
                    "strategy": "reference",
                    "site": site,
                    "level_a": site,
                    "level_b": f"not {site}",
                    "log2fc": rng.normal(0, 2),
                    "p": p,
                    "q": min(1.0, p * 12),
                }
            )
    return pd.DataFrame(rows)


def test_one_volcano_per_site_titled_with_its_groups(tmp_path):
    paths = {s: tmp_path / f"{s}.volcano.svg" for s in ("bone", "brain", "liver")}
    site_volcanoes(_site_table(), paths, comparison="sites", strategy="reference")
    liver = paths["liver"].read_text()
    assert "liver vs not liver: sites, reference (12 genes)" in liver
    assert "bone vs not bone" not in liver
    assert "bone vs not bone: sites, reference (12 genes)" in paths["bone"].read_text()
    # a site of the sheet the table has no rows for still gets its file, saying why
    assert "brain vs not brain was not tested" in paths["brain"].read_text()
    first = paths["liver"].read_bytes()
    site_volcanoes(_site_table(), paths, comparison="sites", strategy="reference")
    assert paths["liver"].read_bytes() == first


def _audit(plates: int, bad: dict[str, float]) -> pd.DataFrame:
    """96 wells per plate; ``bad`` = share of excluded wells on some plates (else 2 %)."""
    frames = []
    for i in range(plates):
        plate = f"chip{i + 1:02d}"
        n = 96
        share = bad.get(plate, 0.02 + 0.01 * (i % 3))
        excluded = np.arange(n) < round(share * n)
        frames.append(
            pd.DataFrame(
                {
                    "batch": f"B{i // 4 + 1}",
                    "plate": plate,
                    "state": np.where(np.arange(n) % 4 == 0, "NOAMP", "CALC"),
                    "fate": np.where(excluded, "excluded", "kept"),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_chip_summary_counts_wells_per_plate():
    summary = chip_summary(_audit(3, {"chip02": 0.5}))
    assert list(summary["plate"]) == ["chip01", "chip02", "chip03"]
    assert list(summary["wells"]) == [96] * 3
    assert summary.loc[1, "excluded"] == 48 and summary.loc[1, "excluded_fraction"] == 0.5
    # kept and CALC: 3 of 4 wells are CALC; the excluded ones are the first 48
    assert summary.loc[1, "detected_fraction"] == 36 / 96


def test_flagged_chips_come_first_and_the_report_is_capped():
    summary = chip_summary(_audit(12, {"chip07": 0.4}))
    calibration = pd.DataFrame({"plate": [f"chip{i:02d}" for i in range(1, 13)], "flags": ""})
    calibration.loc[calibration["plate"] == "chip11", "flags"] = "IPC_HIGH_SD"
    index = report_selection(summary, calibration, max_chips=4)
    assert list(index["rank"]) == list(range(1, 13))
    # flagged (IPC, then many exclusions) first, then by excluded fraction, then name
    assert list(index["plate"][:2]) == ["chip07", "chip11"]
    assert index.loc[0, "flagged"] == "many exclusions; few detected"
    assert index.loc[1, "flagged"] == "IPC IPC_HIGH_SD"
    assert (index["flagged"][2:] == "").all()
    rest = index.iloc[2:]
    assert list(rest["excluded_fraction"]) == sorted(rest["excluded_fraction"], reverse=True)
    assert index["in_report"].sum() == 4 and index["in_report"][:4].all()
    assert index.loc[0, "svg"] == "results/qc/layout/chip07.svg"
    assert report_name(1, "chip07") == "0001_chip07.svg"


def test_every_chip_is_shown_when_the_study_is_small():
    summary = chip_summary(_audit(3, {}))
    calibration = pd.DataFrame({"plate": ["chip01", "chip02", "chip03"], "flags": [np.nan] * 3})
    index = report_selection(summary, calibration, max_chips=24)
    assert index["in_report"].all() and (index["flagged"] == "").all()


def test_heatmap_of_a_large_study_has_bounded_size_and_no_sample_labels(tmp_path):
    from ctc_qpcr.plots_de import heatmap

    n = 600
    samples = pd.DataFrame(
        {
            "sample": [f"S{i:04d}" for i in range(n)],
            "response": np.where(np.arange(n) % 2, "responder", "non-responder"),
            "sites": "liver",
        }
    )
    genes = ["G00", "G01", "G02"]
    normalised = pd.DataFrame(
        {
            "sample": np.repeat(samples["sample"], len(genes)).to_numpy(),
            "gene": genes * n,
            "dcq": np.random.default_rng(4).normal(5, 2, n * len(genes)),
            "detected": True,
        }
    )
    table = pd.DataFrame({"gene": genes, "p": [1e-6, 1e-4, 1e-3], "q": [1e-5, 1e-3, 0.01]})
    heatmap(normalised, samples, table, tmp_path / "big.svg")
    text = (tmp_path / "big.svg").read_text()
    height_pt = float(text.split('height="', 1)[1].split("pt", 1)[0])
    assert height_pt <= 14 * 72 + 1
    assert "S0123" not in text and "600 samples" in text
    few = list(samples["sample"][:20])
    heatmap(normalised, samples, table, tmp_path / "small.svg", sample_subset=few)
    assert "S0010" in (tmp_path / "small.svg").read_text()


def test_cq_plate_summary_counts_per_plate():
    from ctc_qpcr.report_tables import PLATE_SUMMARY_COLUMNS, cq_plate_summary

    cq = pd.DataFrame(
        {
            "plate": ["p2", "p2", "p1", "p1", "p1", "p1"],
            "batch": ["B1"] * 6,
            "sample": ["s3", "s3", "s1", "s1", "s2", "s2"],
            "assay": ["A", "B", "A", "B", "A", "B"],
            "detected": [True, False, True, True, False, True],
            "replicate_delta": [0.1, np.nan, 0.2, 0.4, np.nan, 0.6],
            "gdna_fraction": [0.0, np.nan, 0.1, 0.3, np.nan, 0.2],
            "plate_offset": [0.5, 0.5, -0.2, -0.2, -0.2, -0.2],
            "flags": ["", "VPA_LOWSIGNAL", None, "", "HIGHSD", ""],
        }
    )
    out = cq_plate_summary(cq)
    assert list(out.columns) == PLATE_SUMMARY_COLUMNS
    p1 = out.iloc[0].to_dict()
    assert out["plate"].tolist() == ["p1", "p2"]
    assert (p1["samples"], p1["assays"], p1["cells"], p1["detected"]) == (2, 2, 4, 3)
    assert p1["detection_rate"] == 0.75 and p1["flagged_cells"] == 1
    assert p1["median_replicate_delta"] == 0.4 and p1["max_replicate_delta"] == 0.6
    assert p1["median_gdna_fraction"] == 0.2 and p1["plate_offset"] == -0.2
    assert out.iloc[1]["flagged_cells"] == 1 and out.iloc[1]["detection_rate"] == 0.5
