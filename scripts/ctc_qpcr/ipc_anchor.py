"""The IPC anchor: the first batch's IPC level per chip, for the later batches' offsets.

Later batches put their chips on the first batch's scale (docs/methods.md §2.1):
their reference is the mean IPC level of the first batch's chips. Taking it from
the first batch's whole chip-level job made every later batch wait for that job;
the anchor job reads the first batch's exports and runs only the steps the IPC
level depends on — the reader's name checks, well states (LOD), the IPC offsets —
so it finishes while the first batch is still being preprocessed.

The level is the one :func:`ctc_qpcr.preprocess.preprocess_batch` reports in the
first batch's ``plate_calibration.tsv`` (same functions, same wells), and it is
written with the same number format, so the reference read back is the same float.
"""

from __future__ import annotations

import pandas as pd

from . import calibration
from .chip_options import ChipOptions
from .preprocess import annotate_wells, well_states
from .rowkeys import as_text, distinct, text_is

ANCHOR_COLUMNS = ["plate", "ipc_mean", "ipc_sd", "n"]  # flags: the chip job applies ipc.on_missing


def first_batch_ipc(
    wells: pd.DataFrame, samples: pd.DataFrame, assays: pd.DataFrame, options: ChipOptions, *, batch: str
) -> pd.DataFrame:
    """IPC level of each chip of the first batch (``ipc_mean``; NaN where the chip has none).

    ``wells``: the batch's Wells tables as read (:func:`ctc_qpcr.chip_batch.batch_wells`; the
    ``state`` columns are not needed); wells the reader excluded are left out, as the chip-level
    job does. Only the wells of the IPC assays are annotated and given states: the level
    (:func:`ctc_qpcr.calibration.ipc_offsets`) reads no other well, and every step before it
    works well by well.
    """
    usable = text_is(wells["excluded"], "")  # one selection of the rows: the IPC wells the reader kept
    plates = distinct(as_text(wells["plate"]).to_numpy()[usable])  # every chip gets a row, IPC wells or not
    ipc_assays = calibration.ipc_assays_of(calibration.assay_roles(assays))
    ipc = wells[usable & as_text(wells["assay"]).isin(ipc_assays).to_numpy()]
    notes: list[str] = []
    w, design = annotate_wells(ipc, samples, assays, batch, notes)
    w = well_states(w, options.lod, design.assay_lod, notes)
    _, plate_cal, _ = calibration.chip_offsets(w, options.ipc, design.ipc_assays, notes, plates=plates)
    return plate_cal.sort_values("plate").reset_index(drop=True)[ANCHOR_COLUMNS]
