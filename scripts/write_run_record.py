"""Snakemake adapter: results/run_record.json (versions, config, input hashes; no timestamps)."""

import hashlib
import json
from importlib import metadata

import ctc_qpcr
from ctc_qpcr.adapter import run
from ctc_qpcr.tables import write_text

PACKAGES = ["snakemake", "pandas", "numpy", "scipy", "scikit-learn", "statsmodels", "matplotlib", "pyarrow", "skops", "defusedxml"]


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def main(smk, log):
    files = sorted(set(smk.input.sheets) | set(smk.input.exports))
    record = {
        "workflow": "ctc-qpcr",
        "workflow_version": ctc_qpcr.__version__,
        "packages": {name: metadata.version(name) for name in PACKAGES},
        "config": smk.params.config,
        "inputs": {path: sha256(path) for path in files},
    }
    write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n", smk.output[0])


run(main, snakemake)  # noqa: F821
