"""Assay panels across batches at the merge (merge.on_panel_mismatch)."""

import pandas as pd
import pytest

from ctc_qpcr.errors import ConfigError
from ctc_qpcr.panel import check_panel, panel_gaps


def cells():
    rows = []
    for batch, plate, assays in (
        ("B1", "c1", ["ACTB", "KRT19", "MUC1"]),
        ("B2", "c2", ["ACTB", "KRT19"]),
        ("B3", "c3", ["ACTB", "KRT19", "ERBB2"]),
    ):
        for assay in assays:
            rows.append({"batch": batch, "plate": plate, "sample": "p1", "assay": assay, "flags": ""})
    return pd.DataFrame(rows)


def test_gaps_name_assays_and_batches():
    gaps = panel_gaps(cells()).set_index("assay")
    assert list(gaps.index) == ["ERBB2", "MUC1"]
    assert gaps.loc["MUC1", "missing_from"] == "B2, B3" and gaps.loc["MUC1", "measured_in"] == "B1"
    assert gaps.loc["ERBB2", "missing_from"] == "B1, B2"


def test_stop_is_the_default_and_names_everything():
    with pytest.raises(ConfigError) as err:
        check_panel(cells())
    text = str(err.value)
    assert "2 assay(s) not measured in every batch" in text
    assert "MUC1 (missing from batch B2, B3; measured in B1)" in text
    assert "ERBB2 (missing from batch B1, B2; measured in B3)" in text
    assert "merge.on_panel_mismatch: restrict" in text


def test_restrict_keeps_and_flags():
    out, notes = check_panel(cells(), "restrict")
    assert len(out) == len(cells())
    flagged = out.loc[out["flags"] == "panel_partial", "assay"]
    assert sorted(flagged) == ["ERBB2", "MUC1"]
    assert (out.loc[out["assay"].isin(["ACTB", "KRT19"]), "flags"] == "").all()
    assert len(notes) == 2 and "MUC1" in notes[1]


def test_same_panel_everywhere_passes_untouched():
    c = cells()
    c = c[c["assay"].isin(["ACTB", "KRT19"])]
    out, notes = check_panel(c, "stop")
    assert out is c and notes == []
    with pytest.raises(ConfigError, match="not one of stop, restrict"):
        check_panel(c, "ignore")
