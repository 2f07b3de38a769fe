"""Results exports saved as Excel workbooks (``.xlsx``, ``.xlsm``, ``.xls``), read with python-calamine.

QuantStudio Design & Analysis, the 7500 software and CFX Maestro save their
results as workbooks. The results sheet is found by name, else by content:

* ``Results`` — QuantStudio / 7500 / ViiA 7: a preamble of ``key``, ``value`` rows
  (``Block Type``, ``Chemistry``, ...), then the well table (``Well``, ``Sample
  Name``, ``Target Name``, ``CT``/``Cт``/``Cq``, ...);
* ``Quantification Cq Results`` (or a sheet of that name with a suffix, as CFX
  names the sheet after the file) — CFX: ``Well``, ``Fluor``, ``Target``,
  ``Content``, ``Sample``, ``Cq``;
* else the first sheet holding a plain Cq table (``sample``, ``assay``, ``cq``).

The sheet is turned into tab-separated lines (one per sheet row, so line numbers
in messages are Excel row numbers) and read by the instrument's text reader, so a
workbook and the CSV export of the same run give the same wells. Numbers are
written back as Python's shortest round-trip text (an integral number without
``.0``). A workbook without a results sheet is refused naming the sheets it has.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from pathlib import Path

import pandas as pd

from ..errors import InputError
from .text import Text

_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")
EXTENSIONS = (".xlsx", ".xlsm", ".xls", ".xlsb")
_CURVE_WORDS = ("cycle", "multicomponent", "amplification", "melt", "adp", "raw data")
REEXPORT = "export the results (Cq per well) as a workbook with a 'Results' sheet, or as CSV/TXT"


def sniff_path(path: str | os.PathLike) -> bool:
    """True for an Excel workbook: a zip/OLE file with an Excel extension, or a zip holding ``xl/``."""
    p = Path(path)
    try:
        with p.open("rb") as handle:
            head = handle.read(4)
    except OSError:
        return False
    if head not in _MAGIC:
        return False
    if p.suffix.lower() in EXTENSIONS:
        return True
    if head == _MAGIC[0]:
        import zipfile

        try:
            with zipfile.ZipFile(p) as archive:
                return any(name.startswith("xl/") for name in archive.namelist())
        except zipfile.BadZipFile:
            return False
    return False


def _cell(value) -> str:
    """A sheet cell as the text a CSV export writes (quoted for the tab-separated lines when needed)."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        text = "TRUE" if value else "FALSE"
    elif isinstance(value, float):
        text = str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
        text = "" if math.isnan(value) else text
    elif isinstance(value, (dt.datetime, dt.date, dt.time, dt.timedelta)):
        text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    else:
        text = str(value)
    if any(c in text for c in '\t\n\r"'):
        text = '"' + text.replace("\r", " ").replace("\n", " ").replace('"', '""') + '"'
    return text


def sheet_text(path: str, name: str, rows: list[list]) -> Text:
    """One sheet as tab-separated lines, every row as wide as the sheet's used columns."""
    cells = [[_cell(v) for v in row] for row in rows]
    width = max(
        (max((i + 1 for i, c in enumerate(row) if c), default=0) for row in cells),
        default=0,
    )
    lines = ["\t".join(row[:width] + [""] * (width - len(row))) for row in cells]
    while lines and not lines[-1].strip("\t"):
        lines.pop()
    return Text(path=f"{path} (sheet '{name}')", lines=lines, encoding="xlsx", newline="\n")


def _workbook(path: str):
    from python_calamine import CalamineWorkbook

    try:
        return CalamineWorkbook.from_path(path)
    except Exception as error:  # noqa: BLE001 - calamine raises its own error types for damaged workbooks
        raise InputError(path, f"the Excel workbook cannot be opened ({error})", REEXPORT) from None


def _looks_like(name: str, rows: list[list]) -> str:
    head = name.lower() + " " + " ".join(str(v).lower() for row in rows[:60] for v in row[:20])
    if any(word in head for word in _CURVE_WORDS):
        return "amplification/fluorescence data"
    return f"{len(rows)} rows"


def read(path) -> pd.DataFrame:
    """Read the results sheet of a workbook into the Wells columns (by the instrument's reader)."""
    from . import cfx, quantstudio, table

    path = str(path)
    book = _workbook(path)
    names = list(book.sheet_names)
    sheets = {name: book.get_sheet_by_name(name).to_python() for name in names}
    by_name = [n for n in names if n.strip().lower() == "results"]
    by_name += [n for n in names if n.strip().lower().startswith("quantification cq results")]
    for name in by_name + [n for n in names if n not in by_name]:
        text = sheet_text(path, name, sheets[name])
        if not text.lines:
            continue
        for module in (quantstudio, cfx, table):
            if module.sniff(text):
                frame = module.parse(text)
                frame.attrs["sheet"] = name
                return frame
    seen = ", ".join(f"'{n}' ({_looks_like(n, sheets[n])})" for n in names)
    raise InputError(
        path,
        "this workbook has no results sheet (a table with Well, Sample, Target and Cq/Ct columns); "
        f"its sheets: {seen}",
        REEXPORT,
    )
