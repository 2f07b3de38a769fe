"""The IPC anchor job: the first batch's IPC levels equal those of its chip-level job."""

import numpy as np
import pandas as pd
import pytest

from ctc_qpcr.chip_options import chip_options
from ctc_qpcr.ipc_anchor import ANCHOR_COLUMNS, first_batch_ipc
from ctc_qpcr.preprocess import ipc_reference_from, preprocess_batch
from ctc_qpcr.tables import read_tsv, write_tsv
from test_preprocess import ASSAYS, SAMPLES, small_batch, without_ipc_on


def as_read(w: pd.DataFrame) -> pd.DataFrame:
    """Wells as the reader gives them: an ``excluded`` column ('' = kept)."""
    return w.assign(excluded="")


@pytest.mark.parametrize(
    "wells, options",
    [
        (small_batch(), {}),
        (without_ipc_on("P2"), {"ipc": {"on_missing": "uncalibrated"}}),
        (without_ipc_on("P2"), {"ipc": {"on_missing": "exclude"}}),
        (small_batch(), {"lod": 25.5, "ipc": {"on_missing": "uncalibrated"}}),  # IPC wells over the LOD
    ],
)
def test_anchor_levels_are_the_chip_jobs_levels(wells, options, tmp_path):
    o = chip_options(options)
    anchor = first_batch_ipc(as_read(wells), SAMPLES, ASSAYS, o, batch="B1")
    job = preprocess_batch(wells, SAMPLES, ASSAYS, o, batch="B1")["plate_calibration"]
    assert list(anchor.columns) == ANCHOR_COLUMNS
    pd.testing.assert_frame_equal(anchor, job[ANCHOR_COLUMNS].reset_index(drop=True))
    assert anchor["plate"].tolist() == job["plate"].tolist()
    np.testing.assert_array_equal(anchor["ipc_mean"].to_numpy(), job["ipc_mean"].to_numpy())
    # the reference later batches read back from each file is the same float
    write_tsv(anchor, tmp_path / "anchor.tsv")
    write_tsv(job, tmp_path / "plate_calibration.tsv")
    ref_anchor = ipc_reference_from(read_tsv(tmp_path / "anchor.tsv"))
    ref_job = ipc_reference_from(read_tsv(tmp_path / "plate_calibration.tsv"))
    assert ref_anchor == ref_job or (np.isnan(ref_anchor) and np.isnan(ref_job))


def test_anchor_leaves_out_wells_the_reader_excluded():
    wells = as_read(small_batch())
    ipc_p1 = (wells["plate"] == "P1") & (wells["sample"] == "IPC")
    first = wells.index[ipc_p1][0]
    wells.loc[first, "excluded"] = "unknown_name"
    anchor = first_batch_ipc(wells, SAMPLES, ASSAYS, chip_options(), batch="B1").set_index("plate")
    kept = wells.loc[ipc_p1 & (wells["excluded"] == ""), "cq"]
    assert anchor.loc["P1", "n"] == 2
    assert anchor.loc["P1", "ipc_mean"] == pytest.approx(kept.mean())


def test_anchor_needs_no_states_from_the_reader():
    """The anchor job reads without states (read_batch states=False): it assigns them to the IPC
    wells itself, and the levels are those of the wells read with states."""
    from ctc_qpcr.wells import assign_states

    wells = as_read(assign_states(small_batch(), lod=26.0))
    o = chip_options({"lod": 25.5, "ipc": {"on_missing": "uncalibrated"}})
    with_states = first_batch_ipc(wells, SAMPLES, ASSAYS, o, batch="B1")
    without = first_batch_ipc(wells.drop(columns=["state", "state_reason"]), SAMPLES, ASSAYS, o, batch="B1")
    pd.testing.assert_frame_equal(with_states, without)
    job = preprocess_batch(wells, SAMPLES, ASSAYS, o, batch="B1")["plate_calibration"]
    pd.testing.assert_frame_equal(without, job[ANCHOR_COLUMNS].reset_index(drop=True))
