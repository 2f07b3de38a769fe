"""Snakemake adapter: merge per-batch results into the study tables and the well audit.

At 1,000 chips the study holds millions of cells and ~9 M audited wells, so the
cells are written batch by batch (:mod:`ctc_qpcr.study_cells`: each batch sorted,
batches in sorted order) and the audit is never loaded whole.
"""

import pandas as pd
import pyarrow.parquet as pq

from ctc_qpcr import sheets
from ctc_qpcr.adapter import run
from ctc_qpcr.importing import unplated_names
from ctc_qpcr.study_cells import distinct_values, study_cells
from ctc_qpcr.tables import (
    concat_tsv_files,
    parquet_parts,
    read_tsv,
    tsv_parts,
    write_parquet,
    write_tsv,
)


def _concat_tsv(paths):
    frames = [read_tsv(p) for p in paths]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else read_tsv(paths[0])


def write_cells(smk, log):
    """results/preprocessed/cq.{parquet,tsv}: the study's cells (:mod:`ctc_qpcr.study_cells`,
    the same cells the normalise job reads), batch by batch where they can be streamed."""
    study = study_cells(list(smk.input.cells), smk.params.on_panel_mismatch)
    for note in study.notes:
        log.warning("%s", note)
    if study.frame is not None:
        write_parquet(study.frame, smk.output.cq_parquet)
        write_tsv(study.frame, smk.output.cq)
        return
    with parquet_parts(smk.output.cq_parquet) as add_parquet, tsv_parts(smk.output.cq) as add_tsv:
        for cells in study.tables():
            add_tsv(cells)
            add_parquet(cells)


def plated_names(paths) -> pd.DataFrame:
    """The distinct sample and assay names of the audited wells (read one batch file at a
    time), as a frame whose columns hold the same sets of names as the whole audit's."""
    names = {"sample": set(), "assay": set()}
    for path in paths:
        table = pq.read_table(path, columns=list(names), read_dictionary=list(names))
        for col, seen in names.items():
            seen.update(distinct_values(table[col]))
    values = {col: sorted(map(str, seen)) for col, seen in names.items()}
    width = max(map(len, values.values()))
    # the shorter column is padded with its own first name: its set of names is unchanged
    return pd.DataFrame({col: v + v[:1] * (width - len(v)) for col, v in values.items()})


def main(smk, log):
    write_cells(smk, log)

    # The audit of every well (millions of rows at scale) is concatenated from the
    # per-batch files as bytes; batches come in plates.tsv order.
    n_wells = concat_tsv_files(list(smk.input.audit), smk.output.wells)
    summary = _concat_tsv(smk.input.audit_summary).fillna(0)
    for col in summary.columns:
        if col.startswith("excluded_") or col in ("read", "kept", "excluded", "non_detected"):
            summary[col] = summary[col].astype(int)
    summary = summary[
        [c for c in summary.columns if not c.startswith("excluded_")]
        + sorted(c for c in summary.columns if c.startswith("excluded_"))
    ]
    if (
        int(summary["read"].sum()) != n_wells
        or not (summary["read"] == summary["kept"] + summary["excluded"]).all()
    ):
        raise AssertionError("the well audit does not reconcile: read != kept + excluded")
    log.info(
        "well audit: %d read = %d kept + %d excluded",
        n_wells,
        int(summary["kept"].sum()),
        int(summary["excluded"].sum()),
    )
    # Sheet entries on no plate of the study: not an error (a sheet may list
    # samples still to be run), but reported so a misspelling is seen.
    notes = unplated_names(
        plated_names(smk.input.wells),
        sheets.load_samples(smk.input.samples),
        sheets.load_assays(smk.input.assays),
    )
    for note in notes:
        log.warning("%s", note)
    write_tsv(pd.DataFrame({"note": notes}, columns=["note"]), smk.output.unplated)
    write_tsv(summary, smk.output.wells_summary)
    write_tsv(_concat_tsv(smk.input.validprime), smk.output.validprime)
    write_tsv(_concat_tsv(smk.input.calibration), smk.output.calibration)
    write_tsv(_concat_tsv(smk.input.efficiency), smk.output.efficiency)


run(main, snakemake)  # noqa: F821
