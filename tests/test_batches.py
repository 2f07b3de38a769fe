"""Batches: which jobs a change re-runs, proven with `snakemake -n` job counts on the finished example."""

from __future__ import annotations

import re
import shutil

import pandas as pd
import pytest
import yaml

from workflow_helpers import snakemake

pytestmark = pytest.mark.workflow

STUDY_LEVEL = {"merge_batches", "normalise", "differential", "positivity"}


def job_counts(stdout: str) -> dict[str, int]:
    """Parse the 'Job stats' table of a dry run: {rule: count}."""
    counts = {}
    table = stdout.split("Job stats:")[-1] if "Job stats:" in stdout else ""
    for line in table.splitlines():
        m = re.match(r"^(\S+)\s+(\d+)$", line.strip())
        if m and m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


@pytest.fixture
def finished(example_run, tmp_path):
    """A private copy of the finished example run (so edits don't leak between tests)."""
    work = tmp_path / "w"
    shutil.copytree(example_run, work, symlinks=True)
    return work


def batches_of(work):
    plates = pd.read_csv(work / "resources/example/plates.tsv", sep="\t", dtype=str)
    return plates, list(dict.fromkeys(plates["batch"]))


def rerun_exports(work, new: pd.DataFrame) -> pd.DataFrame:
    """Give each added plate its own export: the same chambers re-exported under another run
    file name, so the copy is not byte-identical (two plates on one file, or on identical
    bytes, are refused at start-up)."""
    new = new.copy()
    for i, row in new.iterrows():
        source = work / row["path"]
        lines = source.read_bytes().split(b"\n", 1)
        dest = source.with_name(f"{row['plate']}.csv")
        dest.write_bytes(lines[0].replace(b".bml", b"_rerun.bml") + b"\n" + lines[1])
        new.loc[i, "path"] = str(dest.relative_to(work))
    return new


def test_per_batch_override_reruns_only_that_batch(finished):
    plates, batches = batches_of(finished)
    last = batches[-1]
    config = yaml.safe_load((finished / "config/config.yaml").read_text())
    config["batches"] = {last: {"lod": 33}}
    (finished / "config/config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    counts = job_counts(snakemake(finished, "-n", "--cores", "2").stdout)
    assert counts.get(f"preprocess_batch_{last}") == 1
    for other in batches[:-1]:
        assert f"preprocess_batch_{other}" not in counts
    assert counts.keys() >= STUDY_LEVEL


def test_adding_a_batch_runs_only_the_new_batch_and_study_level(finished):
    plates, batches = batches_of(finished)
    new = plates.iloc[[0]].copy()
    new["plate"] = "added_chip"
    new["batch"] = "B9"
    new = rerun_exports(finished, new)
    pd.concat([plates, new]).to_csv(finished / "resources/example/plates.tsv", sep="\t", index=False)
    counts = job_counts(snakemake(finished, "-n", "--cores", "2").stdout)
    assert counts.get("preprocess_batch_B9") == 1
    for old in batches:
        assert f"preprocess_batch_{old}" not in counts
    assert counts.keys() >= STUDY_LEVEL


def test_only_batch_switch_reruns_one_batch(finished):
    plates, batches = batches_of(finished)
    last = batches[-1]
    out = snakemake(
        finished,
        "-n",
        "--cores",
        "2",
        "--config",
        f"only_batch={last}",
        "--forcerun",
        f"preprocess_batch_{last}",
    ).stdout
    counts = job_counts(out)
    counts.pop("all", None)  # the target rule itself
    # one chip-level job reads and preprocesses the batch
    assert counts == {f"preprocess_batch_{last}": 1}


def test_ipc_reference_does_not_move_when_a_batch_is_added(finished):
    plates, batches = batches_of(finished)
    before = pd.read_csv(finished / f"results/batches/{batches[0]}/plate_calibration.tsv", sep="\t")
    new = plates[plates["batch"] == batches[-1]].copy()
    new["plate"] = new["plate"] + "_again"
    new["batch"] = "B9"
    new = rerun_exports(finished, new)
    pd.concat([plates, new]).to_csv(finished / "resources/example/plates.tsv", sep="\t", index=False)
    snakemake(finished, "--cores", "2", "results/batches/B9/plate_calibration.tsv")
    after = pd.read_csv(finished / f"results/batches/{batches[0]}/plate_calibration.tsv", sep="\t")
    pd.testing.assert_frame_equal(before, after)
    added = pd.read_csv(finished / "results/batches/B9/plate_calibration.tsv", sep="\t")
    original = pd.read_csv(finished / f"results/batches/{batches[-1]}/plate_calibration.tsv", sep="\t")
    # the same chips re-read in a new batch get the same offsets: the reference did not move
    assert added["offset"].round(9).tolist() == original["offset"].round(9).tolist()
