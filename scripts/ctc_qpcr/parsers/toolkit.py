"""The building blocks every export reader shares (one of each).

* the Wells contract: :data:`WELL_COLUMNS` and :func:`wells_frame`, which every
  reader uses to assemble its rows (``docs/data-model.md`` section 1);
* one "no value" vocabulary: :data:`NO_VALUE_TOKENS` and
  :data:`NO_AMPLIFICATION_VALUE` (999);
* one number parser: :func:`to_numbers` (text cells → floats, decimal point or
  comma), with :func:`cq_numbers` / :func:`invalid_cq` / :func:`parse_cq_column`
  on top of it for Cq cells and :func:`parse_number` for one value;
* delimited tables: splitting a header line, finding a header, reading a table
  body with pandas' C engine while keeping each row's line number and checking
  that no row was cut off (:func:`read_block`), the decimal mark of a file;
* :func:`check_well_names`: the sample and assay names of a Wells table hold no
  invisible or look-alike character (the sheets' check, reused);
* (the lab vocabulary readers share — sample types, well ids unique per plate,
  replicate groups — is in :mod:`.vocabulary`).

Each reader module (``biomark``, ``quantstudio``, ``cfx``, ``sds``, ``lc480``,
``rdml``, ``table``, ``excel``) keeps only what is particular to its instrument.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import InputError
from ..sheet_text import odd_character
from .arrow_csv import unquoted_cells
from .text import Text

# ---------------------------------------------------------------------------
# The Wells contract
# ---------------------------------------------------------------------------

#: Columns every reader returns, in this order (``plate`` is added by the registry).
WELL_COLUMNS = (
    "run",
    "well",
    "sample",
    "assay",
    "cq",
    "cq_raw",
    "quality",
    "quality_threshold",
    "call",
    "sample_type",
    "quantity",
    "instrument_flags",
    "line",
)
#: Columns a reader adds only when its export has them.
OPTIONAL_COLUMNS = ("tm", "tm_out", "peak_ratio", "calibrated_rconc")
TEXT_COLUMNS = (
    "run",
    "well",
    "sample",
    "assay",
    "cq_raw",
    "call",
    "sample_type",
    "instrument_flags",
)
FLOAT_COLUMNS = ("cq", "quality", "quality_threshold", "quantity") + OPTIONAL_COLUMNS

#: Cell texts (compared stripped, without quotes, lower case) that mean "no value":
#: no amplification, not analysed, not calculated. The one vocabulary of every reader.
NO_VALUE_TOKENS = frozenset({"", "999", "undetermined", "no ct", "no cq", "n/a", "nan", "na", "-"})
#: How the no-value marks are listed in messages.
NO_VALUE_WORDS = "999, Undetermined, No Ct, No Cq, N/A, NaN, NA, -, empty"
#: BioMark (and some others) write this number when there is no amplification.
NO_AMPLIFICATION_VALUE = 999.0

SPACES = "whitespace"  # delimiter name for tables separated by runs of spaces
DELIMITER_NAMES = {"\t": "tab", ",": "comma", ";": "semicolon", SPACES: "spaces"}

_POINT_NUMBER = re.compile(r'^\s*"?[+-]?\d*\.\d+(?:[eE][+-]?\d+)?"?\s*$')
_COMMA_NUMBER = re.compile(r'^\s*"?[+-]?\d*,\d+(?:[eE][+-]?\d+)?"?\s*$')
_SPACE_FIELDS = re.compile(r'"[^"]*"|[^\s"]+')


def wells_frame(n: int, *, stripped: bool = False, **columns) -> pd.DataFrame:
    """Assemble the Wells columns for ``n`` rows; columns not given get their empty value.

    Text columns default to ``""``, numbers to NaN; optional columns (tm, ...)
    appear only when given. Text cells are stripped of outer white space unless
    ``stripped`` says they already are (cells of a :class:`Block`).
    """
    out = {}
    for name in WELL_COLUMNS + OPTIONAL_COLUMNS:
        value = columns.get(name)
        if value is None:
            if name in OPTIONAL_COLUMNS:
                continue
            value = "" if name in TEXT_COLUMNS else np.nan
        text = name in TEXT_COLUMNS
        dtype = object if text else ("int64" if name == "line" else "float64")
        if np.ndim(value) == 0:
            out[name] = np.full(n, str(value).strip() if text else value, dtype=dtype)
            continue
        value = value.to_numpy() if isinstance(value, pd.Series) else np.asarray(value)
        if text:
            out[name] = value.astype(object, copy=False) if stripped else _stripped_text(value)
        else:
            out[name] = value.astype(dtype)
    return pd.DataFrame(out, index=pd.RangeIndex(n), copy=False)  # a block per column: columns are added next


_NAME_COLUMNS = ("sample", "assay")


def check_well_names(wells: pd.DataFrame, path: str) -> None:
    """InputError for the first sample or assay name holding an invisible or look-alike character.

    The check of the sheets (:func:`ctc_qpcr.sheet_text.odd_character`), on the
    distinct names only: a ``P01_T0`` typed with a Cyrillic ``Т`` in the
    instrument software would otherwise be an unknown sample. Names the file,
    the line of the first well carrying the name (RDML: none), the column, the
    character and its code point.
    """
    for column in _NAME_COLUMNS:
        names = pd.unique(wells[column].to_numpy(dtype=object))
        plain = pd.Series(names, dtype=object).str.match(r"^[\x20-\x7e]*$").to_numpy(dtype=bool)
        for name in names[~plain]:
            odd = odd_character(str(name), name_like=True)
            if not odd:
                continue
            first = int(np.argmax(wells[column].to_numpy(dtype=object) == name))
            line = int(wells["line"].iloc[first]) if "line" in wells.columns else 0
            raise InputError(
                path,
                f"the {column} name '{name}' (well {wells['well'].iloc[first]}) {odd}",
                f"retype the {column} name with plain characters in the instrument software and export "
                "again (or edit it in the export), so that it matches the "
                + ("samples" if column == "sample" else "assays")
                + " sheet",
                line=line or None,
                column=column,
            )


def _stripped_text(values: np.ndarray) -> np.ndarray:
    """Cells as stripped ``str``; skips the per-cell work when no cell has outer spaces."""
    values = np.asarray(values, dtype=object)
    try:
        joined = "\x00".join(values)  # TypeError if some cell is not text
    except TypeError:
        joined = None
    if joined is not None and not _has_outer_space("\x00" + joined + "\x00"):
        return values.copy()
    return np.array([str(v).strip() for v in values], dtype=object)


_OUTER_SPACE = re.compile("\x00[ \t\r\n\xa0]|[ \t\r\n\xa0]\x00")


def _has_outer_space(joined: str) -> bool:
    """True if some cell of the NUL-joined text starts or ends with white space."""
    return _OUTER_SPACE.search(joined) is not None


# ---------------------------------------------------------------------------
# Delimiters and headers
# ---------------------------------------------------------------------------


def split_fields(line: str, sep: str) -> list[str]:
    """Split one line into stripped fields, honouring double quotes."""
    if sep == SPACES:
        return [f.strip('"').strip() for f in _SPACE_FIELDS.findall(line)]
    return [f.strip() for f in next(csv.reader([line], delimiter=sep))] if line else [""]


def guess_delimiter(line: str) -> str | None:
    """The delimiter of a header line: tab, semicolon, comma, or runs of spaces; None if one column."""
    if "\t" in line:
        return "\t"
    semicolons, commas = line.count(";"), line.count(",")
    if semicolons and semicolons >= commas:
        return ";"
    if commas:
        return ","
    if len(_SPACE_FIELDS.findall(line)) > 1:
        return SPACES
    return None


def is_blank(line: str, sep: str) -> bool:
    """True for an empty line or one holding only delimiters (Excel pads rows with commas)."""
    chars = ' \t"' if sep == SPACES else sep + ' \t"'
    return line.strip(chars) == ""


def normalise_name(name: str) -> str:
    """Column name in a comparable form: lower case, single spaces, no quotes."""
    return " ".join(name.replace('"', " ").split()).lower()


def find_header(
    text: Text, required: tuple[tuple[str, ...], ...], limit: int = 400, start: int = 0
) -> tuple[int, str, list[str]] | None:
    """First line (from ``start``, within ``limit`` lines) whose column names cover ``required``.

    ``required`` holds one tuple of accepted names (normalised) per needed
    column. Returns (line index, delimiter, names) or None.
    """
    for i in range(start, min(len(text.lines), start + limit)):
        line = text.lines[i]
        for sep in ("\t", ",", ";"):
            if sep not in line:
                continue
            names = split_fields(line, sep)
            normalised = {normalise_name(n) for n in names}
            if all(normalised.intersection(options) for options in required):
                return i, sep, names
    return None


def table_end(text: Text, header_index: int, sep: str) -> int:
    """Index of the first blank line or ``[Section]`` line after the header (or the end of the file)."""
    for i in range(header_index + 1, len(text.lines)):
        line = text.lines[i]
        if is_blank(line, sep) or line.lstrip('"').startswith("["):
            return i
    return len(text.lines)


# ---------------------------------------------------------------------------
# Reading the body of a table
# ---------------------------------------------------------------------------


@dataclass
class Block:
    """The body of a delimited table: text cells by header position, and each row's line."""

    names: list[str]
    cells: pd.DataFrame  # columns 0..len(names)-1, all str, without outer white space
    line: np.ndarray  # 1-based line of each row
    sep: str

    def column(self, position: int) -> pd.Series:
        return self.cells[position]


def _line_stats(lines: list[str], sep: str, raw: bytes) -> tuple[np.ndarray, np.ndarray, bool]:
    """(blank, number of fields) of each line, and whether some cell may have outer white space.

    Counted over ``raw``, the bytes of all lines (each ending in a newline), at once. A line is blank
    when it holds only delimiters, spaces, tabs and quotes (Excel pads rows with commas).
    Lines with a double quote are split by :mod:`csv`, so that a quoted
    delimiter is not counted.
    """
    if sep == SPACES:
        blank = np.array([is_blank(line, sep) for line in lines], dtype=bool)
        return (
            blank,
            np.array([len(_SPACE_FIELDS.findall(line)) for line in lines], dtype=int),
            True,
        )
    data = np.frombuffer(raw, dtype=np.uint8)
    ends = np.flatnonzero(data == 10)
    starts = np.concatenate(([0], ends[:-1] + 1))

    def per_line(positions: np.ndarray) -> np.ndarray:
        return np.searchsorted(positions, ends) - np.searchsorted(positions, starts)

    spaces = np.flatnonzero((data == 32) | (data == 9) | (data == 11) | (data == 12) | (data == 0xA0))
    separators = per_line(np.flatnonzero(data == ord(sep)))
    quotes = per_line(np.flatnonzero(data == 34))
    counts = separators + 1
    blank = separators + quotes + per_line(spaces[data[spaces] != 0xA0]) == ends - starts
    for i in np.flatnonzero((quotes > 0) & ~blank):
        counts[i] = len(next(csv.reader([lines[i]], delimiter=sep)))
    return blank, counts, _padded(data, spaces, sep)


def _padded(data: np.ndarray, spaces: np.ndarray, sep: str) -> bool:
    """True if a white-space byte (or the end of a no-break space) touches a delimiter, quote or line end."""
    if len(spaces) == 0:
        return False
    boundary = np.zeros(256, dtype=bool)
    boundary[[ord(sep), 10, 34]] = True
    before = spaces - 1 - ((data[spaces] == 0xA0) & (data[np.maximum(spaces - 1, 0)] == 0xC2))
    after = np.minimum(spaces + 1, len(data) - 1)
    return bool(
        (before < 0).any() or boundary[data[np.maximum(before, 0)]].any() or boundary[data[after]].any()
    )


def read_block(
    text: Text,
    header_index: int,
    end_index: int,
    sep: str,
    *,
    allow_row_names: bool = False,
    cut_hint: str = "re-export the results from the instrument software",
    usecols: list[int] | None = None,
) -> Block:
    """Read the table whose header is ``text.lines[header_index]`` up to ``end_index`` (exclusive).

    Blank lines (or lines of bare delimiters) are skipped: they are not wells.
    Every other row must have as many fields as the header (extra empty fields
    are tolerated); a short row means the export was cut off or edited.
    ``allow_row_names`` accepts R ``write.table`` files, whose rows have one
    leading field (the row name) more than the header. ``usecols`` (header
    positions) reads only those columns when no row has extra fields.
    """
    names = split_fields(text.lines[header_index], sep)
    while len(names) > 1 and names[-1] == "":
        names.pop()
    rows = text.lines[header_index + 1 : end_index]
    raw = ("\n".join(rows) + "\n").encode("utf-8", "surrogatepass")
    blank, counts, padded = (
        _line_stats(rows, sep, raw) if rows else (np.zeros(0, dtype=bool), np.zeros(0, dtype=int), False)
    )
    kept = np.flatnonzero(~blank)
    if len(kept) < len(rows):
        rows = [rows[i] for i in kept]
        raw = ("\n".join(rows) + "\n").encode("utf-8", "surrogatepass")
    line = kept.astype("int64") + header_index + 2
    counts = counts[kept]
    n = len(names)
    skip_row_name = allow_row_names and len(counts) > 0 and bool((counts == n + 1).all())
    width = n + 1 if skip_row_name else n
    short = np.flatnonzero(counts < width)
    if len(short):
        i = short[0]
        raise InputError(
            text.path,
            f"this row has {counts[i]} fields but the header on line {header_index + 1} has {width}; "
            "the file looks cut off or edited",
            f"{cut_hint} (the whole table, unchanged)",
            line=int(line[i]),
        )
    if not rows:
        cells = pd.DataFrame({k: pd.Series([], dtype=object) for k in range(n)})
        return Block(names, cells, line, sep)
    ncols = int(counts.max())
    if usecols is None or ncols > n or skip_row_name or sep == SPACES:
        usecols = None
    cells = unquoted_cells(raw, sep, n, usecols) if ncols == n and not skip_row_name else None
    if cells is not None:
        return Block(names, cells.apply(lambda column: column.str.strip()) if padded else cells, line, sep)
    cells = pd.read_csv(
        io.BytesIO(raw),
        usecols=usecols,
        sep=r"\s+" if sep == SPACES else sep,
        header=None,
        names=list(range(ncols)),
        dtype=object,
        na_filter=False,
        skip_blank_lines=False,
        quotechar='"',
        engine="c",
        encoding="utf-8",
        encoding_errors="surrogatepass",
        low_memory=False,
    )
    if skip_row_name:
        cells = cells.drop(columns=0)
        cells.columns = list(range(ncols - 1))
    if usecols is None:
        _check_extra_fields(text, cells, n, line)
        cells = cells[list(range(n))]
    if padded:
        cells = cells.apply(lambda column: column.str.strip())
    return Block(names, cells, line, sep)


def _check_extra_fields(text: Text, cells: pd.DataFrame, n: int, line: np.ndarray) -> None:
    extra = [c for c in cells.columns if c >= n]
    if not extra:
        return
    filled = np.zeros(len(cells), dtype=bool)
    for c in extra:
        filled |= cells[c].astype(str).str.strip().ne("").to_numpy()
    if filled.any():
        i = int(np.flatnonzero(filled)[0])
        raise InputError(
            text.path,
            f"this row has more fields than the {n} column names of the header",
            "check that no cell contains the delimiter unquoted, or re-export the table",
            line=int(line[i]),
        )


def results_block(text: Text, found: tuple[int, str, list[str]] | None, problem: str, hint: str) -> Block:
    """The table under the header :func:`find_header` ``found``, to :func:`table_end`.

    No header found: :class:`InputError` with ``problem`` (what was looked for) and
    ``hint`` (how to re-export); ``hint`` also says what to do with a cut-off row.
    """
    if found is None:
        raise InputError(text.path, problem, hint)
    index, sep, _ = found
    return read_block(text, index, table_end(text, index, sep), sep, cut_hint=hint)


def cq_and_quantity(text: Text, block: Block, cq: int, quantity: int | None) -> tuple[dict, str]:
    """The Cq and (when there is one) quantity columns at positions ``cq`` and ``quantity``,
    read with the file's decimal mark (judged on both).

    Returns the Wells columns ``cq``, ``cq_raw`` and ``quantity`` (None when absent), and
    the decimal mark.
    """
    names, cells = block.names, block.cells
    cq_raw = cells[cq]
    numeric = {names[cq]: cq_raw}
    if quantity is not None:
        numeric[names[quantity]] = cells[quantity]
    decimal = decimal_mark(text, numeric, block.line)
    columns = {
        "cq": cq_numbers(cq_raw, decimal),
        "cq_raw": cq_raw,
        "quantity": to_numbers(cells[quantity], decimal) if quantity is not None else None,
    }
    return columns, decimal


# ---------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------


def decimal_mark(text: Text, columns: dict[str, pd.Series], line: np.ndarray) -> str:
    """``","`` if the numbers are written with a decimal comma, else ``"."``.

    ``columns`` maps a column name (for the message) to its text cells. Raises
    InputError naming the first line that uses the other mark when both occur.
    """
    if not any("," in _joined(cells) for cells in columns.values()):
        return "."
    values = {name: [str(v) for v in cells.to_numpy()] for name, cells in columns.items()}
    first_point = first_comma = None
    for name, cells in values.items():
        point = [i for i, v in enumerate(cells) if _POINT_NUMBER.match(v)]
        comma = [i for i, v in enumerate(cells) if _COMMA_NUMBER.match(v)]
        if len(point) and (first_point is None or point[0] < first_point[0]):
            first_point = (int(point[0]), name)
        if len(comma) and (first_comma is None or comma[0] < first_comma[0]):
            first_comma = (int(comma[0]), name)
    if first_comma is None:
        return "."
    if first_point is None:
        return ","
    (row, name), (other_row, _) = (
        max(first_point, first_comma),
        min(first_point, first_comma),
    )
    later_mark, earlier_mark = ("point", "comma") if first_point[0] > first_comma[0] else ("comma", "point")
    raise InputError(
        text.path,
        f"this number ({columns[name].iloc[row]!r}) uses a decimal {later_mark}, but line "
        f"{int(line[other_row])} uses a decimal {earlier_mark}; one file must use one decimal mark",
        "re-export with one regional setting, or replace the decimal commas by points in all numbers",
        line=int(line[row]),
        column=name,
    )


def _joined(cells: pd.Series) -> str:
    """All cells as one NUL-separated string (to test for a character in one pass)."""
    values = cells.to_numpy()
    try:
        return "\x00".join(values)
    except TypeError:
        return "\x00".join(str(v) for v in values)


def to_numbers(cells: pd.Series, decimal: str = ".") -> pd.Series:
    """Text cells to floats — the one number parser of every reader.

    Accepts what Python's correctly rounded ``float()`` accepts, with ``decimal=","``
    a decimal comma instead of the point; surrounding spaces and double quotes are
    ignored. Anything else (a no-value token, ``1_0``, ``1.234,5``, inf, text) is NaN.
    """
    values = np.asarray(cells.to_numpy() if isinstance(cells, pd.Series) else cells, dtype=object)
    index = cells.index if isinstance(cells, pd.Series) else None
    try:
        joined = "\x00".join(values)
    except TypeError:
        joined = None
    if decimal == "." and joined is not None and "_" not in joined and '"' not in joined:
        out = _plain_numbers(values)  # fast path: every cell is a number
        if out is not None:
            return pd.Series(np.where(np.isfinite(out), out, np.nan), index=index)
    text = pd.Series(values, dtype=object).astype(str).str.strip().str.strip('"').str.strip()
    if decimal == ",":
        text = text.str.replace(",", ".", regex=False)
    out = np.array([_float_or_nan(v) for v in text.to_numpy()], dtype="float64")
    return pd.Series(np.where(np.isfinite(out), out, np.nan), index=index)


def _plain_numbers(values: np.ndarray) -> np.ndarray | None:
    """Every cell (a str) as float(cell), or None when one is not a plain number.

    Arrow's cast first (correctly rounded like float(); about 3× faster on a chip's columns): it
    refuses what float() refuses and also spaces and non-ASCII digits, which float() accepts, so
    numpy's per-cell float() is asked when Arrow refuses.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        return pc.cast(pa.array(values, pa.string()), pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    try:
        return values.astype("float64")
    except (ValueError, TypeError):
        return None


def _float_or_nan(text: str) -> float:
    """Python's correctly rounded float(), NaN when the text is not a number."""
    if "_" in text:  # float() would read "1_0" as 10
        return np.nan
    try:
        return float(text)
    except ValueError:
        return np.nan


def parse_number(text: str, decimal: str = ".") -> float | None:
    """One number as written in an export (e.g. ``Quality Threshold,0.65``); None if it is not one."""
    value = to_numbers(pd.Series([text], dtype=object), decimal).iloc[0]
    return None if np.isnan(value) else float(value)


def cq_numbers(cq_raw: pd.Series, decimal: str = ".", extra_no_value: Iterable[float] = ()) -> pd.Series:
    """Cq text to float: NaN for 999 (no amplification), no-value tokens and anything non-numeric.

    ``extra_no_value`` adds numbers that mean "no Cq" in a format (RDML: -1).
    Whether a non-numeric text is acceptable is checked by :func:`invalid_cq`.
    """
    values = to_numbers(cq_raw, decimal)
    no_value = values == NO_AMPLIFICATION_VALUE
    for number in extra_no_value:
        no_value |= values == number
    return values.mask(no_value)


def invalid_cq(cq: pd.Series, cq_raw: pd.Series, decimal: str | None = None) -> np.ndarray:
    """Positions of rows without a Cq number whose text is neither a number nor a no-value token.

    ``decimal=None`` accepts a number with either mark (a reader may map a number
    to "no Cq" on purpose: 999 in BioMark, 999,00 with decimal commas, -1 in RDML).
    """
    missing = np.flatnonzero(pd.isna(cq).to_numpy())
    if len(missing) == 0:
        return missing
    raw = pd.Series(cq_raw.to_numpy()[missing], dtype=object).astype(str)
    token = raw.isin(NO_VALUE_TOKENS).to_numpy()  # the usual case, as written
    rest = np.flatnonzero(~token)
    if len(rest):
        token[rest] = (
            raw.iloc[rest].str.strip().str.strip('"').str.strip().str.lower().isin(NO_VALUE_TOKENS).to_numpy()
        )
    rest = np.flatnonzero(~token)
    number = np.zeros(len(rest), dtype=bool)
    for mark in ((".", ",") if decimal is None else (decimal,)) if len(rest) else ():
        number |= to_numbers(raw.iloc[rest], mark).notna().to_numpy()
    return missing[rest[~number]]


def parse_cq_column(
    raw: pd.Series,
    path: str,
    lines: pd.Series | np.ndarray | None,
    column: str,
    extra_no_value: Iterable[float] = (),
) -> pd.Series:
    """Cq cell texts (decimal point) to floats.

    InputError naming the first cell that is no number nor mark."""
    values = cq_numbers(raw, ".", extra_no_value)
    bad = invalid_cq(values, raw, decimal=".")
    if len(bad):
        first = int(bad[0])
        line = None if lines is None else int(np.asarray(lines)[first]) or None
        raise InputError(
            path,
            f"the Cq cell holds {raw.iloc[first]!r}, "
            f"which is neither a number nor a 'no Cq' mark ({NO_VALUE_WORDS})",
            "correct the cell or re-export the plate; use a dot as the decimal mark",
            line=line,
            column=column,
        )
    return values
