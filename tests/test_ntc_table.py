"""check_ntc's table made a few plate files at a time = the table of all wells at once."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ctc_qpcr import ntc

SAMPLES = pd.DataFrame({"sample": ["P1", "P2", "NTC"], "kind": ["patient", "patient", "ntc"]})


def _plate(batch: str, plate: str, ntc_cq: float) -> pd.DataFrame:
    wells = pd.DataFrame(
        {
            "batch": batch,
            "plate": plate,
            "well": [f"S{s:02d}-A{a:02d}" for s in (1, 2, 3) for a in (1, 2)],
            "sample": np.repeat(["P1", "P2", "NTC"], 2),
            "assay": ["KRT19", "ACTB"] * 3,
            "cq": [25.0, 18.0, 27.0, 19.5, ntc_cq, np.nan],
            "sample_type": "",
            "excluded": "",
            "state": "CALC",
        }
    )
    return wells.assign(run="r", cq_raw="x")  # columns ntc_table does not read


def test_plate_files_a_few_at_a_time_give_the_whole_table(tmp_path, monkeypatch):
    plates = [
        _plate("B2", "chip03", 26.0),  # close to the samples
        _plate("B1", "chip02", 34.0),  # amplified, far after the samples
        _plate("B1", "chip01", np.nan),  # no NTC amplified
        _plate("B2", "chip04", 30.0).assign(sample="P1"),  # no NTC wells: no rows
    ]
    paths = []
    for wells in plates:
        paths.append(tmp_path / f"{wells['plate'].iloc[0]}.parquet")
        wells.to_parquet(paths[-1], index=False)
    limits = {"B1": 35.0, "B2": 35.0}
    whole = ntc.ntc_table(pd.concat(plates, ignore_index=True), SAMPLES, limits, 3.32)
    for at_once in (1, 2, 3, 24):
        monkeypatch.setattr(ntc, "PLATES_AT_ONCE", at_once)
        pd.testing.assert_frame_equal(ntc.study_ntc_table(paths, SAMPLES, limits, 3.32), whole)
    assert whole["plate"].tolist() == ["chip01", "chip01", "chip02", "chip02", "chip03", "chip03"]
    assert set(whole["flag"]) == {"ok", "ntc_amplified", "ntc_close_to_samples"}
    assert ntc.study_ntc_table(paths[3:], SAMPLES, limits, 3.32).empty


def test_ntc_sample_type_tested_once_per_distinct_value():
    values = pd.Series(["NTC", "ntc", None, "Unknown", np.nan, "Ntc ", 3, "ntc"], index=range(10, 18))
    expected = values.astype(str).str.upper().eq("NTC")
    pd.testing.assert_series_equal(ntc._says_ntc(values), expected, check_names=False)


def test_marked_wells_are_the_wells_pandas_keeps_and_marks(tmp_path):
    """Arrow's choice and marks = ntc_table's pandas ones: excluded "" only, a missing assay
    kept, NTC by name or export type, usable = a Cq and no EXPFAIL, the batch's limit."""
    wells = _plate("B1", "chip01", 30.0)
    wells["excluded"] = ["", "NTC<LOD", None, "", "", ""]
    wells["assay"] = ["KRT19", "ACTB", "KRT19", "", None, "ACTB"]
    wells["sample_type"] = ["ntc", None, "", "", "Unknown", ""]
    wells["state"] = ["CALC", "CALC", "CALC", "CALC", None, "EXPFAIL"]
    wells.to_parquet(tmp_path / "chip01.parquet", index=False)
    got = ntc.marked_wells([tmp_path / "chip01.parquet"], ntc.ntc_names(SAMPLES), {"B1": 35.0})
    kept = wells[(wells["excluded"] == "") & (wells["assay"] != "")]
    assert got["assay"].tolist() == ["KRT19", None, "ACTB"]
    assert got["is_ntc"].tolist() == [True, True, True]  # by type, then by name (sample NTC)
    assert got["usable"].tolist() == [True, True, False]  # None state: not EXPFAIL; NaN Cq
    assert got["limit"].tolist() == [35.0] * 3 and got["batch"].dtype == object
    expected = ntc.ntc_table(wells, SAMPLES, {"B1": 35.0}, 3.32)
    pd.testing.assert_frame_equal(ntc.marked_ntc_table(got, 3.32), expected)
    assert len(kept) == len(got)
