"""The normalisation strategies of the differential tables, one after another or in forked workers.

Split from :mod:`ctc_qpcr.differential` (:func:`~ctc_qpcr.differential.run_differential` calls
:func:`each_strategy`). A strategy's comparisons depend on no other strategy, so worker processes
give the tables and notes of one process (issue 17).
"""

from __future__ import annotations

import gc
import os

import pandas as pd

from .differential_tables import _Rows
from .forking import fork_workers, forked_pool

#: Peak RSS of one worker (issue 17, measured at 1,000 chips, 4.1 M rows a table: 0.74 GB, its
#: time-point comparison's 3.5 M joined rows; the process tree 1.62 GB with two workers and this
#: process): the imported libraries plus this much per row of its table.
WORKER_BASE_BYTES = 150 * 2**20
WORKER_BYTES_PER_ROW = 150
#: The job's processes (this one and its workers) stay under this: the 2 GB peak-RSS target of the
#: workflow's process tree (benchmarks/README.md) less snakemake's own ≈ 0.2 GB.
TREE_BUDGET_BYTES = 1800 * 2**20


def worker_bytes(rows: int) -> int:
    """Peak RSS of a worker testing a table of ``rows`` rows (measured, see :data:`WORKER_BYTES_PER_ROW`)."""
    return WORKER_BASE_BYTES + WORKER_BYTES_PER_ROW * rows


def strategy_workers(threads: int, table_rows: list[int], parent_bytes: int = 0) -> int:
    """How many processes run the strategies: the job's threads, fewer when their peak RSS
    (:func:`worker_bytes` of the largest table) beside this process's ``parent_bytes`` would pass
    :data:`TREE_BUDGET_BYTES` (memory before speed), at least 1."""
    fit = (TREE_BUDGET_BYTES - parent_bytes) // worker_bytes(max(table_rows, default=0))
    return max(1, min(int(threads), int(fit)))


def tsv_rows(path, head_bytes: int = 2**20) -> int:
    """The rows of a TSV, estimated from its size and the lines in its first ``head_bytes``."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(head_bytes)
    lines = head.count(b"\n")
    return 0 if not head else size if not lines else round(size * lines / len(head))


def current_rss() -> int:
    """This process's resident memory now (bytes; 0 where /proc is not there)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _strategy_results(job: tuple, strategy: str) -> list[tuple[pd.DataFrame, list[str]]]:
    """(table, notes) of each comparison on one strategy; the notes prefixed with ``[strategy]``."""
    run_comparison, normalised_by_strategy, samples, comparisons, options, params = job
    frame = _Rows(normalised_by_strategy[strategy], strategy)  # shared by the comparisons
    out = []
    for spec in comparisons:
        table, notes = run_comparison(frame, samples, spec, options, **params)
        out.append((table, [f"[{strategy}] {n}" for n in notes]))
    return out


#: the arguments of the strategies' work, set in the parent just before forking its workers
_FORKED_JOB: tuple | None = None


def _forked_strategy(strategy: str) -> list[tuple[pd.DataFrame, list[str]]]:
    return _strategy_results(_FORKED_JOB, strategy)


def _load_before_fork(comparisons) -> None:
    """Import what each worker would otherwise import for itself: once here, shared by the forks."""
    import pyarrow.csv  # noqa: F401  (differential_tables.read_normalised)

    if any(spec.get("type") == "timepoints" for spec in comparisons):
        import scipy.optimize  # noqa: F401  (differential_time.random_intercept_reml, 0.2 s)


def each_strategy(job: tuple, order: list[str], workers: int) -> list:
    """:func:`_strategy_results` of each strategy in ``order``: in this process, or in ``workers``
    forked processes that inherit ``job`` (nothing but the strategy names and the result tables is
    pickled)."""
    workers = fork_workers(workers, len(order))
    if workers == 1:
        return [_strategy_results(job, strategy) for strategy in order]
    _load_before_fork(job[3])
    global _FORKED_JOB
    _FORKED_JOB = job
    gc.freeze()  # the parent's objects out of the workers' collections: no copy of their pages
    try:
        with forked_pool(workers) as pool:
            return list(pool.map(_forked_strategy, order))
    finally:
        gc.unfreeze()
        _FORKED_JOB = None
