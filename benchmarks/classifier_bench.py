"""Benchmark of the classifier stage (docs/methods.md §7) — a script, not a test.

    .venv/bin/python benchmarks/classifier_bench.py [--matrix M.tsv --samples S.tsv]
        [--permutations 1000] [--jobs 2] [--repeats 20] [--estimator elasticnet]
    .venv/bin/python benchmarks/classifier_bench.py --missing [--matrix M.tsv --samples S.tsv
        --site liver]

``--missing`` measures what prediction with missing genes costs (the basis of the default
``predict.max_missing_fraction``): out-of-fold (5 folds × 10 repeats), the elastic-net
pipeline with k = 10 is fitted on the training folds and each test sample is predicted
with a share f of the genes the model uses set missing (random per sample; filled by the
model's own median imputer).  Printed per f: mean outer-fold AUC and the mean and 95th
percentile of |p(masked) − p(complete)|.

Without a matrix it builds the planted data set of tests/test_classifier.py:
45 samples × 46 genes, liver signature (10 genes shifted 1.5 SD in 20 liver-positive
samples) plus bone (all non-liver samples + ~30 % of liver, so partly anti-liver) ->
two modelled sites.  Prints wall time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from ctc_qpcr.classifier import (  # noqa: E402
    classifier_options,
    make_pipeline,
    mask_genes,
    outer_splits,
    run_classifier,
    used_genes,
)
from ctc_qpcr.classifier.inputs import prepare, site_labels  # noqa: E402
from ctc_qpcr.classifier.validation import fold_auc, quiet  # noqa: E402

FRACTIONS = (0.0, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8)


def planted(seed: int = 2016, n: int = 45, p: int = 46, n_liver: int = 20, shift: float = 1.5):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    liver = np.zeros(n, bool)
    liver[rng.choice(n, n_liver, replace=False)] = True
    X[np.ix_(liver, np.arange(10))] += shift
    bone = ~liver | (rng.random(n) < 0.3)  # every sample has at least one site
    ids = [f"P{i:02d}" for i in range(n)]
    sites = [";".join(s for s, f in (("liver", liver[i]), ("bone", bone[i])) if f) for i in range(n)]
    samples = pd.DataFrame(
        {"sample": ids, "kind": "patient", "patient": ids, "timepoint": "T0", "sites": sites}
    )
    matrix = pd.DataFrame(X + 8.0, columns=[f"G{j:02d}" for j in range(p)])
    matrix.insert(0, "sample", ids)
    return matrix, samples


def missing_genes(matrix, samples, site: str, repeats: int = 10, seed: int = 2016) -> pd.DataFrame:
    """Out-of-fold AUC and probability shift when a share of the model's genes is missing."""
    data = prepare(matrix, samples, "T0")
    Y, _ = site_labels(data.sheet)
    y = Y.loc[data.sheet["sample"], site].to_numpy(int)
    splits = outer_splits(y, data.groups, 5, repeats, seed)
    rng = np.random.default_rng(seed)
    full = np.full((repeats, len(y)), np.nan)
    masked = {f: np.full((repeats, len(y)), np.nan) for f in FRACTIONS}
    with quiet():
        for r, folds in enumerate(splits):
            for train, test in folds:
                pipe = make_pipeline("elasticnet", k=min(10, data.X.shape[1]), seed=seed)
                pipe.fit(data.X[train], y[train])
                bundle = {"pipeline": pipe, "features": data.genes}
                cols = [data.genes.index(g) for g in used_genes(bundle)]
                full[r, test] = pipe.predict_proba(data.X[test])[:, 1]
                for f in FRACTIONS:
                    Xm = mask_genes(data.X[test], cols, f, rng)
                    masked[f][r, test] = pipe.predict_proba(Xm)[:, 1]
    rows = []
    for f in FRACTIONS:
        shift = np.abs(masked[f] - full).ravel()
        rows.append(
            {
                "fraction": f,
                "auc": np.mean([fold_auc(y, masked[f][r], splits[r]) for r in range(repeats)]),
                "mean_abs_shift": shift.mean(),
                "p95_abs_shift": np.percentile(shift, 95),
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--matrix")
    ap.add_argument("--samples")
    ap.add_argument("--permutations", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--estimator", default="elasticnet")
    ap.add_argument("--missing", action="store_true", help="prediction with missing genes")
    ap.add_argument("--site", default="liver")
    args = ap.parse_args()
    if args.matrix:
        matrix = pd.read_csv(args.matrix, sep="\t", dtype={"sample": str})
        samples = pd.read_csv(args.samples, sep="\t", dtype=str, keep_default_na=False)
    else:
        matrix, samples = planted()
    if args.missing:
        print(missing_genes(matrix, samples, args.site).round(3).to_string(index=False))
        return
    start, cpu0 = time.perf_counter(), time.process_time()
    settings = {
        "estimators": [args.estimator],
        "n_repeats": args.repeats,
        "n_permutations": args.permutations,
    }
    res = run_classifier(matrix, samples, classifier_options(settings), strategy="bench", n_jobs=args.jobs)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    cols = ["site", "estimator", "n_pos", "n_neg", "auc", "auc_low", "auc_high", "permutation_p"]
    print(res["metrics"][cols].to_string(index=False))
    print(f"skipped: {[s['site'] for s in res['skipped']]}")
    print(
        f"wall time: {wall:.1f} s ({args.permutations} permutations, n_jobs={args.jobs}, "
        f"{args.repeats} repeats, estimator {args.estimator}); CPU {cpu:.1f} s in this process "
        f"(all of it with --jobs 1); 1-minute load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
