"""Well states (data-model.md §1; algorithms §3.1, §1.5)."""

import numpy as np
import pandas as pd

from ctc_qpcr.wells import assign_states


def _wells(rows):
    cols = ["assay", "cq", "quality", "quality_threshold", "call", "instrument_flags"]
    df = pd.DataFrame(rows, columns=cols)
    df.insert(0, "plate", "P1")
    df.insert(1, "well", [f"S01-A{i:02d}" for i in range(1, len(df) + 1)])
    df.insert(2, "sample", "s1")
    return df


def test_states_and_reasons():
    df = _wells(
        [
            ["g", 20.0, 0.9, 0.65, "Pass", ""],  # CALC
            ["g", np.nan, 0.0, 0.65, "Fail", ""],  # 999 + Fail -> NOAMP wins
            ["g", 22.0, 0.9, 0.65, "Fail", ""],  # call Fail
            ["g", 22.0, 0.5, 0.65, "Pass", ""],  # low quality
            ["g", 22.0, 0.5, 0.65, "Flag", ""],  # Flag + low quality
            ["g", 22.0, 0.9, 0.65, "Flag", ""],  # Flag, quality OK -> CALC
            ["g", 22.0, np.nan, np.nan, "", "Omit"],  # omitted
            ["g", 0.0, np.nan, np.nan, "", ""],  # Cq <= 0
            ["g", 36.0, 0.9, 0.65, "Pass", ""],  # > LOD
            ["h", 33.0, 0.9, 0.65, "Pass", ""],  # > assay LOD 32
            ["g", 35.0, 0.9, 0.65, "Pass", ""],  # == LOD -> CALC
            ["g", 36.0, 0.9, 0.65, "Fail", ""],  # Fail beats LOWSIGNAL
        ]
    )
    out = assign_states(df, lod=35.0, assay_lod={"h": 32.0})
    assert out["state"].tolist() == [
        "CALC",
        "NOAMP",
        "EXPFAIL",
        "EXPFAIL",
        "EXPFAIL",
        "CALC",
        "EXPFAIL",
        "EXPFAIL",
        "LOWSIGNAL",
        "LOWSIGNAL",
        "CALC",
        "EXPFAIL",
    ]
    r = out["state_reason"].tolist()
    assert r[0] == "" and r[1] == "no_amplification" and r[2] == "call_fail"
    assert r[3] == "quality<0.65" and r[6] == "omitted" and r[7] == "invalid_cq"
    assert r[8] == "cq>lod" and r[9] == "cq>lod"
    assert list(df.columns) == list(out.columns[:-2])


def test_missing_optional_columns():
    df = pd.DataFrame({"plate": ["P"], "well": ["A1"], "sample": ["s"], "assay": ["g"], "cq": [25.0]})
    assert assign_states(df)["state"].tolist() == ["CALC"]


def test_combined_reasons_in_fixed_order():
    """Several reasons on one well are joined in the fixed order, each threshold written as given."""
    df = _wells(
        [
            ["g", 22.0, 0.5, 0.7, " FAIL ", "omit;x"],  # omitted, call_fail, quality<0.7
            ["g", -1.0, 0.5, 0.65, "Fail", ""],  # invalid_cq, call_fail, quality<0.65
            ["g", 22.0, 0.5, 0.7, "Pass", ""],  # quality<0.7
            ["g", 22.0, 0.9, 0.65, None, "Omitted"],  # omitted (missing call)
            ["g", 22.0, 0.5, 0.65, "Fail", "omit"],  # omitted, call_fail, quality<0.65
            ["g", 37.0, 0.9, 0.65, "Pass", ""],  # LOWSIGNAL
            ["g", np.nan, 0.5, 0.65, "Fail", "omit"],  # NOAMP wins over every reason
        ]
    )
    out = assign_states(df, lod=35.0)
    assert out["state_reason"].tolist() == [
        "omitted;call_fail;quality<0.7",
        "invalid_cq;call_fail;quality<0.65",
        "quality<0.7",
        "omitted",
        "omitted;call_fail;quality<0.65",
        "cq>lod",
        "no_amplification",
    ]
    assert out["state"].tolist() == ["EXPFAIL"] * 5 + ["LOWSIGNAL", "NOAMP"]
