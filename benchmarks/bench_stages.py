#!/usr/bin/env python3
"""Speed of three stages on the inputs the unit tests build (timings are not tests).

    .venv/bin/python benchmarks/bench_stages.py            # ~1 min on one free core

Prints, for each, the time and the target it used to be asserted against in the tests:

1. ``sheets.load_samples`` on a 44,000-row samples sheet (tests/test_inputs.py
   ``_big_sheet``), CPU time, against pandas ``read_csv`` of the same file; target
   ≤ max(1.5 s, 12 × pandas) (issue 17: the per-row checks were the dry run's cost).
2. ``preprocess_batch`` on a 12-chip batch (tests/test_preprocess.py ``big_batch``),
   wall time; target < 15 s (1-3 s on a developer machine).
3. ``differential.run_differential`` with 4 normalisation strategies × the 3 default
   comparisons on 45 patients × 3 time points (tests/test_differential.py
   ``four_strategy_cohort``), wall time; target < 30 s (14-21 s with 8 jobs sharing 2 cores).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "tests"))  # the tests' input builders, so both time the same inputs

from ctc_qpcr import differential as de  # noqa: E402
from ctc_qpcr import sheets  # noqa: E402
from ctc_qpcr.chip_options import chip_options  # noqa: E402
from ctc_qpcr.preprocess import preprocess_batch  # noqa: E402
from ctc_qpcr.study_options import differential_options  # noqa: E402
from test_differential import four_strategy_cohort  # noqa: E402
from test_inputs import _big_sheet  # noqa: E402
from test_preprocess import big_batch  # noqa: E402


def bench_sheet() -> str:
    """CPU time of loading a 44,000-row samples sheet against pandas' parse alone."""
    with tempfile.TemporaryDirectory() as tmp:
        path = _big_sheet(Path(tmp))
        start = time.process_time()
        sheets.load_samples(path)
        spent = time.process_time() - start
        start = time.process_time()
        pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        parse = time.process_time() - start
    target = max(1.5, 12 * parse)
    verdict = "meets" if spent < target else "misses"
    return (
        f"| samples sheet, 44,000 rows | {spent:.2f} s CPU (pandas {parse:.2f} s) "
        f"| < {target:.2f} s | {verdict} |"
    )


def bench_preprocess() -> str:
    """Wall time of preprocess_batch on 12 chips."""
    wells, samples, assays = big_batch()
    start = time.perf_counter()
    preprocess_batch(wells, samples, assays, chip_options({"ipc": {"on_missing": "uncalibrated"}}))
    elapsed = time.perf_counter() - start
    verdict = "meets" if elapsed < 15 else "misses"
    return f"| preprocess_batch, 12 chips | {elapsed:.1f} s wall | < 15 s | {verdict} |"


def bench_differential() -> str:
    """Wall and CPU time of run_differential: 4 strategies × 3 default comparisons (schema defaults)."""
    by, samples = four_strategy_cohort()
    options = differential_options({"comparisons": de.default_comparisons()})
    start, cpu = time.perf_counter(), time.process_time()
    de.run_differential(by, samples, options.comparisons, "global", options)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    verdict = "meets" if elapsed < 30 else "misses"
    return (
        f"| run_differential, 4 strategies × 3 comparisons | {elapsed:.1f} s wall, {cpu:.1f} s CPU "
        f"| < 30 s | {verdict} |"
    )


def main() -> int:
    print("| stage | measured | target | |\n|---|---|---|---|")
    for bench in (bench_sheet, bench_preprocess, bench_differential):
        print(bench(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
