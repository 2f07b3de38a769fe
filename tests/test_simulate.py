"""The example-study simulator: layout of the exports, design counts, planted truth, determinism."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ctc_qpcr import simulate as sim

PREFIX = "resources/example"


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _read_sheet(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def _read_chip(path: Path) -> pd.DataFrame:
    text = path.read_bytes().decode("ascii")
    lines = text.split("\r\n")
    rows = list(csv.reader(io.StringIO("\n".join(lines[12:]))))
    cols = [
        "well",
        "sample",
        "sample_type",
        "rconc",
        "assay",
        "assay_type",
        "value",
        "quality",
        "call",
        "threshold",
    ]
    return pd.DataFrame([r for r in rows if r], columns=cols)


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("study_a")
    summary = sim.simulate_study(out, seed=2016, path_prefix=PREFIX)
    return out, summary


def test_rerun_is_byte_identical(study, tmp_path):
    out, _ = study
    sim.simulate_study(tmp_path, seed=2016, path_prefix=PREFIX)
    a, b = _files(out), _files(tmp_path)
    assert sorted(a) == sorted(b)
    assert [k for k in a if a[k] != b[k]] == []
    other = tmp_path / "other"
    sim.simulate_study(other, seed=7, path_prefix=PREFIX)
    assert (other / "chips" / "chip01.csv").read_bytes() != a["chips/chip01.csv"]


def test_design_counts(study):
    out, summary = study
    s = _read_sheet(out / "samples.tsv")
    pat = s[s["kind"] == "patient"]
    assert pat["patient"].nunique() == 45
    assert len(pat) == 135 - round(0.15 * 135)
    assert set(pat.loc[pat["timepoint"] == "T0", "patient"]) == set(pat["patient"])  # baseline never missing
    assert set(pat.groupby("patient").size()) == {1, 2, 3}  # patients with 1-3 draws
    assert (pat.groupby("patient").size() == 1).sum() >= 3
    assert (s["kind"] == "healthy").sum() == 20
    assert set(s["kind"]) == {"patient", "healthy", "gdna", "ipc", "ntc"}
    assert list(s.columns) == sim.SAMPLE_SHEET_COLUMNS
    assert s["sample"].is_unique
    # patients: sites multi-label from the four sites, liver in 20 of 45, responders balanced
    per_pat = pat.drop_duplicates("patient")
    sites = per_pat["sites"].str.split(";")
    assert sites.map(len).between(1, 4).all()
    assert set().union(*sites) <= {"liver", "bone", "lung", "brain"}
    assert sites.map(lambda x: "liver" in x).sum() == 20
    assert set(per_pat["response"]) == {"responder", "non-responder"}
    assert set(per_pat["subtype"]) <= {"HR+/HER2-", "HER2+", "TNBC"}
    # assays: 46 distinct targets + 4 references + VPA + IPC
    a = _read_sheet(out / "assays.tsv")
    assert list(a.columns) == ["assay", "gene", "role", "efficiency", "lod"]
    assert a["role"].value_counts().to_dict() == {"target": 46, "reference": 4, "validprime": 1, "ipc": 1}
    assert a["assay"].is_unique and a["gene"].is_unique
    assert {"ABCC1", "FLT1", "KRT19", "ESR1", "SCGB2A2", "EPCAM", "MUC1"} <= set(a["gene"])
    eff = a.loc[a["role"] == "target", "efficiency"].astype(float)
    assert eff.between(1.9, 2.0).all()
    # plates: chips computed from the sample count, batches of two
    p = _read_sheet(out / "plates.tsv")
    n_bio = len(pat) + 20
    pairs = (96 - (len(sim.GDNA_COPIES) + 3 + 1)) // 2
    assert len(p) == math.ceil(n_bio / pairs) == 4 == summary["n_chips"]
    assert p["batch"].tolist() == ["B1", "B1", "B2", "B2"]
    assert (p["format"] == "biomark").all()
    assert p["path"].tolist() == [f"{PREFIX}/chips/chip0{i}.csv" for i in range(1, 5)]


def test_every_chip_has_controls_and_duplicates(study):
    out, _ = study
    s = _read_sheet(out / "samples.tsv").set_index("sample")
    n_assays = len(_read_sheet(out / "assays.tsv"))
    seen: dict[str, int] = {}
    chips = sorted((out / "chips").glob("*.csv")) + sorted((out / "new_batch" / "chips").glob("*.csv"))
    assert len(chips) == 5
    new = _read_sheet(out / "new_batch" / "samples.tsv").set_index("sample")
    for path in chips:
        df = _read_chip(path)
        assert df["well"].is_unique
        inlets = df.drop_duplicates("well").assign(inlet=df["well"].str[:3]).drop_duplicates("inlet")
        per_inlet = df.groupby(df["well"].str[:3]).size()
        assert (per_inlet == n_assays).all()  # every used inlet x every assay
        assert len(per_inlet) <= 96
        names = inlets["sample"]
        gd = [n for n in names.unique() if n.startswith("gDNA_")]
        assert len(gd) >= 4
        assert all(s.loc[n, "kind"] == "gdna" for n in gd)
        assert len(df[(df["sample"] == "IPC") & (df["assay"] == "IPC")]) == 3
        assert (names == "NTC").sum() == 1
        ipc = df[df["sample"] == "IPC"]
        assert (ipc.loc[ipc["assay"] != "IPC", "value"] == "999").all()  # only the IPC assay amplifies it
        assert (df.loc[(df["assay"] == "IPC") & (df["sample"] != "IPC"), "value"] == "999").all()
        bio = names[~names.isin(["IPC", "NTC"] + gd)]
        counts = bio.value_counts()
        assert (counts == 2).all()  # technical duplicates on the same chip
        sheet = new if "new_batch" in str(path) else s
        assert set(bio) <= set(sheet.index)
        for n in counts.index:
            seen[n] = seen.get(n, 0) + 1
    study_bio = s.index[s["kind"].isin(["patient", "healthy"])]
    assert all(seen.get(n) == 1 for n in study_bio)  # each sample on exactly one chip
    assert len(new[new["kind"] == "patient"]) == 10
    assert (new.loc[new["kind"] == "patient", "timepoint"] == "T0").all()
    assert (new.loc[new["kind"] == "patient", ["response", "sites"]] == "").all().all()


def test_planted_offsets_recoverable_from_ipc(study):
    out, _ = study
    truth = pd.read_csv(out / "truth" / "chip_offsets.tsv", sep="\t").set_index("plate")
    plates = _read_sheet(out / "plates.tsv")
    ipc = {}
    for plate in plates["plate"]:
        df = _read_chip(out / "chips" / f"{plate}.csv")
        sel = df[(df["sample"] == "IPC") & (df["assay"] == "IPC") & (df["call"] == "Pass")]
        assert len(sel) == 3
        ipc[plate] = sel["value"].astype(float).mean()
    est = pd.Series(ipc) - np.mean(list(ipc.values()))
    planted = truth.loc[est.index, "offset"] - truth.loc[est.index, "offset"].mean()
    assert np.allclose(est, planted, atol=0.1)
    assert np.allclose(truth.loc[est.index, "offset_centered_study"], planted)
    assert truth["offset"].between(-0.4, 0.5).all()


def test_header_layout_matches_real_biomark_export(study, public_data):
    out, _ = study
    real = (public_data / "htqpcr" / "BioMark_sample.csv").read_bytes()
    ours = (out / "chips" / "chip01.csv").read_bytes()
    real_lines, our_lines = real.split(b"\r\n"), ours.split(b"\r\n")
    assert real.endswith(b"\r\n") and ours.endswith(b"\r\n")
    assert b"\n" not in ours.replace(b"\r\n", b"") and b"\r" not in ours.replace(b"\r\n", b"")
    assert our_lines[0].split(b",")[0] == real_lines[0].split(b",")[0] == b"Chip Run Filename"
    assert our_lines[1:12] == real_lines[1:12]
    assert our_lines[7] == our_lines[8] == b""
    # data rows: same field count and value conventions as the real file
    rows = list(csv.reader(io.StringIO(ours.decode("ascii").replace("\r\n", "\n"))))[12:]
    real_rows = list(csv.reader(io.StringIO(real.decode("ascii").replace("\r\n", "\n"))))[12:]
    assert {len(r) for r in rows} == {len(r) for r in real_rows} == {10}
    for r in rows:
        assert len(r[0]) == 7 and r[0][0] == "S" and r[0][3:5] == "-A"
        assert r[5] == "Test" and r[8] in {"Pass", "Fail"}
        if r[6] == "999":
            assert r[7] == "0" and r[8] == "Fail"
        else:
            assert 0 < float(r[6]) <= sim.MAX_CYCLES
    fails = [r for r in rows if r[8] == "Fail" and r[6] != "999"]
    assert fails and all(float(r[7]) < 0.65 for r in fails)
    assert all(float(r[7]) >= 0.65 for r in rows if r[8] == "Pass")


def test_truth_matches_exports_and_model(study):
    out, summary = study
    wt = pd.read_csv(out / "truth" / "wells_truth.tsv", sep="\t", keep_default_na=False, na_values=[""])
    wt["event"] = wt["event"].fillna("")
    for plate in ["chip01", "chip05"]:
        sub = "new_batch/chips" if plate == "chip05" else "chips"
        df = _read_chip(out / sub / f"{plate}.csv")
        t = wt[wt["plate"] == plate].set_index("well").loc[df["well"]]
        val = df["value"].astype(float).to_numpy()
        amp = val != 999
        assert np.array_equal(amp, t["observed_cq"].notna().to_numpy())
        assert np.allclose(val[amp], t["observed_cq"].to_numpy()[amp], atol=1e-7)
        assert (df["call"].to_numpy() == t["call"].to_numpy()).all()
    ok = wt["observed_cq"].notna() & (wt["event"] == "")
    r = wt.loc[ok, "rna_cq"].to_numpy()
    g = wt.loc[ok, "gdna_cq"].to_numpy()
    mix = -np.log2(np.nan_to_num(np.exp2(-r)) + np.nan_to_num(np.exp2(-g)))
    model = mix + wt.loc[ok, "plate_offset"] + wt.loc[ok, "noise"]
    assert np.allclose(model, wt.loc[ok, "observed_cq"], atol=1e-6)
    assert abs(wt.loc[ok, "noise"].std() - sim.REPLICATE_SD) < 0.02
    # planted event rates
    assert 0.5 < summary["pct_wells_failed"] < 1.5
    assert summary["n_bad_replicate_pairs"] >= 5
    assert 0 < summary["pct_detected_grade_f"] < 50
    assert summary["pct_healthy_target_rna"] < summary["pct_patient_target_rna"]


def test_planted_gdna_and_de_truth(study):
    out, _ = study
    gd = pd.read_csv(out / "truth" / "gdna_dcq.tsv", sep="\t")
    tg = gd[gd["role"] == "target"]
    assert tg["dcq_gdna"].dropna().between(0, 3).all()
    assert (tg["sd"] > 0.3).sum() >= 3 and (tg["sd"] <= 0.3).sum() >= 30
    assert gd.loc[gd["role"] == "validprime", "dcq_gdna"].tolist() == [0.0]
    de = pd.read_csv(out / "truth" / "de_truth.tsv", sep="\t").set_index(["comparison", "gene"])["log2fc"]
    assert de[("nonresponder_vs_responder", "ABCC1")] == 2.0
    assert de[("nonresponder_vs_responder", "BCL2")] == -2.5
    liver = de.xs("liver_vs_no_liver")
    assert set(liver[liver != 0].index) == {
        "FLT1",
        "KRT19",
        "EGFR",
        "MET",
        "ALDH1A1",
        "CD44",
        "PLAU",
        "CTSD",
        "KIT",
        "MKI67",
    }
    assert (liver[liver != 0] == 2.0).all()
    # genes with a planted effect are commonly expressed (the example's power, methods §15)
    ex = pd.read_csv(out / "truth" / "expression_truth.tsv", sep="\t").set_index("gene")
    planted = de[de != 0].index.get_level_values("gene").unique()
    assert ex.loc[planted.difference(["ESR1", "PGR", "ERBB2"]), "p_detect"].between(0.6, 0.9).all()
    assert (de.xs("T1_vs_T0") == 0).all()
    # the planted effect is visible in the RNA-only truth (lower Cq = higher expression)
    wt = pd.read_csv(out / "truth" / "wells_truth.tsv", sep="\t")
    s = _read_sheet(out / "samples.tsv")
    pat = s[s["kind"] == "patient"].assign(liver=lambda d: d["sites"].str.contains("liver"))
    k = wt[wt["assay"] == "KIT"].merge(pat[["sample", "liver"]], on="sample")
    diff = k.groupby("liver")["rna_cq"].mean()
    assert 1.0 < diff[False] - diff[True] < 3.0
    # healthy donors: epithelial markers rarely carry RNA
    hd = wt[
        wt["sample"].isin(s.loc[s["kind"] == "healthy", "sample"])
        & wt["assay"].isin(["KRT19", "EPCAM", "SCGB2A2"])
    ]
    assert hd["rna_cq"].notna().mean() < 0.2


def test_bench_chips_full_and_deterministic(tmp_path):
    plates = sim.simulate_chips(2, tmp_path / "a", seed=5, path_prefix="bench")
    sim.simulate_chips(2, tmp_path / "b", seed=5, path_prefix="bench")
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert plates["batch"].tolist() == ["B1", "B1"]
    a = _read_sheet(tmp_path / "a" / "assays.tsv")
    assert len(a) == 96 and a["assay"].is_unique
    assert "GENE47" in set(a["assay"]) and "GENE90" in set(a["assay"])
    for plate in plates["plate"]:
        df = _read_chip(tmp_path / "a" / "chips" / f"{plate}.csv")
        assert len(df) == 96 * 96 and df["well"].is_unique
        assert df["well"].str[:3].nunique() == 96 and df["well"].str[4:].nunique() == 96
        assert len(df[(df["sample"] == "IPC") & (df["assay"] == "IPC")]) == 3
        assert df.loc[df["sample"].str.startswith("gDNA_"), "sample"].nunique() >= 4
    big = sim.simulate_chips(25, tmp_path / "c", seed=1, assays_per_chip=8)
    assert big["batch"].value_counts().to_dict() == {"B1": 12, "B2": 12, "B3": 1}


def test_committed_example_is_current(study, repo):
    """resources/example must be exactly what the simulator writes with seed 2016."""
    committed = repo / PREFIX
    if not (committed / "plates.tsv").exists():
        pytest.skip("resources/example not generated")
    out, _ = study
    a, b = _files(out), _files(committed)
    assert sorted(a) == sorted(b)
    assert [k for k in a if a[k] != b[k]] == [], (
        "regenerate: python scripts/simulate_study.py --out resources/example --seed 2016"
    )
    assert sum(len(v) for v in b.values()) < 5 * 1024 * 1024


def test_real_parser_reads_the_exports(study):
    registry = pytest.importorskip("ctc_qpcr.parsers.registry")
    out, _ = study
    wells = registry.read_export(out / "chips" / "chip01.csv", fmt="auto", plate="chip01")
    raw = _read_chip(out / "chips" / "chip01.csv")
    assert len(wells) == len(raw)
    assert wells["quality_threshold"].dropna().unique().tolist() == [0.65]
    assert wells["cq"].isna().sum() == (raw["value"] == "999").sum()


def test_real_ctc_features_are_planted(study):
    """Issue 16 item 1: on/off genes, never/rarely expressed genes, a failed reference, material by time."""
    out, summary = study
    d = pd.read_csv(out / "truth" / "dcq_truth.tsv", sep="\t")
    e = pd.read_csv(out / "truth" / "expression_truth.tsv", sep="\t").set_index("gene")
    st = pd.read_csv(out / "truth" / "samples_truth.tsv", sep="\t")
    s = _read_sheet(out / "samples.tsv")
    pat = set(s.loc[s["kind"] == "patient", "sample"])
    # never expressed: no RNA in any sample; rarely: a few samples
    assert set(e.index[e["expression"] == "never"]) == set(sim.NEVER_EXPRESSED)
    assert d.loc[d["gene"].isin(sim.NEVER_EXPRESSED), "state"].eq("absent").all()
    rare = d[d["gene"].isin(sim.RARELY_EXPRESSED) & d["sample"].isin(pat)]
    assert 0 < rare["state"].eq("on").mean() < 0.15
    # off: 0-15 % of the expressing patient samples per gene, 8-14 cycles late, some still detected
    tg = d[(d["role"] == "target") & d["sample"].isin(pat) & d["state"].isin(["on", "off"])]
    share = tg.groupby("gene")["state"].apply(lambda x: (x == "off").mean())
    assert share.max() <= 0.30 and (share > 0).sum() >= 30
    assert e.loc[e["role"] == "target", "off_rate"].between(0, 0.15).all()
    off = tg[tg["state"] == "off"]
    assert (off["rna_cq"] <= sim.LOD).sum() == summary["n_off_detected"] >= 20
    assert (off["rna_cq"] > sim.LOD).sum() >= 20
    # failed reference: ~10 % of patient/healthy samples, its planned Cq kept in the truth
    bio = st[st["kind"].isin(["patient", "healthy"]) & ~st["in_new_batch"]]
    failed = bio["failed_reference"].fillna("") == sim.FAILED_REFERENCE
    assert 0.05 <= failed.mean() <= 0.15
    ref = d[(d["gene"] == sim.FAILED_REFERENCE) & d["sample"].isin(bio.loc[failed, "sample"])]
    assert ref["state"].eq("failed").all() and ref["rna_cq"].notna().all()
    wt = pd.read_csv(out / "truth" / "wells_truth.tsv", sep="\t")
    w = wt[(wt["assay"] == sim.FAILED_REFERENCE) & wt["sample"].isin(ref["sample"])]
    assert w["rna_cq"].isna().all()
    # planted dCq = rna_cq - mean of the four planned reference Cq
    one = d[d["sample"] == ref["sample"].iloc[0]].set_index("gene")
    norm = one.loc[list(sim.REFERENCE_GENES), "rna_cq"].mean()
    assert np.allclose(one["planted_dcq"].dropna(), (one["rna_cq"] - norm).dropna())
    # material: non-responders more, responders falling over time
    m = st.merge(s[["sample", "response"]], on="sample")
    m = m[m["kind"] == "patient"].groupby(["response", "timepoint"])["material"].mean()
    assert m[("non-responder", "T0")] - m[("responder", "T0")] > 0.4
    assert m[("responder", "T0")] > m[("responder", "T1")] > m[("responder", "T2")]
