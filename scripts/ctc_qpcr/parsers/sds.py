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

This module also holds the small helpers the other readers of part B share
(:data:`WELL_COLUMNS`, :func:`parse_cq_column`, :func:`wells_frame`).
"""

from __future__ import annotations

import math
import re
from typing import Iterable

import numpy as np
import pandas as pd

from ..errors import InputError
from .table import WELL_COLUMNS as _TABLE_WELL_COLUMNS
from .text import Text, load_text

#: Columns produced by every reader (data-model.md section 1, without plate/state).
WELL_COLUMNS = list(_TABLE_WELL_COLUMNS)

#: Cq cell texts that mean "no Cq" (compared stripped and case-insensitively).
NO_VALUE_TOKENS = frozenset({"", "undetermined", "no ct", "no cq", "n/a", "na", "nan", "-", "999"})

#: BioMark-style "no amplification" number.
NO_VALUE_NUMBER = 999.0


def _to_float(text: str) -> float:
    if "_" in text:  # float() would accept "1_0" as 10
        return math.nan
    try:
        return float(text)
    except ValueError:
        return math.nan


def parse_cq_column(
    raw: pd.Series,
    path: str,
    lines: pd.Series | None,
    column: str,
    extra_no_value: Iterable[float] = (),
) -> pd.Series:
    """Turn Cq cell texts into floats (NaN for the no-value tokens).

    Any text that is neither a number nor a no-value token raises
    :class:`InputError` naming the first such cell (file, line, column, text).
    ``extra_no_value`` adds numbers that mean "no Cq" in a format (RDML: -1).
    """
    text = raw.astype(str).str.strip().str.strip('"').str.strip()
    # Python's float() is correctly rounded; pandas' fast parser can be 1 ulp off.
    values = text.map(_to_float).astype(float)
    is_token = text.str.lower().isin(NO_VALUE_TOKENS)
    finite = np.isfinite(values.to_numpy())
    bad = ~is_token & ~finite
    if bad.any():
        first = bad.to_numpy().nonzero()[0][0]
        line = None if lines is None else int(lines.iloc[first]) or None
        raise InputError(
            path,
            f"the Cq cell holds {raw.iloc[first]!r}, which is neither a number nor a 'no Cq' mark "
            "(Undetermined, No Ct, N/A, NaN, -, 999 or empty)",
            "correct the cell or re-export the plate; use a dot as the decimal mark",
            line=line,
            column=column,
        )
    no_value = is_token | (values == NO_VALUE_NUMBER)
    for number in extra_no_value:
        no_value |= values == number
    return values.mask(no_value)


def wells_frame(columns: dict[str, object], n: int) -> pd.DataFrame:
    """Build a Wells frame of ``n`` rows from the given columns, filling the rest.

    Missing text columns become "", missing float columns NaN; dtypes follow
    data-model.md.
    """
    defaults: dict[str, object] = {
        "run": "",
        "well": "",
        "sample": "",
        "assay": "",
        "cq": math.nan,
        "cq_raw": "",
        "quality": math.nan,
        "quality_threshold": math.nan,
        "call": "",
        "sample_type": "",
        "quantity": math.nan,
        "instrument_flags": "",
        "line": 0,
    }
    data = {}
    for name in WELL_COLUMNS:
        value = columns.get(name, defaults[name])
        if isinstance(value, (pd.Series, np.ndarray, list)):
            data[name] = pd.Series(list(value) if isinstance(value, list) else np.asarray(value), dtype=object).to_numpy()
        else:
            data[name] = [value] * n
    frame = pd.DataFrame(data, columns=WELL_COLUMNS)
    for name in ("run", "well", "sample", "assay", "cq_raw", "call", "sample_type", "instrument_flags"):
        frame[name] = frame[name].astype(str)
    for name in ("cq", "quality", "quality_threshold", "quantity"):
        frame[name] = frame[name].astype(float)
    frame["line"] = frame["line"].astype(int)
    return frame


def prefix_wells_with_run(frame: pd.DataFrame) -> pd.DataFrame:
    """If the frame holds several runs, make well ids unique as ``run:well``."""
    if frame["run"].nunique() > 1:
        frame["well"] = frame["run"] + ":" + frame["well"]
    return frame


def check_unique_wells(frame: pd.DataFrame, path: str, column: str = "well") -> None:
    """Raise :class:`InputError` when a well id occurs twice in one run."""
    dup = frame.duplicated(["run", "well"], keep="first")
    if dup.any():
        row = frame[dup].iloc[0]
        first = frame[(frame["run"] == row["run"]) & (frame["well"] == row["well"])].iloc[0]
        where = f" of run {row['run']!r}" if row["run"] else ""
        first_at = f" (first seen on line {first['line']})" if first["line"] else ""
        raise InputError(
            path,
            f"well {row['well']!r}{where} occurs twice{first_at}",
            "each well may appear once per run; re-export the plate or split the file",
            line=int(row["line"]) or None,
            column=column,
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
    text = load_text(path)
    lines = text.lines
    header_at = _find_header(lines)
    if header_at is not None:
        header = _cells(lines[header_at])
        first_row = header_at + 1
    else:
        start = next((i for i, line in enumerate(lines) if line.strip()), 0)
        if not _is_tlda_row(lines[start]):
            raise InputError(
                path,
                "no SDS well table found: no header line with Well/Pos, Detector and Ct, "
                "and the first line is not a TLDA well line (number, plate, position, Passed/Flagged, ...)",
                "export 'RQ Results' from SDS 2.x, or give the plate's format explicitly",
                line=start + 1,
            )
        header = list(TLDA_COLUMNS)
        first_row = start
    rows = _table_rows(lines, first_row)
    if not rows:
        raise InputError(path, "the SDS well table has no rows", "re-export the plate", line=first_row + 1)
    _refuse_wells_after_gap(lines, first_row + len(rows), len(header), path)

    width = max(len(header), max(len(r.split("\t")) for r in rows))
    cells = [r.split("\t") for r in rows]
    raw_table = pd.DataFrame([c + [""] * (width - len(c)) for c in cells], dtype=str)
    table = raw_table.apply(lambda col: col.str.strip())
    line_numbers = pd.Series(np.arange(first_row + 1, first_row + 1 + len(rows)), dtype=int)

    i_well = _pick(header, "Pos", "Well", "#")
    i_sample = _pick(header, "Sample", "Sample Name")
    i_assay = _pick(header, "Detector", "Detector Name", "Target Name")
    i_ct = _pick(header, "Ct", "CT", "Cq")
    missing = [name for name, i in (("Well/Pos", i_well), ("Detector", i_assay), ("Ct", i_ct)) if i is None]
    if missing:
        raise InputError(
            path,
            f"the SDS well table has no {' or '.join(missing)} column",
            "export 'RQ Results' with the default columns",
            line=header_at + 1 if header_at is not None else None,
        )
    i_task = _pick(header, "Task")
    i_quantity = _pick(header, "Quantity", "Qty")
    i_flag = _pick(header, "Flag")
    i_omit = _pick(header, "Omit")
    if header_at is None and width > _TLDA_OMIT_INDEX:
        i_omit = _TLDA_OMIT_INDEX
    i_outlier = _pick(header, "Outlier")
    i_run = _pick(header, "Filename")
    if i_run is None:
        i_run = _pick(header, "Plate", "PlateID")

    def column(i: int | None) -> pd.Series:
        return table[i] if i is not None else pd.Series([""] * len(table))

    ct_name = header[i_ct]
    cq = parse_cq_column(table[i_ct], path, line_numbers, ct_name)

    quantity = pd.Series(np.nan, index=table.index)
    if i_quantity is not None:
        quantity = pd.to_numeric(table[i_quantity], errors="coerce").astype(float)

    marks = [
        column(i_flag).str.lower().eq("flagged").map({True: "flagged", False: ""}),
        column(i_omit).str.upper().eq("TRUE").map({True: "omitted", False: ""}),
        column(i_outlier).ne("").map({True: "outlier", False: ""}),
    ]
    flags = pd.Series([";".join(m for m in parts if m) for parts in zip(*marks)], dtype=str)

    frame = wells_frame(
        {
            "run": column(i_run),
            "well": column(i_well),
            "sample": column(i_sample),
            "assay": column(i_assay),
            "cq": cq,
            "cq_raw": raw_table[i_ct],
            "sample_type": column(i_task),
            "quantity": quantity,
            "instrument_flags": flags,
            "line": line_numbers,
        },
        len(table),
    )
    check_unique_wells(frame, path, column=header[i_well])
    return prefix_wells_with_run(frame)
