"""Which reader reads which export, format auto-detection, and the checks every plate gets.

Entry point of the workflow: :func:`read_export` returns the Wells table of
``docs/data-model.md`` section 1 (without ``state``/``state_reason``, which
``ctc_qpcr.wells.assign_states`` adds).

Readers are modules of this package exposing ``read(path) -> DataFrame`` and
``sniff(text) -> bool`` (RDML: ``sniff_path(path) -> bool``). They are imported
only when needed; a reader that is missing or fails to import makes its format
unavailable instead of breaking the others.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import numpy as np
import pandas as pd

from ..errors import InputError
from .text import load_text
from .toolkit import (
    NO_VALUE_WORDS,
    OPTIONAL_COLUMNS,
    TEXT_COLUMNS,
    WELL_COLUMNS,
    invalid_cq,
)

#: All formats, in the order auto-detection tries them (the plain table last: it is the loosest).
FORMATS = ("biomark", "quantstudio", "cfx", "sds", "lc480", "rdml", "table")
_DETECTION_ORDER = ("rdml", "biomark", "quantstudio", "cfx", "sds", "lc480", "table")


def reader(fmt: str) -> ModuleType | None:
    """The reader module of ``fmt``, or None when it is not installed or cannot be imported."""
    if fmt not in FORMATS:
        return None
    try:
        return importlib.import_module(f"{__package__}.{fmt}")
    except ImportError:
        return None


def available_formats() -> tuple[str, ...]:
    """Formats whose reader can be imported now."""
    return tuple(fmt for fmt in FORMATS if reader(fmt) is not None)


def _formats_hint() -> str:
    return (
        "set the format column of plates.tsv to one of: "
        + ", ".join(available_formats())
        + "; or export the plate again as the instrument's results table"
    )


def detect_format(path: str | os.PathLike) -> str:
    """The format of the export at ``path``, recognised from its content."""
    rdml = reader("rdml")
    if rdml is not None and hasattr(rdml, "sniff_path") and rdml.sniff_path(path):
        return "rdml"
    try:
        text = load_text(path)
    except UnicodeDecodeError:
        raise InputError(str(path), "this is a binary file, not a text export", _formats_hint()) from None
    for fmt in _DETECTION_ORDER:
        module = reader(fmt)
        if fmt == "rdml" or module is None or not hasattr(module, "sniff"):
            continue
        if module.sniff(text):
            return fmt
    raise InputError(
        str(path),
        "the export format was not recognised (formats tried: " + ", ".join(available_formats()) + ")",
        _formats_hint(),
    )


def read_export(path: str | os.PathLike, fmt: str = "auto", plate: str = "P1") -> pd.DataFrame:
    """Read one plate's export into the Wells table and check it.

    ``fmt`` is one of :data:`FORMATS` or ``"auto"``. Adds the ``plate`` column,
    keeps the rows in file order, and raises InputError for a well listed twice
    or a Cq text that is neither a number nor a known no-value token.
    """
    fmt = (fmt or "auto").strip().lower()
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt not in FORMATS:
        raise InputError(str(path), f"unknown export format '{fmt}'", "use one of: auto, " + ", ".join(FORMATS))
    module = reader(fmt)
    if module is None:
        raise InputError(
            str(path), f"the reader for format '{fmt}' is not available in this installation", _formats_hint()
        )
    wells = module.read(path)
    cq_column = wells.attrs.get("cq_column", "Cq")
    wells = _standard_columns(wells, plate)
    _check_duplicate_wells(wells, str(path), plate)
    _check_cq_text(wells, str(path), cq_column)
    return wells


def _standard_columns(wells: pd.DataFrame, plate: str) -> pd.DataFrame:
    """``plate`` first, then the Wells columns in contract order; missing ones filled empty."""
    out = wells.reset_index(drop=True).copy()
    out.attrs = {}
    for column in WELL_COLUMNS:
        if column not in out.columns:
            out[column] = "" if column in TEXT_COLUMNS else (0 if column == "line" else np.nan)
    for column in TEXT_COLUMNS:
        out[column] = out[column].fillna("").astype(str)
    out["line"] = out["line"].astype("int64")
    out.insert(0, "plate", str(plate))
    extras = [c for c in OPTIONAL_COLUMNS if c in out.columns]
    return out[["plate", *WELL_COLUMNS, *extras]]


def _check_duplicate_wells(wells: pd.DataFrame, path: str, plate: str) -> None:
    repeated = wells["well"].duplicated(keep=False)
    if not repeated.any():
        return
    first_well = wells.loc[repeated, "well"].iloc[0]
    lines = wells.loc[wells["well"] == first_well, "line"].tolist()
    where = f"lines {lines[0]} and {lines[1]}" if lines[0] or lines[1] else "two reactions"
    raise InputError(
        path,
        f"well '{first_well}' appears twice on plate {plate} ({where})",
        "each well must be listed once: remove the repeated row, or give each plate or run its own file / plate id",
        line=int(lines[1]) if lines[1] else None,
        column="well",
    )


def _check_cq_text(wells: pd.DataFrame, path: str, cq_column) -> None:
    bad = invalid_cq(wells["cq"], wells["cq_raw"])
    if len(bad) == 0:
        return
    i = int(bad[0])
    column = cq_column[i] if isinstance(cq_column, (list, tuple, np.ndarray)) else cq_column
    line = int(wells["line"].iloc[i])
    raise InputError(
        path,
        f"the Cq value {wells['cq_raw'].iloc[i]!r} of well '{wells['well'].iloc[i]}' is not a number "
        f"(nor a no-value mark: {NO_VALUE_WORDS})",
        "correct the value in the instrument software and re-export, or leave the cell empty for no amplification",
        line=line or None,
        column=column,
    )
