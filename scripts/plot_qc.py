"""Snakemake adapter: quality-control figures and the per-plate Cq summary of the report."""

import pandas as pd
import pyarrow as pa

from ctc_qpcr.adapter import run
from ctc_qpcr.plots_qc import gdna_grid, plot_gdna_grid, plot_ipc, plot_replicate_delta, plot_well_fates
from ctc_qpcr.report_tables import cq_plate_summary
from ctc_qpcr.tables import read_tsv, write_tsv

#: The columns of the Cells table the figures and the plate summary read.
CELL_COLUMNS = [
    "plate", "batch", "sample", "kind", "assay", "detected", "n_replicates", "replicate_delta",
    "gdna_fraction", "plate_offset", "flags",
]  # fmt: skip


def main(smk, log):
    # names repeated on every cell read as categories (a code a cell: issue 17)
    cells = pd.read_parquet(smk.input.cq, columns=CELL_COLUMNS, read_dictionary=["sample", "kind", "assay"])
    grid = gdna_grid(cells)
    replicates = cells[["n_replicates", "replicate_delta"]]
    summary = cq_plate_summary(cells)
    n_cells = len(cells)
    del cells  # the figures are drawn without the cells in memory (issue 17: peak memory),
    pa.default_memory_pool().release_unused()  # nor the pages Arrow kept for them
    plot_gdna_grid(grid, smk.output.gdna, smk.params.grade_f)
    plot_ipc(read_tsv(smk.input.calibration), smk.output.ipc)
    plot_replicate_delta(replicates, smk.output.replicates, smk.params.max_delta)
    plot_well_fates(read_tsv(smk.input.wells_summary), smk.output.fates)
    write_tsv(summary, smk.output.cq_plates)
    log.info("%d cells on %d plates summarised", n_cells, len(summary))


run(main, snakemake)  # noqa: F821
