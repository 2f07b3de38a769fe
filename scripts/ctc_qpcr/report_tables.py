"""Tables the report carries instead of the full ones (which stay on disk):
summaries whose size grows with plates, not with samples × assays."""

from __future__ import annotations

import pandas as pd

#: Columns of results/preprocessed/cq_plate_summary.tsv.
PLATE_SUMMARY_COLUMNS = [
    "plate",
    "batch",
    "samples",
    "assays",
    "cells",
    "detected",
    "detection_rate",
    "median_replicate_delta",
    "max_replicate_delta",
    "flagged_cells",
    "median_gdna_fraction",
    "plate_offset",
]


def cq_plate_summary(cq: pd.DataFrame) -> pd.DataFrame:
    """Per plate of the preprocessed table (one row per plate × sample × assay
    cell): samples, assays, cells, detected cells and rate, median and largest
    replicate ΔCq, cells with a QC flag, median gDNA fraction, IPC offset."""
    frame = cq.assign(
        plate=cq["plate"].astype(str),
        batch=cq["batch"].astype(str),
        flagged=cq["flags"].fillna("").astype(str).ne(""),
        detected=cq["detected"].astype(bool),
    )
    out = frame.groupby(["plate", "batch"], sort=True).agg(
        samples=("sample", "nunique"),
        assays=("assay", "nunique"),
        cells=("sample", "size"),
        detected=("detected", "sum"),
        median_replicate_delta=("replicate_delta", "median"),
        max_replicate_delta=("replicate_delta", "max"),
        flagged_cells=("flagged", "sum"),
        median_gdna_fraction=("gdna_fraction", "median"),
        plate_offset=("plate_offset", "first"),
    )
    out = out.reset_index()
    out["detection_rate"] = out["detected"] / out["cells"]
    return out[PLATE_SUMMARY_COLUMNS]
