"""Independent pieces of one job's work in forked worker processes (issue 17).

Used by the differential job (one strategy a worker) and the layout figures (one batch a
worker): the workers inherit what the parent has loaded, and one process does the same work
where the platform cannot fork.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor


def fork_workers(wanted: int, tasks: int) -> int:
    """How many processes share ``tasks`` pieces of work: at most ``wanted`` and one a piece;
    1 (this process alone) where the platform cannot fork."""
    workers = min(int(wanted), tasks)
    return workers if workers > 1 and "fork" in multiprocessing.get_all_start_methods() else 1


def forked_pool(workers: int, initializer=None, initargs: tuple = ()) -> ProcessPoolExecutor:
    """A pool of ``workers`` forked processes (see :func:`fork_workers`)."""
    context = multiprocessing.get_context("fork")
    return ProcessPoolExecutor(workers, mp_context=context, initializer=initializer, initargs=initargs)
