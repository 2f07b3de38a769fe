"""Reading BioMark chips: one chip against pandas read_csv, and the reading part of a chip-level job.

    .venv/bin/python benchmarks/bench_read_exports.py [--chips 12] [--out SCRATCH]

Simulates N 96.96 chips (9,216 chambers each) with scripts/simulate_study.py --bench
(reused when present), then prints, in CPU time (best of 15): pandas read_csv of one
chip's table, read_export of the same chip with all checks (target < 0.1 s), and their
ratio (target ≤ 3, issue 17); and the wall time of what the reading part of one
chip-level job (preprocess_batch_<batch>) does for the N chips (read_plate + Parquet +
TSV per chip).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from ctc_qpcr import sheets  # noqa: E402 (needs the sys.path entry above)
from ctc_qpcr.importing import read_plate  # noqa: E402 (needs the sys.path entry above)
from ctc_qpcr.parsers.registry import read_export  # noqa: E402 (needs the sys.path entry above)
from ctc_qpcr.tables import write_parquet, write_tsv  # noqa: E402 (needs the sys.path entry above)


def table_start(path: str) -> int:
    with open(path, encoding="ascii", errors="replace") as handle:
        for i, line in enumerate(handle):
            if line.startswith("ID,") and i > 0:
                return i
    raise SystemExit(f"{path}: no 'ID,...' header")


def cpu_best(fn, n: int = 15) -> float:
    best = float("inf")
    for _ in range(n):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chips", type=int, default=12)
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "ctc-bench-read"))
    args = parser.parse_args()
    out = Path(args.out) / f"chips-{args.chips}"
    if not (out / "plates.tsv").exists():
        subprocess.run(
            [
                sys.executable,
                str(REPO / "scripts" / "simulate_study.py"),
                "--out",
                str(out),
                "--seed",
                "1",
                "--chips",
                str(args.chips),
                "--bench",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    plates = pd.read_csv(out / "plates.tsv", sep="\t")
    first = plates["path"].iloc[0]
    skip = table_start(first)
    floor = cpu_best(lambda: pd.read_csv(first, skiprows=skip, header=0))
    ours = cpu_best(lambda: read_export(first, fmt="biomark"))
    print(
        f"one chip ({len(read_export(first, fmt='biomark'))} chambers): "
        f"pandas read_csv {floor * 1000:.1f} ms, "
        f"read_export {ours * 1000:.1f} ms (target < 100), ratio {ours / floor:.2f} (target <= 3)"
    )
    samples = sheets.load_samples(out / "samples.tsv")
    assays = sheets.assays_frame(sheets.load_assays(out / "assays.tsv"))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        for plate, path, fmt in zip(plates["plate"], plates["path"], plates["format"], strict=True):
            wells = read_plate(path, fmt, plate, "B1", samples, assays)
            write_parquet(wells, f"{tmp}/{plate}.parquet")
            write_tsv(wells, f"{tmp}/{plate}.tsv")
        print(f"chip-level job, reading part, {len(plates)} chips: {time.perf_counter() - start:.2f} s wall")


if __name__ == "__main__":
    main()
