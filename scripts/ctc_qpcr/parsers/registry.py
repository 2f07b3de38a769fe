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
import re
from types import ModuleType

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype

from ..errors import InputError
from .text import load_text
from .toolkit import (
    NO_VALUE_WORDS,
    OPTIONAL_COLUMNS,
    TEXT_COLUMNS,
    WELL_COLUMNS,
    check_well_names,
    invalid_cq,
)

#: All formats, in the order auto-detection tries them (the plain table last: it is the loosest).
FORMATS = ("biomark", "quantstudio", "cfx", "sds", "lc480", "rdml", "table", "excel")
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
    return _detect(path)[0]


def _detect(path: str | os.PathLike):
    """(format, loaded text or None) of the export at ``path``."""
    rdml = reader("rdml")
    if rdml is not None and hasattr(rdml, "sniff_path") and rdml.sniff_path(path):
        return "rdml", None
    excel = reader("excel")
    if excel is not None and excel.sniff_path(path):
        return "excel", None
    try:
        text = load_text(path)
    except UnicodeDecodeError:
        raise InputError(str(path), "this is a binary file, not a text export", _formats_hint()) from None
    for fmt in _DETECTION_ORDER:
        module = reader(fmt)
        if fmt == "rdml" or module is None or not hasattr(module, "sniff"):
            continue
        if module.sniff(text):
            return fmt, text
    raise InputError(
        str(path),
        "the export format was not recognised (formats tried: " + ", ".join(available_formats()) + ")",
        _formats_hint(),
    )


#: What to do with an export whose grid of chambers/wells is incomplete.
ON_INCOMPLETE = ("stop", "flag")


#: Largest results export read, in bytes. A results table has one row per well:
#: a 96.96 chip is 1.5 MB, four 192.24 chips in one file 3 MB. Files larger than
#: this are refused before anything is loaded (the reading job declares
#: ``mem_mb`` for this size; see workflow/rules/import.smk).
MAX_EXPORT_BYTES = 64 * 1024 * 1024
_RAW_CURVE_WORDS = (
    "amplification data",
    "multicomponent",
    "raw data",
    "delta rn",
    "fluorescence",
    "melt curve",
)


def check_size(path: str | os.PathLike, fmt: str = "auto", limit: int | None = None) -> None:
    """Refuse a file larger than any results export, saying what it looks like, before loading it."""
    limit = MAX_EXPORT_BYTES if limit is None else limit
    try:
        size = os.path.getsize(path)
    except OSError:
        return  # the reader says "file not found"
    if size <= limit:
        return
    with open(path, "rb") as handle:
        head = handle.read(65536)
    text = head.decode(
        "utf-16" if head[:2] in (b"\xff\xfe", b"\xfe\xff") else "latin-1", errors="replace"
    ).lower()
    words = [w for w in _RAW_CURVE_WORDS if w in text]
    cycles = re.search(r"(^|[,;\t\n])\s*\"?cycle", text) is not None
    looks = (
        "; it looks like raw fluorescence curves "
        f"(one row per well and cycle: {', '.join(words + ['cycle'] * cycles)}), "
        "not a table of Cq values"
        if words or cycles
        else ""
    )
    raise InputError(
        str(path),
        f"the file is {size / 1e6:.1f} MB, more than the {limit / 1e6:.1f} MB a results export of one plate "
        f"or chip (format {fmt}) can take{looks}",
        "export the results table (one Cq per well: BioMark 'Table Results', QuantStudio 'Results', "
        "CFX 'Quantification Cq Results') and give that file in plates.tsv",
    )


def read_export(
    path: str | os.PathLike, fmt: str = "auto", plate: str = "P1", on_incomplete: str = "stop"
) -> pd.DataFrame:
    """Read one plate's export into the Wells table and check it.

    ``fmt`` is one of :data:`FORMATS` or ``"auto"``. Adds the ``plate`` column,
    keeps the rows in file order, and raises InputError for a well listed twice,
    a Cq text that is neither a number nor a known no-value token, an export
    without a single Cq cell filled, or (``on_incomplete="stop"``) an
    incomplete grid. With ``"flag"`` the missing wells are in
    ``attrs["missing_wells"]`` and the incomplete replicate groups in
    ``attrs["incomplete_groups"]``, for the caller to list.
    """
    fmt = (fmt or "auto").strip().lower()
    check_size(path, fmt)
    text = None
    if fmt == "auto":
        fmt, text = _detect(path)
    if fmt not in FORMATS:
        raise InputError(
            str(path), f"unknown export format '{fmt}'", "use one of: auto, " + ", ".join(FORMATS)
        )
    module = reader(fmt)
    if module is None:
        raise InputError(
            str(path), f"the reader for format '{fmt}' is not available in this installation", _formats_hint()
        )
    wells = module.parse(text) if text is not None and hasattr(module, "parse") else module.read(path)
    cq_column = wells.attrs.get("cq_column", "Cq")
    missing = list(wells.attrs.get("missing_wells", []))
    groups = list(wells.attrs.get("incomplete_groups", []))
    grid = wells.attrs.get("grid", "plate")
    where = str(path) + (f" (sheet '{wells.attrs['sheet']}')" if wells.attrs.get("sheet") else "")
    wells = _standard_columns(wells, plate)
    _check_duplicate_wells(wells, where, plate)
    check_well_names(wells, where)
    _check_cq_text(wells, where, cq_column)
    _check_some_cq(wells, where, plate, cq_column)
    if on_incomplete not in ON_INCOMPLETE:
        raise ValueError(f"on_incomplete must be one of {ON_INCOMPLETE}, not {on_incomplete!r}")
    if on_incomplete == "stop":
        _check_complete(where, plate, len(wells), missing, groups, grid)
    wells.attrs = {"missing_wells": missing, "incomplete_groups": groups}
    return wells


def _listed(names: list[str], limit: int = 12) -> str:
    more = f" … and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _check_complete(path: str, plate: str, n: int, missing: list[str], groups: list, grid: str) -> None:
    """InputError naming the plate and the missing wells (or the incomplete replicate groups)."""
    hint = (
        "re-export the whole results table from the instrument software (the file looks cut off), "
        "or set import.on_incomplete: flag in config/config.yaml to go on with the wells listed "
        "(the missing ones are then listed in the well audit as 'missing')"
    )
    if missing:
        raise InputError(
            path,
            f"plate {plate}: the export lists {n} chambers but the {grid} has {n + len(missing)}; "
            f"{len(missing)} missing: {_listed(missing)}",
            hint,
        )
    if groups:
        raise InputError(
            path,
            f"plate {plate}: {len(groups)} replicate group(s) lack wells: "
            f"{'; '.join(g[2] for g in groups[:5])}"
            + (f"; … and {len(groups) - 5} more" if len(groups) > 5 else ""),
            hint,
        )


def _check_some_cq(wells: pd.DataFrame, path: str, plate: str, cq_column) -> None:
    """An export whose Cq cells are all empty was exported before analysis: nothing to read."""
    if len(wells) == 0 or wells["cq"].notna().any():
        return
    if (wells["cq_raw"].str.strip() != "").any():
        return  # no-amplification marks (999, Undetermined, ...): a measured result
    column = cq_column if isinstance(cq_column, str) else "Cq"
    raise InputError(
        path,
        f"plate {plate}: none of the {len(wells)} wells has a Cq value (every {column} cell is empty)",
        "analyse the run in the instrument software (set the threshold / call Cq) "
        "and export the results again",
        column=column,
    )


def _standard_columns(wells: pd.DataFrame, plate: str) -> pd.DataFrame:
    """``plate`` first, then the Wells columns in contract order; missing ones filled empty."""
    index = wells.index
    default = isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1
    out = (
        wells.copy(deep=False) if default else wells.reset_index(drop=True)
    )  # columns are replaced, not written
    out.attrs = {}
    for column in WELL_COLUMNS:
        if column not in out.columns:
            out[column] = "" if column in TEXT_COLUMNS else (0 if column == "line" else np.nan)
    for column in TEXT_COLUMNS:
        if infer_dtype(out[column], skipna=False) != "string":  # readers give str: usually nothing to do
            out[column] = out[column].fillna("").astype(str)
    if out["line"].dtype != np.int64:
        out["line"] = out["line"].astype("int64")
    out.insert(0, "plate", str(plate))
    columns = ["plate", *WELL_COLUMNS, *[c for c in OPTIONAL_COLUMNS if c in out.columns]]
    return out if list(out.columns) == columns else out[columns]


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
        "each well must be listed once: remove the repeated row, "
        "or give each plate or run its own file / plate id",
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
        "correct the value in the instrument software and re-export, "
        "or leave the cell empty for no amplification",
        line=line or None,
        column=column,
    )
