"""The example study on a real single-node Slurm, compared byte for byte with the local run.

Runs only as root with apt-get available (it installs and starts slurmctld, slurmd and
munge itself, and stops them by PID afterwards); otherwise it skips with the reason.
The Slurm executor plugin is not a local requirement (requirements-slurm.txt): the test
installs it when missing and uninstalls what it installed, so the machine (apt packages,
Python environment) is left as it was found.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from importlib.util import find_spec

import pytest

from workflow_helpers import REPO, make_workdir, result_hashes, snakemake_bin

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]


SLURM_PLUGINS = ("snakemake-executor-plugin-slurm", "snakemake-executor-plugin-slurm-jobstep")
# The local cluster is machine-wide: two test runs at once must not start and stop it under
# each other (one run's `down` removed slurm.conf while the other's test started).
CLUSTER_LOCK = "/tmp/ctc-qpcr-slurm.session.lock"
CLUSTER_WAIT_S = 1800


def hold_cluster_lock(path: str = CLUSTER_LOCK, wait_s: float = CLUSTER_WAIT_S):
    """An open file holding an exclusive lock on ``path``, or None after ``wait_s`` seconds."""
    handle = open(path, "w")  # noqa: SIM115  (held for the module's lifetime)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() > deadline:
                handle.close()
                return None
            time.sleep(2)


@pytest.fixture(scope="module")
def slurm_plugin():
    """requirements-slurm.txt installed for the test, removed again afterwards if it was absent."""
    missing = [p for p in SLURM_PLUGINS if find_spec(p.replace("-", "_")) is None]
    if missing:
        pins = [
            line
            for line in (REPO / "requirements-slurm.txt").read_text().splitlines()
            if line.split("==")[0] in missing
        ]
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", *pins], capture_output=True, text=True
        )
        if proc.returncode != 0:
            pytest.skip(f"could not install the Slurm executor plugin: {proc.stderr[-500:]}")
    yield
    if missing:
        subprocess.run(
            [sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet", *missing], capture_output=True
        )


@pytest.fixture(scope="module")
def slurm_cluster(slurm_plugin):
    if os.geteuid() != 0:
        pytest.skip("the Slurm test needs root (it installs and starts slurmctld/slurmd/munge)")
    if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
        pytest.skip("the Slurm test needs apt-get (Debian/Ubuntu) to install Slurm")
    lock = hold_cluster_lock()
    if lock is None:
        pytest.skip(f"another test run has held the local Slurm ({CLUSTER_LOCK}) for {CLUSTER_WAIT_S} s")
    script = REPO / "scripts" / "slurm_local.sh"
    try:
        up = subprocess.run(["bash", str(script), "up"], capture_output=True, text=True, timeout=600)
        if up.returncode != 0:
            subprocess.run(["bash", str(script), "down"], capture_output=True)
            pytest.fail(f"could not start a local Slurm:\n{up.stdout}\n{up.stderr}")
        yield
        subprocess.run(["bash", str(script), "down"], capture_output=True, timeout=60)
    finally:
        lock.close()


def test_cluster_lock_is_exclusive(tmp_path):
    """A second holder waits and gives up; the lock is free again once the first closes."""
    path = str(tmp_path / "cluster.lock")
    first = hold_cluster_lock(path)
    assert first is not None
    assert hold_cluster_lock(path, wait_s=0) is None
    first.close()
    second = hold_cluster_lock(path, wait_s=0)
    assert second is not None
    second.close()


def test_example_on_slurm_equals_local_run(slurm_cluster, example_run, tmp_path):
    work = make_workdir(tmp_path / "slurm")
    cmd = [
        "timeout",
        "-k",
        "30",
        "1500",
        snakemake_bin(),
        "--workflow-profile",
        "profiles/slurm",
        "--slurm-init-seconds-before-status-checks",
        "2",
    ]
    proc = subprocess.run(
        cmd,
        cwd=work,
        capture_output=True,
        text=True,
        env=dict(os.environ, MPLBACKEND="Agg", PYTHONHASHSEED="0"),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert "slurm" in (proc.stdout + proc.stderr).lower()
    local, cluster = result_hashes(example_run), result_hashes(work)
    assert local.keys() == cluster.keys()
    differing = [k for k in local if local[k] != cluster[k]]
    assert not differing, f"files differ between the local and the Slurm run: {differing}"
