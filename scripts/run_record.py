"""Snakemake adapter: results/run_record.json (versions, config, input hashes; no timestamps).

The input hashes are the ones each job logged when it started (ctc_qpcr.provenance):
every sheet, export and table the results were computed from, as it was read.
"""

import json
from importlib import metadata

import ctc_qpcr
from ctc_qpcr.adapter import run
from ctc_qpcr.errors import InputError
from ctc_qpcr.provenance import changed_inputs, collect
from ctc_qpcr.tables import write_text

#: the reader of the sheets hashed when the workflow started (plates.tsv is read only then)
STARTUP = "snakemake start-up"
PACKAGES = [
    "snakemake",
    "pandas",
    "numpy",
    "scipy",
    "scikit-learn",
    "statsmodels",
    "matplotlib",
    "pyarrow",
    "skops",
    "defusedxml",
]


def main(smk, log):
    reads = collect(smk.input.logs)
    for path, digest in smk.params.startup.items():
        reads.setdefault(path, {})[STARTUP] = digest
    reads = {path: reads[path] for path in sorted(reads)}
    changed = changed_inputs(reads)
    if changed:
        path, by_job = next(iter(changed.items()))
        seen = "; ".join(f"{job}: {digest[:12]}" for job, digest in by_job.items())
        raise InputError(
            path,
            f"the file changed while the workflow ran (jobs read different contents — {seen})",
            "the results mix two versions of it: re-run the jobs that read it "
            "(snakemake --forcerun with their rules) without editing inputs during the run",
        )
    record = {
        "workflow": "ctc-qpcr",
        "workflow_version": ctc_qpcr.__version__,
        "packages": {name: metadata.version(name) for name in PACKAGES},
        "config": smk.params.config,
        "inputs": {path: next(iter(by_job.values())) for path, by_job in reads.items()},
        "inputs_read_by": {path: sorted(by_job) for path, by_job in reads.items()},
    }
    log.info("%d input files hashed by the %d jobs that made the results", len(reads), len(smk.input.logs))
    write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n", smk.output[0])


run(main, snakemake)  # noqa: F821
