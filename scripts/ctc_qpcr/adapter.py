"""Running a Snakemake ``script:`` adapter: logging and clean errors.

Usage in ``scripts/<step>.py``::

    from ctc_qpcr.adapter import run, write_tables
    def main(smk, log):
        result = ...  # a dict of tables
        write_tables(result, smk.output, {"calls": "calls", "sample_calls": "samples"})
    run(main, snakemake)

Messages go to the rule's ``log:`` file and to stderr. An
:class:`~ctc_qpcr.errors.InputError` or :class:`~ctc_qpcr.errors.ConfigError`
ends the job with its message and exit code 1, without a Python traceback:
the message names the file, line and column and says what to do. A full disk
(:class:`~ctc_qpcr.errors.OutputError`, or ``OSError`` ENOSPC from any writer)
ends it the same way, naming the file being written.

Before the step runs, every declared input outside ``results/`` is hashed
(SHA-256) and listed in the job's log (:mod:`ctc_qpcr.provenance`): the run
record collects these lines, so it holds the bytes each job actually read.
"""

from __future__ import annotations

import logging
import os
import sys

os.environ.setdefault("MPLBACKEND", "Agg")

from .errors import DISK_FULL, ConfigError, InputError, OutputError, disk_full  # noqa: E402
from .provenance import record_inputs  # noqa: E402
from .tables import write_tsv  # noqa: E402

# a note longer than this (a list of thousands of samples) is cut in the log; its table keeps it whole
NOTE_LOG_CHARS = 400


def get_logger(log_path: str | None) -> logging.Logger:
    logger = logging.getLogger("ctc_qpcr")
    logger.handlers.clear()
    logger.setLevel(logging.INFO)
    fmt = logging.Formatter("%(levelname)s: %(message)s")
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(fmt)
    logger.addHandler(stream)
    if log_path:
        os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
        handler = logging.FileHandler(log_path, mode="w", encoding="utf-8")
        handler.setFormatter(fmt)
        logger.addHandler(handler)
    logger.propagate = False
    return logger


def run(main, smk) -> None:
    log_path = smk.log[0] if len(smk.log) else None
    logger = get_logger(log_path)
    try:
        record_inputs(smk, logger)
        main(smk, logger)
    except (InputError, ConfigError, OutputError) as exc:
        logger.error(str(exc))
        sys.exit(1)
    except OSError as exc:
        if exc.errno not in DISK_FULL:
            raise
        logger.error(str(disk_full(exc.filename or ", ".join(map(str, smk.output)))))
        sys.exit(1)


def write_tables(tables: dict, output, names) -> None:
    """Write ``tables[key]`` (TSV) to the rule's output ``names[key]`` for each key of ``names``.

    ``names``: {table key: output name}, or the keys alone where the output has the same name.
    """
    pairs = names.items() if isinstance(names, dict) else ((key, key) for key in names)
    for key, name in pairs:
        write_tsv(tables[key], getattr(output, name))


def logged_note(note: str, table: str) -> str:
    """``note`` as one log line: whole up to ``NOTE_LOG_CHARS`` characters; a longer one (a
    list of names) cut after its last whole name within that length, with how many names
    follow and the ``table`` that holds the whole note."""
    if len(note) <= NOTE_LOG_CHARS:
        return note
    head = note[:NOTE_LOG_CHARS]
    head = head[: head.rfind(", ")] if ", " in head else head
    more = note[len(head) :].count(", ")
    return f"{head}, … ({more} more; the whole note: {table})"
