"""Snakemake adapter: the chip-level job of one batch — read its exports, preprocess them.

Writes each plate's Wells table (results/cq/{plate}.parquet + .tsv) and the batch's
tables (results/batches/{batch}/); the steps are in ctc_qpcr.chip_batch.
"""

from ctc_qpcr.collector import few_collections

few_collections()  # before pandas & co. are imported

from ctc_qpcr import chip_batch, sheets  # noqa: E402
from ctc_qpcr.adapter import run, write_tables  # noqa: E402
from ctc_qpcr.chip_options import chip_options  # noqa: E402
from ctc_qpcr.preprocess import ipc_reference_from  # noqa: E402
from ctc_qpcr.tables import read_tsv, write_parquet, write_parquet_tsv  # noqa: E402


def main(smk, log):
    p = smk.params
    samples, assays, tables = chip_batch.read_job_batch(p, smk.input.samples, smk.input.assays, log)
    in_audit = [  # the audit repeats the wells' columns: their conversion to Arrow is kept for it
        chip_batch.audit_part(write_parquet_tsv(wells, pq, tsv))
        for wells, pq, tsv in zip(tables, smk.output.cq_parquet, smk.output.cq_tsv, strict=True)
    ]

    options = chip_options({**p.settings, "efficiency": p.efficiency})
    if options.ipc.reference is None and smk.input.ipc_anchor:
        reference = ipc_reference_from(read_tsv(smk.input.ipc_anchor))
        log.info("IPC reference %.4f taken from the first batch (%s)", reference, smk.input.ipc_anchor)
        options = chip_batch.with_ipc_reference(options, reference)
    out = chip_batch.preprocess_and_audit(
        chip_batch.batch_wells(tables),
        sheets.samples_frame(samples),
        assays,
        options,
        batch=p.batch,
        exports={plate["plate"]: plate["path"] for plate in p.plates},
        log=log,
        read_lod=p.settings["lod"],  # the reader's states are kept where the limits are the same
    )
    write_parquet(out["cells"], smk.output.cells)
    audit = chip_batch.audit_in_arrow(out["audit"], in_audit, out["audit_rows"])
    write_parquet_tsv(out["audit"], smk.output.wells, smk.output.audit, arrow=audit)
    write_tables(
        out,
        smk.output,
        {
            "audit_summary": "audit_summary",
            "validprime_assays": "validprime",
            "plate_calibration": "calibration",
            "efficiency": "efficiency",
        },
    )


run(main, snakemake)  # noqa: F821
