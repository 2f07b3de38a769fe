"""Benchmark of the classifier stage (algorithms.md §7) — a script, not a test.

    .venv/bin/python benchmarks/classifier_bench.py [--matrix M.tsv --samples S.tsv]
        [--permutations 1000] [--jobs 2] [--repeats 20] [--estimator elasticnet]

Without a matrix it builds the planted data set of tests/test_classifier.py:
45 samples × 46 genes, liver signature (10 genes shifted 1.5 SD in 20 liver-positive
samples) plus bone (all non-liver samples + ~30 % of liver, so partly anti-liver) ->
two modelled sites.  Prints wall time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from ctc_qpcr.classifier import run_classifier  # noqa: E402


def planted(seed: int = 2016, n: int = 45, p: int = 46, n_liver: int = 20, shift: float = 1.5):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    liver = np.zeros(n, bool)
    liver[rng.choice(n, n_liver, replace=False)] = True
    X[np.ix_(liver, np.arange(10))] += shift
    bone = ~liver | (rng.random(n) < 0.3)  # every sample has at least one site
    ids = [f"P{i:02d}" for i in range(n)]
    sites = [";".join(s for s, f in (("liver", liver[i]), ("bone", bone[i])) if f) for i in range(n)]
    samples = pd.DataFrame({"sample": ids, "kind": "patient", "patient": ids, "timepoint": "T0",
                            "sites": sites})
    matrix = pd.DataFrame(X + 8.0, columns=[f"G{j:02d}" for j in range(p)])
    matrix.insert(0, "sample", ids)
    return matrix, samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--matrix")
    ap.add_argument("--samples")
    ap.add_argument("--permutations", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--estimator", default="elasticnet")
    args = ap.parse_args()
    if args.matrix:
        matrix = pd.read_csv(args.matrix, sep="\t", dtype={"sample": str})
        samples = pd.read_csv(args.samples, sep="\t", dtype=str)
    else:
        matrix, samples = planted()
    start = time.perf_counter()
    res = run_classifier(matrix, samples, strategy="bench", estimators=(args.estimator,),
                         n_repeats=args.repeats, n_permutations=args.permutations,
                         n_jobs=args.jobs)
    wall = time.perf_counter() - start
    cols = ["site", "estimator", "n_pos", "n_neg", "auc", "auc_low", "auc_high", "permutation_p"]
    print(res["metrics"][cols].to_string(index=False))
    print(f"skipped: {[s['site'] for s in res['skipped']]}")
    print(f"wall time: {wall:.1f} s ({args.permutations} permutations, n_jobs={args.jobs}, "
          f"{args.repeats} repeats, estimator {args.estimator})")


if __name__ == "__main__":
    main()
