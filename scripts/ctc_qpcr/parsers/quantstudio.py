"""Thermo Fisher QuantStudio / 7500 / ViiA 7 "Results" exports (CSV or TXT).

Layout: a preamble of experiment settings, written either as ``* key = value``
lines (native .txt export) or as ``key,value,,,`` rows (CSV export); an optional
``[Results]`` section marker; then the well table with a header such as::

    Well,Well Position,Omit,Sample Name,Target Name,Task,Reporter,Quencher,...,CT,Ct Mean,...,EXPFAIL,HIGHSD,BADROX

The Cq column is called ``CT``, ``Ct``, ``Cт`` (Cyrillic te, written by
QuantStudio Design & Analysis), ``Cq`` or ``Crt``. No amplification is
``Undetermined``. The table ends at the first blank line or the next
``[Section]`` (``[Amplification Data]``, ...); trailing settings rows
(``Analysis Type``, ``Endogenous Control``...) follow a blank line.

QC flag columns (upper-case names holding Y/N: EXPFAIL, HIGHSD, BADROX, ...)
become ``instrument_flags`` (names with Y, ``;``-joined); an ``Omit`` value of
true/1 adds ``omit``. ``Task`` gives the sample type, ``Quantity`` the quantity.
Wells holding several reporters (multiplex) get the reporter appended to the
well id (``A1-FAM``) so ids stay unique.
"""  # noqa: E501 (the header above is quoted whole)

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .text import Text, load_text
from .toolkit import Block, cq_and_quantity, find_header, results_block, wells_frame
from .vocabulary import find_column, incomplete_groups, multiplex_wells, sample_type_name

CQ_NAMES = ("ct", "c\u0442", "cq", "crt", "c\u0442 value")
SAMPLE_NAMES = ("sample name", "sample")
ASSAY_NAMES = ("target name", "target", "detector name", "detector")
_REQUIRED = (("well",), SAMPLE_NAMES[:1], ASSAY_NAMES[:1], CQ_NAMES)
REEXPORT = "re-export the Results table from the QuantStudio / 7500 / ViiA 7 software"
_FLAG_NAME = re.compile(r"^[A-Z][A-Z0-9_]{2,}$")
_TRUE = {"true", "1", "yes", "y"}


def _header(text: Text) -> tuple[int, str, list[str]] | None:
    start = 0
    for i, line in enumerate(text.lines[:2000]):
        if line.strip().lower().startswith("[results]"):
            start = i + 1
            break
    return find_header(text, _REQUIRED, limit=400, start=start)


def sniff(text: Text) -> bool:
    """True when a well table with Well, Sample Name, Target Name and a Ct/Cq column is found."""
    return _header(text) is not None


def read(path) -> pd.DataFrame:
    """Read a QuantStudio-family Results export into the Wells columns."""
    return parse(load_text(path))


def parse(text: Text) -> pd.DataFrame:
    """Wells table from a loaded QuantStudio export."""
    problem = "no results table header found (a line with Well, Sample Name, Target Name and CT/Cq columns)"
    return _wells(text, results_block(text, _header(text), problem, REEXPORT))


def _wells(text: Text, block: Block) -> pd.DataFrame:
    names, cells = block.names, block.cells
    n = len(cells)
    col = {
        "position": find_column(names, ("well position",)),
        "well": find_column(names, ("well",)),
        "sample": find_column(names, SAMPLE_NAMES),
        "assay": find_column(names, ASSAY_NAMES),
        "cq": find_column(names, CQ_NAMES),
        "task": find_column(names, ("task",)),
        "quantity": find_column(names, ("quantity",)),
        "omit": find_column(names, ("omit",)),
        "reporter": find_column(names, ("reporter", "reporter dye", "dye")),
    }
    numbers, decimal = cq_and_quantity(text, block, col["cq"], col["quantity"])
    well = cells[col["position"] if col["position"] is not None else col["well"]]
    if col["reporter"] is not None:
        well = multiplex_wells(well, cells[col["reporter"]])
    frame = wells_frame(
        n,
        stripped=True,
        well=well,
        sample=cells[col["sample"]],
        assay=cells[col["assay"]],
        sample_type=sample_type_name(cells[col["task"]]) if col["task"] is not None else None,
        instrument_flags=_flags(names, cells, col["omit"]),
        line=block.line,
        **numbers,
    )
    frame.attrs["cq_column"] = names[col["cq"]]
    frame.attrs["incomplete_groups"] = incomplete_groups(frame, block, decimal)
    return frame


def _flags(names: list[str], cells: pd.DataFrame, omit: int | None) -> np.ndarray:
    """``;``-joined names of the QC flag columns set to Y, plus ``omit``."""
    flag_columns = []
    for pos, name in enumerate(names):
        values = {v.strip().upper() for v in cells[pos].to_numpy()} - {""}
        if _FLAG_NAME.match(name) and values and values <= {"Y", "N"}:
            flag_columns.append(pos)
    out = [[] for _ in range(len(cells))]
    for pos in flag_columns:
        for i in np.flatnonzero(cells[pos].str.strip().str.upper().to_numpy() == "Y"):
            out[i].append(names[pos])
    if omit is not None:
        for i in np.flatnonzero(cells[omit].str.strip().str.lower().isin(_TRUE).to_numpy()):
            out[i].append("omit")
    return np.array([";".join(f) for f in out], dtype=object)


def preamble(text: Text) -> dict[str, str]:
    """Experiment settings from ``* key = value`` or ``key,value`` lines above the table."""
    found = _header(text)
    end = found[0] if found else len(text.lines)
    settings = {}
    for line in text.lines[:end]:
        line = line.strip()
        if line.startswith("*") and "=" in line:
            key, _, value = line[1:].partition("=")
            settings[key.strip()] = value.strip()
        elif "," in line:
            key, _, rest = line.partition(",")
            if key.strip():
                settings[key.strip()] = rest.split(",")[0].strip().strip('"')
    return settings
