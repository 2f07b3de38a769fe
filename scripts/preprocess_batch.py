"""Snakemake adapter: chip-level preprocessing of one batch."""

from dataclasses import replace

import pandas as pd

from ctc_qpcr import sheets
from ctc_qpcr.adapter import run
from ctc_qpcr.audit import build_audit, summarise_audit
from ctc_qpcr.chip_options import chip_options
from ctc_qpcr.preprocess import ipc_reference_from, preprocess_batch
from ctc_qpcr.tables import read_tsv, write_parquet, write_tsv


def main(smk, log):
    options = chip_options({**smk.params.settings, "efficiency": smk.params.efficiency})
    samples = sheets.samples_frame(sheets.load_samples(smk.input.samples))
    assays = sheets.assays_frame(sheets.load_assays(smk.input.assays))
    wells = pd.concat([pd.read_parquet(p) for p in smk.input.cq], ignore_index=True)
    # The reader's notes (missing wells, ...) come back as DataFrame.attrs, which pandas
    # deep-copies on every operation; they are used only while reading.
    wells.attrs = {}
    usable = wells[wells["excluded"] == ""]

    if options.ipc.reference is None and smk.input.ipc_anchor:
        reference = ipc_reference_from(read_tsv(smk.input.ipc_anchor))
        log.info("IPC reference %.4f taken from the first batch (%s)", reference, smk.input.ipc_anchor)
        options = replace(options, ipc=replace(options.ipc, reference=reference))

    result = preprocess_batch(
        usable, samples, assays, options, batch=smk.wildcards.batch, exports=dict(smk.params.exports)
    )
    for note in result.get("notes", []):
        log.info("%s", note)
    cells = result["cells"].copy()
    write_parquet(cells, smk.output.cells)
    audit = build_audit(wells, result.get("well_flags"))
    audit = audit.sort_values(["plate", "line", "well"], kind="stable").reset_index(drop=True)
    write_parquet(audit, smk.output.wells)
    write_tsv(audit, smk.output.audit)
    write_tsv(summarise_audit(audit), smk.output.audit_summary)
    write_tsv(result["validprime_assays"], smk.output.validprime)
    write_tsv(result["plate_calibration"], smk.output.calibration)
    write_tsv(result["efficiency"], smk.output.efficiency)


run(main, snakemake)  # noqa: F821
