"""The study's cells from its batches: what ``merge_batches`` writes to
``results/preprocessed/cq.parquet`` and what ``normalise`` reads, in one place (issue 17:
normalise reads the batches itself, so it runs beside merge_batches, not after it).

The cells are the batches' ``cells.parquet`` sorted by batch, plate, sample, assay, with the
panel check of ``merge.on_panel_mismatch`` (:mod:`ctc_qpcr.panel`) applied. At 1,000 chips
they are millions of rows, so they are taken batch by batch (each batch sorted, batches in
sorted order: the same rows in the same order as sorting the whole study); only when the
batches' tables differ in their column types, a file holds several batch ids, or the panel
check has to stop or flag cells, is the study loaded in one frame.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .panel import check_panel, panel_gaps

CELL_ORDER = ["batch", "plate", "sample", "assay"]


@dataclass
class StudyCells:
    """The study's cells: batch by batch (``batches``: (batch id, path) in study order) or,
    when they cannot be streamed, whole (``frame``, sorted and checked); ``notes``: what the
    panel check says (cells kept for part of the batches)."""

    batches: list[tuple[str, str]] = field(default_factory=list)
    frame: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)

    def tables(self, columns: Sequence[str] | None = None, dictionary=()) -> Iterator[pa.Table]:
        """Each batch's cells sorted (:func:`sorted_cells`), in study order."""
        for _, path in self.batches:
            yield sorted_cells(path, columns, dictionary)


def study_cells(paths: Sequence[str | os.PathLike], on_panel_mismatch: str) -> StudyCells:
    """The cells of the batches' ``cells.parquet`` (``paths``, in plates.tsv order) as the study
    holds them. The panel check stops here (:class:`~ctc_qpcr.errors.ConfigError`) when an assay
    is missing from a batch and ``on_panel_mismatch`` is ``stop``."""
    plan, complete = batch_plan(paths)
    if plan is not None and complete:
        check_panel(pd.DataFrame(columns=["batch", "assay"]), on_panel_mismatch)  # its config check
        return StudyCells(batches=plan)
    cells = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    cells = cells.sort_values(CELL_ORDER, kind="stable").reset_index(drop=True)
    cells, notes = check_panel(cells, on_panel_mismatch)
    return StudyCells(frame=cells, notes=notes)


def distinct_values(column: pa.ChunkedArray) -> set:
    """The distinct values of a column read as a dictionary (Parquet ``read_dictionary``): taken
    from each chunk's dictionary, not from every row's text (missing: None)."""
    values = set()
    for chunk in column.chunks:
        values.update(chunk.dictionary.take(pc.unique(chunk.indices)).to_pylist())
    return values


def batch_plan(paths) -> tuple[list[tuple[str, str]] | None, bool]:
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


def sorted_cells(path, columns: Sequence[str] | None = None, dictionary: Sequence[str] = ()) -> pa.Table:
    """A batch's cells sorted by batch, plate, sample, assay in Arrow (a stable sort, missing
    values last: the order of pandas ``sort_values(kind="stable")``), never through pandas:
    the Parquet rows as read, with the batch file's own schema. The batch job writes them in
    that order already: then they are not sorted again. ``columns``: only these (the sort keys
    are read for the order all the same); ``dictionary``: columns read as dictionaries (one
    string per distinct value), as Parquet's ``read_dictionary``."""
    wanted = None if columns is None else list(columns)
    read = None if wanted is None else wanted + [c for c in CELL_ORDER if c not in wanted]
    table = pq.read_table(path, columns=read, read_dictionary=list(dictionary) or None)
    if not in_cell_order(pa.table({c: _order_key(table[c]) for c in CELL_ORDER})):
        keys = pa.table({c: _plain(table[c]) for c in CELL_ORDER})  # Arrow sorts no dictionary
        table = table.take(pc.sort_indices(keys, sort_keys=[(c, "ascending") for c in CELL_ORDER]))
        for name in dictionary:  # words numbered in their new order, as a Parquet writer numbers them
            at = table.schema.get_field_index(name)
            table = table.set_column(at, name, pc.dictionary_encode(_plain(table[name])))
    return table if wanted is None else table.select(wanted)


def _order_key(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """What rows are compared by: a dictionary column as each row's rank among its words
    (integers ordered as the words are: no string per row), any other column as it is."""
    if not pa.types.is_dictionary(column.type) or not column.num_chunks:
        return column
    column = pa.table({"key": column}).unify_dictionaries()["key"]  # one dictionary for all chunks
    words = column.chunk(0).dictionary
    if words.null_count:
        return _plain(column)
    rank = pc.rank(words, sort_keys="ascending", tiebreaker="dense")
    return pa.chunked_array([rank.take(chunk.indices) for chunk in column.chunks], rank.type)


def _plain(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A dictionary column as its values; any other as it is."""
    kind = column.type
    return column.cast(kind.value_type) if pa.types.is_dictionary(kind) else column


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
