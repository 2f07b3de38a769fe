"""Plain Cq tables, and the building blocks every text reader shares.

Part 1 — shared building blocks (used by the BioMark, QuantStudio and CFX readers):
splitting a header line, reading the body of a delimited table with pandas while
keeping each row's line number, checking that every row has as many fields as
the header (a cut-off export is caught here), deciding whether the file writes
decimal commas or points, turning Cq text into numbers, and assembling the
Wells columns of ``docs/data-model.md`` section 1.

Part 2 — the plain table reader (format ``table``): a long table with one row per
well (``sample``, ``assay``, ``cq`` and optionally ``well`` and a plate column),
or a wide table with one row per sample and one column of Cq values per assay
(EasyqpcR style). The delimiter (tab, comma, semicolon or spaces) is guessed from
the header line.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import InputError
from .text import Text, load_text

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
TEXT_COLUMNS = ("run", "well", "sample", "assay", "cq_raw", "call", "sample_type", "instrument_flags")
FLOAT_COLUMNS = ("cq", "quality", "quality_threshold", "quantity") + OPTIONAL_COLUMNS

#: Cq cell texts (lower case) that mean "no Cq value": no amplification or not analysed.
NO_CQ_TOKENS = frozenset({"", "999", "undetermined", "no ct", "n/a", "nan", "na", "-"})
#: BioMark (and some others) write this number when there is no amplification.
NO_AMPLIFICATION_VALUE = 999.0

SPACES = "whitespace"  # delimiter name for tables separated by runs of spaces
DELIMITER_NAMES = {"\t": "tab", ",": "comma", ";": "semicolon", SPACES: "spaces"}

_POINT_NUMBER = re.compile(r'^\s*"?[+-]?\d*\.\d+(?:[eE][+-]?\d+)?"?\s*$')
_COMMA_NUMBER = re.compile(r'^\s*"?[+-]?\d*,\d+(?:[eE][+-]?\d+)?"?\s*$')
_SPACE_FIELDS = re.compile(r'"[^"]*"|[^\s"]+')


def wells_frame(n: int, **columns) -> pd.DataFrame:
    """Assemble the Wells columns for ``n`` rows; columns not given get their empty value.

    Text columns default to ``""``, numbers to NaN; optional columns (tm, ...)
    appear only when given.
    """
    out = {}
    for name in WELL_COLUMNS + OPTIONAL_COLUMNS:
        value = columns.get(name)
        if value is None:
            if name in OPTIONAL_COLUMNS:
                continue
            value = "" if name in TEXT_COLUMNS else np.nan
        if np.ndim(value) == 0:
            value = [value] * n
        out[name] = value.to_numpy() if isinstance(value, pd.Series) else np.asarray(value)
    for name, value in out.items():
        if name in TEXT_COLUMNS:
            out[name] = _stripped_text(value)
        else:
            out[name] = value.astype("int64" if name == "line" else "float64")
    return pd.DataFrame(out, index=pd.RangeIndex(n))


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


def _has_outer_space(joined: str) -> bool:
    """True if some cell of the NUL-joined text starts or ends with white space."""
    return any(f"\x00{c}" in joined or f"{c}\x00" in joined for c in " \t\r\n\xa0")


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
    cells: pd.DataFrame  # columns 0..len(names)-1, all str
    line: np.ndarray  # 1-based line of each row
    sep: str

    def column(self, position: int) -> pd.Series:
        return self.cells[position]


def _field_counts(lines: list[str], sep: str) -> np.ndarray:
    if sep == SPACES:
        return np.array([len(_SPACE_FIELDS.findall(line)) for line in lines], dtype=int)
    return np.array(
        [len(next(csv.reader([line], delimiter=sep))) if '"' in line else line.count(sep) + 1 for line in lines],
        dtype=int,
    )


def read_block(
    text: Text,
    header_index: int,
    end_index: int,
    sep: str,
    *,
    allow_row_names: bool = False,
    cut_hint: str = "re-export the results from the instrument software",
) -> Block:
    """Read the table whose header is ``text.lines[header_index]`` up to ``end_index`` (exclusive).

    Blank lines (or lines of bare delimiters) are skipped: they are not wells.
    Every other row must have as many fields as the header (extra empty fields
    are tolerated); a short row means the export was cut off or edited.
    ``allow_row_names`` accepts R ``write.table`` files, whose rows have one
    leading field (the row name) more than the header.
    """
    names = split_fields(text.lines[header_index], sep)
    while len(names) > 1 and names[-1] == "":
        names.pop()
    kept = [i for i in range(header_index + 1, end_index) if not is_blank(text.lines[i], sep)]
    body = [text.lines[i] for i in kept]
    line = np.asarray(kept, dtype="int64") + 1
    counts = _field_counts(body, sep) if body else np.zeros(0, dtype=int)
    n = len(names)
    skip_row_name = allow_row_names and len(counts) > 0 and bool((counts == n + 1).all())
    width = n + 1 if skip_row_name else n
    short = np.flatnonzero(counts < width)
    if len(short):
        i = short[0]
        raise InputError(
            text.path,
            f"this row has {counts[i]} fields but the header on line {header_index + 1} has {width}; the file looks cut off or edited",
            f"{cut_hint} (the whole table, unchanged)",
            line=int(line[i]),
        )
    if not body:
        cells = pd.DataFrame({k: pd.Series([], dtype=object) for k in range(n)})
        return Block(names, cells, line, sep)
    ncols = int(counts.max())
    cells = pd.read_csv(
        io.StringIO("\n".join(body)),
        sep=r"\s+" if sep == SPACES else sep,
        header=None,
        names=list(range(ncols)),
        dtype=object,
        na_filter=False,
        skip_blank_lines=False,
        quotechar='"',
        engine="c",
    )
    if skip_row_name:
        cells = cells.drop(columns=0)
        cells.columns = list(range(ncols - 1))
    _check_extra_fields(text, cells, n, line)
    cells = cells[list(range(n))]
    return Block(names, cells, line, sep)


def _check_extra_fields(text: Text, cells: pd.DataFrame, n: int, line: np.ndarray) -> None:
    extra = [c for c in cells.columns if c >= n]
    if not extra:
        return
    filled = np.array([any(str(v).strip() for v in row) for row in cells[extra].to_numpy()], dtype=bool)
    if filled.any():
        i = int(np.flatnonzero(filled)[0])
        raise InputError(
            text.path,
            f"this row has more fields than the {n} column names of the header",
            "check that no cell contains the delimiter unquoted, or re-export the table",
            line=int(line[i]),
        )


# ---------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------


def decimal_mark(text: Text, columns: dict[str, pd.Series], line: np.ndarray) -> str:
    """``","`` if the numbers are written with a decimal comma, else ``"."``.

    ``columns`` maps a column name (for the message) to its text cells. Raises
    InputError naming the first line that uses the other mark when both occur.
    """
    values = {name: [str(v) for v in cells.to_numpy()] for name, cells in columns.items()}
    if not any("," in "\x00".join(vs) for vs in values.values()):
        return "."
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
    (row, name), (other_row, _) = max(first_point, first_comma), min(first_point, first_comma)
    later_mark, earlier_mark = ("point", "comma") if first_point[0] > first_comma[0] else ("comma", "point")
    raise InputError(
        text.path,
        f"this number ({columns[name].iloc[row]!r}) uses a decimal {later_mark}, but line "
        f"{int(line[other_row])} uses a decimal {earlier_mark}; one file must use one decimal mark",
        "re-export with one regional setting, or replace the decimal commas by points in all numbers",
        line=int(line[row]),
        column=name,
    )


def to_numbers(cells: pd.Series, decimal: str = ".") -> pd.Series:
    """Text cells to floats; anything that is not a finite number becomes NaN."""
    if decimal == ".":
        try:  # fast path: every cell is a number
            values = pd.Series(cells.to_numpy().astype("float64"), index=cells.index)
            return values.where(np.isfinite(values))
        except (ValueError, TypeError):
            pass
    text = [str(v).strip().strip('"') for v in cells.to_numpy()]
    if decimal == ",":
        text = [v.replace(",", ".") for v in text]
    values = pd.Series([_float_or_nan(v) for v in text], dtype="float64", index=cells.index)
    return values.where(np.isfinite(values))


def _float_or_nan(text: str) -> float:
    """Python's correctly rounded float(), NaN when the text is not a number."""
    try:
        return float(text)
    except ValueError:
        return math.nan


def cq_numbers(cq_raw: pd.Series, decimal: str = ".") -> pd.Series:
    """Cq text to float: NaN for 999 (no amplification), no-value tokens and anything non-numeric.

    Whether a non-numeric text is acceptable is checked by :func:`invalid_cq`.
    """
    values = to_numbers(cq_raw, decimal)
    return values.where(values != NO_AMPLIFICATION_VALUE)


def invalid_cq(cq: pd.Series, cq_raw: pd.Series) -> np.ndarray:
    """Positions of rows without a Cq number whose text is neither a number nor a known no-value token."""
    missing = np.flatnonzero(cq.isna().to_numpy())
    raw = [str(v).strip().strip('"').strip().lower() for v in cq_raw.to_numpy()[missing]]
    return np.array(
        [i for i, text in zip(missing, raw) if text not in NO_CQ_TOKENS and not _is_number(text)], dtype=int
    )


def _is_number(text: str) -> bool:
    """True for a finite number in any decimal style (999, -1.0, 999,00).

    A reader may map a number to "no Cq" on purpose (999 in BioMark, -1 in RDML).
    """
    try:
        return bool(np.isfinite(float(text.replace(",", "."))))
    except ValueError:
        return False


# ---------------------------------------------------------------------------
# Lab vocabulary shared by readers
# ---------------------------------------------------------------------------

_SAMPLE_TYPES = (
    (r"^unkn(?:own)?\b", "Unknown"),
    (r"^(?:std|standard)\b", "Standard"),
    (r"^ntc\b", "NTC"),
    (r"^neg(?:ative)?\s*ctrl\b", "Negative Control"),
    (r"^pos(?:itive)?\s*ctrl\b", "Positive Control"),
    (r"^nrt\b", "NRT"),
    (r"^nac\b", "NAC"),
)


def sample_type_name(cells: pd.Series) -> pd.Series:
    """Instrument sample/task types in common words (Unkn-01 → Unknown, Std → Standard, ...).

    Types not recognised are kept as written.
    """
    out = cells.astype(str).str.strip()
    lowered = out.str.lower()
    result = out.copy()
    for pattern, name in _SAMPLE_TYPES:
        result = result.mask(lowered.str.contains(pattern, regex=True), name)
    return result


def unique_wells(well: pd.Series, run: pd.Series) -> pd.Series:
    """Well ids unique per plate: prefix the run (``run:well``) when ids repeat and runs are named."""
    if not well.duplicated().any() or run.eq("").all():
        return well
    return run + ":" + well


def multiplex_wells(well: pd.Series, dye: pd.Series) -> pd.Series:
    """Add the dye (``A01-FAM``) to wells that hold several dyes (multiplex), so ids stay unique."""
    repeated = well.duplicated(keep=False)
    if not repeated.any():
        return well
    several_dyes = dye.groupby(well).transform("nunique") > 1
    return well.mask(repeated & several_dyes & (dye != ""), well + "-" + dye)


def find_column(names: list[str], synonyms: tuple[str, ...]) -> int | None:
    """Position of the first header name (compared normalised) among ``synonyms``, by synonym order."""
    normalised = [normalise_name(n) for n in names]
    for synonym in synonyms:
        if synonym in normalised:
            return normalised.index(synonym)
    return None


# ---------------------------------------------------------------------------
# Part 2: the plain table reader
# ---------------------------------------------------------------------------

SAMPLE_NAMES = ("sample", "sample name", "samples", "sample_name", "samplename", "sample id", "sample_id")
ASSAY_NAMES = (
    "assay",
    "assay name",
    "target",
    "target name",
    "detector",
    "detector name",
    "gene",
    "gene name",
    "primer",
)
CQ_NAMES = ("cq", "ct", "c\u0442", "cp", "crt", "cq value", "ct value", "cq mean")
WELL_NAMES = ("well", "well position", "position", "pos", "chamber")
PLATE_NAMES = ("plate", "plateid", "plate id", "plate name", "plate_id", "run")
TYPE_NAMES = ("sample type", "sample_type", "task", "type", "content")
QUANTITY_NAMES = ("quantity", "starting quantity", "concentration")


def _header_index(text: Text) -> int:
    """First line that is not blank and not a ``#`` comment."""
    for i, line in enumerate(text.lines):
        if line.strip() and not line.lstrip().startswith("#"):
            return i
    raise InputError(text.path, "no header line found", "the first line must name the columns: sample, assay, cq")


def _layout(names: list[str]) -> str | None:
    """``"long"`` (sample, assay, cq columns), ``"wide"`` (sample + one column per assay) or None."""
    if find_column(names, SAMPLE_NAMES) is None:
        return None
    if find_column(names, ASSAY_NAMES) is not None and find_column(names, CQ_NAMES) is not None:
        return "long"
    if (
        find_column(names, SAMPLE_NAMES) == 0
        and len([n for n in names[1:] if n]) >= 1
        and find_column(names, CQ_NAMES) is None
    ):
        return "wide"
    return None


def sniff(text: Text) -> bool:
    """True if the first header line names a sample column plus assay and Cq columns (or one column per assay)."""
    try:
        header = text.lines[_header_index(text)]
    except InputError:
        return False
    sep = guess_delimiter(header)
    return sep is not None and _layout(split_fields(header, sep)) is not None


def read(path) -> pd.DataFrame:
    """Read a plain Cq table (long or wide, TSV/CSV/semicolon/space separated)."""
    return parse(load_text(path))


def parse(text: Text) -> pd.DataFrame:
    """Wells table from a loaded plain table."""
    h = _header_index(text)
    header = text.lines[h]
    sep = guess_delimiter(header)
    if sep is None:
        seen = sorted({c for c in header if not c.isalnum() and c not in " _-.()[]/\"'"})
        raise InputError(
            text.path,
            f"the header line has a single column ({header.strip()[:60]!r}); no tab, comma, semicolon or space "
            f"separates the column names" + (f" (seen: {' '.join(seen)!s})" if seen else ""),
            "save the table as tab-separated (TSV) or comma-separated (CSV) text with the columns sample, assay, cq",
            line=h + 1,
        )
    names = split_fields(header, sep)
    layout = _layout(names)
    if layout is None:
        raise InputError(
            text.path,
            f"no sample/assay/Cq columns in the header ({', '.join(n for n in names if n)[:200]}) "
            f"read as {DELIMITER_NAMES[sep]}-separated",
            "name the columns sample, assay and cq (synonyms: Sample Name; Target/Detector/gene; Ct/Cp), "
            "or give one row per sample with a first column 'sample' and one Cq column per assay",
            line=h + 1,
        )
    block = read_block(text, h, len(text.lines), sep, allow_row_names=True, cut_hint="check the end of the table")
    return _long(text, block) if layout == "long" else _wide(text, block)


def _long(text: Text, block: Block) -> pd.DataFrame:
    names = block.names
    col = {
        key: find_column(names, syn)
        for key, syn in (
            ("sample", SAMPLE_NAMES),
            ("assay", ASSAY_NAMES),
            ("cq", CQ_NAMES),
            ("well", WELL_NAMES),
            ("plate", PLATE_NAMES),
            ("type", TYPE_NAMES),
            ("quantity", QUANTITY_NAMES),
        )
    }
    cells = block.cells
    n = len(cells)
    cq_raw = cells[col["cq"]]
    numeric = {names[col["cq"]]: cq_raw}
    if col["quantity"] is not None:
        numeric[names[col["quantity"]]] = cells[col["quantity"]]
    decimal = decimal_mark(text, numeric, block.line)
    run = cells[col["plate"]] if col["plate"] is not None else pd.Series([""] * n, dtype=object)
    if col["well"] is not None:
        well = unique_wells(cells[col["well"]], run)
    else:
        well = pd.Series([f"R{i:06d}" for i in range(1, n + 1)], dtype=object)
    frame = wells_frame(
        n,
        run=run,
        well=well,
        sample=cells[col["sample"]],
        assay=cells[col["assay"]],
        cq=cq_numbers(cq_raw, decimal),
        cq_raw=cq_raw,
        sample_type=sample_type_name(cells[col["type"]]) if col["type"] is not None else None,
        quantity=to_numbers(cells[col["quantity"]], decimal) if col["quantity"] is not None else None,
        line=block.line,
    )
    frame.attrs["cq_column"] = names[col["cq"]]
    return frame


def _has_numbers(cells: pd.Series) -> bool:
    """True if any cell reads as a number (decimal point or comma)."""
    return bool(to_numbers(cells, ",").notna().any() or to_numbers(cells, ".").notna().any())


def _wide(text: Text, block: Block) -> pd.DataFrame:
    """One row per sample, one Cq column per assay → one Wells row per cell (row by row, left to right).

    An empty sample cell under a named one is a replicate of that sample (Excel
    merged cells, as in EasyqpcR's files), so the name is carried down. Columns
    without a single number (e.g. a ``Grade`` or ``Group`` annotation) are not assays.
    """
    names = block.names
    cells = block.cells
    assays = [(pos, name) for pos, name in enumerate(names) if pos > 0 and name and _has_numbers(cells[pos])]
    if not assays:
        raise InputError(
            text.path,
            "the table has a sample column but no column of Cq numbers",
            "give one Cq column per assay, or the columns sample, assay and cq",
            line=int(block.line[0]) - 1 if len(block.line) else 1,
        )
    decimal = decimal_mark(text, {name: cells[pos] for pos, name in assays}, block.line)
    sample = cells[0].replace("", np.nan).ffill().fillna("")
    n_rows, n_assays = len(cells), len(assays)
    raw = (
        np.column_stack([cells[pos].to_numpy(dtype=object) for pos, _ in assays]).ravel()
        if n_rows
        else np.array([], dtype=object)
    )
    cq_raw = pd.Series(raw, dtype=object)
    frame = wells_frame(
        n_rows * n_assays,
        well=pd.Series([f"R{i:06d}" for i in range(1, n_rows * n_assays + 1)], dtype=object),
        sample=np.repeat(sample.to_numpy(dtype=object), n_assays),
        assay=np.tile(np.array([name for _, name in assays], dtype=object), n_rows),
        cq=cq_numbers(cq_raw, decimal),
        cq_raw=cq_raw,
        line=np.repeat(block.line, n_assays),
    )
    frame.attrs["cq_column"] = np.tile(np.array([name for _, name in assays], dtype=object), n_rows)
    return frame
