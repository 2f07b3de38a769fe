"""Shared pytest fixtures.

``public_data`` points at ``../shared/data/public`` (real instrument exports and
published data sets). Tests that need it skip cleanly when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PUBLIC = Path(os.environ.get("CTC_QPCR_PUBLIC_DATA", REPO.parent / "shared" / "data" / "public"))


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def public_data() -> Path:
    if not PUBLIC.is_dir():
        pytest.skip(f"public test data not found at {PUBLIC} (set CTC_QPCR_PUBLIC_DATA)")
    return PUBLIC


def pytest_collection_modifyitems(config, items):
    """Run the Slurm test last: once slurm-client is installed without a running
    controller, every later `snakemake` call pays a ~10 s plugin start-up delay."""
    items.sort(key=lambda item: item.get_closest_marker("slurm") is not None)


@pytest.fixture(scope="session")
def example_run(tmp_path_factory):
    """The example study run once with `snakemake --cores 2` in a scratch copy."""
    from workflow_helpers import make_workdir, snakemake

    work = make_workdir(tmp_path_factory.mktemp("example") / "w")
    snakemake(work, "--cores", "2")
    return work
