"""RDML 1.3 export of the analysed wells (``results/rdml/study.rdml``).

One RDML document (plain XML, namespace ``http://www.rdml.org``, version 1.3):

* ``sample`` per sample of the wells, with the samples-sheet columns as
  ``annotation`` (property/value), ``type`` from the sheet's ``kind`` (ntc → ntc,
  standard/gdna with a quantity → std, everything else unkn) and ``quantity``.
* ``target`` per assay: type ``ref`` for reference genes, ``toi`` otherwise;
  gene and role from the assays sheet in the description; amplification
  efficiency (fold per cycle, e.g. 1.95) and detection limit (the LOD used).
* one ``experiment`` ("ctc-qpcr") with one ``run`` per plate/chip (description:
  the batch), ``pcrFormat`` from the physical layout (``ctc_qpcr.layout``), and
  one ``react`` per well (id = layout position) holding the well's ``data``: the
  target, the Cq (omitted when there is none), ``excl`` = the exclusion reason
  for wells the workflow excluded, ``note`` = the well state.

The runs' XML is assembled with Arrow compute (no per-well Python loop; tags made
once per distinct text, the Cq printed as Python's ``str`` prints it) and written
from Arrow's buffers; the output has no dates, so the same wells give the same bytes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .layout import positions
from .study_cells import distinct_values
from .tables import atomic_path, is_text

NAMESPACE = "http://www.rdml.org"
EXPERIMENT = "ctc-qpcr"
DYE = "not_recorded"
_ENTITIES = [("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;")]
# _float_repr: where Arrow's cast prints floats as Python does (tests/test_rdml_export.py)
_FIXED_LOW, _FIXED_HIGH = 1e-4, 1e10


def _esc(values: pd.Series) -> pd.Series:
    """XML-escape a string column (vectorised): each distinct text escaped once."""
    codes, distinct = pd.factorize(values)
    if pd.api.types.infer_dtype(distinct, skipna=False) not in ("string", "empty"):
        return _esc_each(values)  # numbers or mixed types: equal values may print differently
    escaped = np.append(_esc_each(pd.Series(distinct, dtype=object)).to_numpy(), "")
    return pd.Series(escaped[codes], index=values.index, dtype=object)


def _esc_each(values: pd.Series) -> pd.Series:
    return (
        values.fillna("")
        .astype(str)
        .str.replace("&", "&amp;", regex=False)
        .str.replace("<", "&lt;", regex=False)
        .str.replace(">", "&gt;", regex=False)
        .str.replace('"', "&quot;", regex=False)
    )


def _esc1(value) -> str:
    """One value XML-escaped as :func:`_esc_each` does ("" if missing)."""
    text = "" if pd.isna(value) else str(value)
    for char, entity in _ENTITIES:
        text = text.replace(char, entity)
    return text


def _float_text(values: pd.Series) -> pd.Series:
    return values.astype(float).astype(str)


def _sample_type(samples: pd.DataFrame) -> pd.Series:
    kind = samples.get("kind", pd.Series("", index=samples.index)).fillna("")
    quantity = pd.to_numeric(samples.get("quantity", pd.Series(np.nan, index=samples.index)), errors="coerce")
    out = pd.Series("unkn", index=samples.index)
    out[kind.eq("ntc")] = "ntc"
    out[kind.isin(["standard", "gdna"]) & quantity.notna()] = "std"
    return out


def samples_xml(names: pd.Series, sheet: pd.DataFrame) -> str:
    """<sample> elements for ``names`` (sorted), annotated from the samples sheet."""
    table = pd.DataFrame({"sample": sorted(set(names))}).merge(
        sheet.astype({"sample": str}), on="sample", how="left"
    )
    body = pd.Series("", index=table.index)
    kind = table.get("kind", pd.Series("", index=table.index)).fillna("")
    body += np.where(kind.ne(""), "<description>" + _esc(kind) + "</description>", "")
    for column in [c for c in sheet.columns if c != "sample"]:
        value = table[column].astype(object).where(table[column].notna(), "").astype(str)
        body += np.where(
            value.ne(""),
            f"<annotation><property>{_esc1(column)}</property><value>"
            + _esc(value)
            + "</value></annotation>",
            "",
        )
    body += "<type>" + _sample_type(table) + "</type>"
    quantity = pd.to_numeric(table.get("quantity", pd.Series(np.nan, index=table.index)), errors="coerce")
    has_q = quantity.notna()
    body[has_q] += (
        "<quantity><value>" + _float_text(quantity[has_q]) + "</value><unit>other</unit></quantity>"
    )
    return "".join('<sample id="' + _esc(table["sample"]) + '">' + body + "</sample>\n")


def targets_xml(names: pd.Series, assays: pd.DataFrame, efficiency: pd.DataFrame, lod: float) -> str:
    """<target> elements for ``names`` (sorted), from the assays sheet and efficiency table."""
    table = pd.DataFrame({"assay": sorted(set(names))}).merge(
        assays.astype({"assay": str}), on="assay", how="left"
    )
    if not efficiency.empty:
        # merge_batches stacks the batches' tables: one value per assay (the first).
        table = table.merge(
            efficiency[["assay", "E", "source"]].drop_duplicates("assay"), on="assay", how="left"
        )
    role = table.get("role", pd.Series("", index=table.index)).fillna("")
    gene = table.get("gene", pd.Series("", index=table.index)).fillna("")
    body = "<description>gene " + _esc(gene) + "; role " + _esc(role) + "</description>"
    body += "<type>" + pd.Series(np.where(role.eq("reference"), "ref", "toi"), index=table.index) + "</type>"
    e = pd.to_numeric(table.get("E", pd.Series(np.nan, index=table.index)), errors="coerce")
    has_e = e.notna()
    source = table.get("source", pd.Series("", index=table.index)).fillna("")
    body = body.astype(object)
    body[has_e] += (
        "<amplificationEfficiencyMethod>"
        + _esc(source[has_e])
        + "</amplificationEfficiencyMethod>"
        + "<amplificationEfficiency>"
        + _float_text(e[has_e])
        + "</amplificationEfficiency>"
    )
    own_lod = pd.to_numeric(table.get("lod", pd.Series(np.nan, index=table.index)), errors="coerce").fillna(
        lod
    )
    body += "<detectionLimit>" + _float_text(own_lod) + f'</detectionLimit><dyeId id="{DYE}"/>'
    return "".join('<target id="' + _esc(table["assay"]) + '">' + body + "</target>\n")


def _text(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A column as the export prints it: ``str`` of each value, "" where missing (Arrow text
    kept as it is; other types through pandas, as the whole-table export printed them)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if not is_text(column.type):
        values = column.to_pandas()
        return pa.array(values.fillna("").astype(str), type=pa.string())
    return pc.fill_null(column.cast(pa.string()), "")


def _tagged(text: pa.Array, before: str, after: str, shown: pa.Array | None = None) -> pa.Array:
    """``before`` + XML-escaped text + ``after`` per value (text without missing values), built
    once per distinct text; null where ``shown`` is False."""
    words = pc.dictionary_encode(text)
    escaped = words.dictionary
    for char, entity in _ENTITIES:
        escaped = pc.replace_substring(escaped, char, entity)
    pieces = pc.binary_join_element_wise(before, escaped, after, "")
    if shown is None:
        return pieces.take(words.indices)
    return pieces.take(pc.if_else(shown, words.indices, None))


def _float_repr(values: np.ndarray) -> pa.Array:
    """``str`` of each float (Python's shortest round trip: 27.5, 19.0, 1e-05), null for NaN.
    From 1e-4 to 1e10 and at zero Arrow's shortest round-trip cast prints the same digits in
    the same fixed notation, only whole numbers without the ".0"; the rest goes through Python."""
    magnitude = np.abs(values)
    with np.errstate(invalid="ignore"):
        fixed = ((magnitude >= _FIXED_LOW) & (magnitude < _FIXED_HIGH)) | (magnitude == 0)
    text = pc.cast(pa.array(np.where(fixed, values, np.nan), from_pandas=True), pa.string())
    whole = fixed & (values == np.floor(np.where(fixed, values, 0.0)))
    if whole.any():
        text = pc.if_else(pa.array(whole), pc.binary_join_element_wise(text, ".0", ""), text)
    other = ~fixed & ~np.isnan(values)
    if other.any():
        printed = pa.array([str(value) for value in values[other].tolist()], type=pa.string())
        text = pc.replace_with_mask(text, pa.array(other), printed)
    return text


def _cq(column: pa.ChunkedArray) -> np.ndarray:
    """The Cq as floats, NaN where missing or not a number."""
    if pa.types.is_floating(column.type) or pa.types.is_integer(column.type):
        return column.to_numpy().astype(float)
    return pd.to_numeric(column.to_pandas(), errors="coerce").to_numpy(dtype=float)


def _joined(lines: pa.Array) -> pa.Buffer:
    """The text of a string array's values, one after another."""
    if not len(lines):
        return pa.py_buffer(b"")
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
    start, stop = offsets[lines.offset], offsets[lines.offset + len(lines)]
    return lines.buffers()[2][start:stop]


def _reacts(wells: pa.Table, position: np.ndarray) -> pa.Array:
    """One ``<react>`` line per well (wells with a sample and an assay, in their order)."""
    excluded = pc.not_equal(_text(wells["fate"]), "kept")
    return pc.binary_join_element_wise(
        '<react id="',
        pc.cast(pa.array(position, type=pa.int64()), pa.string()),
        _tagged(_text(wells["sample"]), '"><sample id="', '"/><data><tar id="'),
        _tagged(_text(wells["assay"]), "", '"/>'),
        pc.binary_join_element_wise("<cq>", _float_repr(_cq(wells["cq"])), "</cq>", ""),
        _tagged(_text(wells["reason"]), "<excl>", "</excl>", shown=excluded),
        _tagged(_text(wells["state"]), "<note>", "</note></data></react>\n"),
        "",
        null_handling="replace",
        null_replacement="",
    )


class Layouts:
    """:func:`ctc_qpcr.layout.positions` of each plate's well ids, computed again only when
    they differ from the previous plate's (a study's chips have the same 9,216 well ids)."""

    def __init__(self):
        self._wells: pa.Array | None = None
        self._found: tuple | None = None

    def of(self, wells: pa.ChunkedArray) -> tuple:
        wells = wells.combine_chunks()
        if self._wells is None or not wells.equals(self._wells):
            self._wells, self._found = wells, positions(wells.to_pandas())
        return self._found


def run_xml(plate, batch: str, wells: pa.Table, layouts: Layouts | None = None) -> bytes:
    """One <run> (one chip/plate) with a <react> per well, ordered by layout position
    (ties in table order); wells without a sample or an assay are not exported."""
    named = pc.and_(pc.not_equal(_text(wells["sample"]), ""), pc.not_equal(_text(wells["assay"]), ""))
    where, geometry = (layouts or Layouts()).of(wells["well"])
    rows = np.flatnonzero(named.to_numpy(zero_copy_only=False))
    position = where["position"].to_numpy()[rows]
    order = np.argsort(position, kind="stable")
    shown = wells.select(["sample", "assay", "cq", "state", "fate", "reason"])
    lines = _reacts(shown.take(pa.array(rows[order])), position[order])
    row_label, column_label = ("ABC", "123") if geometry.kind == "plate" else ("123", "123")
    head = (
        f'<run id="{_esc1(plate)}"><description>batch {_esc1(batch)}; {geometry.name}; '
        f"{len(rows)} wells with a sample and an assay "
        f"({len(wells) - len(rows)} without, not exported)</description>"
        f"<pcrFormat><rows>{geometry.rows}</rows><columns>{geometry.columns}</columns>"
        f"<rowLabel>{row_label}</rowLabel><columnLabel>{column_label}</columnLabel></pcrFormat>\n"
    )
    return b"".join([head.encode(), _joined(lines), b"</run>\n"])


def document_head(
    sample_names: pd.Series,
    assay_names: pd.Series,
    samples: pd.DataFrame,
    assays: pd.DataFrame,
    efficiency: pd.DataFrame,
    lod: float,
    version: str,
) -> str:
    """The document up to the first <run>: id, dye, samples, targets, the experiment's opening."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<rdml xmlns="{NAMESPACE}" version="1.3">\n'
        f"<id><publisher>ctc-qpcr {_esc1(version)}</publisher><serialNumber>study</serialNumber></id>\n"
        f'<dye id="{DYE}"><description>the instrument exports do not name the dye</description></dye>\n'
        + samples_xml(sample_names, samples)
        + targets_xml(assay_names, assays, efficiency, lod)
        + f'<experiment id="{EXPERIMENT}"><description>wells read and analysed by ctc-qpcr; '
        "excl = excluded by the workflow (reason), note = well state</description>\n"
    )


DOCUMENT_TAIL = "</experiment>\n</rdml>\n"
ORDER = ["plate", "well", "assay"]


def _sorted(wells: pa.Table, keys: list[str]) -> pa.Table:
    """``wells`` sorted by ``keys`` (stable: ties in table order; missing values last)."""
    return wells.sort_by([(key, "ascending") for key in keys])


def _by_plate(wells: pa.Table) -> dict:
    """Each plate's wells (plate name → table), sorted by (well, assay), ties in table order;
    wells without a plate are left out."""
    wells = _sorted(wells, ORDER)
    plates = pc.run_end_encode(wells["plate"].combine_chunks())
    stops = plates.run_ends.to_pylist()
    starts = [0, *stops[:-1]]
    return {
        plate: wells.slice(start, stop - start)
        for plate, start, stop in zip(plates.values.to_pylist(), starts, stops, strict=True)
        if plate is not None
    }


def _run(plate, wells: pa.Table, layouts: Layouts) -> bytes:
    return run_xml(plate, str(wells["batch"][0].as_py()), wells, layouts)


def plate_runs(wells: pd.DataFrame) -> Iterator[bytes]:
    """One <run> per plate, plates in name order, wells by (well, assay), ties in table order."""
    plates, layouts = _by_plate(pa.Table.from_pandas(wells, preserve_index=False)), Layouts()
    for plate in sorted(plates):
        yield _run(plate, plates[plate], layouts)


def study_rdml(
    wells: pd.DataFrame,
    samples: pd.DataFrame,
    assays: pd.DataFrame,
    efficiency: pd.DataFrame,
    lod: float,
    version: str,
) -> str:
    """The whole RDML document of the analysed wells (Wells table as in results/qc/wells.tsv)."""
    head = document_head(
        wells["sample"].astype(str), wells["assay"].astype(str), samples, assays, efficiency, lod, version
    )
    return head + b"".join(plate_runs(wells)).decode() + DOCUMENT_TAIL


def _names(column: pa.ChunkedArray) -> set[str]:
    """The distinct values of a column as text ("None" for a missing one, as pandas prints it)."""
    if pa.types.is_dictionary(column.type):
        return {str(value) for value in distinct_values(column)}
    if is_text(column.type):
        return {str(value) for value in pc.unique(column).to_pylist()}
    return set(column.to_pandas().astype(str).unique())


def _read_names(path) -> pa.Table:
    """The plate, sample and assay columns of a wells table, sample and assay text read as
    dictionaries (their distinct values without a string per row)."""
    text = [c for c in ("sample", "assay") if is_text(pq.read_schema(path).field(c).type)]
    return pq.read_table(path, columns=["plate", "sample", "assay"], read_dictionary=text or None)


class BatchWells:
    """The batches' wells tables (parquet), read one batch at a time.

    ``names`` reads only the plate, sample and assay columns of every batch (for the
    document's head and the plate order); :meth:`plate` gives one plate's wells,
    reading a batch when one of its plates is first asked for and dropping it once
    its last plate was given, so at most the batches of the current plate are held.
    """

    def __init__(self, paths: Sequence[str | os.PathLike], columns: list[str]):
        self.paths, self.columns = list(paths), columns
        self.plates: list[set] = []
        self.samples: set[str] = set()
        self.assays: set[str] = set()
        self.wells = 0
        for path in self.paths:
            names = _read_names(path)
            self.plates.append(set(pc.unique(names["plate"]).drop_null().to_pylist()))
            self.samples.update(_names(names["sample"]))
            self.assays.update(_names(names["assay"]))
            self.wells += len(names)
        self._held: dict[int, dict] = {}

    def plate_names(self) -> list:
        return sorted(set().union(*self.plates))

    def _batch(self, index: int) -> dict:
        if index not in self._held:
            self._held[index] = _by_plate(pq.read_table(self.paths[index], columns=self.columns))
        return self._held[index]

    def plate(self, plate) -> pa.Table:
        """The plate's wells by (well, assay), ties in batch order then table order."""
        parts = []
        for index in [i for i, plates in enumerate(self.plates) if plate in plates]:
            held = self._batch(index)
            parts.append(held.pop(plate))
            if not held:
                del self._held[index]
        if len(parts) == 1:
            return parts[0]
        return _sorted(pa.concat_tables(parts, promote_options="permissive"), ORDER[1:])


def write_study_rdml(
    path: str | os.PathLike,
    batches: BatchWells,
    samples: pd.DataFrame,
    assays: pd.DataFrame,
    efficiency: pd.DataFrame,
    lod: float,
    version: str,
) -> None:
    """Write :func:`study_rdml` of the batches' wells to ``path`` (atomically), one plate at a time."""
    head = document_head(
        pd.Series(sorted(batches.samples)),
        pd.Series(sorted(batches.assays)),
        samples,
        assays,
        efficiency,
        lod,
        version,
    )
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(head.encode())
        layouts = Layouts()
        for plate in batches.plate_names():
            handle.write(_run(plate, batches.plate(plate), layouts))
        handle.write(DOCUMENT_TAIL.encode())
