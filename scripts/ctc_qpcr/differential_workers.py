"""The normalisation strategies of the differential tables, one after another or in forked workers.

Split from :mod:`ctc_qpcr.differential` (:func:`~ctc_qpcr.differential.run_differential` calls
:func:`each_strategy`). A strategy's comparisons depend on no other strategy, so worker processes
give the tables and notes of one process (issue 17).
"""

from __future__ import annotations

import gc
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pandas as pd

from .differential_tables import _Rows

#: Strategies run in parallel only while every normalised table is at most this big (bytes of TSV):
#: each worker holds one strategy's rows (96 chips, 37 MB a table: peak RSS of the job's processes
#: 336 MB with one, 706 MB with two), so the 1,000-chip run (≈ 390 MB a table) keeps one process and
#: its 2 GB peak-RSS target (benchmarks/README.md).
PARALLEL_MAX_BYTES = 64 * 2**20


def strategy_workers(threads: int, table_bytes: list[int]) -> int:
    """How many processes run the strategies: the job's threads, or 1 when a table is over
    :data:`PARALLEL_MAX_BYTES` (memory before speed)."""
    return max(1, int(threads)) if max(table_bytes, default=0) <= PARALLEL_MAX_BYTES else 1


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
    workers = min(workers, len(order))
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [_strategy_results(job, strategy) for strategy in order]
    _load_before_fork(job[3])
    global _FORKED_JOB
    _FORKED_JOB = job
    gc.freeze()  # the parent's objects out of the workers' collections: no copy of their pages
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            return list(pool.map(_forked_strategy, order))
    finally:
        gc.unfreeze()
        _FORKED_JOB = None
