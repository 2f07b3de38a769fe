"""Snakemake adapter: quality-control figures and the per-plate Cq summary of the report."""

import pandas as pd

from ctc_qpcr.adapter import run
from ctc_qpcr.plots_qc import plot_gdna_fraction, plot_ipc, plot_replicate_delta, plot_well_fates
from ctc_qpcr.report_tables import cq_plate_summary
from ctc_qpcr.tables import read_tsv, write_tsv


def main(smk, log):
    cells = pd.read_parquet(smk.input.cq)
    plot_gdna_fraction(cells, smk.output.gdna, smk.params.grade_f)
    plot_ipc(read_tsv(smk.input.calibration), smk.output.ipc)
    plot_replicate_delta(cells, smk.output.replicates, smk.params.max_delta)
    plot_well_fates(read_tsv(smk.input.wells_summary), smk.output.fates)
    summary = cq_plate_summary(cells)
    write_tsv(summary, smk.output.cq_plates)
    log.info("%d cells on %d plates summarised", len(cells), len(summary))


run(main, snakemake)  # noqa: F821
