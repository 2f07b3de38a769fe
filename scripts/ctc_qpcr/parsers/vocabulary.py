"""The lab vocabulary export readers share: sample types, well ids unique per plate, replicate groups."""

from __future__ import annotations

import pandas as pd

from ..errors import InputError
from .toolkit import Block, normalise_name, to_numbers

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


def prefix_wells_with_run(frame: pd.DataFrame) -> pd.DataFrame:
    """If the frame holds several runs, make well ids unique as ``run:well``."""
    if frame["run"].nunique() > 1:
        frame["well"] = frame["run"] + ":" + frame["well"]
    return frame


def check_unique_wells(frame: pd.DataFrame, path: str, column: str = "well") -> None:
    """Raise :class:`InputError` when a well id occurs twice in one run (naming both lines)."""
    dup = frame.duplicated(["run", "well"], keep="first")
    if not dup.any():
        return
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


#: Column names of the replicate-group mean that QuantStudio and CFX export.
MEAN_NAMES = ("cq mean", "ct mean", "c\u0442 mean", "crt mean")
#: Largest difference between an exported group mean and the mean of the wells
#: listed that rounding explains (exports write 2 or 3 decimals).
MEAN_TOLERANCE = 0.006


def incomplete_groups(frame: pd.DataFrame, block: Block, decimal: str = ".") -> list[tuple[str, str, str]]:
    """Replicate groups whose exported Cq mean is not the mean of the wells the export lists.

    QuantStudio (``Ct Mean``) and CFX (``Cq Mean``) write, on every well, the mean
    Cq of its sample × target group. When wells of a group are missing from the
    export (a file cut off at a line end), the mean of the wells listed differs.
    Groups without a sample name, without a numeric mean (or mean 0, as CFX
    writes for N/A groups) or without a Cq are not checked. Returns (sample,
    assay, description naming the wells listed and both means) per group.
    """
    position = find_column(block.names, MEAN_NAMES)
    if position is None or len(frame) == 0:
        return []
    exported = to_numbers(block.cells[position], decimal).to_numpy()
    table = frame[["sample", "assay", "well", "cq"]].assign(exported=exported)
    table = table[(table["sample"] != "") & (table["exported"] > 0)]
    groups = table.groupby(["sample", "assay"], sort=True)
    listed = groups["cq"].transform("mean")
    off = (table["exported"] - listed).abs() > MEAN_TOLERANCE
    out = []
    for (sample, assay), rows in table[off.to_numpy()].groupby(["sample", "assay"], sort=True):
        wells = table.loc[(table["sample"] == sample) & (table["assay"] == assay), "well"]
        said = (
            f"sample '{sample}', assay '{assay}': the export's {block.names[position]} is "
            f"{rows['exported'].iloc[0]:g} but the {len(wells)} well(s) listed ({', '.join(wells)}) "
            f"average {listed[rows.index[0]]:.3f}"
        )
        out.append((sample, assay, said))
    return out
