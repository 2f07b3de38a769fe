#!/usr/bin/env python3
"""Generate the simulated example study (or benchmark chips).

    python scripts/simulate_study.py --out resources/example --seed 2016
    python scripts/simulate_study.py --out /tmp/bench --seed 2016 --chips 1000 --bench

Standalone command-line tool (not a Snakemake rule). The logic is in
``ctc_qpcr.simulate``; see ``resources/example/README.md`` for what is planted.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ctc_qpcr.simulate import simulate_chips, simulate_study  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (e.g. resources/example)")
    ap.add_argument("--seed", type=int, default=2016, help="random seed (default 2016)")
    ap.add_argument(
        "--bench", action="store_true", help="write --chips full 96.96 chips instead of the study"
    )
    ap.add_argument("--chips", type=int, default=None, help="number of chips (bench mode)")
    ap.add_argument(
        "--assays-per-chip", type=int, default=96, help="assay inlets per chip (bench mode, default 96)"
    )
    ap.add_argument(
        "--path-prefix",
        default=None,
        help="folder written before chips/... in plates.tsv (default: --out as given)",
    )
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    if a.bench:
        if not a.chips or a.chips < 1:
            ap.error("--bench needs --chips N (N >= 1)")
        plates = simulate_chips(a.chips, a.out, a.seed, a.assays_per_chip, path_prefix=a.path_prefix)
        print(f"wrote {len(plates)} chips to {a.out} in {time.perf_counter() - t0:.1f} s")
    else:
        if a.chips is not None:
            ap.error("--chips is for --bench; the study computes its chips from the sample count")
        s = simulate_study(a.out, a.seed, path_prefix=a.path_prefix)
        print(
            f"wrote the example study ({s['n_chips']} chips + 1 new-batch chip) to {a.out} "
            f"in {time.perf_counter() - t0:.1f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
