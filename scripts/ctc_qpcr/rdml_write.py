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

The XML text is assembled with vectorised string operations (no per-well Python
loop); the output has no dates, so the same wells give the same bytes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

from .layout import positions
from .tables import atomic_path

NAMESPACE = "http://www.rdml.org"
EXPERIMENT = "ctc-qpcr"
DYE = "not_recorded"


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
    return _esc_each(pd.Series([value])).iloc[0]


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


def run_xml(plate: str, batch: str, wells: pd.DataFrame) -> str:
    """One <run> (one chip/plate) with a <react> per well."""
    named = wells["sample"].fillna("").astype(str).ne("") & wells["assay"].fillna("").astype(str).ne("")
    where, geometry = positions(wells["well"])
    where, wells = where[named.to_numpy()].reset_index(drop=True), wells[named]
    if geometry.kind == "plate":
        row_label, column_label = "ABC", "123"
    else:
        row_label, column_label = "123", "123"
    w = wells.reset_index(drop=True)
    cq = pd.to_numeric(w["cq"], errors="coerce")
    data = '<data><tar id="' + _esc(w["assay"]) + '"/>'
    cq_text = pd.Series("", index=w.index, dtype=object)
    cq_text[cq.notna()] = _float_text(cq[cq.notna()])  # printed only where there is a Cq
    data = data.where(cq.isna(), data + "<cq>" + cq_text + "</cq>")
    excluded = w["fate"].ne("kept")
    data = data.where(~excluded, data + "<excl>" + _esc(w["reason"]) + "</excl>")
    data = data + "<note>" + _esc(w["state"]) + "</note></data>"
    react = (
        '<react id="'
        + where["position"].astype(str)
        + '"><sample id="'
        + _esc(w["sample"])
        + '"/>'
        + data
        + "</react>\n"
    )
    order = np.argsort(where["position"].to_numpy(), kind="stable")
    head = (
        f'<run id="{_esc1(plate)}"><description>batch {_esc1(batch)}; {geometry.name}; '
        f"{len(w)} wells with a sample and an assay "
        f"({int((~named).sum())} without, not exported)</description>"
        f"<pcrFormat><rows>{geometry.rows}</rows><columns>{geometry.columns}</columns>"
        f"<rowLabel>{row_label}</rowLabel><columnLabel>{column_label}</columnLabel></pcrFormat>\n"
    )
    return head + "".join(react.iloc[order]) + "</run>\n"


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


def plate_runs(wells: pd.DataFrame) -> Iterator[str]:
    """One <run> per plate, plates in name order, wells by (well, assay), ties in table order."""
    wells = wells.sort_values(ORDER, kind="stable")
    for plate, group in wells.groupby("plate", sort=True):
        yield run_xml(plate, str(group["batch"].iloc[0]), group)


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
    return head + "".join(plate_runs(wells)) + DOCUMENT_TAIL


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
            names = pd.read_parquet(path, columns=["plate", "sample", "assay"])
            self.plates.append(set(names["plate"].dropna()))
            self.samples.update(names["sample"].astype(str).unique())
            self.assays.update(names["assay"].astype(str).unique())
            self.wells += len(names)
        self._held: dict[int, dict] = {}

    def plate_names(self) -> list:
        return sorted(set().union(*self.plates))

    def _batch(self, index: int) -> dict:
        if index not in self._held:
            wells = pd.read_parquet(self.paths[index], columns=self.columns)
            wells = wells.sort_values(ORDER, kind="stable")
            self._held[index] = dict(iter(wells.groupby("plate", sort=False)))
        return self._held[index]

    def plate(self, plate) -> pd.DataFrame:
        """The plate's wells by (well, assay), ties in batch order then table order."""
        parts = []
        for index in [i for i, plates in enumerate(self.plates) if plate in plates]:
            held = self._batch(index)
            parts.append(held.pop(plate))
            if not held:
                del self._held[index]
        if len(parts) == 1:
            return parts[0]
        return pd.concat(parts).sort_values(ORDER[1:], kind="stable")


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
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write(head)
        for plate in batches.plate_names():
            wells = batches.plate(plate)
            handle.write(run_xml(plate, str(wells["batch"].iloc[0]), wells))
        handle.write(DOCUMENT_TAIL)
