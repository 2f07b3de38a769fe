"""CTC positivity against healthy donors (§5 worked example and specificity)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ctc_qpcr import positivity as pos
from ctc_qpcr.errors import ConfigError

HD = [12.4, 13.1, 11.8, 12.9, 13.5]
PATIENTS = {"P1": 11.5, "P2": 10.6, "P3": 12.2}


def _example():
    rows, sheet = [], []
    for i, v in enumerate(HD):
        rows.append({"sample": f"HD{i}", "gene": "KRT19", "dcq": v, "detected": True})
        sheet.append({"sample": f"HD{i}", "kind": "healthy", "patient": "", "timepoint": ""})
    for p, v in PATIENTS.items():
        rows.append({"sample": p, "gene": "KRT19", "dcq": v, "detected": True})
        sheet.append({"sample": p, "kind": "patient", "patient": p, "timepoint": "T0"})
    return pd.DataFrame(rows), pd.DataFrame(sheet)


def test_hd_thresholds_worked_example():
    t = pos.hd_thresholds(HD, pos.positivity_options().k)
    assert round(t["mean"], 2) == 12.74
    assert round(t["sd"], 3) == 0.658
    assert t["min"] == 11.8
    assert round(t["mean_ksd"], 4) == 11.4239
    assert round(t["mean_3sd"], 4) == 10.7659


def test_calls_worked_example():
    norm, sheet = _example()
    out = pos.call_positivity(norm, sheet)
    calls = out["calls"].set_index("sample")
    p1, p2, p3 = calls.loc["P1"], calls.loc["P2"], calls.loc["P3"]
    assert (p1["max_healthy"], p1["mean_ksd"], p1["mean_3sd"]) == (True, False, False)
    assert round(p1["ddcq"], 2) == -1.24 and round(p1["fold_change"], 2) == 2.36
    assert p1["fold"]  # ΔΔCq −1.24 ≤ −1
    assert all(p2[r] for r in ("max_healthy", "mean_ksd", "mean_3sd", "fold"))
    assert round(p2["fold_change"], 2) == 4.41
    assert not any(p3[r] for r in pos.RULES)
    assert calls["hd_mean"].iloc[0] == pytest.approx(12.74)
    sc = out["sample_calls"].set_index("sample")
    assert list(sc["positive"]) == [False, True, False]  # default rule mean_ksd
    assert out["summary"].to_dict("records") == [
        {"timepoint": "T0", "n": 3, "n_positive": 1, "fraction": 1 / 3}
    ]
    out_max = pos.call_positivity(norm, sheet, pos.positivity_options({"rule": "max_healthy"}))
    assert out_max["sample_calls"]["positive"].sum() == 2


def test_hd_absent_rule_and_non_detects():
    norm, sheet = _example()
    extra = []
    for i in range(5):
        extra.append({"sample": f"HD{i}", "gene": "MUC1", "dcq": 20.0, "detected": False})
    extra += [
        {"sample": "P1", "gene": "MUC1", "dcq": 15.0, "detected": True},
        {"sample": "P2", "gene": "MUC1", "dcq": 19.0, "detected": False},
        {"sample": "P3", "gene": "KRT19x", "dcq": 1.0, "detected": False},
    ]
    norm = pd.concat([norm, pd.DataFrame(extra)], ignore_index=True)
    out = pos.call_positivity(norm, sheet, pos.positivity_options({"markers": ["MUC1"], "rule": "mean_ksd"}))
    calls = out["calls"].set_index(["sample", "gene"])
    assert calls.loc[("P1", "MUC1"), "healthy_absent"] and calls.loc[("P1", "MUC1"), "mean_ksd"]
    assert not calls.loc[("P2", "MUC1"), "positive"]  # not detected → never positive
    assert not calls.loc[("P2", "KRT19"), "positive"]  # outside the marker subset
    sc = out["sample_calls"].set_index("sample")["positive"]
    assert sc.to_dict() == {"P1": True, "P2": False, "P3": False}
    assert out["calls"][["sample", "gene"]].duplicated().sum() == 0


def test_min_markers_and_specificity():
    rng = np.random.default_rng(0)
    genes = [f"M{i}" for i in range(10)]
    rows, sheet = [], []
    for h in range(20):
        sheet.append({"sample": f"HD{h:02d}", "kind": "healthy"})
        rows += [
            {"sample": f"HD{h:02d}", "gene": g, "dcq": rng.normal(12, 0.7), "detected": True} for g in genes
        ]
    for p in range(10):
        sheet.append({"sample": f"S{p}", "kind": "patient", "patient": f"P{p}", "timepoint": "T1"})
        shift = 3.0 if p < 5 else 0.0
        rows += [
            {"sample": f"S{p}", "gene": g, "dcq": rng.normal(12 - shift * (i < 3), 0.7), "detected": True}
            for i, g in enumerate(genes)
        ]
    norm, sheet = pd.DataFrame(rows), pd.DataFrame(sheet)
    out = pos.call_positivity(
        norm, sheet, pos.positivity_options({"markers": genes[:3], "min_markers": 2, "rule": "mean_3sd"})
    )
    assert out["sample_calls"]["positive"].tolist() == [True] * 5 + [False] * 5
    spec = out["specificity"].set_index("rule")
    assert list(spec.index) == list(pos.RULES)
    assert (spec["n_healthy"] == 20).all()
    # the max rule is the least specific (expected per-marker FP rate 1/n_HD)
    assert spec.loc["max_healthy", "mean_marker_fp_rate"] >= spec.loc["mean_3sd", "mean_marker_fp_rate"]
    assert spec.loc["mean_3sd", "specificity"] == 1.0
    all_markers = pos.call_positivity(norm, sheet, pos.positivity_options({"rule": "max_healthy"}))[
        "specificity"
    ].set_index("rule")
    assert all_markers.loc["max_healthy", "specificity"] < 1.0


def test_bad_rule():
    norm, sheet = _example()
    with pytest.raises(ConfigError, match=r"positivity\.rule: 'bogus' is not one of max_healthy"):
        pos.call_positivity(norm, sheet, pos.positivity_options({"rule": "bogus"}))
    with pytest.raises(ConfigError, match=r"positivity\.k: '2' must be of type number"):
        pos.positivity_options({"k": "2"})
