"""The chip-level job of one batch: read every export, then preprocess, in one process.

The workflow runs one job per batch (rule ``preprocess_batch_<batch>``) that

1. :func:`read_batch` — reads each export of the batch into its Wells table
   (:func:`ctc_qpcr.importing.read_plate`: names checked against the sheets,
   missing wells, well states), written to ``results/cq/{plate}.parquet`` + ``.tsv``;
2. :func:`batch_wells` — joins the batch's Wells tables in plates.tsv order;
3. :func:`preprocess_and_audit` — preprocesses the batch
   (:func:`ctc_qpcr.preprocess.preprocess_batch`) and builds its well audit.

The Wells tables go from step 1 to step 3 in memory: the tables are the ones
the separate read job wrote and the preprocessing job read back before, so the
outputs are the same bytes, without a Parquet round trip or a second process.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pandas as pd
import pyarrow as pa

from . import sheets
from .audit import AUDIT_COLUMNS, MADE_COLUMNS, build_audit, summarise_audit
from .chip_options import ChipOptions
from .importing import read_plate, sheet_lods
from .preprocess import preprocess_batch
from .rowkeys import sorted_rows_and_order, text_is


def read_batch(
    plates: list[dict],
    batch: str,
    samples: pd.DataFrame,
    assays: pd.DataFrame,
    *,
    lod: float,
    unknown_names: str,
    on_incomplete: str,
    log: logging.Logger,
    states: bool = True,
) -> list[pd.DataFrame]:
    """Wells table of each plate of ``plates`` (plates.tsv rows of the batch), in that order.

    ``samples`` is the samples sheet as loaded (:func:`ctc_qpcr.sheets.load_samples`),
    ``assays`` the typed assays sheet. The log says what each plate held. ``states=False``:
    without the well states (:func:`ctc_qpcr.importing.read_plate`).
    """
    tables = []
    for plate in plates:
        wells = read_plate(
            plate["path"],
            plate["format"],
            plate["plate"],
            batch,
            samples,
            assays,
            lod=lod,
            unknown_names=unknown_names,
            assay=plate.get("assay", ""),
            on_incomplete=on_incomplete,
            states=states,
        )
        log_plate(wells, plate, log)
        tables.append(wells)
    return tables


def read_job_batch(params, samples_path: str, assays_path: str, log: logging.Logger, *, states: bool = True):
    """The sheets and the batch's Wells tables, as a chip-level job reads them.

    ``params``: the rule's params (``plates``, ``batch``, ``settings``, ``on_incomplete``).
    Returns ``(samples, assays, tables)`` (:func:`read_batch`; ``states`` as there).
    """
    samples = sheets.load_samples(samples_path)
    assays = sheets.assays_frame(sheets.load_assays(assays_path))
    tables = read_batch(
        params.plates,
        params.batch,
        samples,
        assays,
        lod=params.settings["lod"],
        unknown_names=params.settings["unknown_names"],
        on_incomplete=params.on_incomplete,
        log=log,
        states=states,
    )
    return samples, assays, tables


def log_plate(wells: pd.DataFrame, plate: dict, log: logging.Logger) -> None:
    """What reading one export found: wells read, excluded, missing, in incomplete groups."""
    excluded = wells["excluded"].to_numpy()
    log.info(
        "%s: %d wells read from %s (%s excluded by name/emptiness)",
        plate["plate"],
        len(wells),
        plate["path"],
        int((excluded != "").sum()),
    )
    n_missing = int((excluded == "missing").sum())
    if n_missing:
        log.warning(
            "%s: %d wells missing from the export (listed in the well audit as 'missing')",
            plate["plate"],
            n_missing,
        )
    codes, flags = pd.factorize(wells["instrument_flags"])  # each distinct flag text looked at once
    hit = np.array(["incomplete_group" in str(f) for f in flags] + [False], dtype=bool)
    n_groups = int(hit[codes].sum())  # code −1 (missing) → the last entry, False
    if n_groups:
        log.warning(
            "%s: %d wells in replicate groups that lack wells (flag incomplete_group)",
            plate["plate"],
            n_groups,
        )


def batch_wells(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """The batch's Wells tables as one frame (plates in the order given).

    The reader's notes (missing wells, ...) ride on ``DataFrame.attrs``, which
    pandas deep-copies on every operation; they are used only while reading.
    """
    wells = pd.concat(tables, ignore_index=True)
    wells.attrs = {}
    return wells


def with_ipc_reference(options: ChipOptions, reference: float) -> ChipOptions:
    """``options`` with the IPC reference level of the first batch."""
    return replace(options, ipc=replace(options.ipc, reference=reference))


def preprocess_and_audit(
    wells: pd.DataFrame,
    samples: pd.DataFrame,
    assays: pd.DataFrame,
    options: ChipOptions,
    *,
    batch: str,
    exports: dict,
    log: logging.Logger,
    read_lod: float | None = None,
) -> dict:
    """Preprocess the batch's wells and audit every well read.

    ``read_lod``: the LOD the reader assigned the well states with (:func:`read_batch`'s ``lod``,
    with the assays sheet's LODs); where preprocessing applies the same limits, it keeps those
    states instead of assigning them again. Returns the tables of ``results/batches/{batch}/``:
    ``cells``, ``audit`` (sorted by plate, line, well), ``audit_summary``, ``validprime_assays``,
    ``plate_calibration`` and ``efficiency``; and ``audit_rows``, the positions in ``wells`` of the
    audit's rows (None: in the order of ``wells``).
    """
    kept = text_is(wells["excluded"], "")
    usable = wells if kept.all() else wells[kept]  # no copy when the reader excluded nothing
    states_of = None if read_lod is None else (read_lod, sheet_lods(assays))
    result = preprocess_batch(
        usable,
        samples,
        assays,
        options,
        batch=batch,
        exports=exports,
        keep_wells=False,
        states_of=states_of,
        state_flags=False,  # build_audit leaves them out
    )
    for note in result.get("notes", []):
        log.info("%s", note)
    audit = build_audit(wells, result.get("well_flags"))
    audit, rows = sorted_rows_and_order(audit, ["plate", "line", "well"])
    return {
        "cells": result["cells"],
        "audit": audit,
        "audit_rows": rows,
        "audit_summary": summarise_audit(audit),
        "validprime_assays": result["validprime_assays"],
        "plate_calibration": result["plate_calibration"],
        "efficiency": result["efficiency"],
    }


def audit_part(converted: tuple[pa.Table, pa.Table | None] | None):
    """The columns of a plate's Wells table in Arrow (its table and cell text, as
    :func:`ctc_qpcr.tables.write_parquet_tsv` returns them) that the well audit repeats."""
    if converted is None or converted[1] is None:
        return None
    names = [c for c in AUDIT_COLUMNS if c in converted[0].column_names and c not in MADE_COLUMNS]
    return converted[0].select(names), converted[1].select(names)


def audit_in_arrow(audit: pd.DataFrame, plates: list, rows: np.ndarray | None):
    """The well audit in Arrow (table and cell text) as :func:`ctc_qpcr.tables.write_parquet_tsv`
    makes it, the wells' columns taken from the plates' Wells tables converted for results/cq
    (``plates``: :func:`audit_part` of each, in batch order; ``rows``: the audit's rows among
    the batch's wells, None = as read) instead of converted again. None where that could differ
    from converting the audit (a column of another type on some plate): it is then converted."""
    if audit.attrs or not len(audit) or any(p is None for p in plates):
        return None
    whole = pa.Table.from_pandas(audit.iloc[:1], preserve_index=False, nthreads=1).schema  # its metadata
    own = pa.Table.from_pandas(audit[[c for c in audit.columns if c in MADE_COLUMNS]], preserve_index=False)
    columns, texts = [], []
    for name, dtype in audit.dtypes.items():
        kind = whole.field(name).type
        if dtype.kind == "O" and not pa.types.is_string(kind):
            return None  # not text throughout: converted as any table
        if name in MADE_COLUMNS and own.schema.field(name).type == kind:  # the audit's own, in its order
            columns.append(own.column(name).combine_chunks())
            texts.append(columns[-1])
        elif all(name in p[0].column_names and p[0].schema.field(name).type == kind for p in plates):
            column = pa.concat_arrays([c for p in plates for c in p[0].column(name).chunks])
            text = pa.concat_arrays([c for p in plates for c in p[1].column(name).chunks])
            columns.append(column if rows is None else column.take(rows))
            texts.append(text if rows is None else text.take(rows))
        else:
            return None
    return pa.Table.from_arrays(columns, schema=whole), pa.Table.from_arrays(texts, names=list(audit.columns))
