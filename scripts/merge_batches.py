"""Snakemake adapter: merge per-batch results into the study tables and the well audit."""

import pandas as pd

from ctc_qpcr import sheets
from ctc_qpcr.adapter import run
from ctc_qpcr.importing import unplated_names
from ctc_qpcr.panel import check_panel
from ctc_qpcr.tables import concat_tsv_files, read_tsv, write_parquet, write_tsv


def _concat_tsv(paths):
    frames = [read_tsv(p) for p in paths]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else read_tsv(paths[0])


def main(smk, log):
    cells = pd.concat([pd.read_parquet(p) for p in smk.input.cells], ignore_index=True)
    cells = cells.sort_values(["batch", "plate", "sample", "assay"], kind="stable").reset_index(drop=True)
    cells, notes = check_panel(cells, smk.params.on_panel_mismatch)
    for note in notes:
        log.warning("%s", note)
    write_parquet(cells, smk.output.cq_parquet)
    write_tsv(cells, smk.output.cq)

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
    audit = pd.concat(
        [pd.read_parquet(p, columns=["sample", "assay"]) for p in smk.input.wells], ignore_index=True
    )
    # Sheet entries on no plate of the study: not an error (a sheet may list
    # samples still to be run), but reported so a misspelling is seen.
    notes = unplated_names(
        audit, sheets.load_samples(smk.input.samples), sheets.load_assays(smk.input.assays)
    )
    for note in notes:
        log.warning("%s", note)
    write_tsv(pd.DataFrame({"note": notes}, columns=["note"]), smk.output.unplated)
    write_tsv(summary, smk.output.wells_summary)
    write_tsv(_concat_tsv(smk.input.validprime), smk.output.validprime)
    write_tsv(_concat_tsv(smk.input.calibration), smk.output.calibration)
    write_tsv(_concat_tsv(smk.input.efficiency), smk.output.efficiency)


run(main, snakemake)  # noqa: F821
