"""Snakemake adapter: reference genes (geNorm, NormFinder) and every normalisation strategy."""

import functools

import pyarrow as pa
import pyarrow.parquet as pq

from ctc_qpcr import sheets
from ctc_qpcr.adapter import run, write_tables
from ctc_qpcr.normalise import normalise_study
from ctc_qpcr.normalise_cells import CELLS_COLUMNS
from ctc_qpcr.study_options import normalisation_options
from ctc_qpcr.tables import tsv_parts

#: rows of a normalised table formatted at a time: the text of one slice in memory, not of the
#: whole table (1,000 chips: 4.1 M rows a strategy; issue 17)
WRITE_ROWS = 1 << 19


def read_cells(path):
    """The Cells table's columns normalisation reads, text ids as categoricals (one string per
    distinct id, not per row: issue 17, the 1,000-chip peak)."""
    schema = pq.read_schema(path)
    columns = [c for c in CELLS_COLUMNS if c in schema.names]
    is_text = (pa.types.is_string, pa.types.is_large_string)
    text = [c for c in columns if any(is_text_type(schema.field(c).type) for is_text_type in is_text)]
    table = pq.read_table(path, columns=columns, read_dictionary=text)
    # the Arrow buffers are released column by column as pandas takes them: one copy at a time
    cells = table.to_pandas(split_blocks=True, self_destruct=True)
    del table
    pa.default_memory_pool().release_unused()  # what Arrow's allocator keeps back goes to the system
    return cells


def write_sliced(df, path, rows: int = WRITE_ROWS) -> None:
    """``write_tsv(df, path)``, the same bytes, formatted ``rows`` rows at a time."""
    with tsv_parts(path) as add:
        add(df.iloc[:rows])
        for start in range(rows, len(df), rows):
            add(df.iloc[start : start + rows])


def main(smk, log):
    options = normalisation_options(smk.params.settings)
    samples = sheets.samples_frame(sheets.load_samples(smk.input.samples))
    assays = sheets.assays_frame(sheets.load_assays(smk.input.assays))
    paths = zip(smk.output.normalised, smk.output.matrices, strict=True)
    outputs = dict(zip(options.strategies, paths, strict=False))

    def write_strategy(strategy, table, wide):
        # written as soon as the strategy is done: one long table in memory at a time
        path, matrix_path = outputs[strategy]
        write_sliced(table, path)
        write_sliced(wide.reset_index(), matrix_path)
        log.info("%s: %d rows -> %s", strategy, len(table), path)

    result = normalise_study(
        functools.partial(read_cells, smk.input.cq),  # read and freed inside normalise_study
        samples,
        assays,
        options,
        efficiency_scaled=smk.params.efficiency_scaled,
        on_strategy=write_strategy,
    )
    for note in result.get("notes", []):
        log.info("%s", note)
    write_tables(result, smk.output, ["genorm", "genorm_v", "normfinder", "chosen", "agreement", "excluded"])


run(main, snakemake)  # noqa: F821
