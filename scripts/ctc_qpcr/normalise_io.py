"""Reading the Cells table for normalisation and writing the normalised tables in slices
(issue 17: the normalise job at 1,000 chips within its memory budget)."""

from __future__ import annotations

import functools
import os
import tempfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .normalise_cells import CELLS_COLUMNS
from .study_cells import study_cells
from .tables import cell_text, is_text, tsv_parts, write_parquet

#: rows of a normalised table formatted at a time: the text of one slice in memory, not of the
#: whole table (1,000 chips: 4.1 M rows a strategy)
WRITE_ROWS = 1 << 19


def read_cells(path: str | os.PathLike) -> pd.DataFrame:
    """The Cells table's columns normalisation reads, text ids as categoricals (one string per
    distinct id, not per row)."""
    columns, text = _cells_columns(pq.read_schema(path))
    return _cells_frame(pq.read_table(path, columns=columns, read_dictionary=text))


def read_study_cells(paths, on_panel_mismatch: str) -> pd.DataFrame:
    """:func:`read_cells` of the Cells table ``merge_batches`` writes, taken from the batches'
    ``cells.parquet`` (``paths``) instead (:mod:`ctc_qpcr.study_cells`: the same cells, the
    same panel check): normalise runs beside merge_batches, not after it."""
    study = study_cells(paths, on_panel_mismatch)
    if study.frame is not None:  # the whole study in one frame: read as the merge writes it
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "cq.parquet")
            write_parquet(study.frame, path)
            del study
            return read_cells(path)
    columns, text = _cells_columns(pq.read_schema(study.batches[0][1]))
    tables = list(study.tables(columns, dictionary=text))
    table = pa.concat_tables(tables)
    del tables
    return _cells_frame(table)


def _cells_columns(schema: pa.Schema) -> tuple[list[str], list[str]]:
    """The Cells table's columns normalisation reads, and those of them that hold text."""
    columns = [c for c in CELLS_COLUMNS if c in schema.names]
    text = [c for c in columns if is_text(schema.field(c).type)]
    return columns, text


def _cells_frame(table: pa.Table) -> pd.DataFrame:
    """``table`` as a frame, its Arrow buffers released column by column as pandas takes
    them (one copy at a time); the caller must hold no other reference to the table."""
    cells = table.to_pandas(split_blocks=True, self_destruct=True)
    del table
    pa.default_memory_pool().release_unused()  # what Arrow's allocator keeps back goes to the system
    return cells


def write_sliced(
    df: pd.DataFrame, path: str | os.PathLike, rows: int = WRITE_ROWS, text: dict | None = None
) -> None:
    """``tables.write_tsv(df, path)``, the same bytes, formatted ``rows`` rows at a time, in
    Arrow: a categorical column's words are escaped once and taken by code (no pandas slice).
    ``text``: {column: the cells' text of the whole column, :func:`tables.cell_text`, or a
    function (start, stop) giving that of those rows} where it is made beforehand (shared
    with another table)."""
    parts = _column_parts(df, text or {})
    if parts is None:  # a column type or name the Arrow writer does not cover: pandas slices
        _write_frame_slices(df, path, rows)
        return
    with tsv_parts(path) as add:
        for start in range(0, max(len(df), 1), rows):
            stop = min(start + rows, len(df))
            add(pa.table({name: part(start, stop) for name, part in parts.items()}), formatted=True)


def _column_parts(df: pd.DataFrame, text: dict) -> dict | None:
    """{column: part(start, stop) -> the cells' text of those rows}; None when a column (or
    the column names) needs the pandas writer, or a text cell would need quoting."""
    names = list(df.columns)
    if len(names) < 2 or not all(isinstance(c, str) for c in names) or len(set(names)) < len(names):
        return None
    parts = {}
    for name in names:
        if name in text:
            parts[name] = text[name] if callable(text[name]) else functools.partial(_slice_of, text[name])
            continue
        part = _column_part(df[name])
        if part is None:
            return None
        parts[name] = part
    return parts


def _slice_of(column: pa.Array, start: int, stop: int) -> pa.Array:
    return column.slice(start, stop - start)


def _column_part(series: pd.Series):
    """part(start, stop) of one column (see :func:`_column_parts`), or None."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        words = _words(series.cat.categories.to_numpy())
        codes = series.cat.codes.to_numpy()
        if words is None:
            return None
        return lambda start, stop: words.take(pa.array(codes[start:stop], mask=codes[start:stop] < 0))
    if isinstance(dtype, np.dtype) and dtype.kind == "O":
        words = _words(series.to_numpy())
        return None if words is None else functools.partial(_slice_of, words)
    if not isinstance(dtype, np.dtype) or dtype.kind not in "fiub":
        return None
    values = series.to_numpy()
    return lambda start, stop: cell_text(pa.array(values[start:stop]))


def _words(values: np.ndarray) -> pa.Array | None:
    """Text values (categories or an object column) as escaped cell text; None when a value is
    not text or a cell would need quoting (tab, quote, line break: the pandas writer's case)."""
    try:
        words = pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if pc.any(pc.match_substring_regex(words, '[\t\n\r"]')).as_py():
        return None
    return cell_text(words)


def _write_frame_slices(df: pd.DataFrame, path: str | os.PathLike, rows: int) -> None:
    """:func:`write_sliced` through pandas slices. A slice's categorical columns keep only the
    categories it uses: the writer checks every category of a column for formula-like text."""
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


def write_strategy(table: pd.DataFrame, wide: pd.DataFrame, paths: tuple, shared: dict) -> None:
    """A strategy's long table and ΔCq matrix (``paths``), each with ``write_tsv``'s bytes. The
    ΔCq values are formatted once for both tables, and the Cq column (the same in every
    strategy) once per job: ``shared`` keeps it from one strategy to the next."""
    path, matrix_path = paths
    n_samples = wide.shape[0]
    by_gene = wide.to_numpy(dtype=float).T.ravel()  # gene-major: a matrix column is a slice
    dcq = cell_text(pa.array(by_gene))
    text = {}
    if table["cq"].dtype == np.float64:
        text["cq"] = _cq_text(table["cq"].to_numpy(), shared)
    rows = _matrix_positions(table, wide, by_gene)
    if rows is not None:  # taken a slice at a time: the text of one slice in memory
        text["dcq"] = lambda start, stop: dcq.take(pa.array(rows[start:stop]))
    write_sliced(table, path, text=text)
    columns = {gene: dcq.slice(g * n_samples, n_samples) for g, gene in enumerate(wide.columns)}
    write_sliced(wide.reset_index(), matrix_path, text=columns)


def _cq_text(values: np.ndarray, shared: dict) -> pa.Array:
    """The Cq column's cell text, reused when the previous strategy's Cq were the same values."""
    previous = shared.get("cq")
    if previous is None or not np.array_equal(previous[0].view(np.int64), values.view(np.int64)):
        shared["cq"] = (values, cell_text(pa.array(values)))
    return shared["cq"][1]


def _matrix_positions(table: pd.DataFrame, wide: pd.DataFrame, by_gene: np.ndarray) -> np.ndarray | None:
    """Each long row's cell in the ΔCq matrix flattened gene by gene (``by_gene``), found by
    the rows' sample and gene codes; None unless the rows' ΔCq are exactly those values."""
    sample, gene, dcq = table["sample"], table["gene"], table["dcq"]
    if (
        not all(isinstance(ids.dtype, pd.CategoricalDtype) for ids in (sample, gene))
        or dcq.dtype != np.float64
    ):
        return None
    if not (sample.cat.categories.equals(wide.index) and gene.cat.categories.equals(wide.columns)):
        return None
    rows = gene.cat.codes.to_numpy(np.int64) * wide.shape[0] + sample.cat.codes.to_numpy(np.int64)
    if (rows < 0).any() or not np.array_equal(by_gene[rows].view(np.int64), dcq.to_numpy().view(np.int64)):
        return None
    return rows
