"""Packaging: `pip install .` into a fresh venv, use as a Snakemake module, metadata files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
from pathlib import Path

import pytest
import yaml

from workflow_helpers import REPO, snakemake_bin


def test_pyproject_builds_ctc_qpcr_from_scripts_with_the_pins_as_lower_bounds():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert meta["build-system"]["build-backend"] == "setuptools.build_meta"
    assert meta["tool"]["setuptools"]["package-dir"] == {"": "scripts"}
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.strip()] = version.strip()
    deps = dict(d.split(">=") for d in meta["project"]["dependencies"])
    runtime = {k: v for k, v in pins.items() if not k.startswith("snakemake")}
    assert deps == runtime, (
        "package dependencies must be the runtime pins of requirements.txt as lower bounds"
    )
    assert "snakemake" not in deps


def test_licence_changelog_and_catalog_file():
    assert (REPO / "LICENSE").read_text().startswith("MIT License")
    assert "## [Unreleased]" in (REPO / "CHANGELOG.md").read_text()
    catalog = yaml.safe_load((REPO / ".snakemake-workflow-catalog.yml").read_text())
    usage = catalog["usage"]
    assert set(usage) == {"mandatory-flags", "software-stack-deployment", "report"}
    assert usage["software-stack-deployment"]["conda"] is True
    assert usage["report"] is True


def test_conda_env_installs_the_package_not_snakemake(tmp_path):
    """The env file parses, names no Snakemake, and its pip entry is this
    repository's pyproject both from workflow/envs/ and from the copy Snakemake
    creates the environment from (.snakemake/conda/<hash>.yaml, run from the
    repository root). Not tested with conda itself (no conda on the test machine)."""
    env_file = REPO / "workflow" / "envs" / "python.yaml"
    env = yaml.safe_load(env_file.read_text())
    assert "snakemake" not in yaml.safe_dump(env).lower()
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    assert any(d.startswith("python") for d in conda) and "pip" in conda
    assert not any(d.split()[0] in ("pandas", "numpy", "scipy") for d in conda), "deps come from pyproject"
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert len(pip) == 1 and pip[0].startswith("-e ")
    target = pip[0].split(maxsplit=1)[1]
    for folder in (env_file.parent, REPO / ".snakemake" / "conda"):
        project = (folder / target).resolve() / "pyproject.toml"
        assert project == (REPO / "pyproject.toml").resolve(), folder
        assert tomllib.loads(project.read_text())["project"]["name"] == "ctc-qpcr"
    # the package the env installs has no Snakemake among its dependencies
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not any(d.lower().startswith("snakemake") for d in deps)


def test_local_requirements_leave_out_the_slurm_plugin():
    assert "snakemake-executor-plugin-slurm==" not in (REPO / "requirements.txt").read_text()
    assert "snakemake-executor-plugin-slurm==" in (REPO / "requirements-slurm.txt").read_text()


MODULE_SNAKEFILE = """\
configfile: "{repo}/config/config.yaml"


module ctc_qpcr:
    snakefile:
        "{repo}/Snakefile"
    config:
        config


use rule * from ctc_qpcr as ctc_*
"""


@pytest.mark.workflow
def test_workflow_runs_as_a_snakemake_module_from_another_folder(tmp_path):
    (tmp_path / "resources").symlink_to(REPO / "resources")
    (tmp_path / "Snakefile").write_text(MODULE_SNAKEFILE.format(repo=REPO))
    proc = subprocess.run(
        [snakemake_bin(), "-n", "--cores", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, MPLBACKEND="Agg"),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    for rule in ("ctc_preprocess_batch_", "ctc_check_ntc", "ctc_differential", "ctc_all"):
        assert rule in out


@pytest.mark.slow
def test_pip_install_into_a_fresh_venv_and_import_elsewhere(tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    # Build from a copy: setuptools writes build/ and *.egg-info next to the sources.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(
        REPO / "scripts" / "ctc_qpcr",
        source / "scripts" / "ctc_qpcr",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    # Build isolation fetches setuptools from the configured index; the runtime
    # dependencies come from the test venv (already installed there).
    site = subprocess.check_output(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
    )
    Path(site.strip(), "zz_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    code = (
        "import ctc_qpcr, ctc_qpcr.tables, ctc_qpcr.parsers.rdml; "
        "print(ctc_qpcr.__file__); print(ctc_qpcr.__version__)"
    )
    run = subprocess.run(
        [str(python), "-c", code],
        cwd=outside,
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    where, version = run.stdout.split()
    assert Path(where).is_relative_to(env_dir), f"ctc_qpcr imported from {where}, not the fresh venv"
    sys.path.insert(0, str(REPO / "scripts"))
    import ctc_qpcr

    assert version == ctc_qpcr.__version__
