"""The least a run can spend writing its tables: every table of a finished run written again by
Arrow alone, in one process.

``bench_workflow.py`` calls :func:`io_floor` on the 96-chip work directory after the run:
each TSV outside ``results/batches/`` (the batches' audit is concatenated into
``results/qc/wells.tsv`` as bytes, so it is formatted once) is read back (untimed) and written
to memory with ``pyarrow.csv.write_csv`` (tab-separated, Arrow's shortest float text), and
each Parquet file (intermediates included: the job graph hands them from stage to stage) is
read back once and encoded again. The CPU time of those writes (and of the Parquet reads) is a
floor the stages' code can approach but not pass, whatever it computes.
"""

from __future__ import annotations

import io
import resource
from pathlib import Path

import pyarrow.csv as pcsv
import pyarrow.parquet as pq


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _timed(step, items) -> float:
    start = _cpu()
    for item in items:
        step(item)
    return _cpu() - start


def _write_tsv(table) -> None:
    options = pcsv.WriteOptions(delimiter="\t", quoting_style="none")
    pcsv.write_csv(table, io.BytesIO(), options)


def _write_parquet(table) -> None:
    pq.write_table(table, io.BytesIO())


def io_floor(workdir: Path) -> dict:
    """CPU seconds Arrow needs to write ``workdir``'s TSVs and Parquet files, and to read the Parquet."""
    results = Path(workdir) / "results"
    tsv_paths = sorted(p for p in results.rglob("*.tsv") if "batches" not in p.relative_to(results).parts)
    parquet_paths = sorted(results.rglob("*.parquet"))
    parse = pcsv.ParseOptions(delimiter="\t")
    tsvs = [pcsv.read_csv(p, parse_options=parse) for p in tsv_paths]
    parquets = [pq.read_table(p) for p in parquet_paths]
    return {
        "tsv_files": len(tsvs),
        "tsv_bytes": sum(p.stat().st_size for p in tsv_paths),
        "tsv_rows": sum(t.num_rows for t in tsvs),
        "tsv_write_cpu_s": _timed(_write_tsv, tsvs),
        "parquet_files": len(parquets),
        "parquet_rows": sum(t.num_rows for t in parquets),
        "parquet_write_cpu_s": _timed(_write_parquet, parquets),
        "parquet_read_cpu_s": _timed(pq.read_table, parquet_paths),
    }


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workdir", help="a finished work directory, e.g. benchmarks/out/wd-96")
    print(io_floor(Path(ap.parse_args().workdir)))
