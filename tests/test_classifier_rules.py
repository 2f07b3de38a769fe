"""Declared inputs of the classifier rules are the files their jobs read (issue 14.6).

Dry runs on a scratch copy whose outputs all exist with one mtime: touching an input
must re-run exactly the jobs that read it.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from workflow_helpers import make_workdir, snakemake

pytestmark = pytest.mark.workflow

TARGETS = ("results/predict/probabilities.tsv", "results/classifier/plots/roc.svg")


def _planned_jobs(work: Path) -> set[str]:
    out = snakemake(work, "-n", "--cores", "1", *TARGETS).stdout
    if "Nothing to be done" in out:
        return set()
    table = out.split("Job stats:")[1].split("total")[0]
    return {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+\s*$", table, flags=re.M)}


@pytest.fixture(scope="module")
def up_to_date(tmp_path_factory) -> Path:
    """A copy of the repository whose every output of TARGETS exists, all of one mtime."""
    work = make_workdir(tmp_path_factory.mktemp("classifier_rules") / "w")
    summary = snakemake(work, "--summary", "--cores", "1", *TARGETS).stdout
    outputs = [line.split("\t")[0] for line in summary.splitlines()[1:] if "\t" in line]
    assert "results/predict/probabilities.tsv" in outputs
    stamp = time.time() - 100
    for name in outputs:
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        os.utime(path, (stamp, stamp))
    assert _planned_jobs(work) == set()
    return work


def _touch(path: Path) -> None:
    now = time.time()
    os.utime(path, (now, now))


def test_changed_prediction_export_reruns_predict_only(up_to_date):
    export = up_to_date / "resources/example/new_batch/chips/chip05.csv"
    _touch(export)
    assert _planned_jobs(up_to_date) == {"predict"}
    _touch(up_to_date / "results/predict/probabilities.tsv")
    _touch(up_to_date / "results/predict/cq.tsv")


def test_changed_metrics_reruns_the_roc_plot(up_to_date):
    _touch(up_to_date / "results/classifier/metrics.tsv")
    assert _planned_jobs(up_to_date) == {"plot_classifier"}
    for name in ("roc.svg", "calibration.svg"):
        _touch(up_to_date / "results/classifier/plots" / name)


def test_long_normalised_table_is_not_a_classifier_input(up_to_date):
    """The classifier reads the matrix, not the long table it used to declare."""
    _touch(up_to_date / "results/normalised/reference.tsv")
    assert _planned_jobs(up_to_date) == set()
