"""The floor set by the workflow's shape: the same jobs doing nothing but start and import.

``bench_workflow.py`` runs, beside the real workflow, a Snakefile of the same job graph
for the 96-chip target (the IPC anchor, one job per batch — all but the first waiting
for the anchor —, then merge_batches beside normalise → differential), where every job is a
``script:`` that imports what every stage imports (pandas, pyarrow.parquet) and writes
an empty output. Its wall time is what Snakemake's start, the scheduling and the
Python start-up of each job cost before any work: the part of the target the code
of the stages cannot reach.

The same graph is also run with jobs that import nothing (Snakemake's start, scheduling and
each job's interpreter and ``script:`` preamble) and with jobs that import numpy and
pyarrow.parquet but not pandas: the differences are what pandas' import costs the graph.
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import time
from pathlib import Path

# what every stage imports; the variants below measure the share of each import
IMPORTS = ("numpy", "pandas", "pyarrow.parquet")
VARIANTS = {"imports": IMPORTS, "no_pandas": ("numpy", "pyarrow.parquet"), "bare": ()}


def noop_script(imports=IMPORTS) -> str:
    """The job's script: import ``imports``, write the empty output."""
    head = f"import {', '.join(imports)}\n" if imports else ""
    return head + "open(snakemake.output[0], 'w').close()\n"


SNAKEFILE = """BATCHES = {batches!r}


rule all:
    input:
        "differential.done",
        "merge.done",


rule ipc_anchor:
    output:
        "anchor.done",
    script:
        "noop.py"


rule batch:
    input:
        lambda wc: [] if wc.batch == BATCHES[0] else ["anchor.done"],
    output:
        "batches/{{batch}}.done",
    script:
        "noop.py"


rule merge_batches:
    input:
        expand("batches/{{batch}}.done", batch=BATCHES),
    output:
        "merge.done",
    script:
        "noop.py"


rule normalise:
    input:
        expand("batches/{{batch}}.done", batch=BATCHES),
    output:
        "normalise.done",
    script:
        "noop.py"


rule differential:
    input:
        "normalise.done",
    output:
        "differential.done",
    script:
        "noop.py"
"""


def noop_floor(snakemake: Path, batches: list[str], cores: int, workdir: Path, imports=IMPORTS) -> dict:
    """Wall and CPU time of the no-op DAG with ``batches``, run by ``snakemake`` with ``cores``,
    every job importing ``imports``."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / "Snakefile").write_text(SNAKEFILE.format(batches=list(batches)))
    (workdir / "noop.py").write_text(noop_script(imports))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(snakemake), "--cores", str(cores), "--quiet", "all"],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    out = {"ok": proc.returncode == 0, "wall_s": wall, "cpu_s": cpu, "jobs": len(batches) + 4}
    out["imports"] = list(imports)
    if proc.returncode != 0:
        out["error"] = (proc.stdout + proc.stderr)[-2000:]
    return out


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=8)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--scratch", default=str(Path(__file__).parent / "out" / "noop-dag"))
    a = ap.parse_args()
    exe = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "snakemake"
    for name, imports in VARIANTS.items():
        res = noop_floor(exe, [f"B{i}" for i in range(1, a.batches + 1)], a.cores, Path(a.scratch), imports)
        print(name, res)
