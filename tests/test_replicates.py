"""Replicates (algorithms §3.2) and detection/imputation (§3.3)."""

import numpy as np
import pandas as pd
import pytest

from ctc_qpcr import detection as det
from ctc_qpcr import replicates as reps
from ctc_qpcr.chip_options import chip_options


def cells_of(groups, states=None):
    rows = []
    for name, values in groups.items():
        for i, v in enumerate(values):
            st = "CALC" if np.isfinite(v) else "NOAMP"
            if states and name in states:
                st = states[name][i]
            rows.append(
                {"plate": "P", "sample": name, "assay": "G", "well": f"{name}{i}", "cq": v, "state": st}
            )
    return pd.DataFrame(rows)


def summary(groups, states=None, **settings):
    """Cells of ``groups`` with the ``replicates:`` options (schema defaults and ``settings``)."""
    options = chip_options({"replicates": settings}).replicates
    cells, out = reps.summarise_replicates(cells_of(groups, states), options)
    return cells.set_index("sample"), out


def test_worked_examples():
    c, _ = summary({"a": [27.10, 27.40], "b": [30.2, 31.1]})
    assert c.loc["a", "cq"] == pytest.approx(27.25)
    assert c.loc["a", "replicate_sd"] == pytest.approx(0.2121, abs=5e-5)
    assert c.loc["a", "replicate_delta"] == pytest.approx(0.30)
    assert c.loc["a", "flags"] == ""
    assert c.loc["b", "cq"] == pytest.approx(30.65)
    assert c.loc["b", "replicate_sd"] == pytest.approx(0.6364, abs=5e-5)
    assert c.loc["b", "replicate_delta"] == pytest.approx(0.90)
    assert c.loc["b", "flags"] == "replicate_delta>0.5"


def test_single_replicate_and_counts():
    c, _ = summary(
        {"one": [25.0, np.nan], "none": [np.nan, np.nan], "fail": [25.0, 26.0]},
        states={"fail": ["EXPFAIL", "EXPFAIL"]},
    )
    assert c.loc["one", "cq"] == 25.0 and c.loc["one", "flags"] == "single_replicate"
    assert (c.loc["one", "n_replicates"], c.loc["one", "n_detected"]) == (2, 1)
    assert np.isnan(c.loc["none", "cq"]) and c.loc["none", "n_replicates"] == 2
    assert c.loc["fail", "n_replicates"] == 0 and c.loc["fail", "flags"] == "no_valid_replicate"


def test_sd_flag_for_triplicates_and_median():
    c, _ = summary({"t": [25.0, 25.3, 25.9]})
    assert c.loc["t", "replicate_sd"] > 0.5 / np.sqrt(2)
    assert c.loc["t", "flags"] == "replicate_sd>0.354"
    c, _ = summary({"t": [25.0, 25.3, 25.9]}, outliers="median")
    assert c.loc["t", "cq"] == 25.3


def test_grubbs():
    assert reps.grubbs_critical(3) == pytest.approx(1.1543, abs=1e-4)
    assert reps.grubbs_critical(10) == pytest.approx(2.2900, abs=1e-4)
    c, out = summary(
        {"g": [25.0, 25.02, 24.98, 25.01, 24.99, 27.0], "h": [25.0, 25.1, 25.2]}, outliers="grubbs"
    )
    assert len(out) == 1
    assert c.loc["g", "cq"] == pytest.approx(25.0) and "grubbs_outlier_removed" in c.loc["g", "flags"]
    assert c.loc["h", "n_detected"] == 3


def test_detection_call_and_imputation():
    assert det.detection_call([2, 1, 0, 1], [2, 2, 2, 1]).tolist() == [True, False, False, True]
    assert det.detection_call([2, 1, 0], [2, 2, 2], 1).tolist() == [True, True, False]
    imp = det.impute_nondetects(
        [25.0, 30.0, np.nan, np.nan], [True, False, False, False], [35.0, 35.0, 32.0, 35.0], [2, 2, 2, 0]
    )
    assert imp[:3].tolist() == [25.0, 36.0, 33.0] and np.isnan(imp[3])
    cells = pd.DataFrame(
        {"assay": ["G", "H"], "cq": [30.0, np.nan], "n_detected": [1, 0], "n_replicates": [2, 2]}
    )
    out = det.call_cells(cells, lod=35.0, assay_lod={"H": 30.0})
    assert out["detected"].tolist() == [False, False]
    assert out["cq_imputed"].tolist() == [36.0, 31.0]
    assert out["cq"].iloc[0] == 30.0  # the un-imputed value is kept


def test_ntc_margin():
    w = pd.DataFrame(
        {
            "plate": "P",
            "sample": ["NTC", "NTC", "s", "s", "s"],
            "assay": ["G", "H", "G", "G", "H"],
            "cq": [34.0, np.nan, 30.0, 31.0, 31.0],
            "state": ["CALC", "NOAMP", "CALC", "CALC", "CALC"],
        }
    )
    thr = det.ntc_thresholds(w, ["NTC"], 3.32)
    assert thr["ntc_threshold"].tolist() == pytest.approx([30.68])
    assert det.above_ntc(w, thr).tolist() == [True, False, False, True, False]
