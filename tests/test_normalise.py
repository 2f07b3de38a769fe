"""Normalisation strategies, ΔCq, log2 NRQ, ΔΔCq and the orchestrator (algorithms §4.3, §4.4)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ctc_qpcr.errors import ConfigError
from ctc_qpcr.normalise import (
    LONG_COLUMNS,
    delta_cq,
    delta_delta_cq,
    estimate_missing_references,
    global_mean,
    log2_nrq,
    normalise_study,
    reference_normaliser,
    strategy_agreement,
)
from ctc_qpcr.plots_refgenes import plot_genorm_m, plot_genorm_v, plot_normfinder
from ctc_qpcr.refgenes import genorm, normfinder

# ------------------------------------------------------------------ §4.3 global mean


def test_global_mean_worked_example():
    cq = pd.DataFrame([[24.0, 28.5, 31.2, 36.4, 22.9]], index=["S"], columns=list("ABCDE"))
    det = cq <= 35
    gm, flags, used = global_mean(cq, det, mode="expressed")
    assert gm["S"] == pytest.approx(26.65, abs=1e-12)
    dcq = delta_cq(cq, gm).loc["S"]
    np.testing.assert_allclose(dcq[["A", "B", "C", "E"]], [-2.65, 1.85, 4.55, -3.75], atol=1e-12)
    assert used["S"] == ["A", "B", "C", "E"] and flags["S"] == ""


def test_global_mean_common_vs_expressed_and_modified():
    cq = pd.DataFrame({"A": [20.0, 22.0], "B": [25.0, 27.0], "C": [30.0, 36.0]}, index=["S1", "S2"])
    det = pd.DataFrame({"A": [True, True], "B": [True, True], "C": [True, False]}, index=cq.index)
    common, _, used = global_mean(cq, det, mode="common")
    assert common.tolist() == [22.5, 24.5] and used["S1"] == ["A", "B"]
    expressed, _, _ = global_mean(cq, det, mode="expressed")
    assert expressed.tolist() == [25.0, 24.5]
    # modified (gene-centred): gene means A 21, B 26 -> S1 mean(-1, -1) = -1, S2 +1
    modified, _, _ = global_mean(cq, det, mode="common", modified=True)
    assert modified.tolist() == [-1.0, 1.0]
    # ΔCq differs from the plain global mean by a constant per gene set
    diff = delta_cq(cq, modified) - delta_cq(cq, common)
    assert np.allclose(diff.to_numpy(), diff.to_numpy()[0, 0])


def test_global_mean_no_common_gene_is_flagged():
    cq = pd.DataFrame({"A": [20.0, 36.0], "B": [36.0, 27.0]}, index=["S1", "S2"])
    det = cq < 35
    gm, flags, _ = global_mean(cq, det, mode="common")
    assert gm.isna().all() and flags.tolist() == ["no_normaliser", "no_normaliser"]


# ------------------------------------------------------------------ §4.4 ΔCq, NRQ, ΔΔCq

NRQ_CQ = pd.DataFrame(
    {"GOI": [26.0, 24.5, 27.2], "REF1": [18.0, 18.6, 17.7], "REF2": [21.0, 21.4, 20.9]},
    index=["S1", "S2", "S3"],
)
NRQ_E = {"GOI": 1.95, "REF1": 2.0, "REF2": 1.90}


def test_nrq_worked_example():
    used = {s: ["REF1", "REF2"] for s in NRQ_CQ.index}
    out = log2_nrq(NRQ_CQ, NRQ_E, used)
    nrq = 2.0 ** out["GOI"]
    assert [round(v, 4) for v in nrq] == [0.8750, 3.3352, 0.3427]
    assert [round(v, 4) for v in out["GOI"]] == [-0.1926, 1.7378, -1.5451]
    # intermediate values of the worked example
    rq = 2.0 ** log2_nrq(NRQ_CQ, NRQ_E, None)
    np.testing.assert_allclose(rq.loc["S1"], [0.9354, 1.0718, 1.0663], atol=5e-5)
    np.testing.assert_allclose(rq.loc["S2"], [2.5471, 0.7071, 0.8248], atol=5e-5)
    nf = np.sqrt(rq["REF1"] * rq["REF2"])
    assert [round(v, 4) for v in nf[:2]] == [1.0690, 0.7637]


def test_nrq_equal_efficiency_is_minus_dcq_up_to_gene_constant():
    cq = NRQ_CQ
    used = {s: ["REF1", "REF2"] for s in cq.index}
    norm, _, _ = reference_normaliser(cq, cq.notna(), ["REF1", "REF2"])
    dcq = delta_cq(cq, norm)
    out = log2_nrq(cq, None, used)
    shift = out + dcq  # constant per gene
    assert np.allclose(shift - shift.iloc[0], 0.0)


def test_reference_normaliser_missing_references():
    cq = pd.DataFrame(
        {"R1": [18.0, 19.0, 36.0], "R2": [20.0, 36.0, 36.0], "T": [30.0, 31.0, 32.0]}, index=["a", "b", "c"]
    )
    det = cq < 35
    norm, flags, used = reference_normaliser(cq, det, ["R1", "R2"])
    # b lacks R2: estimated as its R1 + the study's mean R2 − R1 (= 2, from a) -> 21, normaliser (19 + 21)/2
    assert norm["a"] == 19.0 and norm["b"] == 20.0 and np.isnan(norm["c"])
    assert flags.tolist() == [
        "",
        "reference_missing:R2",
        "no_normaliser;reference_missing:R1;reference_missing:R2",
    ]
    assert used["b"] == ["R1"]
    dcq = delta_cq(cq, norm)
    assert dcq.loc["a", "T"] == 11.0 and np.isnan(dcq.loc["c", "T"])
    # at least 2 detected reference genes required: b is left without a normaliser
    norm2, flags2, _ = reference_normaliser(cq, det, ["R1", "R2"], min_genes=2)
    assert norm2["a"] == 19.0 and np.isnan(norm2["b"])
    assert flags2["b"] == "no_normaliser;reference_missing:R2;too_few_reference_genes"


def test_sample_with_a_failed_reference_has_its_twins_dcq():
    """Issue 16 item 3: a sample missing its ACTB (Cq ≈ 15 where GAPDH ≈ 18) gets the ΔCq of its
    identical twin, not 1.5 cycles off; samples with every reference keep the classic
    ΔCq = Cq − mean(reference Cq)."""
    rng = np.random.default_rng(3)
    n = 30
    shift = rng.normal(0, 1, n)  # material per sample, shared by every gene
    base = {"ACTB": 15.0, "GAPDH": 18.0, "B2M": 16.5, "KRT19": 27.0}
    cq = pd.DataFrame(
        {g: b + shift + rng.normal(0, 0.1, n) for g, b in base.items()}, index=[f"S{i:02d}" for i in range(n)]
    )
    cq.loc["TWIN"] = cq.loc["S00"]
    det = pd.DataFrame(True, index=cq.index, columns=cq.columns)
    det.loc["TWIN", "ACTB"] = False
    cq.loc["TWIN", "ACTB"] = 36.0  # imputed LOD + 1, must not enter
    refs = ["ACTB", "GAPDH", "B2M"]
    norm, flags, _ = reference_normaliser(cq, det, refs)
    dcq = delta_cq(cq, norm)
    classic = cq.loc["S05", "KRT19"] - cq.loc["S05", refs].mean()
    assert dcq.loc["S05", "KRT19"] == pytest.approx(classic, abs=1e-12)  # classic ΔCq kept
    assert dcq.loc["TWIN", "KRT19"] == pytest.approx(dcq.loc["S00", "KRT19"], abs=0.1)
    old = cq.loc["TWIN", "KRT19"] - cq.loc["TWIN", ["GAPDH", "B2M"]].mean()  # mean of the remaining refs
    assert abs(old - dcq.loc["S00", "KRT19"]) > 0.5  # old rule: 0.74 off
    assert flags["TWIN"] == "reference_missing:ACTB"
    # exact with noise-free references: the estimate is the twin's own value
    cq2 = cq.copy()
    for g in refs:
        cq2[g] = base[g] + np.r_[shift, shift[0]]
    norm2, _, _ = reference_normaliser(
        cq2.assign(ACTB=cq2["ACTB"].where(~cq2.index.isin(["TWIN"]), 36.0)), det, refs
    )
    assert norm2["TWIN"] == pytest.approx(norm2["S00"], abs=1e-9)


def test_nrq_gene_means_from_detected_values_only():
    """Issue 16 item 3: an imputed non-detect of a reference gene does not shift every sample's log2 NRQ."""
    cq = pd.DataFrame(
        {"R1": [18.0, 19.0, 18.5, 36.0], "R2": [20.0, 21.0, 20.5, 21.2], "T": [30.0, 31.0, 30.0, 30.7]},
        index=["a", "b", "c", "d"],
    )
    det = cq < 35
    filled = estimate_missing_references(cq, det, ["R1", "R2"])
    assert filled.loc["d", "R1"] == pytest.approx(21.2 - 2.0)
    used = {s: ["R1", "R2"] for s in cq.index}
    with_d = log2_nrq(cq, None, used, det, filled)
    without = log2_nrq(
        cq.loc[["a", "b", "c"]], None, used, det.loc[["a", "b", "c"]], filled.loc[["a", "b", "c"]]
    )
    # the detected samples' NRQ only moves by the gene-mean change of d's detected T (R1's mean unchanged)
    assert with_d.loc[["a", "b", "c"], "R1"].to_numpy() == pytest.approx(without["R1"].to_numpy(), abs=0.2)
    old = log2_nrq(cq, None, used)  # mean over the imputed 36 too
    assert abs(old.loc["a", "T"] - with_d.loc["a", "T"]) > 1.0


def test_delta_delta_cq():
    dcq = pd.DataFrame({"T": [5.0, 7.0, 3.0]}, index=["P1", "H1", "H2"])
    dd = delta_delta_cq(dcq, ["H1", "H2"])
    assert dd["T"].tolist() == [0.0, 2.0, -2.0]
    assert delta_delta_cq(dcq, []).isna().all().all()


# ------------------------------------------------------------------ orchestrator


def make_study(seed=7, n_patients=8, n_healthy=4):
    rng = np.random.default_rng(seed)
    names = [f"P{i}" for i in range(n_patients)] + [f"H{i}" for i in range(n_healthy)] + ["IPC1", "NTC"]
    kinds = ["patient"] * n_patients + ["healthy"] * n_healthy + ["ipc", "ntc"]
    samples = pd.DataFrame(
        {
            "sample": names,
            "kind": kinds,
            "response": (["responder", "non-responder"] * n_patients)[:n_patients] + [""] * (n_healthy + 2),
        }
    )
    base = {
        "ACTB": 18.0,
        "GAPDH": 20.0,
        "B2M": 17.0,
        "PPIA": 21.0,
        "KRT19": 30.0,
        "EPCAM": 32.0,
        "MUC1": 31.0,
    }
    roles = {g: ("reference" if g in ("ACTB", "GAPDH", "B2M", "PPIA") else "target") for g in base}
    assays = pd.DataFrame(
        {"assay": [f"{g}_a" for g in base], "gene": list(base), "role": [roles[g] for g in base]}
    )
    rows = []
    for s, k in zip(names, kinds, strict=True):
        load = rng.normal(0, 1.0)
        for g, b in base.items():
            cq = b + load + rng.normal(0, 0.15 if roles[g] == "reference" else 0.8)
            rows.append(
                {
                    "plate": "p1",
                    "sample": s,
                    "kind": k,
                    "assay": f"{g}_a",
                    "gene": g,
                    "role": roles[g],
                    "cq": cq,
                    "cq_imputed": cq,
                    "detected": True,
                }  # fmt: skip
            )
    cells = pd.DataFrame(rows)
    return cells, samples, assays


def set_cell(cells, sample, gene, cq, detected):
    m = (cells["sample"] == sample) & (cells["gene"] == gene)
    cells.loc[m, "cq"] = cq if detected else np.nan
    cells.loc[m, "cq_imputed"] = cq
    cells.loc[m, "detected"] = detected


def test_normalise_study_outputs_and_columns():
    cells, samples, assays = make_study()
    res = normalise_study(cells, samples, assays)
    for key in ("genorm", "genorm_v", "normfinder", "chosen", "normalised", "matrices", "agreement", "notes"):
        assert key in res
    assert list(res["genorm"].columns) == ["step", "n_genes", "gene", "M"]
    assert list(res["genorm_v"].columns) == ["n", "V"]
    assert list(res["normfinder"].columns)[:3] == ["gene", "stability", "rank"]
    assert set(res["normalised"]) == {"reference", "normfinder_pair", "global_mean", "none"}
    chosen = res["chosen"].set_index("strategy")
    g = genorm(
        cells[cells.kind.isin(["patient", "healthy"]) & (cells.role == "reference")].pivot(
            index="sample", columns="gene", values="cq"
        )
    )
    assert chosen.loc["reference", "genes"] == ";".join(g.optimal_genes)
    for strategy, table in res["normalised"].items():
        assert list(table.columns) == LONG_COLUMNS
        assert set(table["sample"]) == {f"P{i}" for i in range(8)} | {
            f"H{i}" for i in range(4)
        }  # controls excluded
        assert len(table) == 12 * 7
        assert (table["strategy"] == strategy).all()
        wide = res["matrices"][strategy]
        assert wide.index.name == "sample" and wide.shape == (12, 7)
        assert wide.reset_index().columns[0] == "sample"
        # dcq = cq - normaliser
        np.testing.assert_allclose(table["dcq"], table["cq"] - table["normaliser"], atol=1e-12)
        # ddcq: healthy mean of ddcq is 0 for every gene
        hd = table[table["sample"].str.startswith("H")].groupby("gene")["ddcq"].mean()
        np.testing.assert_allclose(hd, 0.0, atol=1e-12)
    none = res["normalised"]["none"]
    np.testing.assert_allclose(none["dcq"], none["cq"])
    ref = res["normalised"]["reference"]
    genes = chosen.loc["reference", "genes"].split(";")
    by_sample = ref.pivot(index="sample", columns="gene", values="cq")[genes].mean(axis=1)
    np.testing.assert_allclose(ref.groupby("sample")["normaliser"].first(), by_sample)
    agr = res["agreement"]
    assert list(agr.columns) == ["strategy_a", "strategy_b", "gene", "n", "r"]
    assert len(agr) == 6 * 8  # 6 pairs of strategies × (7 genes + ALL)
    targets = agr[agr["gene"].isin(["KRT19", "EPCAM", "MUC1"])]
    assert (targets.loc[targets.strategy_a == "reference", "r"].dropna() > 0.5).all()


def test_normalise_study_missing_references_are_flagged_not_dropped():
    cells, samples, assays = make_study()
    set_cell(cells, "P1", "ACTB", 36.0, False)
    for g in ("ACTB", "GAPDH", "B2M", "PPIA"):
        set_cell(cells, "P2", g, 36.0, False)
    res = normalise_study(
        cells, samples, assays, reference_genes=["ACTB", "GAPDH"], strategies=("reference",)
    )
    t = res["normalised"]["reference"].set_index(["sample", "gene"])
    assert t.loc[("P1", "KRT19"), "flags"] == "reference_missing:ACTB"
    # P1's ACTB estimated as its GAPDH + the study's mean ACTB − GAPDH (the others: both detected)
    both = t.xs("ACTB", level="gene")["detected"] & t.xs("GAPDH", level="gene")["detected"]
    d = (t.xs("ACTB", level="gene")["cq"] - t.xs("GAPDH", level="gene")["cq"])[both].mean()
    gapdh = t.loc[("P1", "GAPDH"), "cq"]
    assert t.loc[("P1", "KRT19"), "normaliser"] == pytest.approx((gapdh + gapdh + d) / 2)
    # with two detected reference genes required, P1 has no ΔCq and is listed with the reason
    strict = normalise_study(
        cells,
        samples,
        assays,
        reference_genes=["ACTB", "GAPDH"],
        strategies=("reference",),
        min_reference_genes=2,
    )
    ex = strict["excluded"].set_index("sample")
    assert set(ex.index) == {"P1", "P2"} and ex.loc["P1", "reason"].startswith(
        "too few detected reference genes"
    )
    t2 = strict["normalised"]["reference"].set_index(["sample", "gene"])
    assert np.isnan(t2.loc[("P1", "KRT19"), "dcq"]) and np.isnan(t2.loc[("P1", "KRT19"), "log2_nrq"])
    assert np.isnan(t.loc[("P2", "KRT19"), "dcq"]) and np.isnan(t.loc[("P2", "KRT19"), "normaliser"])
    assert "no_normaliser" in t.loc[("P2", "KRT19"), "flags"]
    assert bool(t.loc[("P1", "ACTB"), "detected"]) is False
    notes = " ".join(res["notes"])
    assert "P2" in notes and "geNorm: 2 sample(s) left out" in notes
    assert res["chosen"].iloc[0]["reason"] == "fixed list from config"


def test_normalise_study_multi_plate_sample_is_averaged():
    cells, samples, assays = make_study()
    extra = cells[cells["sample"] == "P0"].copy()
    extra["plate"] = "p2"
    extra["cq"] += 1.0
    extra["cq_imputed"] += 1.0
    orig = cells[cells["sample"] == "P0"].set_index("gene")["cq"]
    res = normalise_study(pd.concat([cells, extra]), samples, assays, strategies=("none",))
    t = res["normalised"]["none"].set_index(["sample", "gene"])
    assert t.loc[("P0", "KRT19"), "cq"] == pytest.approx(orig["KRT19"] + 0.5)
    assert t.loc[("P0", "KRT19"), "flags"] == "multi_plate_mean"
    assert any("several plates" in n and "P0" in n for n in res["notes"])


def test_normalise_study_plain_minimal_cells():
    """Only sample, assay, cq: roles/kinds from the sheets, detected = Cq present."""
    cells, samples, assays = make_study()
    plain = cells[["sample", "assay", "cq"]].copy()
    plain.loc[(plain["sample"] == "P3") & (plain["assay"] == "EPCAM_a"), "cq"] = np.nan
    plain_assays = assays.assign(gene=assays["assay"])
    res = normalise_study(plain, samples, plain_assays, strategies=("reference", "none"))
    t = res["normalised"]["reference"].set_index(["sample", "gene"])
    assert bool(t.loc[("P3", "EPCAM_a"), "detected"]) is False and np.isnan(t.loc[("P3", "EPCAM_a"), "dcq"])
    assert t.loc[("P3", "EPCAM_a"), "flags"] == "cq_missing"
    assert "IPC1" not in set(res["normalised"]["reference"]["sample"])


def test_normalise_study_normfinder_groups_and_fixed_pair():
    cells, samples, assays = make_study()
    res = normalise_study(cells, samples, assays, normfinder_group="response")
    ref = (
        cells[cells.kind == "patient"]
        .query("role == 'reference'")
        .pivot(index="sample", columns="gene", values="cq")
    )
    grp = samples.set_index("sample").loc[ref.index, "response"]
    nf = normfinder(ref, grp)
    pd.testing.assert_frame_equal(res["normfinder"].reset_index(drop=True), nf.table)
    chosen = res["chosen"].set_index("strategy")
    assert chosen.loc["normfinder_pair", "genes"] == ";".join(nf.best_pair)
    # healthy donors have no response: left out of NormFinder and reported
    assert any("NormFinder: 4 sample(s) left out" in n for n in res["notes"])


def test_normalise_study_efficiency_nrq_matches_worked_example():
    rows = []
    for s, vals in NRQ_CQ.iterrows():
        for g, cq in vals.items():
            rows.append(
                {
                    "sample": s,
                    "gene": g,
                    "assay": g,
                    "cq": cq,
                    "role": "target" if g == "GOI" else "reference",
                    "kind": "patient" if s != "S3" else "healthy",
                }
            )
    assays = pd.DataFrame(
        {
            "assay": list(NRQ_E),
            "gene": list(NRQ_E),
            "role": ["target", "reference", "reference"],
            "efficiency": list(NRQ_E.values()),
        }
    )
    res = normalise_study(pd.DataFrame(rows), None, assays, strategies=("reference", "normfinder_pair"))
    t = res["normalised"]["reference"].set_index(["sample", "gene"])
    assert [round(t.loc[(s, "GOI"), "log2_nrq"], 4) for s in ("S1", "S2", "S3")] == [-0.1926, 1.7378, -1.5451]
    # two reference genes: geNorm uses both; NormFinder cannot run (k < 3) -> noted fallback
    assert res["chosen"].set_index("strategy").loc["reference", "genes"] == "REF1;REF2"
    assert any("NormFinder not run" in n for n in res["notes"])
    assert res["normfinder"].empty
    # ddcq against the single healthy sample S3
    assert t.loc[("S3", "GOI"), "ddcq"] == 0.0
    # Cq already scaled upstream: E = 2 here, log2 NRQ = −ΔCq + per-gene constant
    res2 = normalise_study(
        pd.DataFrame(rows), None, assays, strategies=("reference",), efficiency_scaled=True
    )
    t2 = res2["normalised"]["reference"]
    shift = (t2["log2_nrq"] + t2["dcq"]).groupby(t2["gene"]).std()
    np.testing.assert_allclose(shift, 0.0, atol=1e-12)


def test_normalise_study_config_errors():
    cells, samples, assays = make_study()
    with pytest.raises(ConfigError):
        normalise_study(cells, samples, assays, strategies=("quantile",))
    with pytest.raises(ConfigError):
        normalise_study(cells, samples, assays, reference_genes=["NOPE"])
    with pytest.raises(ConfigError):
        normalise_study(cells, samples, assays, normfinder_group="no_such_column")


def test_normalise_study_reference_plus_target_candidates():
    cells, samples, assays = make_study()
    set_cell(cells, "P4", "MUC1", 36.0, False)
    res = normalise_study(cells, samples, assays, candidates="reference+target", strategies=("reference",))
    genes = set(res["genorm"]["gene"])
    assert genes == {"ACTB", "GAPDH", "B2M", "PPIA", "KRT19", "EPCAM"}


def test_normalise_study_deterministic():
    cells, samples, assays = make_study()
    a = normalise_study(cells, samples, assays)
    b = normalise_study(cells.sample(frac=1.0, random_state=3), samples, assays)
    for s in a["normalised"]:
        pd.testing.assert_frame_equal(a["normalised"][s], b["normalised"][s])
    pd.testing.assert_frame_equal(a["agreement"], b["agreement"])


def test_normalise_study_takes_a_loader_for_the_cells():
    """A function returning the Cells table (the adapter's way to let the table be freed early)
    gives the same results as the table itself, and is called once."""
    cells, samples, assays = make_study()
    calls = []

    def load():
        calls.append(1)
        return cells.copy()

    a = normalise_study(cells, samples, assays)
    b = normalise_study(load, samples, assays)
    assert calls == [1]
    for s in a["normalised"]:
        pd.testing.assert_frame_equal(a["normalised"][s], b["normalised"][s])
    pd.testing.assert_frame_equal(a["agreement"], b["agreement"])
    assert a["notes"] == b["notes"]


def test_streamed_strategies_write_the_same_bytes(tmp_path):
    """on_strategy (the workflow's writer): categorical ids, one strategy at a time, same TSV bytes."""
    from ctc_qpcr.tables import write_tsv

    cells, samples, assays = make_study()
    # a formula-like sample name must be escaped in the categorical column too
    cells = cells.replace({"sample": {"P0": "=HYPERLINK(1)"}})
    samples = samples.replace({"sample": {"P0": "=HYPERLINK(1)"}})
    plain = normalise_study(cells, samples, assays)
    seen = []

    def keep(strategy, table, wide):
        assert isinstance(table["sample"].dtype, pd.CategoricalDtype)
        seen.append(strategy)
        write_tsv(table, tmp_path / f"{strategy}.streamed.tsv")

    streamed = normalise_study(cells, samples, assays, on_strategy=keep)
    assert seen == list(plain["normalised"]) and streamed["normalised"] == {}
    pd.testing.assert_frame_equal(plain["agreement"], streamed["agreement"])
    for strategy, table in plain["normalised"].items():
        write_tsv(table, tmp_path / f"{strategy}.tsv")
        text = (tmp_path / f"{strategy}.tsv").read_bytes()
        assert (tmp_path / f"{strategy}.streamed.tsv").read_bytes() == text
        assert b"'=HYPERLINK(1)" in text


def test_strategy_agreement_identical_matrices():
    m = pd.DataFrame({"A": [1.0, 2.0, 4.0], "B": [3.0, 1.0, 0.0]}, index=["x", "y", "z"])
    agr = strategy_agreement({"s1": m, "s2": m * 2 + 1})
    assert np.allclose(agr["r"], 1.0)
    assert agr["gene"].tolist() == ["A", "B", "ALL"]


# ------------------------------------------------------------------ plots


def test_plots_are_deterministic(tmp_path):
    toy = pd.DataFrame(
        {
            "ACTB": [18.2, 18.9, 18.5, 19.6, 19.1, 19.9],
            "GAPDH": [20.1, 20.6, 20.4, 21.3, 21.2, 21.9],
            "B2M": [17.0, 17.9, 17.1, 17.8, 17.6, 18.7],
            "PPIA": [21.5, 22.1, 21.6, 22.9, 22.2, 23.3],
        }  # fmt: skip
    )
    g = genorm(toy)
    nf = normfinder(toy, ["A"] * 3 + ["B"] * 3)
    outputs = []
    for run in (1, 2):
        d = tmp_path / f"run{run}"
        paths = [
            plot_genorm_m(g.steps, d / "m.svg"),
            plot_genorm_v(g.pairwise_v, d / "v.svg", cutoff=0.15),
            plot_normfinder(nf.table, d / "nf.svg"),
            plot_genorm_v(g.pairwise_v, d / "v.png"),
            plot_genorm_m(g.steps.iloc[:0], d / "empty.svg"),
        ]
        outputs.append([p.read_bytes() for p in paths])
    assert outputs[0] == outputs[1]
    assert b"<svg" in outputs[0][0] and outputs[0][3][:4] == b"\x89PNG"
    assert b"dc:date" not in outputs[0][0]


def test_prepare_cells_vectorised_multi_plate_and_non_detects():
    """Hand-built cells: multi-plate samples and non-detects (the vectorised groupby of _prepare_cells).

    Per sample × gene: detected = any; Cq = mean over the detected rows, else over all rows
    (same for cq_imputed); kind/role from the first row; multi_plate = on > 1 plate.
    """
    import numpy as np
    import pandas as pd

    from ctc_qpcr.normalise import _prepare_cells

    nan = np.nan
    rows = [
        # sample, gene, role, kind, plate, cq, cq_imputed, detected
        ("S1", "A", "target", "patient", "P1", 25.0, 25.0, True),
        ("S1", "A", "target", "patient", "P2", nan, 36.0, False),  # non-detect on the 2nd plate: ignored
        ("S1", "B", "target", "patient", "P1", nan, 36.0, False),
        ("S1", "B", "target", "patient", "P2", nan, 37.0, False),  # nothing detected: mean of all
        ("S1", "R", "reference", "patient", "P1", 20.0, 20.0, True),
        ("S1", "R", "reference", "patient", "P2", 22.0, 22.0, True),  # both detected: mean
        (" S2 ", "A", "target", "healthy", "P1", 30.0, 30.0, True),  # name stripped
        ("S2", "B", "target", "healthy", "P1", 38.0, 36.0, False),  # Cq above LOD, not detected
        ("S2", "R", "reference", "healthy", "P1", 21.0, 21.0, True),
        ("S2", "R", "reference", "healthy", "P1", 23.0, 23.0, False),  # same plate, undetected row ignored
        ("NTC", "A", "target", "ntc", "P1", 33.0, 33.0, True),  # control kind: dropped
        ("S1", "IPC", "ipc", "patient", "P1", 24.0, 24.0, True),  # ipc role: dropped
    ]
    cells = pd.DataFrame(
        rows, columns=["sample", "gene", "role", "kind", "plate", "cq", "cq_imputed", "detected"]
    )
    notes: list[str] = []
    out = _prepare_cells(cells, None, None, ("patient", "healthy"), notes).set_index(["sample", "gene"])

    assert list(out.index) == [("S1", "A"), ("S1", "B"), ("S1", "R"), ("S2", "A"), ("S2", "B"), ("S2", "R")]
    expected = {
        # cq, cq_imputed, detected, multi_plate, kind, role
        ("S1", "A"): (25.0, 25.0, True, True, "patient", "target"),
        ("S1", "B"): (nan, 36.5, False, True, "patient", "target"),
        ("S1", "R"): (21.0, 21.0, True, True, "patient", "reference"),
        ("S2", "A"): (30.0, 30.0, True, False, "healthy", "target"),
        ("S2", "B"): (38.0, 36.0, False, False, "healthy", "target"),
        ("S2", "R"): (21.0, 21.0, True, False, "healthy", "reference"),
    }
    for key, (cq, cq_imp, det, multi, kind, role) in expected.items():
        row = out.loc[key]
        assert np.isnan(row["cq"]) if np.isnan(cq) else row["cq"] == pytest.approx(cq), key
        assert row["cq_imputed"] == pytest.approx(cq_imp), key
        assert bool(row["detected"]) is det, key
        assert bool(row["multi_plate"]) is multi, key
        assert (row["kind"], row["role"]) == (kind, role), key
    assert notes == ["1 sample(s) measured on several plates; Cq averaged over plates: S1"]


def test_categorical_cells_give_the_same_tables_as_text_cells():
    """The workflow reads the Cells table's ids as categoricals (issue 17: memory): same results,
    also with untidy names (spaces, a sample on two plates, no kind/role columns)."""
    cells, samples, assays = make_study()
    cells = cells.drop(columns=["kind", "role"])
    cells.loc[cells["sample"] == "P1", "sample"] = " P1 "  # stripped like any other id
    twice = cells[cells["sample"] == "P2"].assign(plate="p2", cq=lambda d: d["cq"] + 0.5)
    cells = pd.concat([cells, twice], ignore_index=True)
    ids = ["sample", "gene", "assay", "plate"]
    as_text = normalise_study(cells, samples, assays)
    as_codes = normalise_study(cells.astype(dict.fromkeys(ids, "category")), samples, assays)
    assert any("several plates" in n for n in as_codes["notes"])
    assert as_text["notes"] == as_codes["notes"]
    for strategy, table in as_text["normalised"].items():
        pd.testing.assert_frame_equal(table, as_codes["normalised"][strategy])
    pd.testing.assert_frame_equal(as_text["genorm"], as_codes["genorm"])


@pytest.mark.parametrize("bound", [50, 10**9])  # the table of flags, and np.unique past its size
def test_unique_codes_equal_numpy_unique(bound):
    from ctc_qpcr.normalise_cells import _sorted_unique, _unique_codes

    rng = np.random.default_rng(3)
    codes = rng.integers(0, 50, 2000) * (bound // 50)
    uniques, first, inverse = _unique_codes(codes, bound)
    want = np.unique(codes, return_index=True, return_inverse=True)
    for got, expect in zip((uniques, first, inverse), want, strict=True):
        np.testing.assert_array_equal(got, np.asarray(expect).reshape(-1))
    np.testing.assert_array_equal(_sorted_unique(codes), want[0])
    assert len(_unique_codes(codes[:0], bound)[0]) == 0 and len(_sorted_unique(codes[:0])) == 0


def test_row_flags_codes_and_texts():
    from ctc_qpcr.normalise import _row_flags

    sample_flags = np.array(["reference_missing:B", "", None, "x;"], dtype=object)
    multi = np.array([1, 0, 0, 0, 0, 0, 1, 1], bool)
    missing = np.array([0, 1, 0, 0, 1, 0, 0, 1], bool)
    keep = np.array([1, 1, 1, 1, 1, 0, 1, 1], bool)
    codes, texts = _row_flags(sample_flags, 2, multi, missing, keep)
    assert list(texts) == sorted(set(texts))  # the categories pd.Categorical gives: sorted, distinct
    assert list(texts[codes]) == [
        "multi_plate_mean;reference_missing:B",
        "cq_missing;reference_missing:B",
        "",
        "",
        "cq_missing",  # a sample without flags (None); its second row is not kept
        "multi_plate_mean;x",
        "cq_missing;multi_plate_mean;x",
    ]
    codes, texts = _row_flags(np.array(["x;", "x"], dtype=object), 1, [0, 0], [0, 0], [True, True])
    assert list(texts) == ["x"] and list(codes) == [0, 0]  # two sample flags, one text


def test_sliced_writer_writes_the_bytes_of_write_tsv(tmp_path):
    """The adapter's writer (a few rows at a time) gives write_tsv's bytes: categorical and
    formula-like ids, NaN, a slice size that does and one that does not divide the rows, no rows."""
    from ctc_qpcr.normalise_io import write_sliced
    from ctc_qpcr.tables import write_tsv

    cells, samples, assays = make_study()
    cells = cells.replace({"sample": {"P0": "=HYPERLINK(1)"}})
    tables = []
    normalise_study(cells, samples, assays, on_strategy=lambda s, table, wide: tables.append((table, wide)))
    table, wide = tables[0]
    table = table.copy()
    table.loc[[3, 40], "ddcq"] = np.nan  # written as empty cells
    for name, df in (("long", table), ("matrix", wide.reset_index()), ("empty", table.iloc[:0])):
        write_tsv(df, tmp_path / f"{name}.tsv")
        want = (tmp_path / f"{name}.tsv").read_bytes()
        for rows in (7, 16, 10**6):
            write_sliced(df, tmp_path / f"{name}.{rows}.tsv", rows=rows)
            assert (tmp_path / f"{name}.{rows}.tsv").read_bytes() == want, (name, rows)
    assert b"'=HYPERLINK(1)" in (tmp_path / "long.7.tsv").read_bytes()


def test_read_cells_reads_ids_as_categoricals(tmp_path):
    from ctc_qpcr.normalise_io import read_cells
    from ctc_qpcr.tables import write_parquet

    cells, _, _ = make_study()
    write_parquet(cells.assign(extra=1.0), tmp_path / "cq.parquet")
    got = read_cells(tmp_path / "cq.parquet")
    assert "extra" not in got.columns and isinstance(got["sample"].dtype, pd.CategoricalDtype)
    pd.testing.assert_frame_equal(
        got.astype({c: object for c in got.columns if isinstance(got[c].dtype, pd.CategoricalDtype)}),
        cells[list(got.columns)].reset_index(drop=True),
        check_dtype=False,
    )


def test_write_strategy_writes_the_bytes_of_write_tsv(tmp_path):
    """Each strategy's long table and matrix, with the ΔCq text made once for both and the Cq
    text kept from one strategy to the next, give write_tsv's bytes; also when the long
    table's ΔCq are not the matrix's (then formatted on their own) or its Cq change."""
    from ctc_qpcr.normalise_io import write_strategy
    from ctc_qpcr.tables import write_tsv

    cells, samples, assays = make_study()
    cells = cells.replace({"sample": {"P0": "-P0"}})  # a formula-like id
    tables = []
    normalise_study(cells, samples, assays, on_strategy=lambda s, table, wide: tables.append((table, wide)))
    changed = tables[0][0].copy()
    changed.loc[[2, 9], "dcq"] += 1.0  # not the matrix's values
    changed.loc[[4], "cq"] = np.nan  # not the Cq the previous strategy wrote
    tables.append((changed, tables[0][1]))
    shared, texts = {}, []
    for i, (table, wide) in enumerate(tables):
        write_strategy(table, wide, (tmp_path / f"{i}.tsv", tmp_path / f"{i}.matrix.tsv"), shared)
        texts.append(shared["cq"][1])
        write_tsv(table, tmp_path / "long.tsv")
        write_tsv(wide.reset_index(), tmp_path / "matrix.tsv")
        assert (tmp_path / f"{i}.tsv").read_bytes() == (tmp_path / "long.tsv").read_bytes(), i
        assert (tmp_path / f"{i}.matrix.tsv").read_bytes() == (tmp_path / "matrix.tsv").read_bytes(), i
    assert all(text is texts[0] for text in texts[1:-1]) and texts[-1] is not texts[0]
    assert b"'-P0" in (tmp_path / "0.tsv").read_bytes()


def test_rows_by_genes_groups_samples_as_a_loop_over_samples_does():
    """log2_nrq's samples sharing normaliser genes, grouped without a loop per sample: the same
    groups, rows ascending, as collecting them sample by sample (random study, missing samples)."""
    from ctc_qpcr.normalise import _rows_by_genes

    rng = np.random.default_rng(7)
    samples = pd.Index([f"S{i}" for i in range(300)])
    choices = [["ACTB", "PPIA"], ["B2M"], [], ["ACTB"]]
    used = {s: choices[k] for s, k in zip(samples, rng.integers(0, 5, len(samples)), strict=True) if k < 4}
    want: dict[tuple, list[int]] = {}
    for row, s in enumerate(samples):
        want.setdefault(tuple(used.get(s, [])), []).append(row)
    got = {genes: rows.tolist() for genes, rows in _rows_by_genes(samples, used)}
    assert got == want and list(got) == list(want)  # first-appearance order too
    assert list(_rows_by_genes(pd.Index([]), {})) == []


def test_stripped_str_is_text_stripped_on_both_paths():
    """stripped_str = astype(str).str.strip(): text with none missing (factorised as it is), and
    text with missing values, numbers or a categorical (converted to text first)."""
    from ctc_qpcr.normalise_cells import stripped_str

    for values in (
        pd.Series([" T0", "T1 ", "T0", " T0", ""], dtype=object),
        pd.Series([" T0", None, np.nan, "T1"], dtype=object),
        pd.Series([1, 1.0, " 1", 2.5], dtype=object),
        pd.Series(pd.Categorical([" a", "b ", None, " a"])),
        pd.Series([], dtype=object),
    ):
        expected = values.astype(str).str.strip()
        assert stripped_str(values).tolist() == expected.tolist()
        assert stripped_str(values).index.equals(values.index)
