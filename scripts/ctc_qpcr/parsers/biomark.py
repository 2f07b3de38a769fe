"""Fluidigm BioMark "Table Results" export (Real-Time PCR Analysis v2.x to v4.x).

Layout (docs/methods.md §3.1)::

    Chip Run Info,<path>,<barcode or "Combined Chip Run">,192.24 (169x),...   (v4.x)
    Application Version,4.5.2
    Export Type,Table Results
    Quality Threshold,0.65
    ...
    <blank lines>
    Experiment Information,...,FAM-MGB,...       <- group row 1
    Chamber,Sample,Sample,Sample,FAM-MGB,FAM-MGB,Ct,Ct,Ct,Ct,(Tm,...)   <- group row 2
    ID,Name,Type,rConc,Name,Type,Value,(Calibrated rConc,)Quality,Call,Threshold,(In Range,Out Range,Peak Ratio)
    S48-A01,no preamp,Unknown,0.05,b actin,Test,34.61,0.85,Pass,0.054
    ...

Columns are found by the group row 2 together with the name row (``Sample`` +
``Name`` is the sample, the dye group + ``Name`` is the assay, ``Ct`` + ``Value``
is the Cq), never by position. ``999`` means no amplification (Cq NaN, Tm NaN).

A "Combined Chip Run" holds several chips in one file. Chamber ids are then
numbered on across chips (a 192.24 chip has assay inlets A01–A24; the second
chip in the file A25–A48, ...), so ``run`` is set to ``chip1``, ``chip2``, ...
from the inlet number and the chip geometry (``192.24`` in ``Chip Run Info``).
If chamber ids repeat instead (every id the same number of times), the n-th
occurrence of an id belongs to chip n and the well id gets the chip as prefix
(``chip2:S001-A01``); when only some ids repeat, it is a duplicated row and an error.

Semicolon-separated exports with decimal commas (European Windows) are read too.
"""  # noqa: E501 (the layout above quotes whole export lines)

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..errors import InputError
from .text import Text, load_text
from .toolkit import (
    Block,
    cq_numbers,
    decimal_mark,
    parse_number,
    read_block,
    split_fields,
    to_numbers,
    wells_frame,
)

REEXPORT = "re-export 'Table Results' from the Fluidigm Real-Time PCR Analysis software"

#: (group row 2, name row) → Wells column. ``None`` as group = the dye group (assay columns).
_COLUMNS = {
    ("chamber", "id"): "well",
    ("sample", "name"): "sample",
    ("sample", "type"): "sample_type",
    ("sample", "rconc"): "quantity",
    (None, "name"): "assay",
    ("ct", "value"): "cq",
    ("ct", "calibrated rconc"): "calibrated_rconc",
    ("ct", "quality"): "quality",
    ("ct", "call"): "call",
    ("tm", "in range"): "tm",
    ("tm", "out range"): "tm_out",
    ("tm", "peak ratio"): "peak_ratio",
}
_REQUIRED = ("well", "sample", "assay", "cq")
_KNOWN_GROUPS = {"chamber", "sample", "ct", "tm"}
_SEPARATORS = (",", ";", "\t")
_CHAMBER = re.compile(r"^S(\d+)-A(\d+)$")
_CHAMBERS = re.compile(r"S\d+-A\d+(?:\x00S\d+-A\d+)*")


def _id_row(text: Text, limit: int | None = None) -> tuple[int, str] | None:
    """Index of the ``ID,Name,...`` row that follows a ``Chamber,...`` row, and the delimiter."""
    lines = text.lines if limit is None else text.lines[:limit]
    for i in range(2, len(lines)):
        line = lines[i].lstrip('"')
        if not line.startswith("ID"):
            continue
        for sep in _SEPARATORS:
            if line.startswith(("ID" + sep, 'ID"' + sep)) and lines[i - 1].lstrip('"').startswith(
                ("Chamber" + sep, 'Chamber"' + sep)
            ):
                return i, sep
    return None


def sniff(text: Text) -> bool:
    """True for a BioMark Table Results (or other BioMark) export."""
    head = text.lines[:40]
    if any(re.match(r'^"?Export Type"?[,;\t]', line) for line in head) and any(
        re.match(r'^"?(Chip Run (Info|Filename)|Application Build)"?[,;\t]', line) for line in head
    ):
        return True
    return _id_row(text, limit=60) is not None


def _header_block(text: Text, end: int, sep: str) -> dict[str, list[str]]:
    """``key → [values]`` from the lines above the column header (``Quality Threshold,0.65``)."""
    block = {}
    for line in text.lines[:end]:
        fields = split_fields(line, sep)
        if fields and fields[0]:
            block[fields[0]] = fields[1:]
    return block


def _column_map(text: Text, id_index: int, sep: str) -> dict[str, int]:
    """Wells column → position, from the stacked header (group row 2 + name row)."""
    groups = [g.lower() for g in split_fields(text.lines[id_index - 1], sep)]
    names = [n.lower() for n in split_fields(text.lines[id_index], sep)]
    found: dict[str, int] = {}
    for pos, name in enumerate(names):
        group = groups[pos] if pos < len(groups) else ""
        key = (group if group in _KNOWN_GROUPS else None, name)
        column = _COLUMNS.get(key)
        if column and column not in found:
            found[column] = pos
    missing = [c for c in _REQUIRED if c not in found]
    if missing:
        wanted = {"well": "Chamber/ID", "sample": "Sample/Name", "assay": "<dye>/Name", "cq": "Ct/Value"}
        raise InputError(
            text.path,
            "the column header has no " + ", ".join(wanted[c] for c in missing) + " column",
            REEXPORT + " with all columns",
            line=id_index + 1,
            column=", ".join(wanted[c] for c in missing),
        )
    return found


def read(path) -> pd.DataFrame:
    """Read a BioMark Table Results export into the Wells columns."""
    return parse(load_text(path))


def parse(text: Text) -> pd.DataFrame:
    """Wells table from a loaded BioMark export."""
    found = _id_row(text)
    if found is None:
        raise InputError(
            text.path,
            "no BioMark column header found (a row starting with 'ID' under a row starting with 'Chamber')",
            REEXPORT + "; the 'Heatmap Results' export is not supported",
        )
    id_index, sep = found
    header = _header_block(text, id_index - 2, sep)
    export_type = (header.get("Export Type") or [""])[0]
    if export_type and export_type.lower() != "table results":
        raise InputError(
            text.path,
            f"this is a BioMark '{export_type}' export",
            REEXPORT,
            line=_key_line(text, "Export Type"),
        )
    cols = _column_map(text, id_index, sep)
    block = read_block(text, id_index, len(text.lines), sep, cut_hint=REEXPORT, usecols=sorted(cols.values()))
    return _wells(text, block, cols, header)


def _key_line(text: Text, key: str) -> int | None:
    for i, line in enumerate(text.lines):
        if line.lstrip('"').startswith(key):
            return i + 1
    return None


def _wells(text: Text, block: Block, cols: dict[str, int], header: dict[str, list[str]]) -> pd.DataFrame:
    cells = block.cells
    numeric = ("cq", "quality", "quantity", "calibrated_rconc", "tm", "tm_out", "peak_ratio")
    decimal = decimal_mark(
        text, {block.names[cols[c]]: cells[cols[c]] for c in numeric if c in cols}, block.line
    )
    threshold_text = (header.get("Quality Threshold") or [""])[0]
    threshold = parse_number(threshold_text, decimal) if threshold_text else None
    well = cells[cols["well"]]
    run, well = _chips(well, header)

    def number(column: str):
        return to_numbers(cells[cols[column]], decimal) if column in cols else None

    extra = {}
    for column in ("tm", "tm_out"):
        if column in cols:
            extra[column] = cq_numbers(cells[cols[column]], decimal)  # 999 = no melt peak
    if "peak_ratio" in cols:
        extra["peak_ratio"] = number("peak_ratio")
    if "calibrated_rconc" in cols:
        rconc = number("calibrated_rconc")
        extra["calibrated_rconc"] = rconc.where(rconc >= 0)  # -1 = not calculated
    cq_raw = cells[cols["cq"]]
    frame = wells_frame(
        len(cells),
        stripped=True,
        run=run,
        well=well,
        sample=cells[cols["sample"]],
        assay=cells[cols["assay"]],
        cq=cq_numbers(cq_raw, decimal),
        cq_raw=cq_raw,
        quality=number("quality"),
        quality_threshold=np.nan if threshold is None else threshold,
        call=cells[cols["call"]] if "call" in cols else None,
        sample_type=cells[cols["sample_type"]] if "sample_type" in cols else None,
        quantity=number("quantity"),
        line=block.line,
        **extra,
    )
    frame.attrs["cq_column"] = block.names[cols["cq"]]
    chip = _geometry(header)
    frame.attrs["missing_wells"] = missing_chambers(frame["run"], cells[cols["well"]], chip)
    frame.attrs["grid"] = f"{chip[0]}.{chip[1]} chip" if chip else "chip"
    return frame


def _geometry(header: dict[str, list[str]]) -> tuple[int, int] | None:
    """(sample inlets, assay inlets) from ``Chip Run Info`` (``96.96 (xxx)``), None when not written."""
    for field in header.get("Chip Run Info") or []:
        match = re.match(r"^(\d+)\.(\d+)\b", field.strip())
        if match:
            return int(match.group(1)), int(match.group(2))
    return None


def _integers(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Every run of ASCII digits in ``text`` as an integer, and its number of digits (vectorised)."""
    data = np.frombuffer(text.encode("ascii", "replace"), dtype=np.uint8)
    digit = (data >= 48) & (data <= 57)
    edges = np.diff(np.concatenate(([0], digit.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    positions = np.flatnonzero(digit)
    run_end = np.repeat(ends, ends - starts)
    values = (data[positions] - 48).astype(np.int64) * 10 ** (run_end - positions - 1)
    return np.add.reduceat(values, np.searchsorted(positions, starts)) if len(
        starts
    ) else values, ends - starts


def _fixed_width_inlets(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int] | None:
    """Sample and assay inlet numbers of chamber ids that all share one layout (``S01-A01``: the
    digits, the dash and the ``A`` in the same places), read column-wise from their ASCII bytes,
    and the two numbers' widths; None for any other ids (:func:`_integers` reads those)."""
    first = ids[0] if isinstance(ids[0], str) else ""
    dash = first.find("-")
    try:
        data = np.array(ids, dtype="S")  # one row of bytes per id; refuses non-ASCII text
    except (UnicodeEncodeError, TypeError, ValueError):
        return None
    width = data.dtype.itemsize
    if dash < 2 or width < dash + 3:
        return None
    grid = data.view(np.uint8).reshape(len(ids), width)
    digits = np.r_[1:dash, dash + 2 : width]
    if not (
        (grid[:, 0] == ord("S")).all()
        and (grid[:, dash] == ord("-")).all()
        and (grid[:, dash + 1] == ord("A")).all()
        and ((grid[:, digits] >= ord("0")) & (grid[:, digits] <= ord("9"))).all()
    ):
        return None
    values = grid.astype(np.int64) - ord("0")

    def number(columns: np.ndarray) -> np.ndarray:
        return values[:, columns] @ (10 ** np.arange(len(columns) - 1, -1, -1, dtype=np.int64))

    return number(np.arange(1, dash)), number(np.arange(dash + 2, width)), dash - 1, width - dash - 2


def sample_inlets(ids: np.ndarray) -> np.ndarray:
    """The sample inlet ``S05`` of each chamber id ``S05-A12`` (NaN where an id names none): what
    ``str.extract(r"^(S\\d+)-")`` gives. Ids of one ASCII layout (the dash in one place) are read
    column-wise from their bytes, each distinct inlet made text once; any other ids by the pattern."""
    inlets = _fixed_layout_inlets(ids)
    if inlets is not None:
        return inlets
    return pd.Series(ids, dtype=object).str.extract(r"^(S\d+)-", expand=False).to_numpy(dtype=object)


def _fixed_layout_inlets(ids: np.ndarray) -> np.ndarray | None:
    """:func:`sample_inlets` of ids that are all ``S`` + digits + ``-`` with the dash where the
    first id has it (ASCII); None for any other ids."""
    dash = ids[0].find("-") if len(ids) and isinstance(ids[0], str) else -1
    try:
        data = np.array(ids, dtype="S")  # one row of bytes per id; refuses non-ASCII text
    except (UnicodeEncodeError, TypeError, ValueError):
        return None
    if dash < 2 or data.dtype.itemsize <= dash:
        return None
    grid = data.view(np.uint8).reshape(len(ids), data.dtype.itemsize)
    digits = grid[:, 1:dash]
    if not (
        (grid[:, 0] == ord("S")).all()
        and (grid[:, dash] == ord("-")).all()
        and ((digits >= ord("0")) & (digits <= ord("9"))).all()
    ):
        return None
    prefix = np.ascontiguousarray(grid[:, :dash]).view(f"S{dash}").ravel()
    names, at = np.unique(prefix, return_inverse=True)
    return np.array([name.decode("ascii") for name in names], dtype=object)[at.reshape(-1)]


def _inlets(s: np.ndarray, a: np.ndarray, chip: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray]:
    """Sample and assay inlets of one chip's grid (sorted): the chip's block, or the inlets seen."""
    if chip is None:
        return np.unique(s), np.unique(a)
    s0, a0 = (s.min() - 1) // chip[0] * chip[0], (a.min() - 1) // chip[1] * chip[1]
    return np.arange(s0 + 1, s0 + chip[0] + 1), np.arange(a0 + 1, a0 + chip[1] + 1)


def missing_chambers(run: pd.Series, chamber: pd.Series, chip: tuple[int, int] | None) -> list[str]:
    """Chamber ids of the chip grid that the export does not list (docs/methods.md §3.1).

    Every chamber of a chip is exported, so each chip (``run``) must list the full
    grid of its sample × assay inlets: the chip format written in the header
    (``Chip Run Info``, v4 exports), or else every sample inlet seen × every
    assay inlet seen (older exports do not name the format; an excerpt of a chip
    is then accepted, and a file cut off exactly after the last chamber of a
    sample inlet is not noticed — one cut inside an inlet, or a deleted row, is). In a
    Combined Chip Run the inlets of chip n are numbered on from chip n-1, so a
    chip's grid is the block of inlets its chambers fall in. Chamber ids not of
    the ``S01-A01`` form are not checked.
    """
    if len(chamber) == 0:
        return []
    inlets = _fixed_width_inlets(chamber.to_numpy(dtype=object))
    if inlets is None:
        joined = "\x00".join(chamber.to_numpy())
        if not _CHAMBERS.fullmatch(joined):
            return []
        numbers, widths = _integers(joined)
        inlets = numbers[0::2], numbers[1::2], int(widths[0]), int(widths[1])
    s, a, ws, wa = inlets
    codes, names = pd.factorize(run.to_numpy())
    repeated_ids = len(names) > 1 and chamber.duplicated().any()
    missing = []
    for code, name in enumerate(names):
        s_run, a_run = (s, a) if len(names) == 1 else (s[codes == code], a[codes == code])
        rows, columns = _inlets(s_run, a_run, chip)
        present = np.zeros(len(rows) * len(columns), dtype=bool)
        i, j = np.searchsorted(rows, s_run), np.searchsorted(columns, a_run)
        inside = (i < len(rows)) & (j < len(columns))
        inside[inside] &= (rows[i[inside]] == s_run[inside]) & (columns[j[inside]] == a_run[inside])
        present[(i * len(columns) + j)[inside]] = True
        absent = np.flatnonzero(~present)
        prefix = f"{name}:" if repeated_ids else ""  # ids repeated per chip carry the chip
        missing += [
            f"{prefix}S{rows[v // len(columns)]:0{ws}d}-A{columns[v % len(columns)]:0{wa}d}" for v in absent
        ]
    return missing


def _chips(well: pd.Series, header: dict[str, list[str]]) -> tuple[pd.Series, pd.Series]:
    """``run`` per chamber (``chip1``, ...) for a Combined Chip Run, and well ids unique in the file."""
    n = len(well)
    blank = pd.Series(np.full(n, "", dtype=object), index=well.index)
    if well.duplicated().any():
        if well.value_counts().nunique() != 1:
            # Only some chambers repeat: a pasted/duplicated row, not several chips in one file.
            # Left as is, so that the duplicate-well check names both lines.
            return blank, well
        occurrence = well.groupby(well).cumcount() + 1
        run = "chip" + occurrence.astype(str)
        return run, run + ":" + well
    info = header.get("Chip Run Info") or []
    if not any(field.strip().lower() == "combined chip run" for field in info):
        return blank, well
    geometry = next(
        (re.match(r"^(\d+)\.(\d+)\b", f.strip()) for f in info if re.match(r"^\d+\.\d+\b", f.strip())), None
    )
    inlets = [_CHAMBER.match(w) for w in well.to_numpy()]
    if geometry is None or not all(inlets):
        return blank, well
    samples_per_chip, assays_per_chip = int(geometry.group(1)), int(geometry.group(2))
    sample_inlet = pd.Series([int(m.group(1)) for m in inlets], index=well.index)
    assay_inlet = pd.Series([int(m.group(2)) for m in inlets], index=well.index)
    if assay_inlet.max() > assays_per_chip:
        chip = (assay_inlet - 1) // assays_per_chip + 1
    elif sample_inlet.max() > samples_per_chip:
        chip = (sample_inlet - 1) // samples_per_chip + 1
    else:
        chip = pd.Series(np.ones(n, dtype=int), index=well.index)
    return "chip" + chip.astype(str), well
