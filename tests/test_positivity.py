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


def _pivoted(normalised: pd.DataFrame, sheet: pd.DataFrame):
    """ΔCq and detected per sample × gene by pivot_table, as the calls were first made."""
    data = normalised.assign(sample=normalised["sample"].astype(str))
    data = data[data["sample"].isin(sheet["sample"])]
    genes = sorted(data["gene"].unique())
    dcq = data.pivot_table(index="sample", columns="gene", values="dcq", aggfunc="mean").reindex(
        columns=genes
    )
    det = data.assign(detected=data["detected"].astype(int))
    det = det.pivot_table(index="sample", columns="gene", values="detected", aggfunc="max").reindex(
        columns=genes
    )
    return genes, dcq, det.fillna(0).astype(bool)


@pytest.mark.parametrize("seed", range(4))
def test_wide_matrices_are_those_of_pivot_table(seed):
    """Several rows for one sample × gene (averaged), a sample without any ΔCq (left out), one
    off the sheet (ignored); the HD mean sums in pivot_table's order: the same bits."""
    rng = np.random.default_rng(seed)
    rows = [
        {
            "sample": f"S{s:02d}",
            "gene": f"G{g}",
            "dcq": rng.normal(10, 3),
            "detected": bool(rng.random() < 0.7),
        }
        for s in range(40)
        for g in range(6)
        for _ in range(int(rng.choice([0, 1, 1, 2])))
    ]
    rows += [{"sample": "S40", "gene": "G0", "dcq": np.nan, "detected": False}]
    normalised = pd.DataFrame(rows)
    sheet = pd.DataFrame({"sample": [f"S{s:02d}" for s in range(1, 41)], "kind": "patient"})
    sheet.loc[::2, "kind"] = "healthy"
    genes, dcq, det, hd_ids, pt_ids = (lambda g, w, *rest: (g, *rest))(
        *pos._wide(normalised, sheet, None, [])
    )
    want_genes, want_dcq, want_det = _pivoted(normalised, sheet)
    assert genes == want_genes and "S00" not in dcq.index and "S40" not in dcq.index
    pd.testing.assert_frame_equal(dcq, want_dcq.rename_axis(None).rename_axis(None, axis=1), check_exact=True)
    assert (det.loc[dcq.index].to_numpy() == want_det.loc[dcq.index].to_numpy()).all()
    hd_mean = np.nanmean(dcq.loc[hd_ids].to_numpy(float), axis=0)
    assert hd_mean.tobytes() == np.nanmean(want_dcq.loc[hd_ids].to_numpy(float), axis=0).tobytes()
    assert pt_ids == sorted(s for s in dcq.index if int(s[1:]) % 2 == 0)


@pytest.mark.parametrize("odd_name", ["P1", "P\t1", "=P1"])
def test_calls_written_in_blocks_are_the_bytes_of_one_table(tmp_path, odd_name):
    """Sample and gene as categories, the HD statistics formatted once per gene, written a
    block at a time: the bytes of write_tsv of plain columns (NaN SD with one HD; a name that
    needs quoting or escaping)."""
    from ctc_qpcr.tables import write_tsv

    norm, sheet = _example()
    norm = pd.concat([norm, norm.assign(gene="MUC1", dcq=norm["dcq"] + 1.5)], ignore_index=True)
    for frame in (norm, sheet):
        frame.loc[frame["sample"] == "P1", "sample"] = odd_name
    for hds in (slice(None), slice(4, None)):
        keep = ~norm["sample"].str.startswith("HD") | norm["sample"].isin(
            ["HD0", "HD1", "HD2", "HD3", "HD4"][hds]
        )
        calls = pos.call_positivity(norm[keep], sheet)["calls"]
        assert isinstance(calls["sample"].dtype, pd.CategoricalDtype)
        write_tsv(calls.astype({"sample": object, "gene": object}), tmp_path / "plain.tsv")
        pos.write_calls(calls, tmp_path / "blocks.tsv", block=2)
        assert (tmp_path / "blocks.tsv").read_bytes() == (tmp_path / "plain.tsv").read_bytes()
