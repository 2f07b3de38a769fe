#!/usr/bin/env python3
"""Generate the two example CellSearch count studies, with their planted truth.

    python scripts/simulate_count_studies.py --study breast --out resources/breast_cellsearch
    python scripts/simulate_count_studies.py --study gastric --out resources/gastric_cellsearch

Standalone command-line tool (not a Snakemake rule). The designs are in
``ctc_qpcr.simulate_counts`` (``simulate_breast``, ``simulate_gastric``); the
default seeds (breast 7, gastric 20100301) give the files in ``resources/``.
Writes ``ctc_counts.tsv``, ``clinical.tsv``, ``truth/patients.tsv`` (each
patient's planted groups) and ``truth/planted.tsv`` (the design's parameters).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd  # noqa: E402

from ctc_qpcr.simulate_counts import BREAST_TRUTH, GASTRIC_TRUTH, simulate_breast, simulate_gastric  # noqa: E402
from ctc_qpcr.tables import write_tsv  # noqa: E402

STUDIES = {"breast": (simulate_breast, BREAST_TRUTH, 7), "gastric": (simulate_gastric, GASTRIC_TRUTH, 20100301)}


def planted_table(truth: dict, seed: int) -> pd.DataFrame:
    rows = [("seed", str(seed))]
    for key, value in truth.items():
        items = value.items() if isinstance(value, dict) else [(None, value)]
        for sub, v in items:
            name = key if sub is None else f"{key}[{sub}]"
            rows.append((name, json.dumps(v, ensure_ascii=False)))
    return pd.DataFrame(rows, columns=["parameter", "value"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--study", required=True, choices=sorted(STUDIES))
    ap.add_argument("--out", required=True, help="output folder (e.g. resources/breast_cellsearch)")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: the study's own)")
    args = ap.parse_args(argv)
    simulate, truth, default_seed = STUDIES[args.study]
    seed = default_seed if args.seed is None else args.seed
    counts, clinical, patients = simulate(seed=seed)
    out = Path(args.out)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    write_tsv(counts, out / "ctc_counts.tsv")
    write_tsv(clinical, out / "clinical.tsv")
    write_tsv(patients, out / "truth" / "patients.tsv")
    write_tsv(planted_table(truth, seed), out / "truth" / "planted.tsv")
    print(f"{args.study}: {clinical.shape[0]} patients, {counts.shape[0]} draws → {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
