#!/usr/bin/env python3
"""The PyPI package ``qpcr`` (4.1.4) side of the in-process comparison.

Run by ``benchmarks/bench_workflow.py`` with the interpreter of the separate venv
``benchmarks/.venv-qpcr`` (never the workflow's .venv)::

    benchmarks/.venv-qpcr/bin/python benchmarks/qpcr_side.py --manifest FILE

``FILE`` lists one converted chip per line: a "vertical Big Table" CSV with the columns
``Sample, Assay, Ct, @qpcr`` (written by ``bench_workflow.py`` before any timing; see
``benchmarks/README.md``). For every chip, timed in this process after ``import qpcr``:

* read:  ``qpcr.read_bigtable(path, kind="vertical", id_col="Sample", assay_col="Assay",
  ct_col="Ct", decorator=True)`` -> target assays (``@qpcr = assay``) and reference genes
  (``@qpcr = normaliser``) as ``qpcr.Assay`` objects (replicates inferred from identical ids);
* ΔCq:   ``qpcr.delta_ct(assays)``, ``qpcr.delta_ct(normalisers)`` (default Analyser:
  anchor = first replicate, exponential) and ``qpcr.normalise(assays, normalisers)``
  (default Normaliser: the reference genes averaged into one normaliser, pair-wise
  division), then ``Results.get()`` (the table of normalised values).

Prints one JSON object on stdout: seconds per phase, chips, rows normalised, versions.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", required=True, help="file with one converted chip CSV path per line")
    a = ap.parse_args(argv)
    with open(a.manifest, encoding="utf-8") as manifest:
        paths = [p.strip() for p in manifest if p.strip()]

    t_import = time.perf_counter()
    import numpy as np
    import pandas as pd
    import qpcr

    import_s = time.perf_counter() - t_import
    # qpcr logs every inferred group at INFO/WARNING level; keep stdout for the JSON only
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")

    read_s = dct_s = 0.0
    rows = 0
    values = 0
    for path in paths:
        t0 = time.perf_counter()
        assays, normalisers = qpcr.read_bigtable(
            path, kind="vertical", id_col="Sample", assay_col="Assay", ct_col="Ct", decorator=True
        )
        t1 = time.perf_counter()
        assays = qpcr.delta_ct(assays)
        normalisers = qpcr.delta_ct(normalisers)
        results = qpcr.normalise(assays, normalisers)
        table = results.get()
        t2 = time.perf_counter()
        read_s += t1 - t0
        dct_s += t2 - t1
        rows += len(table)
        values += int(np.isfinite(table.select_dtypes("number").to_numpy(dtype=float)).sum())
    print(
        json.dumps(
            {
                "side": "qpcr",
                "chips": len(paths),
                "read_s": read_s,
                "dcq_s": dct_s,
                "total_s": read_s + dct_s,
                "import_s": import_s,
                "rows": rows,
                "finite_values": values,
                "versions": {
                    "qpcr": getattr(qpcr, "__version__", _dist_version("qpcr")),
                    "pandas": pd.__version__,
                    "numpy": np.__version__,
                    "python": sys.version.split()[0],
                },
            }
        )
    )
    return 0


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    try:
        return version(name)
    except Exception:  # pragma: no cover - informative only
        return "?"


if __name__ == "__main__":
    raise SystemExit(main())
