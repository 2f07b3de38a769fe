"""Which input files each job read, hashed when the job started.

:func:`record_inputs` (called by :func:`ctc_qpcr.adapter.run` before every
step) hashes each declared input that the workflow does not produce (not under
``results/`` or ``logs/``) and writes one line per file into the job's log::

    INFO: input read: sha256=<64 hex> path=<path as declared>

:func:`collect` reads those lines back from the logs of the jobs that made the
results; ``results/run_record.json`` is built from them, so it holds the bytes
the results came from, not whatever the files hold when the record is written.
A file read with two different contents by two jobs (edited during the run) is
reported by :func:`changed_inputs`.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

#: folders the workflow writes: their files are products, not inputs
PRODUCED = ("results/", "logs/", ".snakemake/")
_LINE = re.compile(r"input read: sha256=([0-9a-f]{64}) path=(.+)$")


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def external_inputs(paths) -> list[str]:
    """The declared inputs that are files a user gave (sorted, each once)."""
    out = {str(p) for p in paths if not str(p).replace("\\", "/").lstrip("./").startswith(PRODUCED)}
    return sorted(p for p in out if Path(p).is_file())


def record_inputs(smk, log: logging.Logger) -> dict[str, str]:
    """Hash the job's user-given inputs now and log one line per file; returns path → SHA-256."""
    hashes = {path: sha256(path) for path in external_inputs(smk.input)}
    for path, digest in hashes.items():
        log.info("input read: sha256=%s path=%s", digest, path)
    return hashes


def read_log(path: str | Path) -> dict[str, str]:
    """path → SHA-256 of the inputs a job's log says it read."""
    out = {}
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            match = _LINE.search(line.rstrip("\n"))
            if match:
                out[match.group(2)] = match.group(1)
    return out


def collect(logs) -> dict[str, dict[str, str]]:
    """path → {job log → SHA-256} over the logs of every job that made the results."""
    reads: dict[str, dict[str, str]] = {}
    for log in sorted(map(str, logs)):
        for path, digest in read_log(log).items():
            reads.setdefault(path, {})[log] = digest
    return {path: reads[path] for path in sorted(reads)}


def changed_inputs(reads: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """The inputs that two jobs read with different contents."""
    return {path: by_job for path, by_job in reads.items() if len(set(by_job.values())) > 1}


def sha256_text(text: str) -> str:
    """SHA-256 of a text as UTF-8 (what :func:`sha256` gives for a file holding it)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
