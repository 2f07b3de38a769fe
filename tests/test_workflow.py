"""The workflow as a whole: format, lint, dry run, and a real run of the example study.

The example run (session-scoped, in a scratch copy of the repository) is shared by the
checks below: every output exists, the well audit reconciles, the planted truth of the
simulated study is recovered, and a second run gives byte-identical results.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workflow_helpers import REPO, make_workdir, snakemake, snakemake_bin

pytestmark = pytest.mark.workflow


def test_snakefmt_clean():
    proc = subprocess.run(
        [str(Path(snakemake_bin()).with_name("snakefmt")), "--check", "Snakefile", "workflow"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_lint_clean(tmp_path):
    work = make_workdir(tmp_path / "w")
    proc = snakemake(work, "--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations" in proc.stdout + proc.stderr


def test_dry_run_lists_one_chip_level_job_per_batch(tmp_path):
    work = make_workdir(tmp_path / "w")
    proc = snakemake(work, "-n", "--cores", "2")
    plates = pd.read_csv(work / "resources/example/plates.tsv", sep="\t")
    out = proc.stdout
    for batch in plates["batch"].unique():
        # one job reads and preprocesses the batch; no separate read job
        assert re.search(rf"^preprocess_batch_{batch}\s+1$", out, re.M), out
    assert "read_exports" not in out


def test_package_bytecode_is_compiled_once_when_python_writes_none(tmp_path):
    """With PYTHONDONTWRITEBYTECODE set no job keeps ctc_qpcr's bytecode; the workflow compiles it
    at start-up, so the jobs read it instead of compiling every module again."""
    import importlib.util
    import os

    work = make_workdir(tmp_path / "w")
    package = work / "scripts" / "ctc_qpcr"
    modules = sorted(package.rglob("*.py"))
    assert not list(package.rglob("*.pyc"))
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(
        [snakemake_bin(), "-n", "--cores", "2"], cwd=work, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    missing = [m.name for m in modules if not Path(importlib.util.cache_from_source(str(m))).exists()]
    assert not missing, missing


def test_every_output_exists(example_run):
    proc = snakemake(example_run, "-n", "--cores", "2")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_normalise_notes_are_kept_whole_and_logged(example_run):
    from ctc_qpcr.adapter import logged_note

    notes = pd.read_csv(example_run / "results/normalised/notes.tsv", sep="\t", keep_default_na=False)
    log = (example_run / "logs/normalise.log").read_text(encoding="utf-8").splitlines()
    assert len(notes) > 0
    for note in notes["note"]:
        assert f"INFO: {logged_note(note, 'results/normalised/notes.tsv')}" in log, note


def test_well_audit_reconciles(example_run):
    audit = pd.read_csv(example_run / "results/qc/wells.tsv", sep="\t", keep_default_na=False)
    summary = pd.read_csv(example_run / "results/qc/wells_summary.tsv", sep="\t")
    n_read = 0
    for plate in pd.read_csv(example_run / "resources/example/plates.tsv", sep="\t")["plate"]:
        per_plate = pd.read_parquet(example_run / f"results/cq/{plate}.parquet")
        n_read += len(per_plate)
    assert len(audit) == n_read
    assert (summary["read"] == summary["kept"] + summary["excluded"]).all()
    assert int(summary["read"].sum()) == n_read
    excluded = audit[audit["fate"] == "excluded"]
    assert (excluded["reason"] != "").all()
    assert set(audit["fate"]) <= {"kept", "excluded"}


def _truth_cells(work):
    cells = pd.read_parquet(work / "results/preprocessed/cq.parquet")
    truth = pd.read_csv(work / "resources/example/truth/wells_truth.tsv", sep="\t")
    per_cell = (
        truth.groupby(["plate", "sample", "assay"])
        .agg(rna_cq=("rna_cq", "mean"), true_gdna_fraction=("gdna_fraction", "max"))
        .reset_index()
    )
    merged = cells.merge(per_cell, on=["plate", "sample", "assay"], validate="one_to_one")
    usable = (
        merged["kind"].isin(["patient", "healthy"])
        & merged["role"].isin(["target", "reference"])
        & merged["detected"]
        & merged["cq"].notna()
        & merged["rna_cq"].notna()
        & (merged["true_gdna_fraction"] < 0.6)
    )
    return cells, merged[usable]


def test_corrected_cq_recovers_planted_rna_cq(example_run):
    """Issue 3: corrected Cq vs planted RNA-only Cq (cells < 60 % gDNA): RMSE ≤ 0.15 after one shift."""
    _, sel = _truth_cells(example_run)
    assert len(sel) > 1000
    diff = sel["cq"] - sel["rna_cq"]
    rmse = float(np.sqrt(((diff - diff.mean()) ** 2).mean()))
    assert rmse <= 0.15, rmse


def test_planted_chip_offsets_are_removed(example_run):
    """Each chip's residual mean lies within 3 standard errors of the IPC's own estimate.

    The IPC's SE uses the planted IPC replicate SD (simulate.IPC_SD = 0.05) when the chip's own SD of
    its 3 IPC wells is smaller: an SD from 3 values can be far too small (chip02 of the example: 0.011
    against a planted 0.05), which would make the check fail on the IPC's own sampling error."""
    from ctc_qpcr.simulate import IPC_SD

    _, sel = _truth_cells(example_run)
    resid = sel["cq"] - sel["rna_cq"]
    resid = resid - resid.mean()
    calibration = pd.read_csv(example_run / "results/qc/plate_calibration.tsv", sep="\t").set_index("plate")
    for plate, r in resid.groupby(sel["plate"]):
        ipc_sd = max(float(calibration.loc[plate, "ipc_sd"]), IPC_SD)
        ipc_se = ipc_sd / np.sqrt(calibration.loc[plate, "n"])
        se = float(np.sqrt(ipc_se**2 + r.var() / len(r)))
        assert abs(r.mean()) <= 3 * se, (plate, r.mean(), se)


def test_every_grade_f_cell_is_flagged_and_has_no_value(example_run):
    cells, _ = _truth_cells(example_run)
    grade_f = cells[cells["vp_grade"] == "F"]
    assert len(grade_f) > 0
    assert grade_f["flags"].str.contains("HIGHDNA").all()
    # a cell is graded by its worst replicate: it keeps a value only from replicates that are not F
    all_f = grade_f[grade_f["n_replicates"] == 0]
    assert all_f["cq"].isna().all()
    assert (grade_f["cq"].notna() <= (grade_f["n_replicates"] >= 1)).all()
    audit = pd.read_csv(example_run / "results/qc/wells.tsv", sep="\t", keep_default_na=False)
    assert (audit["reason"].str.startswith("HIGHDNA")).sum() >= len(grade_f)


def test_report_builds_with_every_stage(example_run, tmp_path):
    out = tmp_path / "report.html"
    proc = snakemake(example_run, "--report", str(out))
    text = out.read_text(encoding="utf-8", errors="replace")
    assert out.stat().st_size > 100_000
    assert "ERROR/" not in proc.stderr, proc.stderr[-2000:]
    for caption_word in ("well audit", "geNorm", "Volcano", "ROC", "Kaplan"):
        assert caption_word in text, caption_word


def test_report_zip_carries_summaries_layouts_and_one_volcano_per_site(example_run, tmp_path):
    """What the report carries at scale: per-plate/per-sample summaries instead of the
    full tables, the capped layout figures in rank order, one volcano per site."""
    import zipfile

    out = tmp_path / "report.zip"
    snakemake(example_run, "--report", str(out))
    names = {Path(n).name for n in zipfile.ZipFile(out).namelist()}
    assert {"cq_plate_summary.tsv", "sample_calls.tsv", "wells_summary.tsv", "layout_index.tsv"} <= names
    assert not {"cq.tsv", "calls.tsv", "wells.tsv"} & names
    index = pd.read_csv(example_run / "results/qc/layout_index.tsv", sep="\t")
    shown = sorted(n for n in names if n.endswith(".svg") and n[:4].isdigit())
    assert shown == [
        f"{r:04d}_{p}.svg" for r, p in zip(index["rank"], index["plate"], strict=True) if r <= 24
    ]
    sites = sorted(p.name for p in (example_run / "results/differential/plots/sites").glob("*.volcano.svg"))
    assert sites == ["bone.volcano.svg", "brain.volcano.svg", "liver.volcano.svg", "lung.volcano.svg"]
    assert set(sites) <= names


def test_run_record_lists_versions_config_and_input_hashes(example_run):
    import json

    record = json.loads((example_run / "results/run_record.json").read_text())
    assert record["packages"]["snakemake"].startswith("9.")
    assert record["config"]["lod"] == 35
    plates = pd.read_csv(example_run / "resources/example/plates.tsv", sep="\t")
    for path in plates["path"]:
        assert len(record["inputs"][path]) == 64


def _job_record(workdir: Path, output: str) -> dict:
    """Snakemake's metadata record of one output (.snakemake/metadata, file named by base64)."""
    import base64
    import json

    for path in (workdir / ".snakemake/metadata").iterdir():
        if base64.b64decode(path.name + "=" * (-len(path.name) % 4)).decode() == output:
            return json.loads(path.read_text())
    raise AssertionError(f"no metadata record for {output}")


def test_batch_jobs_checksum_the_sheets_not_the_chip_exports(example_run):
    """profiles/default: input checksums only up to 256 KiB (every output of a job re-hashes
    every input), so the sheets are protected against a touch without change, the 0.3 MB
    chip exports are not hashed; the Slurm profile sets the same limit."""
    import yaml

    profiles = [
        yaml.safe_load((REPO / f"profiles/{name}/profile.yaml").read_text()) for name in ("default", "slurm")
    ]
    assert profiles[0]["max-checksum-file-size"] == profiles[1]["max-checksum-file-size"] == 262144
    plates = pd.read_csv(example_run / "resources/example/plates.tsv", sep="\t")
    first = plates.iloc[0]
    assert (example_run / first["path"]).stat().st_size > 262144
    checksums = _job_record(example_run, f"results/cq/{first['plate']}.parquet")["input_checksums"]
    assert {"resources/example/samples.tsv", "resources/example/assays.tsv"} <= set(checksums)
    assert not [path for path in checksums if path in set(plates["path"])]


def test_planted_liver_signature_is_classified(example_run):
    """Issue 6: the planted liver signature gives a nested-CV AUC ≥ 0.8 with permutation p < 0.01."""
    metrics = pd.read_csv(example_run / "results/classifier/metrics.tsv", sep="\t")
    liver = metrics[(metrics["site"] == "liver") & (metrics["estimator"] == "elasticnet")].iloc[0]
    assert liver["auc"] >= 0.8, liver.to_dict()
    assert liver["permutation_p"] < 0.01, liver.to_dict()
    assert liver["n_pos"] + liver["n_neg"] == 45


def test_shuffled_site_labels_give_chance_auc(example_run):
    """Issue 6: the same study with shuffled site labels: AUC in [0.35, 0.65] and p > 0.05."""
    from ctc_qpcr import sheets
    from ctc_qpcr.classifier import classifier_options, run_classifier

    matrix = pd.read_csv(example_run / "results/normalised/reference.matrix.tsv", sep="\t")
    samples = sheets.load_samples(example_run / "resources/example/samples.tsv")
    t0 = (samples["kind"] == "patient") & (samples["timepoint"] == "T0")
    rng = np.random.default_rng(7)
    samples.loc[t0, "sites"] = rng.permutation(samples.loc[t0, "sites"].to_numpy())
    options = classifier_options({"n_repeats": 10, "n_permutations": 200})
    result = run_classifier(matrix, samples, options, strategy="reference", n_jobs=2)
    liver = result["metrics"].query("site == 'liver' and estimator == 'elasticnet'").iloc[0]
    assert 0.35 <= liver["auc"] <= 0.65, liver.to_dict()
    assert liver["permutation_p"] > 0.05, liver.to_dict()


def test_planted_hazard_ratio_is_recovered(example_run):
    """Issue 7: the planted HR ≈ 2 for ≥ 5 CTC/7.5 ml at baseline lies in the estimated 95 % CI (PFS)."""
    cox = pd.read_csv(example_run / "results/outcome/cox.tsv", sep="\t")
    row = cox[
        (cox["endpoint"] == "pfs")
        & cox["model"].str.startswith("univariate")
        & cox["model"].str.contains("baseline")
        & cox["term"].str.contains(">=5")
    ]
    assert len(row) >= 1, cox[["model", "endpoint", "term"]].to_string()
    row = row.iloc[0]
    assert row["ci_low"] <= 2.0 <= row["ci_high"], row.to_dict()
    assert row["hr"] > 1.3


PLANTED = {
    "response": {"ABCC1", "TWIST1", "ALDH1A3", "BCL2"},
    "liver": {"FLT1", "KRT19", "EGFR", "MET", "ALDH1A1", "CD44", "PLAU", "CTSD", "KIT", "MKI67"},
}


def test_planted_differential_genes_are_found(example_run):
    """Issue 16's target: every planted gene at q < 0.1 (default strategy), false-discovery
    proportion ≤ 0.2 (the design's power per gene is ≥ 0.95: docs/methods.md §15)."""
    truth = pd.read_csv(example_run / "resources/example/truth/de_truth.tsv", sep="\t")
    assert (
        set(truth.loc[(truth["comparison"] == "nonresponder_vs_responder") & (truth["log2fc"] != 0), "gene"])
        == PLANTED["response"]
    )
    assert (
        set(truth.loc[(truth["comparison"] == "liver_vs_no_liver") & (truth["log2fc"] != 0), "gene"])
        == PLANTED["liver"]
    )
    response = pd.read_csv(example_run / "results/differential/response.tsv", sep="\t")
    sites = pd.read_csv(example_run / "results/differential/sites.tsv", sep="\t")
    found_r = set(response.query("strategy == 'reference' and q < 0.1")["gene"])
    found_l = set(sites.query("strategy == 'reference' and site == 'liver' and q < 0.1")["gene"])
    true_pos = len(found_r & PLANTED["response"]) + len(found_l & PLANTED["liver"])
    false_pos = len(found_r - PLANTED["response"]) + len(found_l - PLANTED["liver"])
    assert found_r >= PLANTED["response"] and found_l >= PLANTED["liver"], (sorted(found_r), sorted(found_l))
    assert true_pos == 14
    assert false_pos / max(true_pos + false_pos, 1) <= 0.2, (sorted(found_r), sorted(found_l))


NEVER_EXPRESSED = {"NANOG", "POU5F1"}


def test_never_expressed_genes_are_called_in_no_table(example_run):
    """Issue 16: the example's never-expressed genes (a material that differs by response and falls over
    time in responders) reach q < 0.1 in no differential table and no column, and get no fold change."""
    truth = pd.read_csv(example_run / "resources/example/truth/expression_truth.tsv", sep="\t")
    assert set(truth.loc[truth["expression"] == "never", "gene"]) == NEVER_EXPRESSED
    for name in ("response", "sites", "timepoints"):
        table = pd.read_csv(example_run / f"results/differential/{name}.tsv", sep="\t")
        never = table[table["gene"].isin(NEVER_EXPRESSED)]
        assert len(never) > 0
        for col in [c for c in table.columns if c == "q" or c.startswith("q_")]:
            assert not (never[col] < 0.1).any(), (name, col)
        assert never["log2fc"].isna().all() and never["p"].isna().all(), name
        assert (never["reason"].fillna("") != "").all(), name


def test_failed_reference_samples_get_the_planted_dcq(example_run):
    """Issue 16: samples whose PPIA failed get the ΔCq of the planted truth like every other sample
    (same per-gene offset: the study's normaliser need not be the mean of all four references)."""
    truth = pd.read_csv(example_run / "resources/example/truth/dcq_truth.tsv", sep="\t")
    samples_truth = pd.read_csv(example_run / "resources/example/truth/samples_truth.tsv", sep="\t")
    failed = set(samples_truth.loc[samples_truth["failed_reference"].fillna("") == "PPIA", "sample"])
    norm = pd.read_csv(example_run / "results/normalised/reference.tsv", sep="\t")
    chosen = pd.read_csv(example_run / "results/reference_genes/chosen.tsv", sep="\t").set_index("strategy")
    m = norm[norm["detected"]].merge(truth[truth["state"] == "on"], on=["sample", "gene"])
    m["err"] = m["dcq"] - m["planted_dcq"]
    m["err"] -= m.groupby("gene")["err"].transform("median")
    # cells with a real RNA signal, not dominated by gDNA: the planted value is recoverable
    m = m[m["role"] == "target"]
    bad, good = m[m["sample"].isin(failed)], m[~m["sample"].isin(failed)]
    assert len(failed) >= 10 and len(bad) >= 100
    assert abs(bad["err"].median()) <= 0.15, (bad["err"].median(), chosen.loc["reference", "genes"])
    assert bad["err"].abs().median() <= good["err"].abs().median() + 0.15
    if "PPIA" in chosen.loc["reference", "genes"].split(";"):
        assert bad["flags"].str.contains("reference_missing:PPIA").all()


def test_shuffled_labels_find_almost_nothing(example_run):
    """Issue 5: with response and site labels shuffled between patients, ≤ 10 % of genes at q < 0.1."""
    from ctc_qpcr import sheets
    from ctc_qpcr.differential import run_differential

    samples = sheets.load_samples(example_run / "resources/example/samples.tsv")
    normalised = {"reference": pd.read_csv(example_run / "results/normalised/reference.tsv", sep="\t")}
    patients = samples["kind"] == "patient"
    first = samples[patients].drop_duplicates("patient").set_index("patient")
    rng = np.random.default_rng(11)
    for column in ("response", "sites"):
        shuffled = dict(zip(first.index, rng.permutation(first[column].to_numpy()), strict=True))
        samples.loc[patients, column] = samples.loc[patients, "patient"].map(shuffled)
    import yaml

    comparisons = yaml.safe_load((example_run / "config/config.yaml").read_text())["differential"][
        "comparisons"
    ]
    results = run_differential(
        normalised, samples, [c for c in comparisons if c["name"] in ("response", "sites")], "reference"
    )
    for name, (table, _) in results.items():
        assert (table["q"] < 0.1).mean() <= 0.10, name
