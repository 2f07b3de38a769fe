"""Snakemake adapter: the first batch's IPC level per chip (results/batches/{first}/ipc_anchor.tsv).

Later batches take their IPC reference from it (ctc_qpcr.ipc_anchor), so they do
not wait for the first batch's whole chip-level job.
"""

from ctc_qpcr.collector import few_collections

few_collections()  # before pandas & co. are imported

from ctc_qpcr import chip_batch, sheets  # noqa: E402
from ctc_qpcr.adapter import run  # noqa: E402
from ctc_qpcr.chip_options import chip_options  # noqa: E402
from ctc_qpcr.ipc_anchor import first_batch_ipc  # noqa: E402
from ctc_qpcr.preprocess import ipc_reference_from  # noqa: E402
from ctc_qpcr.tables import write_tsv  # noqa: E402


def main(smk, log):
    p = smk.params
    # the states are assigned to the IPC wells only (first_batch_ipc), not to every well read
    samples, assays, tables = chip_batch.read_job_batch(
        p, smk.input.samples, smk.input.assays, log, states=False
    )
    options = chip_options({**p.settings, "efficiency": p.efficiency})
    levels = first_batch_ipc(
        chip_batch.batch_wells(tables), sheets.samples_frame(samples), assays, options, batch=p.batch
    )
    write_tsv(levels, smk.output[0])
    log.info(
        "IPC reference of later batches: %.4f (mean IPC level of %s's chips)",
        ipc_reference_from(levels),
        p.batch,
    )


run(main, snakemake)  # noqa: F821
