"""Plain Cq tables (format ``table``).

A long table with one row per well (``sample``, ``assay``, ``cq`` and optionally
``well`` and a plate column), or a wide table with one row per sample and one
column of Cq values per assay (EasyqpcR style). The delimiter (tab, comma,
semicolon or spaces) is guessed from the header line. The building blocks are
those of :mod:`.toolkit`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError
from .text import Text, load_text
from .toolkit import (
    DELIMITER_NAMES,
    Block,
    cq_and_quantity,
    cq_numbers,
    decimal_mark,
    guess_delimiter,
    read_block,
    split_fields,
    to_numbers,
    wells_frame,
)
from .vocabulary import (
    find_column,
    sample_type_name,
    unique_wells,
)

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
    raise InputError(
        text.path, "no header line found", "the first line must name the columns: sample, assay, cq"
    )


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
    """True if the first header line names a sample column plus assay and Cq columns
    (or one column per assay)."""
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
            f"the header line has a single column ({header.strip()[:60]!r}); "
            "no tab, comma, semicolon or space "
            f"separates the column names" + (f" (seen: {' '.join(seen)!s})" if seen else ""),
            "save the table as tab-separated (TSV) or comma-separated (CSV) text "
            "with the columns sample, assay, cq",
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
    block = read_block(
        text, h, len(text.lines), sep, allow_row_names=True, cut_hint="check the end of the table"
    )
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
    numbers, _ = cq_and_quantity(text, block, col["cq"], col["quantity"])
    run = cells[col["plate"]] if col["plate"] is not None else pd.Series([""] * n, dtype=object)
    if col["well"] is not None:
        well = unique_wells(cells[col["well"]], run)
    else:
        well = pd.Series([f"R{i:06d}" for i in range(1, n + 1)], dtype=object)
    frame = wells_frame(
        n,
        stripped=True,
        run=run,
        well=well,
        sample=cells[col["sample"]],
        assay=cells[col["assay"]],
        sample_type=sample_type_name(cells[col["type"]]) if col["type"] is not None else None,
        line=block.line,
        **numbers,
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
        stripped=True,
        well=pd.Series([f"R{i:06d}" for i in range(1, n_rows * n_assays + 1)], dtype=object),
        sample=np.repeat(sample.to_numpy(dtype=object), n_assays),
        assay=np.tile(np.array([name for _, name in assays], dtype=object), n_rows),
        cq=cq_numbers(cq_raw, decimal),
        cq_raw=cq_raw,
        line=np.repeat(block.line, n_assays),
    )
    frame.attrs["cq_column"] = np.tile(np.array([name for _, name in assays], dtype=object), n_rows)
    return frame
