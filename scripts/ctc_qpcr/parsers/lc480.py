"""Roche LightCycler 480 "Abs Quant" (Cp) result export.

Layout (tab-separated; the LC480 software writes CR-only line endings)::

    Experiment: <name> Selected Filter: <filter> (<nm range>)
    Include  Color  Pos  Name  Cp  Concentration  Standard  Status
    True     255    A1   Sample 1  16.13  1.01E+05  0
    ...

Mapping to the Wells table:

* ``well`` = ``Pos``; ``sample`` = ``Name``; ``cq`` = ``Cp`` (empty Cp = no Cq;
  LC480 leaves Cp empty for every well without amplification, including the
  many unused wells of a demo plate, which are kept as rows).
* ``run`` = the experiment name from the first line (with the filter when a
  file holds several filter blocks, each starting with its own
  ``Experiment:`` line; wells are then prefixed with the run).
* ``assay``: **the Abs Quant export has no target column**, so ``assay`` is
  left empty (or set for the whole file with ``read(path, assay="GAPDH")``).
  An LC480 plate therefore maps to one assay. If a plate holds several assays,
  export a plain table (well, sample, assay, Cq) from the LC480 software or
  fill the assay in a spreadsheet, and read it with the ``table`` format.
* ``quantity`` = ``Standard`` (the known concentration the user entered for
  standards; 0 for other wells, read as "none"), and ``sample_type`` =
  ``Standard`` for those wells, "" otherwise (the export does not say which
  wells are unknowns or negative controls; ``Concentration`` is the software's
  estimate, not an input, and is not read).
* ``instrument_flags``: ``excluded`` when ``Include`` is False, plus the text
  of ``Status`` where the software wrote one.
"""

from __future__ import annotations

import re
from functools import partial

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

_EXPERIMENT = re.compile(r"^\s*Experiment:\s*(?P<name>.*?)\s*(?:Selected Filter:\s*(?P<filter>.*?))?\s*$")
_REQUIRED = ("Pos", "Name", "Cp")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.split("\t")]


def _column(table: pd.DataFrame, header: list[str], name: str) -> pd.Series:
    """Column ``name`` of one block's ``table`` (blank cells when the block has no such column)."""
    return table[header.index(name)] if name in header else pd.Series([""] * len(table))


def _is_header(line: str) -> bool:
    cells = set(_cells(line))
    return all(name in cells for name in _REQUIRED)


def sniff(text: Text) -> bool:
    """True for an LC480 Abs Quant export (``Experiment:`` line, then Pos/Name/Cp header)."""
    head = [line for line in text.lines[:5] if line.strip()]
    if not head:
        return False
    if head[0].lstrip().startswith("Experiment:"):
        return any(_is_header(line) for line in head[1:3])
    return _is_header(head[0]) and "Include" in _cells(head[0])


def read(path: str, assay: str = "") -> pd.DataFrame:
    """Read an LC480 Abs Quant export; ``assay`` names the (single) assay of the plate."""
    text = load_text(path)
    lines = text.lines
    blocks: list[tuple[str, str, int]] = []  # (experiment, filter, header index)
    experiment, filter_name = "", ""
    for i, line in enumerate(lines):
        match = _EXPERIMENT.match(line.split("\t")[0]) if line.lstrip().startswith("Experiment:") else None
        if match:
            experiment, filter_name = match["name"], (match["filter"] or "")
        elif _is_header(line):
            blocks.append((experiment, filter_name, i))
    if not blocks:
        raise InputError(
            path,
            "no LightCycler 480 result table found (a header line with Pos, Name and Cp)",
            "export 'Abs Quant' results (Cp) from the LC480 software as text",
        )

    several = len(blocks) > 1
    frames = []
    for experiment, filter_name, header_at in blocks:
        header = _cells(lines[header_at])
        end = header_at + 1
        while end < len(lines) and lines[end].strip() and not lines[end].lstrip().startswith("Experiment:"):
            end += 1
        rows = [line.split("\t") for line in lines[header_at + 1 : end]]
        if not rows:
            continue
        width = max(len(header), max(len(r) for r in rows))
        raw = pd.DataFrame([r + [""] * (width - len(r)) for r in rows], dtype=str)
        table = raw.apply(lambda col: col.str.strip())
        line_numbers = pd.Series(np.arange(header_at + 2, header_at + 2 + len(rows)), dtype=int)
        col = partial(_column, table, header)
        cq = parse_cq_column(raw[header.index("Cp")], path, line_numbers, "Cp")
        standard = to_numbers(col("Standard"))
        quantity = standard.where(standard > 0)
        excluded = col("Include").str.lower().eq("false").map({True: "excluded", False: ""})
        status = col("Status")
        flags = pd.Series(
            [";".join(p for p in parts if p) for parts in zip(excluded, status, strict=True)], dtype=str
        )
        run = experiment
        if several and filter_name:
            run = f"{experiment} [{filter_name}]"
        frames.append(
            wells_frame(
                len(table),
                run=run,
                well=col("Pos"),
                sample=col("Name"),
                assay=assay.strip(),
                cq=cq,
                cq_raw=raw[header.index("Cp")],
                sample_type=quantity.notna().map({True: "Standard", False: ""}),
                quantity=quantity,
                instrument_flags=flags,
                line=line_numbers,
            )
        )
    if not frames:
        raise InputError(
            path, "the LightCycler 480 table has no rows", "re-export the plate", line=blocks[0][2] + 1
        )
    frame = pd.concat(frames, ignore_index=True)
    check_unique_wells(frame, path, column="Pos")
    return prefix_wells_with_run(frame)
