"""Writing tables that are safe, deterministic and atomic.

* Deterministic: floats are written with a fixed repr (``%.10g``), rows are
  written in the order given (callers sort), no index, no timestamps.
* Safe to open in a spreadsheet: any text cell that starts with ``=``, ``+``,
  ``-`` or ``@`` (or a tab / carriage return) and is not a number is prefixed
  with a single quote so it cannot become a formula (OWASP CSV injection).
* Atomic: data go to a temporary file in the same folder which is renamed over
  the target only when complete, so a killed job never leaves a partial table
  that a later run would trust (a killed writer's hidden ``.<name>.*.part``
  file is removed by the next write of that table). The table gets the
  permissions of a normally created file (umask), not mkstemp's 0600.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from .errors import DISK_FULL, disk_full

FLOAT_FORMAT = "%.10g"
# _float_text: the range where %.10g prints fixed notation, and how close to a tie is "close"
_FIXED_LOW, _FIXED_HIGH = 1.0001e-4, 9.9999e9
_TIE_MARGIN = 1e-5
_POW10 = 10.0 ** np.arange(14)
_FLOAT_BLOCK = 1 << 19  # values formatted at a time (a chunk each): 4 MB numpy temporaries
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_PATTERN = "^[=+\\-@\t\r]"  # the same test as a regular expression (the tests' oracle)
_FORMULA_BYTE = np.zeros(256, dtype=bool)
_FORMULA_BYTE[[ord(c) for c in _FORMULA_START]] = True


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def escape_formula(value: object) -> object:
    """Return ``value`` made safe against spreadsheet formula injection."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _is_number(value):
        return "'" + value
    return value


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` on success."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Left-overs of a writer that was killed (SIGKILL skips the clean-up below):
    # never trusted (the target was not replaced), removed on the next write.
    for stale in target.parent.glob(f".{glob.escape(target.name)}.*.part"):
        stale.unlink(missing_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    except OSError as exc:
        if exc.errno in DISK_FULL:
            raise disk_full(str(path)) from None
        raise
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp creates the file 0600; give it the permissions of a normally created file.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in DISK_FULL:
            # "disk full" names the table, not a hidden temporary file or nothing at all
            raise disk_full(str(path)) from None
        raise


def _risky_text(series: pd.Series) -> np.ndarray | None:
    """Cells of an all-text column that start with a formula character (:func:`_formula_starts`
    of the column in Arrow); None when the column holds non-text values."""
    try:
        text = pa.array(series.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    return _formula_starts(text)


def _safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Copy of ``df`` with formula-like text cells escaped (vectorised: only the
    cells that start with a formula character are looked at one by one)."""
    out = df
    for col in df.columns:
        series = df[col]
        if isinstance(series.dtype, pd.CategoricalDtype):
            safe = _safe_categories(series)
            if safe is not series:
                out = df.copy() if out is df else out
                out[col] = safe
            continue
        if not (series.dtype == object or pd.api.types.is_string_dtype(series)):
            continue
        risky = _risky_text(series)
        if risky is None:  # mixed values: only the text cells can be formulas
            text = series.astype(str)
            risky = (text.str.startswith(_FORMULA_START) & series.map(type).eq(str)).to_numpy()
        if risky.any():
            if out is df:
                out = df.copy()
            out.loc[risky, col] = series[risky].map(escape_formula)
    if any(str(c).startswith(_FORMULA_START) for c in df.columns):
        out = out.copy() if out is df else out
        out.columns = [escape_formula(str(c)) for c in df.columns]
    return out


def _safe_categories(series: pd.Series) -> pd.Series:
    """A categorical column with its formula-like text categories escaped (once per category)."""
    cats = series.cat.categories
    if not (cats.dtype == object or pd.api.types.is_string_dtype(cats)):
        return series
    escaped = [escape_formula(c) for c in cats]
    if all(e is c for e, c in zip(escaped, cats, strict=True)):
        return series
    if len(set(escaped)) < len(escaped):  # an escaped name collides with another: text values
        return series.astype(object).map(escape_formula)
    return series.cat.rename_categories(escaped)


def _rounded_fixed(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each value rounded to 10 significant digits, and where that is certain to be what
    ``%.10g`` prints in fixed notation (magnitude 1e-4 to 1e10, not within 1e-5 of a
    rounding tie): there the nearest double to the rounded decimal is m / 10^k, exact
    because m < 10^10 and 10^k (k ≤ 13) are exact doubles."""
    mag = np.abs(values)
    with np.errstate(invalid="ignore"):
        ok = (mag >= _FIXED_LOW) & (mag < _FIXED_HIGH)
    mag = np.where(ok, mag, 1.0)
    exponent = np.floor(np.log10(mag)).astype(np.int64)
    scaled = mag * _POW10[np.clip(9 - exponent, 0, 13)]
    exponent += (scaled >= 1e10).astype(np.int64) - (scaled < 1e9).astype(np.int64)  # log10 near 10^n
    digits = 9 - exponent
    ok &= (digits >= 0) & (digits <= 13)
    scale = _POW10[np.clip(digits, 0, 13)]
    scaled = mag * scale  # correctly rounded: within half an ulp (< 1e-6) of the exact product
    ok &= np.abs(scaled - np.floor(scaled) - 0.5) > _TIE_MARGIN
    return np.copysign(np.floor(scaled + 0.5) / scale, values), ok


def _float_text_slow(values: np.ndarray) -> pa.Array:
    """``FLOAT_FORMAT`` by Python's formatter, once per distinct bit pattern (-0.0 stays "-0")."""
    codes, uniques = pd.factorize(values.view(np.int64))
    text = pa.array(np.char.mod(FLOAT_FORMAT, uniques.view(np.float64)), type=pa.string())
    return text.take(pa.array(codes, mask=np.isnan(values)))


def _float_text(values: np.ndarray) -> pa.Array | pa.ChunkedArray:
    """``FLOAT_FORMAT`` of each value (null for NaN). Missing values, and runs of one value
    (a plate's offset, a sample's normaliser), are not formatted one by one: each run once.
    More than ``_FLOAT_BLOCK`` values: a chunked array, a block at a time."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    if len(values) > _FLOAT_BLOCK:  # numpy's temporaries small enough to be reused, not new pages
        blocks = range(0, len(values), _FLOAT_BLOCK)
        return pa.chunked_array([_float_text(values[i : i + _FLOAT_BLOCK]) for i in blocks], pa.string())
    bits = values.view(np.int64)
    formatted = np.ones(len(values), dtype=bool)  # the first value of each run of equal values
    np.not_equal(bits[1:], bits[:-1], out=formatted[1:])
    missing = np.isnan(values)
    formatted &= ~missing
    if 4 * np.count_nonzero(formatted) >= 3 * len(values):
        return _float_text_each(values)
    run = np.cumsum(formatted) - 1
    return _float_text_each(values[formatted]).take(pa.array(run, mask=missing))


def _float_text_each(values: np.ndarray) -> pa.Array:
    """:func:`_float_text` value by value. Values printed in fixed notation are
    rounded in numpy and printed by Arrow's shortest round-trip cast, which gives the same
    digits (a ≤ 10-digit decimal is the shortest that reads back as its nearest double);
    the rest (zero, inf, below 1e-4, from 1e10, rounding ties) go through ``%``.
    tests/test_tables.py compares both on a million values of every magnitude."""
    rounded, fast = _rounded_fixed(values)
    slow = ~fast & ~np.isnan(values)
    text = pc.cast(pa.array(np.where(fast, rounded, np.nan), from_pandas=True), pa.string())
    if slow.any():
        text = pc.replace_with_mask(text, pa.array(slow), _float_text_slow(values[slow]))
    return text


def _category_text(series: pd.Series) -> pa.Array | None:
    """A categorical column of text as Arrow strings, each category converted once and
    taken by code (missing = null); None when a category is not text."""
    try:
        categories = pa.array(series.cat.categories.to_numpy(), type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    codes = series.cat.codes.to_numpy()
    return categories.take(pa.array(codes, mask=codes < 0))


def _arrow_text(df: pd.DataFrame, arrow: pa.Table | None = None) -> pa.Table | None:
    """``df`` as the Arrow table of exactly what pandas' ``to_csv`` writes in each cell
    (floats as ``FLOAT_FORMAT``, missing as empty); None for a column type it does not cover.
    ``arrow``: ``df`` already converted (``pa.Table.from_pandas``): its string columns are reused."""
    if df.shape[1] < 2 or len(set(map(str, df.columns))) < df.shape[1]:
        return None  # a lone empty cell is quoted by the csv module; duplicate names
    columns = []
    for col in df.columns:
        series = df[col]
        dtype = series.dtype
        if isinstance(dtype, pd.CategoricalDtype) and dtype.categories.dtype == object:
            text = _category_text(series)
            if text is None:
                return None
            columns.append(text)
            continue
        if not isinstance(dtype, np.dtype):
            return None  # pandas extension types (nullable, categorical of numbers): pandas writes them
        if dtype.kind == "O" and arrow is not None and pa.types.is_string(arrow.column(len(columns)).type):
            columns.append(arrow.column(len(columns)).combine_chunks())  # the same text, converted once
        elif dtype.kind == "O":
            try:
                columns.append(pa.array(series.to_numpy(), type=pa.string(), from_pandas=True))
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                return None
        elif dtype.kind == "f":
            columns.append(_float_text(series.to_numpy()))
        elif dtype.kind in "iu":
            columns.append(pa.array(series.to_numpy()))
        elif dtype.kind == "b":
            columns.append(pc.if_else(pa.array(series.to_numpy()), "True", "False"))  # no numpy text
        else:
            return None
    return pa.Table.from_arrays(columns, names=[str(c) for c in df.columns])


def _formula_like(table: pa.Table, df: pd.DataFrame) -> bool:
    """True when a column name or a text cell of ``df`` starts with a formula character,
    looked up in ``table`` (:func:`_arrow_text` of ``df``, its text columns converted once):
    ``df`` then goes through :func:`_safe_frame`. Number columns are never escaped."""
    if any(str(c).startswith(_FORMULA_START) for c in df.columns):
        return True
    for column, dtype in zip(table.columns, df.dtypes, strict=True):
        text = isinstance(dtype, pd.CategoricalDtype) or (isinstance(dtype, np.dtype) and dtype.kind == "O")
        if text and any(_formula_starts(chunk).any() for chunk in column.chunks):
            return True
    return False


def _write_arrow(table: pa.Table, header: list[str], path) -> bool:
    """Write a header line (csv module quoting) and ``table`` unquoted; False when a
    cell holds a tab, quote or line break (pandas quotes those: the caller falls back)."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, delimiter="\t", lineterminator="\n").writerow(header)
    try:
        with open(path, "ab") as handle:
            pcsv.write_csv(
                table, handle, pcsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
            )
    except pa.ArrowInvalid:
        return False
    return True


def write_tsv(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``df`` as a tab-separated table, atomically and deterministically.

    The bytes are those of pandas ``to_csv(sep="\\t", float_format=FLOAT_FORMAT,
    na_rep="")``; the common case (text, float, integer and bool columns, no cell
    that needs quoting) is written by Arrow's CSV writer, which is several times faster.
    """
    with atomic_path(path) as tmp:
        _write_tsv_to(df, tmp)


def _write_tsv_to(df: pd.DataFrame, tmp, table: pa.Table | None = None) -> None:
    """The body of :func:`write_tsv`, into the temporary file ``tmp``. ``table``: ``df`` as
    :func:`_arrow_text` gives it, when already made."""
    table = _arrow_text(df) if table is None else table  # nothing to escape (the usual case): converted once
    if (
        table is not None
        and not _formula_like(table, df)
        and _write_arrow(table, list(map(str, df.columns)), tmp)
    ):
        return
    safe = _safe_frame(df)
    table = _arrow_text(safe)
    if table is not None and _write_arrow(table, list(map(str, safe.columns)), tmp):
        return
    safe.to_csv(tmp, sep="\t", index=False, float_format=FLOAT_FORMAT, na_rep="", lineterminator="\n")


def has_default_index(df: pd.DataFrame) -> bool:
    """True when ``df``'s index is 0..n-1 (a RangeIndex from 0 by 1): no reset needed."""
    index = df.index
    return isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1


def write_parquet(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``df`` as Parquet (values unescaped: Parquet is not a spreadsheet)."""
    frame = df if has_default_index(df) else df.reset_index(drop=True)
    if not _plain_columns(frame):  # pandas' own conversion (and its messages)
        with atomic_path(path) as tmp:
            frame.to_parquet(tmp, index=False, compression="zstd")
        return
    with atomic_path(path) as tmp:
        pq.write_table(_arrow_table(frame), tmp, compression="zstd")


def _plain_columns(frame: pd.DataFrame) -> bool:
    """Text column names and numpy dtypes only: :func:`_arrow_table` converts it as pandas does."""
    return all(isinstance(c, str) for c in frame.columns) and all(
        isinstance(t, np.dtype) for t in frame.dtypes
    )


def _arrow_table(frame: pd.DataFrame) -> pa.Table:
    """``frame`` (index 0..n-1) as pandas' ``to_parquet(index=False)`` converts it: ``Table.from_pandas``
    with its ``attrs`` in the schema's metadata. One thread: the chip jobs share the cores, and
    converting a column in a worker thread costs more CPU than it saves at these sizes."""
    table = pa.Table.from_pandas(frame, preserve_index=False, nthreads=1)
    if frame.attrs:
        table = table.replace_schema_metadata(
            {**table.schema.metadata, "PANDAS_ATTRS": json.dumps(frame.attrs)}
        )
    return table


def write_parquet_tsv(
    df: pd.DataFrame,
    parquet_path: str | os.PathLike,
    tsv_path: str | os.PathLike,
    arrow: tuple[pa.Table, pa.Table | None] | None = None,
) -> tuple[pa.Table, pa.Table | None] | None:
    """:func:`write_parquet` and :func:`write_tsv` of one frame, the same bytes each writes
    (pandas' ``to_parquet`` is ``Table.from_pandas`` + ``write_table``, its ``attrs`` in the
    schema's metadata), with the text columns converted to Arrow once for both files.

    Returns ``df`` in Arrow: its table and its cells' text (:func:`_arrow_text`; None for a column
    type it does not cover), None when pandas wrote it. ``arrow``: that pair, made already."""
    frame = df if has_default_index(df) else df.reset_index(drop=True)
    if not _plain_columns(frame):
        write_parquet(frame, parquet_path)
        write_tsv(frame, tsv_path)
        return None
    table = _arrow_table(frame) if arrow is None else arrow[0]
    with atomic_path(parquet_path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    text = _arrow_text(frame, table) if arrow is None else arrow[1]
    with atomic_path(tsv_path) as tmp:
        _write_tsv_to(frame, tmp, text)
    return table, text


def is_text(kind: pa.DataType) -> bool:
    """True for an Arrow text type (string or large_string)."""
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _formula_starts(column: pa.Array) -> np.ndarray:
    """Per cell of a text column: does it start with a formula character? Read from each
    cell's first byte in the Arrow buffers (the characters are ASCII: in UTF-8 a byte of
    their value is always that character)."""
    _, offsets, data = column.buffers()
    kind = np.int64 if pa.types.is_large_string(column.type) else np.int32
    start = np.frombuffer(offsets, dtype=kind)[column.offset : column.offset + len(column) + 1]
    if data is None or not len(data):
        return np.zeros(len(column), dtype=bool)
    filled = start[1:] > start[:-1]
    first = np.frombuffer(data, dtype=np.uint8)[np.where(filled, start[:-1], 0)]
    risky = filled & _FORMULA_BYTE[first]
    if column.null_count:
        risky &= column.is_valid().to_numpy(zero_copy_only=False)
    return risky


def _escaped_text(column: pa.Array) -> pa.Array:
    """A text column with its formula-like cells escaped (:func:`escape_formula`, one by one
    only for the cells that start with a formula character)."""
    starts = _formula_starts(column)
    if not starts.any():
        return column
    risky = pa.array(starts)
    escaped = [escape_formula(value) for value in column.filter(risky).to_pylist()]
    return pc.replace_with_mask(column, risky, pa.array(escaped, type=column.type))


def cell_text(column: pa.Array | pa.ChunkedArray) -> pa.Array | None:
    """What :func:`write_tsv` writes in each cell of an Arrow column (as ``to_pandas()`` gives
    it), as Arrow text (null: an empty cell; integers stay integers, written as such): floats
    as ``FLOAT_FORMAT``, formula-like text escaped, a dictionary's words escaped once. None for
    a type not covered (integers or booleans with missing values: pandas makes them floats or
    objects)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    kind = column.type
    if pa.types.is_dictionary(kind):
        words = column.dictionary
        if not is_text(words.type) or words.null_count:
            return None
        return _escaped_text(words).take(column.indices)
    if is_text(kind):
        return _escaped_text(column)
    if pa.types.is_floating(kind):
        return _float_text(column.to_numpy(zero_copy_only=False))
    if column.null_count:
        return None
    if pa.types.is_integer(kind):
        return column
    if pa.types.is_boolean(kind):
        return pc.if_else(column, "True", "False")
    return None


def _write_lines(table: pa.Table, handle) -> bool:
    """Append ``table``'s cells to the binary file ``handle`` as tab-separated lines, unquoted;
    False, with nothing appended, when a cell holds a tab, quote or line break (pandas quotes
    those)."""
    start = handle.tell()
    try:
        pcsv.write_csv(
            table, handle, pcsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
        )
    except pa.ArrowInvalid:
        handle.seek(start)
        handle.truncate()
        return False
    return True


def _write_arrow_body(table: pa.Table, handle) -> bool:
    """Append the data lines :func:`write_tsv` writes for ``table.to_pandas()``, made in Arrow;
    False, with nothing appended, where pandas has to write them."""
    names = table.column_names
    if len(names) < 2 or len(set(names)) < len(names):
        return False  # a lone empty cell is quoted by the csv module; duplicate names
    columns = [cell_text(column) for column in table.columns]
    if any(column is None for column in columns):
        return False
    return _write_lines(pa.Table.from_arrays(columns, names=names), handle)


def _write_body(df: pd.DataFrame | pa.Table, handle) -> None:
    """Append the data lines :func:`write_tsv` writes for ``df`` (no header) to ``handle``; an
    Arrow table: for its ``to_pandas()``."""
    if isinstance(df, pa.Table):
        if _write_arrow_body(df, handle):
            return
        df = df.to_pandas()
    safe = _safe_frame(df)
    table = _arrow_text(safe)
    if table is not None and _write_lines(table, handle):
        return
    text = safe.to_csv(
        None, sep="\t", index=False, header=False, float_format=FLOAT_FORMAT, na_rep="", lineterminator="\n"
    )
    handle.write(text.encode("utf-8"))


@contextmanager
def tsv_parts(path: str | os.PathLike) -> Iterator:
    """Yield ``add(df)``: frames with the same columns and dtypes, added in order, become
    one table whose bytes are :func:`write_tsv` of their concatenation (atomic; one
    frame in memory at a time). The first frame added gives the header. A frame may also be
    an Arrow table (written as its ``to_pandas()``), and ``add(table, formatted=True)`` takes
    an Arrow table of cell text as :func:`cell_text` gives it (floats already formatted; its
    cells must need no quoting: else ``ValueError``)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        started = []

        def add(df: pd.DataFrame | pa.Table, formatted: bool = False) -> None:
            if not started:
                names = df.column_names if isinstance(df, pa.Table) else df.columns
                header = io.StringIO()
                csv.writer(header, delimiter="\t", lineterminator="\n").writerow(
                    [escape_formula(str(c)) for c in names]
                )
                handle.write(header.getvalue().encode("utf-8"))
                started.append(True)
            if not len(df):
                return
            if not formatted:
                _write_body(df, handle)
            elif not _write_lines(df, handle):
                raise ValueError(f"{path}: a formatted cell needs quoting")

        yield add


@contextmanager
def parquet_parts(path: str | os.PathLike) -> Iterator:
    """Yield ``add(df)``: frames with the same columns and types, added in order, become
    one Parquet table (a row group or more per frame; read back it equals
    :func:`write_parquet` of their concatenation). The first non-empty frame gives the
    schema; empty frames add nothing (all of them empty: the first is written). A frame
    may also be an Arrow table, written as it is (no pandas round trip)."""
    with atomic_path(path) as tmp:
        writer, empty = [], []

        def add(df: pd.DataFrame | pa.Table) -> None:
            if not len(df):
                empty.append(df)
                return
            if isinstance(df, pa.Table):
                table = df
            else:
                table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
            if not writer:
                writer.append(pq.ParquetWriter(tmp, table.schema, compression="zstd"))
            writer[0].write_table(table.cast(writer[0].schema))

        try:
            yield add
        finally:
            if writer:
                writer[0].close()
        if not writer:
            if not empty:
                raise ValueError(f"{path}: no table was added")
            if isinstance(empty[0], pa.Table):
                pq.write_table(empty[0], tmp, compression="zstd")
            else:
                empty[0].reset_index(drop=True).to_parquet(tmp, index=False, compression="zstd")


def write_text(text: str, path: str | os.PathLike) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def read_tsv(path: str | os.PathLike, **kwargs) -> pd.DataFrame:
    """Read a table written by :func:`write_tsv` (keeps text as text)."""
    return pd.read_csv(path, sep="\t", keep_default_na=True, na_values=[""], **kwargs)


def finite_or_nan(values) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    arr[~np.isfinite(arr)] = np.nan
    return arr


def concat_tsv_files(paths, path: str | os.PathLike, block_size: int = 1 << 22) -> int:
    """Concatenate TSV files with identical headers into ``path`` (atomic), byte for byte.

    Used to merge per-batch tables of millions of rows without parsing them.
    Returns the number of data rows written. Raises ``ValueError`` when the
    headers differ.
    """
    header = None
    rows = 0
    buffer = bytearray(block_size)
    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        for source in paths:
            with open(source, "rb") as handle:
                first = handle.readline()
                if header is None:
                    header = first
                    out.write(first)
                elif first != header:
                    raise ValueError(f"{source}: its header differs from {paths[0]}'s; cannot concatenate")
                rows += _copy_lines(handle, out, buffer)
    return rows


def _copy_lines(handle, out, buffer: bytearray) -> int:
    """Copy the rest of ``handle`` to ``out`` through ``buffer`` (one block of memory, reused:
    no new pages per block); the number of lines copied, a last line without its line end ended."""
    view, last = memoryview(buffer), b"\n"
    lines = 0
    while size := handle.readinto(buffer):
        lines += buffer.count(b"\n", 0, size)
        out.write(view[:size])
        last = buffer[size - 1 : size]
    if last != b"\n":  # a file without a final line end
        out.write(b"\n")
        lines += 1
    return lines
