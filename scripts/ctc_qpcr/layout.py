"""Physical layout of a chip or plate: where each well sits, and heat maps on it.

Well ids as the readers write them (docs/data-model.md):

* BioMark dynamic arrays: ``S01-A01`` = sample inlet 1 × assay inlet 1. The
  layout is sample inlets (rows) × assay inlets (columns); the chip size is the
  smallest of 24/48/96/192 inlets that holds the largest inlet number (48.48,
  96.96, 192.24 ...).
* Plates: ``A1`` / ``A01`` (row letters, column numbers). 96-well (8 × 12),
  384-well (16 × 24) or 1536-well (32 × 48), the smallest that holds the wells.
* Anything else (rotor positions, ``run:well``, multiplex ``-target`` ids) has
  no known geometry: one column, wells in sorted order (``geometry`` "list").

``positions`` returns, per well, the 1-based row and column and the position
number used as the RDML react id ((row − 1) × columns + column).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_BIOMARK = r"^S(?P<row>\d+)-A(?P<col>\d+)$"
_PLATE = r"^(?P<row>[A-Za-z]{1,2})(?P<col>\d+)$"
_INLETS = (24, 48, 96, 192)
_PLATES = ((8, 12), (16, 24), (32, 48))


@dataclass(frozen=True)
class Geometry:
    """Size and labelling of one chip or plate."""

    kind: str  # "biomark", "plate" or "list"
    rows: int
    columns: int

    @property
    def row_title(self) -> str:
        return {"biomark": "sample inlet", "plate": "row"}.get(self.kind, "well (sorted)")

    @property
    def column_title(self) -> str:
        return {"biomark": "assay inlet", "plate": "column"}.get(self.kind, "")

    @property
    def name(self) -> str:
        if self.kind == "biomark":
            return f"{self.rows}.{self.columns} dynamic array"
        if self.kind == "plate":
            return f"{self.rows * self.columns}-well plate"
        return f"{self.rows} wells without a known layout"


def _letters_to_row(letters: pd.Series) -> pd.Series:
    """A → 1, Z → 26, AA → 27 (vectorised over one- and two-letter rows)."""
    up = letters.str.upper()
    number = {}
    for label in up.unique():  # a plate has at most 32 distinct row labels
        value = 0
        for char in label:
            value = value * 26 + ord(char) - ord("A") + 1
        number[label] = value
    return up.map(number).astype(int)


def _smallest(size: int, choices) -> int:
    fitting = [c for c in choices if c >= size]
    return fitting[0] if fitting else size


def _all_match(wells: pd.Series, pattern: str) -> pd.DataFrame | None:
    """The ``row`` and ``col`` groups of ``pattern`` in each well id, or None unless every id
    matches (Arrow's regular expressions: a chip has 9,216 wells, issue 17)."""
    found = pc.extract_regex(pa.array(wells.to_numpy(dtype=object), type=pa.string()), pattern)
    if not len(wells) or found.null_count:
        return None
    return pd.DataFrame({name: found.field(name).to_pandas() for name in ("row", "col")})


def positions(wells: pd.Series) -> tuple[pd.DataFrame, Geometry]:
    """Row, column and position number of each well id of ONE chip or plate."""
    wells = wells.astype(str).reset_index(drop=True)
    biomark = _all_match(wells, _BIOMARK)
    if biomark is not None:
        row, col = biomark["row"].astype(int), biomark["col"].astype(int)
        geometry = Geometry("biomark", _smallest(int(row.max()), _INLETS), _smallest(int(col.max()), _INLETS))
    else:
        plate = _all_match(wells, _PLATE)
        if plate is not None:
            row, col = _letters_to_row(plate["row"]), plate["col"].astype(int)
            size = next(
                ((r, c) for r, c in _PLATES if r >= row.max() and c >= col.max()),
                (int(row.max()), int(col.max())),
            )
            geometry = Geometry("plate", *size)
        else:
            order = pd.Series(
                np.arange(1, len(wells) + 1), index=wells.sort_values(kind="stable").index
            ).sort_index()
            row, col = order, pd.Series(1, index=wells.index)
            geometry = Geometry("list", max(len(wells), 1), 1)
    frame = pd.DataFrame({"row": row.to_numpy(), "column": col.to_numpy()})
    frame["position"] = (frame["row"] - 1) * geometry.columns + frame["column"]
    return frame, geometry


def row_label(row: int, geometry: Geometry) -> str:
    if geometry.kind == "plate":
        return (
            chr(ord("A") + (row - 1) // 26 - 1) + chr(ord("A") + (row - 1) % 26)
            if row > 26
            else chr(ord("A") + row - 1)
        )
    if geometry.kind == "biomark":
        return f"S{row:02d}"
    return str(row)


def grid(values: pd.Series, where: pd.DataFrame, geometry: Geometry) -> np.ndarray:
    """A rows × columns array of ``values`` placed at ``where`` (NaN = no well)."""
    out = np.full((geometry.rows, geometry.columns), np.nan)
    out[where["row"].to_numpy() - 1, where["column"].to_numpy() - 1] = values.to_numpy(dtype=float)
    return out


# --------------------------------------------------------------------------- report selection

#: Columns of results/qc/layout_index.tsv (one row per chip/plate, report order).
INDEX_COLUMNS = [
    "rank",
    "plate",
    "batch",
    "wells",
    "excluded",
    "excluded_fraction",
    "detected_fraction",
    "ipc_flags",
    "flagged",
    "in_report",
    "svg",
]


def chip_summary(wells: pd.DataFrame) -> pd.DataFrame:
    """Per chip/plate of an audit table (``batch, plate, state, fate``): wells,
    excluded wells and the excluded and detected (CALC) fractions."""
    frame = pd.DataFrame(
        {
            "batch": wells["batch"].astype(str),
            "plate": wells["plate"].astype(str),
            "excluded": wells["fate"].ne("kept"),
            "detected": wells["state"].eq("CALC") & wells["fate"].eq("kept"),
        }
    )
    out = frame.groupby(["plate", "batch"], sort=True).agg(
        wells=("excluded", "size"), excluded=("excluded", "sum"), detected=("detected", "sum")
    )
    out = out.reset_index()
    out["excluded_fraction"] = out["excluded"] / out["wells"]
    out["detected_fraction"] = out["detected"] / out["wells"]
    return out.drop(columns="detected")


def _outlier_high(values: pd.Series, z: float) -> pd.Series:
    """Above the median by more than ``z`` robust SDs (1.4826 MAD; docs/methods.md §11.1)."""
    median = values.median()
    scale = 1.4826 * (values - median).abs().median()
    return values > median + z * scale if scale > 0 else values > median


def report_selection(
    summary: pd.DataFrame, calibration: pd.DataFrame, max_chips: int, *, z: float = 3.5
) -> pd.DataFrame:
    """Order chips for the report, flagged ones first, and mark the first
    ``max_chips`` as shown in it (every SVG stays on disk).

    Flagged: an IPC flag in the plate calibration, or an excluded fraction (or a
    not-detected fraction) more than ``z`` robust SDs above the study's median.
    Then by excluded fraction (highest first) and plate name.
    """
    ipc = calibration.set_index(calibration["plate"].astype(str))["flags"].fillna("").astype(str)
    out = summary.copy()
    out["ipc_flags"] = out["plate"].map(ipc).fillna("")
    reasons = pd.DataFrame(
        {
            "ipc": np.where(out["ipc_flags"] != "", "IPC " + out["ipc_flags"], ""),
            "excluded": np.where(_outlier_high(out["excluded_fraction"], z), "many exclusions", ""),
            "detected": np.where(_outlier_high(1 - out["detected_fraction"], z), "few detected", ""),
        }
    )
    out["flagged"] = reasons.apply(lambda r: "; ".join(v for v in r if v), axis=1) if len(out) else ""
    out = out.sort_values(
        ["flagged", "excluded_fraction", "plate"],
        key=lambda col: col.eq("") if col.name == "flagged" else col,
        ascending=[True, False, True],
        kind="stable",
    ).reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    out["in_report"] = out["rank"] <= max_chips
    out["svg"] = "results/qc/layout/" + out["plate"] + ".svg"
    return out[INDEX_COLUMNS]


def report_name(rank: int, plate: str) -> str:
    """File name of a chip's layout in results/qc/layout_report (report order)."""
    return f"{rank:04d}_{plate}.svg"
