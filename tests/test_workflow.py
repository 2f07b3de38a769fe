"""The workflow as a whole: format, lint, dry run, and a real run of the example study.

The example run (session-scoped, in a scratch copy of the repository) is shared by the
checks below: every output exists, the well audit reconciles, the planted truth of the
simulated study is recovered, and a second run gives byte-identical results.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workflow_helpers import REPO, make_workdir, result_hashes, snakemake, snakemake_bin

pytestmark = pytest.mark.workflow


def test_snakefmt_clean():
    proc = subprocess.run(
        [str(Path(snakemake_bin()).with_name("snakefmt")), "--check", "Snakefile", "workflow"],
        cwd=REPO, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_lint_clean(tmp_path):
    work = make_workdir(tmp_path / "w")
    proc = snakemake(work, "--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations" in proc.stdout + proc.stderr


def test_dry_run_lists_one_read_job_per_batch(tmp_path):
    work = make_workdir(tmp_path / "w")
    proc = snakemake(work, "-n", "--cores", "2")
    plates = pd.read_csv(work / "resources/example/plates.tsv", sep="\t")
    out = proc.stdout
    for batch in plates["batch"].unique():
        assert f"read_exports_{batch}" in out
    assert "preprocess_batch" in out


def test_every_output_exists(example_run):
    proc = snakemake(example_run, "-n", "--cores", "2")
    assert "Nothing to be done" in proc.stdout + proc.stderr


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
