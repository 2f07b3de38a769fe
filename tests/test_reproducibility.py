"""Same inputs, same bytes: a second run of the example with --cores 1 equals the --cores 2 run."""

from __future__ import annotations

import pytest

from workflow_helpers import make_workdir, result_hashes, snakemake

pytestmark = pytest.mark.workflow


def test_second_run_with_one_core_is_byte_identical(example_run, tmp_path):
    work = make_workdir(tmp_path / "again")
    snakemake(work, "--cores", "1")
    first, second = result_hashes(example_run), result_hashes(work)
    assert first.keys() == second.keys()
    assert len(first) > 50
    differing = sorted(k for k in first if first[k] != second[k])
    assert not differing, f"outputs differ between runs: {differing}"
