"""Applied Biosystems SDS 2.x exports (7900HT plates and TaqMan Low Density Arrays).

Two layouts are read:

* **"RQ Results" with a header** (SDS 2.1 / 2.3). A few ``key<TAB>value`` lines
  (``SDS 2.3 RQ Results``, ``Filename``, ``EmbeddedFile`` ...), a blank line,
  then the well table whose header holds ``Detector``, ``Task`` and ``Ct`` and a
  well column (``Pos`` as ``A1`` in SDS 2.3, ``Well`` as a number in SDS 2.1).
  The well table ends at the first blank line; what follows (SDS 2.1 "Summary
  Data for Study ..." with per-sample averages, SDS 2.3 plate notes) is not
  well data and is not read.
* **Headerless TLDA card export** (HTqPCR's "plain" format, e.g. the vignette's
  ``sample1.txt``): no header line at all, one tab-separated line per well with
  the columns of the SDS 2.3 table: ``#, Plate, Pos, Flag, Sample, Detector,
  Task, Ct, ..., Omit``.

Mapping to the Wells table: ``well`` = ``Pos`` (else ``Well``), ``sample`` =
``Sample``, ``assay`` = ``Detector``, ``cq`` = ``Ct``, ``sample_type`` =
``Task`` (Target, Endogenous Control, ...), ``quantity`` = ``Quantity`` where
the export has it, ``instrument_flags`` = ``flagged`` (Flag column says
Flagged), ``omitted`` (Omit TRUE), ``outlier`` (Outlier column marked).
``run`` = the ``Filename`` column (SDS 2.1: one value per TLDA card) or else
the ``Plate`` / ``PlateID`` column. When a file holds several runs the well id
is prefixed with the run (``john dawes card 2:17``) so that it is unique in the
file.

The shared building blocks (Wells frame, Cq parsing, unique wells) are those
of :mod:`.toolkit`.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..errors import InputError
from .text import Text, load_text
from .toolkit import (
    parse_cq_column,
    to_numbers,
    wells_frame,
)
from .vocabulary import (
    check_unique_wells,
    prefix_wells_with_run,
)

# --------------------------------------------------------------------------- SDS

_WELL_POSITION = re.compile(r"^[A-Pa-p]\d{1,2}$")
_INTEGER = re.compile(r"^\d+$")

#: Column layout of the headerless TLDA export (same as the SDS 2.3 RQ table).
TLDA_COLUMNS = ["#", "Plate", "Pos", "Flag", "Sample", "Detector", "Task", "Ct"]
_TLDA_OMIT_INDEX = 15  # 16th column, "Omit" (TRUE/FALSE)

_HEADER_SCAN_LINES = 100


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.split("\t")]


def _is_header(cells: list[str]) -> bool:
    names = {c.lower() for c in cells}
    return "detector" in names and "ct" in names and bool(names & {"well", "pos", "#"})


def _find_header(lines: list[str]) -> int | None:
    for i, line in enumerate(lines[:_HEADER_SCAN_LINES]):
        if "\t" in line and _is_header(_cells(line)):
            return i
    return None


def _is_tlda_row(line: str) -> bool:
    cells = _cells(line)
    if len(cells) < len(TLDA_COLUMNS):
        return False
    number, _plate, pos, flag = cells[:4]
    return bool(_INTEGER.match(number) and _WELL_POSITION.match(pos) and flag in ("Passed", "Flagged"))


def sniff(text: Text) -> bool:
    """True for an SDS 2.x RQ Results export or a headerless TLDA card export."""
    lines = text.lines
    first = next((line for line in lines if line.strip()), "")
    if first.startswith("SDS") and "Results" in first:
        return True
    header_at = _find_header(lines)
    if header_at is not None:
        return "task" in {c.lower() for c in _cells(lines[header_at])}
    rows = [line for line in lines[:5] if line.strip()]
    return bool(rows) and all(_is_tlda_row(line) for line in rows)


def _table_rows(lines: list[str], start: int) -> list[str]:
    """Lines from ``start`` up to (not including) the first blank line."""
    end = start
    while end < len(lines) and lines[end].strip():
        end += 1
    return lines[start:end]


def _refuse_wells_after_gap(lines: list[str], end: int, n_columns: int, path: str) -> None:
    """The table ends at the first blank line; refuse well lines further down.

    The blocks that legitimately follow (SDS 2.1 "Summary Data", SDS 2.3 plate
    notes) never start with a well number, so a later line that does is a
    well that would otherwise be dropped silently.
    """
    for i in range(end, len(lines)):
        cells = _cells(lines[i])
        if _is_tlda_row(lines[i]) or (len(cells) == n_columns and _INTEGER.match(cells[0])):
            raise InputError(
                path,
                f"a well line follows a blank line that ended the well table on line {end + 1}",
                "remove the blank line inside the well table (or re-export the plate)",
                line=i + 1,
            )


def _pick(header: list[str], *names: str) -> int | None:
    lowered = [h.lower() for h in header]
    for name in names:
        if name.lower() in lowered:
            return lowered.index(name.lower())
    return None


def read(path: str) -> pd.DataFrame:
    """Read an SDS 2.x RQ Results or headerless TLDA export into Wells rows."""
    lines = load_text(path).lines
    header, header_at, first_row = _locate_table(lines, path)
    raw_table, line_numbers = _table_cells(lines, header, first_row, path)
    table = raw_table.apply(lambda col: col.str.strip())
    at = _column_indices(header, header_at, raw_table.shape[1], path)

    def column(name: str) -> pd.Series:
        i = at[name]
        return table[i] if i is not None else pd.Series([""] * len(table))

    cq = parse_cq_column(table[at["ct"]], path, line_numbers, header[at["ct"]])
    quantity = pd.Series(np.nan, index=table.index)
    if at["quantity"] is not None:
        quantity = to_numbers(table[at["quantity"]])
    marks = [
        column("flag").str.lower().eq("flagged").map({True: "flagged", False: ""}),
        column("omit").str.upper().eq("TRUE").map({True: "omitted", False: ""}),
        column("outlier").ne("").map({True: "outlier", False: ""}),
    ]
    flags = (marks[0] + ";" + marks[1] + ";" + marks[2]).str.replace(r";+", ";", regex=True).str.strip(";")
    frame = wells_frame(
        len(table),
        run=column("run"),
        well=column("well"),
        sample=column("sample"),
        assay=column("assay"),
        cq=cq,
        cq_raw=raw_table[at["ct"]],
        sample_type=column("task"),
        quantity=quantity,
        instrument_flags=flags,
        line=line_numbers,
    )
    check_unique_wells(frame, path, column=header[at["well"]])
    return prefix_wells_with_run(frame)


def _locate_table(lines: list[str], path: str) -> tuple[list[str], int | None, int]:
    """(header, index of the header line or None for a headerless TLDA export, index of the
    first well line)."""
    header_at = _find_header(lines)
    if header_at is not None:
        return _cells(lines[header_at]), header_at, header_at + 1
    start = next((i for i, line in enumerate(lines) if line.strip()), 0)
    if not _is_tlda_row(lines[start]):
        raise InputError(
            path,
            "no SDS well table found: no header line with Well/Pos, Detector and Ct, "
            "and the first line is not a TLDA well line (number, plate, position, Passed/Flagged, ...)",
            "export 'RQ Results' from SDS 2.x, or give the plate's format explicitly",
            line=start + 1,
        )
    return list(TLDA_COLUMNS), None, start


def _table_cells(
    lines: list[str], header: list[str], first_row: int, path: str
) -> tuple[pd.DataFrame, pd.Series]:
    """The well lines split on tabs (as text, padded to the widest line) and their 1-based
    line numbers; refuses an empty table and wells after a gap."""
    rows = _table_rows(lines, first_row)
    if not rows:
        raise InputError(path, "the SDS well table has no rows", "re-export the plate", line=first_row + 1)
    _refuse_wells_after_gap(lines, first_row + len(rows), len(header), path)
    width = max(len(header), max(len(r.split("\t")) for r in rows))
    cells = [r.split("\t") for r in rows]
    raw_table = pd.DataFrame([c + [""] * (width - len(c)) for c in cells], dtype=str)
    line_numbers = pd.Series(np.arange(first_row + 1, first_row + 1 + len(rows)), dtype=int)
    return raw_table, line_numbers


def _column_indices(header: list[str], header_at: int | None, width: int, path: str) -> dict:
    """Position of each Wells field in the SDS table (None when the export lacks it);
    Well/Pos, Detector and Ct are required."""
    at = {
        "well": _pick(header, "Pos", "Well", "#"),
        "sample": _pick(header, "Sample", "Sample Name"),
        "assay": _pick(header, "Detector", "Detector Name", "Target Name"),
        "ct": _pick(header, "Ct", "CT", "Cq"),
    }
    missing = [
        name for name, key in (("Well/Pos", "well"), ("Detector", "assay"), ("Ct", "ct")) if at[key] is None
    ]
    if missing:
        raise InputError(
            path,
            f"the SDS well table has no {' or '.join(missing)} column",
            "export 'RQ Results' with the default columns",
            line=header_at + 1 if header_at is not None else None,
        )
    at["task"] = _pick(header, "Task")
    at["quantity"] = _pick(header, "Quantity", "Qty")
    at["flag"] = _pick(header, "Flag")
    at["omit"] = _pick(header, "Omit")
    if header_at is None and width > _TLDA_OMIT_INDEX:
        at["omit"] = _TLDA_OMIT_INDEX
    at["outlier"] = _pick(header, "Outlier")
    at["run"] = _pick(header, "Filename")
    if at["run"] is None:
        at["run"] = _pick(header, "Plate", "PlateID")
    return at
