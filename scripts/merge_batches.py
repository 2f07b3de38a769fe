"""Snakemake adapter: merge per-batch results into the study tables and the well audit.

At 1,000 chips the study holds millions of cells and ~9 M audited wells, so the
cells are written batch by batch (each batch sorted, batches in sorted order: the
same rows in the same order as sorting the whole study) and the audit is never
loaded whole; only when the batches' tables differ in their column types, or the
panel check has to flag cells, is the study loaded in one frame.
"""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ctc_qpcr import sheets
from ctc_qpcr.adapter import run
from ctc_qpcr.importing import unplated_names
from ctc_qpcr.panel import check_panel, panel_gaps
from ctc_qpcr.tables import (
    concat_tsv_files,
    parquet_parts,
    read_tsv,
    tsv_parts,
    write_parquet,
    write_tsv,
)

CELL_ORDER = ["batch", "plate", "sample", "assay"]


def _concat_tsv(paths):
    frames = [read_tsv(p) for p in paths]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else read_tsv(paths[0])


def distinct_values(column: pa.ChunkedArray) -> set:
    """The distinct values of a column read as a dictionary (Parquet ``read_dictionary``): taken
    from each chunk's dictionary, not from every row's text (missing: None)."""
    values = set()
    for chunk in column.chunks:
        values.update(chunk.dictionary.take(pc.unique(chunk.indices)).to_pylist())
    return values


def _batch_plan(paths):
    """(batch, path) of each batch's cells in study order, or None when the batches
    cannot be streamed (a file with several batch ids, differing column types); and
    whether every assay was measured in every batch (from the (batch, assay) pairs only)."""
    plan, schema, pairs = [], None, []
    for path in paths:
        ids = pq.read_table(path, columns=["batch", "assay"], read_dictionary=["batch", "assay"])
        batch, assays = distinct_values(ids["batch"]), distinct_values(ids["assay"])
        pairs += [(b, a) for b in batch for a in assays]
        stored = pq.read_schema(path).remove_metadata()
        if len(batch) > 1 or (batch and schema is not None and not stored.equals(schema)):
            plan = None
        if batch and plan is not None:
            schema = stored
            plan.append((str(next(iter(batch))), path))
    complete = panel_gaps(pd.DataFrame(pairs, columns=["batch", "assay"])).empty
    names = [b for b, _ in plan or []]
    if not plan or len(set(names)) < len(names):
        return None, complete
    return sorted(plan, key=lambda item: item[0]), complete


def write_cells(smk, log):
    """results/preprocessed/cq.{parquet,tsv}: the batches' cells sorted by batch, plate, sample, assay."""
    plan, complete = _batch_plan(list(smk.input.cells))
    if plan is None or not complete:
        # the whole study in one frame: the panel check may stop or flag cells
        cells = pd.concat([pd.read_parquet(p) for p in smk.input.cells], ignore_index=True)
        cells = cells.sort_values(CELL_ORDER, kind="stable").reset_index(drop=True)
        cells, notes = check_panel(cells, smk.params.on_panel_mismatch)
        for note in notes:
            log.warning("%s", note)
        write_parquet(cells, smk.output.cq_parquet)
        write_tsv(cells, smk.output.cq)
        return
    check_panel(pd.DataFrame(columns=["batch", "assay"]), smk.params.on_panel_mismatch)  # its config check
    with parquet_parts(smk.output.cq_parquet) as add_parquet, tsv_parts(smk.output.cq) as add_tsv:
        for _, path in plan:
            cells = sorted_cells(path)
            add_tsv(cells)
            add_parquet(cells)


def sorted_cells(path) -> pa.Table:
    """A batch's cells sorted by batch, plate, sample, assay in Arrow (a stable sort, missing
    values last: the order of pandas ``sort_values(kind="stable")``), never through pandas:
    the Parquet rows are written as read, with the batch file's own schema. The batch job
    writes them in that order already: then they are not sorted again."""
    table = pq.read_table(path)
    if in_cell_order(table):
        return table
    return table.take(pc.sort_indices(table, sort_keys=[(c, "ascending") for c in CELL_ORDER]))


def in_cell_order(table: pa.Table) -> bool:
    """True when every row's (batch, plate, sample, assay) is at most the next row's (no
    missing keys): the stable sort would leave the table as it is."""
    keys = [table[c] for c in CELL_ORDER]
    if len(table) < 2 or any(key.null_count for key in keys):
        return len(table) < 2
    before = pa.array(np.zeros(len(table) - 1, dtype=bool))  # rows already ordered by an earlier key
    tied = pa.array(np.ones(len(table) - 1, dtype=bool))
    for key in keys:
        this, following = key.slice(0, len(table) - 1), key.slice(1)
        before = pc.or_(before, pc.and_(tied, pc.less(this, following)))
        tied = pc.and_(tied, pc.equal(this, following))
    return pc.all(pc.or_(before, tied)).as_py()


def plated_names(paths) -> pd.DataFrame:
    """The distinct sample and assay names of the audited wells (read one batch file at a
    time), as a frame whose columns hold the same sets of names as the whole audit's."""
    names = {"sample": set(), "assay": set()}
    for path in paths:
        table = pq.read_table(path, columns=list(names), read_dictionary=list(names))
        for col, seen in names.items():
            seen.update(distinct_values(table[col]))
    values = {col: sorted(map(str, seen)) for col, seen in names.items()}
    width = max(map(len, values.values()))
    # the shorter column is padded with its own first name: its set of names is unchanged
    return pd.DataFrame({col: v + v[:1] * (width - len(v)) for col, v in values.items()})


def main(smk, log):
    write_cells(smk, log)

    # The audit of every well (millions of rows at scale) is concatenated from the
    # per-batch files as bytes; batches come in plates.tsv order.
    n_wells = concat_tsv_files(list(smk.input.audit), smk.output.wells)
    summary = _concat_tsv(smk.input.audit_summary).fillna(0)
    for col in summary.columns:
        if col.startswith("excluded_") or col in ("read", "kept", "excluded", "non_detected"):
            summary[col] = summary[col].astype(int)
    summary = summary[
        [c for c in summary.columns if not c.startswith("excluded_")]
        + sorted(c for c in summary.columns if c.startswith("excluded_"))
    ]
    if (
        int(summary["read"].sum()) != n_wells
        or not (summary["read"] == summary["kept"] + summary["excluded"]).all()
    ):
        raise AssertionError("the well audit does not reconcile: read != kept + excluded")
    log.info(
        "well audit: %d read = %d kept + %d excluded",
        n_wells,
        int(summary["kept"].sum()),
        int(summary["excluded"].sum()),
    )
    # Sheet entries on no plate of the study: not an error (a sheet may list
    # samples still to be run), but reported so a misspelling is seen.
    notes = unplated_names(
        plated_names(smk.input.wells),
        sheets.load_samples(smk.input.samples),
        sheets.load_assays(smk.input.assays),
    )
    for note in notes:
        log.warning("%s", note)
    write_tsv(pd.DataFrame({"note": notes}, columns=["note"]), smk.output.unplated)
    write_tsv(summary, smk.output.wells_summary)
    write_tsv(_concat_tsv(smk.input.validprime), smk.output.validprime)
    write_tsv(_concat_tsv(smk.input.calibration), smk.output.calibration)
    write_tsv(_concat_tsv(smk.input.efficiency), smk.output.efficiency)


run(main, snakemake)  # noqa: F821
