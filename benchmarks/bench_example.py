"""The example study end to end, per rule (issue 17 target: ≤ 60 s on 2 cores) — a script, not a test.

    .venv/bin/python benchmarks/bench_example.py [--scratch /tmp/bench-example] [--cores 2]
        [--keep] [-- extra snakemake arguments, e.g. --config ...]

Copies the repository into a scratch directory the way ``tests/workflow_helpers.py`` does,
runs ``snakemake --cores N`` on the example study (classifier, outcome, predict, report
inputs: the default target) and prints:

* the wall time of the whole run and the CPU time (user + sys) of every process it started
  (exact: ``getrusage(RUSAGE_CHILDREN)`` after Snakemake exits), the 1-minute load average
  at start and end (other work on the machine inflates wall times, not CPU times);
* a per-rule table: jobs, when its first job started (seconds after Snakemake started: the
  classifier's start shows how soon the scheduler reached the longest job), sum of job wall
  times, longest job, CPU of the job's process tree, share of all job CPU.  Jobs are seen by
  polling the process tree every 0.1 s (psutil); a job's CPU is the last value seen of each
  of its processes, so up to ~0.1 s per process can be missed — the "unattributed" line
  (total − jobs) holds that and Snakemake's own scheduling;
* the classifier stage's share of the run (wall and CPU);
* the CPU of one bare Python start-up with the workflow's imports (pandas + ctc_qpcr), times
  the number of jobs: what the job count costs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
SCRIPT = re.compile(r"\.snakemake/scripts/tmp[^/.]+\.(\w+)\.py")
sys.path.insert(0, str(REPO / "tests"))
from workflow_helpers import make_workdir as _copy_repository  # noqa: E402  (one copy rule for tests and benchmarks)


def make_workdir(dest: Path) -> Path:
    """A fresh copy of the workflow and the example in ``dest`` (as the workflow tests make it)."""
    if dest.exists():
        shutil.rmtree(dest)
    return _copy_repository(dest)


def script_rules(workdir: Path) -> dict[str, str]:
    """Script name -> rule name (``rule X: ... script: "../../scripts/S.py"``)."""
    out: dict[str, str] = {}
    for smk in sorted((workdir / "workflow" / "rules").glob("*.smk")):
        rule = None
        for line in smk.read_text().splitlines():
            m = re.match(r"\s*(?:rule|checkpoint)\b\s*(\w*)\s*:", line)
            if m:
                rule = m.group(1) or None  # an unnamed rule (named in a loop): its script's name
            m = re.search(r"scripts/(\w+)\.py", line)
            if m and "script" not in out.get(m.group(1), "x"):
                out.setdefault(m.group(1), rule or m.group(1))
    return out


def _cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


class Monitor:
    """Last-seen CPU and lifetime of every process below the Snakemake process."""

    def __init__(self, root: psutil.Process):
        self.root = root
        self.started = root.create_time()
        self.procs: dict[int, dict] = {}

    def poll(self) -> None:
        try:
            children = self.root.children(recursive=True)
        except psutil.NoSuchProcess:
            return
        now = time.time()
        for p in children:
            try:
                rec = self.procs.get(p.pid)
                if rec is None:
                    rec = self.procs[p.pid] = {
                        "job": self._job_of(p),
                        "start": p.create_time(),
                        "cpu": 0.0,
                    }
                rec["cpu"] = _cpu(p)
                rec["end"] = now
            except psutil.NoSuchProcess:
                continue

    def _job_of(self, p: psutil.Process) -> str:
        """The job process (a Snakemake script) this process belongs to: pid:script."""
        for q in [p, *p.parents()]:
            m = SCRIPT.search(" ".join(q.cmdline()))
            if m:
                return f"{q.pid}:{m.group(1)}"
            if q.pid == self.root.pid:
                break
        return "other (not a job script)"


def startup_cpu() -> float:
    """CPU of one Python process importing what every job script imports."""
    code = "import pandas, numpy, ctc_qpcr.adapter, ctc_qpcr.tables"
    env = dict(os.environ, PYTHONPATH=str(REPO / "scripts"))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run(workdir: Path, cores: int, extra: list[str]) -> tuple[float, float, Monitor, float]:
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONHASHSEED="0")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    snakemake = Path(sys.executable).with_name("snakemake")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [str(snakemake), "--cores", str(cores), *extra],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    monitor = Monitor(psutil.Process(proc.pid))
    root_cpu = 0.0
    while proc.poll() is None:
        monitor.poll()
        with contextlib.suppress(psutil.NoSuchProcess):
            root_cpu = _cpu(monitor.root)
        time.sleep(0.1)
    wall = time.perf_counter() - t0
    log = proc.stdout.read()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"snakemake failed ({proc.returncode}):\n{log[-6000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, monitor, root_cpu


def per_rule(monitor: Monitor, rules: dict[str, str]) -> list[dict]:
    jobs: dict[str, dict] = {}
    for rec in monitor.procs.values():
        job = jobs.setdefault(rec["job"], {"cpu": 0.0, "start": rec["start"], "end": rec["end"]})
        job["cpu"] += rec["cpu"]
        job["start"] = min(job["start"], rec["start"])
        job["end"] = max(job["end"], rec["end"])
    table: dict[str, dict] = {}
    for key, job in jobs.items():
        script = key.split(":", 1)[-1]
        rule = rules.get(script, script)
        row = table.setdefault(
            rule, {"rule": rule, "jobs": 0, "first": float("inf"), "wall": 0.0, "longest": 0.0, "cpu": 0.0}
        )
        wall = job["end"] - job["start"]
        row["first"] = min(row["first"], job["start"] - monitor.started)
        row["jobs"] += 1
        row["wall"] += wall
        row["longest"] = max(row["longest"], wall)
        row["cpu"] += job["cpu"]
    return sorted(table.values(), key=lambda r: (-r["cpu"], r["rule"]))


def report(rows, wall, cpu, root_cpu, load, startup) -> None:
    job_cpu = sum(r["cpu"] for r in rows)
    n_jobs = sum(r["jobs"] for r in rows)
    print(
        f"\nexample study, snakemake --cores {ARGS.cores}: wall {wall:.1f} s, "
        f"CPU {cpu:.1f} s (user+sys, all processes)"
    )
    print(f"1-minute load average: start {load[0]:.2f}, end {load[1]:.2f}\n")
    print("| rule | jobs | starts at | wall sum | longest | CPU | CPU share |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        if r["rule"].startswith("other") and r["cpu"] < 0.05:
            continue  # Snakemake's idle helper processes
        share = r["cpu"] / job_cpu if job_cpu else float("nan")
        print(
            f"| {r['rule']} | {r['jobs']} | {r['first']:.1f} s | {r['wall']:.1f} s | {r['longest']:.1f} s "
            f"| {r['cpu']:.1f} s | {share:.1%} |"
        )
    print(f"| snakemake itself (scheduler) | 1 | — | — | — | {root_cpu:.1f} s | — |")
    print(f"| unattributed (total − jobs − snakemake) | | | | | {cpu - job_cpu - root_cpu:.1f} s | |")
    clf = next((r for r in rows if r["rule"] == "classifier"), None)
    if clf:
        print(
            f"\nclassifier stage: starts at {clf['first']:.1f} s, {clf['longest']:.1f} s wall = "
            f"{clf['longest'] / wall:.1%} of the run; "
            f"{clf['cpu']:.1f} s CPU = {clf['cpu'] / cpu:.1%} of all CPU"
        )
    print(
        f"job count × Python start-up: {n_jobs} jobs × {startup:.2f} s CPU (import pandas, numpy, ctc_qpcr) "
        f"= {n_jobs * startup:.1f} s CPU"
    )


def main(argv=None) -> None:
    global ARGS
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/bench-example"))
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("extra", nargs="*", help="extra snakemake arguments (after --)")
    ARGS = parser.parse_args(argv)
    workdir = make_workdir(ARGS.scratch / "example")
    load0 = os.getloadavg()[0]
    wall, cpu, monitor, root_cpu = run(workdir, ARGS.cores, ARGS.extra)
    load1 = os.getloadavg()[0]
    rows = per_rule(monitor, script_rules(workdir))
    report(rows, wall, cpu, root_cpu, (load0, load1), startup_cpu())
    if not ARGS.keep:
        shutil.rmtree(ARGS.scratch / "example")


ARGS: argparse.Namespace
if __name__ == "__main__":
    main()
