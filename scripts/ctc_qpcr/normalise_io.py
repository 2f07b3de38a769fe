"""Reading the Cells table for normalisation and writing the normalised tables in slices
(issue 17: the normalise job at 1,000 chips within its memory budget)."""

from __future__ import annotations

import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .normalise_cells import CELLS_COLUMNS
from .tables import tsv_parts

#: rows of a normalised table formatted at a time: the text of one slice in memory, not of the
#: whole table (1,000 chips: 4.1 M rows a strategy)
WRITE_ROWS = 1 << 19


def read_cells(path: str | os.PathLike) -> pd.DataFrame:
    """The Cells table's columns normalisation reads, text ids as categoricals (one string per
    distinct id, not per row)."""
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


def write_sliced(df: pd.DataFrame, path: str | os.PathLike, rows: int = WRITE_ROWS) -> None:
    """``tables.write_tsv(df, path)``, the same bytes, formatted ``rows`` rows at a time.

    A slice's categorical columns keep only the categories it uses: the writer checks every
    category of a column for formula-like text, and a slice of a sample-major table holds
    an eighth of the samples (1,000 chips: 46,000 sample names checked per slice otherwise)."""
    categorical = [
        c
        for c in df.columns
        if isinstance(c, str)
        and not df.columns.has_duplicates
        and isinstance(df[c].dtype, pd.CategoricalDtype)
    ]

    def part(start: int) -> pd.DataFrame:
        piece = df.iloc[start : start + rows]
        if not categorical:
            return piece
        return piece.assign(**{c: piece[c].cat.remove_unused_categories() for c in categorical})

    with tsv_parts(path) as add:
        add(part(0))
        for start in range(rows, len(df), rows):
            add(part(start))
