"""Snakemake adapter: merge per-batch results into the study tables and the well audit."""

import pandas as pd

from ctc_qpcr import sheets
from ctc_qpcr.adapter import run
from ctc_qpcr.importing import unplated_names
from ctc_qpcr.audit import summarise_audit
from ctc_qpcr.tables import read_tsv, write_parquet, write_tsv


def _concat_tsv(paths):
    frames = [read_tsv(p) for p in paths]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else read_tsv(paths[0])


def main(smk, log):
    cells = pd.concat([pd.read_parquet(p) for p in smk.input.cells], ignore_index=True)
    cells = cells.sort_values(["batch", "plate", "sample", "assay"], kind="stable").reset_index(drop=True)
    write_parquet(cells, smk.output.cq_parquet)
    write_tsv(cells, smk.output.cq)

    audit = pd.concat([pd.read_parquet(p) for p in smk.input.wells], ignore_index=True)
    audit = audit.sort_values(["batch", "plate", "line", "well"], kind="stable").reset_index(drop=True)
    summary = summarise_audit(audit)
    log.info(
        "well audit: %d read = %d kept + %d excluded",
        len(audit), int(summary["kept"].sum()), int(summary["excluded"].sum()),
    )
    write_tsv(audit, smk.output.wells)
    # Sheet entries on no plate of the study: not an error (a sheet may list
    # samples still to be run), but reported so a misspelling is seen.
    notes = unplated_names(audit, sheets.load_samples(smk.input.samples), sheets.load_assays(smk.input.assays))
    for note in notes:
        log.warning("%s", note)
    write_tsv(pd.DataFrame({"note": notes}, columns=["note"]), smk.output.unplated)
    write_tsv(summary, smk.output.wells_summary)
    write_tsv(_concat_tsv(smk.input.validprime), smk.output.validprime)
    write_tsv(_concat_tsv(smk.input.calibration), smk.output.calibration)
    write_tsv(_concat_tsv(smk.input.efficiency), smk.output.efficiency)


run(main, snakemake)  # noqa: F821
