#!/usr/bin/env python3
"""Benchmark ctc-qpcr on N simulated BioMark 96.96 chips and print the numbers.

    .venv/bin/python benchmarks/bench_workflow.py --chips 96
    .venv/bin/python benchmarks/bench_workflow.py --chips 1000 --write-readme

Steps (see benchmarks/README.md for exactly what each one measures):

1. simulate N full 96.96 chips (9,216 chambers each, batches of 12) with
   ``scripts/simulate_study.py --bench`` into SCRATCH/chips-N (timed separately, reused
   when already there);
2. floor: ``pd.read_csv`` of the table part of every export, in this process;
3. ``snakemake -n`` (dry run) and ``snakemake --cores C`` from the raw exports to
   results/normalised/*.tsv + results/differential/*.tsv in a fresh work directory
   SCRATCH/wd-N (classifier, prediction and outcome off); wall time, peak RSS of the
   whole process tree, time per rule;
3a. (96 chips) the writing floor (``benchmarks/io_floor.py``): the run's TSVs and Parquet
   files written again by Arrow alone; and the same job graph doing nothing
   (``benchmarks/noop_dag.py``): every job a ``script:`` that imports pandas and pyarrow —
   Snakemake's and Python's start-up, the floor the stages' code cannot go below —, again
   with jobs importing numpy + pyarrow only and with jobs importing nothing;
4. in-process comparison with the PyPI package ``qpcr`` 4.1.4 (its own venv
   benchmarks/.venv-qpcr, created on first use) on the steps both do: reading the chips
   and ΔCq against the reference genes.

Results are kept as SCRATCH/results-N.json; the Markdown table compares them with the
targets (1,000-chip ratios use results-96.json when present). ``--write-readme`` puts the
table into the results section of benchmarks/README.md. A benchmark script, not a test:
it exits 0 when it could measure, whether or not the targets are met.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import io
import json
import os
import platform
import pstats
import re
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import yaml

from io_floor import io_floor
from noop_dag import VARIANTS as NOOP_VARIANTS
from noop_dag import noop_floor

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "scripts"))

VENV_PY = Path(sys.executable)
QPCR_VENV = HERE / ".venv-qpcr"
QPCR_SPEC = "qpcr==4.1.4"
README = HERE / "README.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
GB = 1024**3


def snakemake_command(workdir: Path) -> list[str]:
    """This venv's snakemake on the repository's Snakefile, run in ``workdir``."""
    return [
        str(VENV_PY.parent / "snakemake"),
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
    ]


def _within(wall, limit, workflow) -> bool | None:
    """True/False when the wall time can be judged against its limit, None when it cannot."""
    if wall is not None and limit:
        return wall <= limit
    return False if workflow.get("ok") is False else None


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- 1. simulate


def simulate(n: int, out: Path, seed: int, regen: bool) -> dict:
    plates_tsv = out / "plates.tsv"
    if plates_tsv.exists() and not regen:
        plates = pd.read_csv(plates_tsv, sep="\t")
        if len(plates) == n and all(Path(p).exists() for p in plates["path"]):
            log(f"reusing {n} simulated chips in {out}")
            return {"seconds": None, "reused": True}
    if out.exists():
        shutil.rmtree(out)
    t0 = time.perf_counter()
    subprocess.run(
        [
            str(VENV_PY),
            str(REPO / "scripts" / "simulate_study.py"),
            "--out",
            str(out),
            "--seed",
            str(seed),
            "--chips",
            str(n),
            "--bench",
        ],
        check=True,
        stdout=sys.stderr,
    )
    return {"seconds": time.perf_counter() - t0, "reused": False}


def sheet_summary(out: Path) -> dict:
    samples = pd.read_csv(out / "samples.tsv", sep="\t", dtype=str).fillna("")
    plates = pd.read_csv(out / "plates.tsv", sep="\t", dtype=str)
    pat = samples[samples["kind"] == "patient"]
    return {
        "chips": len(plates),
        "batches": plates["batch"].nunique(),
        "bytes": int(sum(Path(p).stat().st_size for p in plates["path"])),
        "patients": pat["patient"].nunique(),
        "patient_samples": len(pat),
        "healthy": int((samples["kind"] == "healthy").sum()),
        "with_response": int((pat["response"] != "").sum()),
        "with_timepoint": int((pat["timepoint"] != "").sum()),
        "with_sites": int((pat["sites"] != "").sum()),
    }


# --------------------------------------------------------------------------- 2. floor


def table_start(path: str) -> int:
    """0-based line index of the ``ID,Name,...`` header of a BioMark Table Results export."""
    with open(path, encoding="ascii", errors="replace") as fh:
        for i, line in enumerate(fh):
            if line.startswith("ID,") and i > 0:
                return i
            if i > 200:
                break
    raise ValueError(f"{path}: no 'ID,...' table header in the first 200 lines")


def floor(paths: list[str]) -> dict:
    """Read every export's table once with pandas, one process (cache warmed first, not timed)."""
    for p in paths:  # warm the page cache the same way for every measurement
        with open(p, "rb") as fh:
            while fh.read(1 << 22):
                pass
    t0 = time.perf_counter()
    rows = 0
    for p in paths:
        rows += len(pd.read_csv(p, skiprows=table_start(p), header=0))
    return {"seconds": time.perf_counter() - t0, "rows": rows}


# --------------------------------------------------------------------------- 3. workflow


def write_config(workdir: Path, sheets: Path) -> dict:
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["plates"] = str(sheets / "plates.tsv")
    cfg["samples"] = str(sheets / "samples.tsv")
    cfg["assays"] = str(sheets / "assays.tsv")
    cfg["classifier"]["activate"] = False
    cfg["predict"] = {"plates": "", "samples": ""}
    cfg["outcome"]["activate"] = False
    cfg["outcome"]["ctc_counts"] = ""
    cfg["outcome"]["clinical"] = ""
    (workdir / "config").mkdir(parents=True, exist_ok=True)
    # `configfile: "config/config.yaml"` in the Snakefile resolves against --directory,
    # so this is the file the run loads (checked in run_workflow from the log).
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return cfg


def targets_of(cfg: dict) -> list[str]:
    t = [f"results/normalised/{s}.tsv" for s in cfg["normalisation"]["strategies"]]
    t += [f"results/differential/{c['name']}.tsv" for c in cfg["differential"]["comparisons"]]
    return t + ["results/preprocessed/cq.tsv"]  # merge_batches: normalise no longer waits for it


class TreeRSS(threading.Thread):
    """Peak of the summed RSS of a process and all its descendants, polled from /proc."""

    def __init__(self, pid: int, interval: float = 0.1):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak = 0
        self.peak_single = 0
        self.stop = threading.Event()
        self.page = os.sysconf("SC_PAGE_SIZE")

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat", encoding="ascii", errors="replace") as fh:
                    stat = fh.read()
                ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(d))
        out, todo = [], [self.pid]
        while todo:
            p = todo.pop()
            out.append(p)
            todo.extend(children.get(p, []))
        return out

    def run(self) -> None:
        while not self.stop.is_set():
            total = 0
            for p in self._tree():
                try:
                    with open(f"/proc/{p}/statm", encoding="ascii") as fh:
                        rss = int(fh.read().split()[1]) * self.page
                except (OSError, ValueError, IndexError):
                    continue
                total += rss
                self.peak_single = max(self.peak_single, rss)
            self.peak = max(self.peak, total)
            self.stop.wait(self.interval)


#: rules generated once per batch (``<rule>_<batch>``), counted as one rule; read_exports_
#: names the read jobs of runs before the chip-level job read and preprocessed in one process
PER_BATCH_RULES = ("preprocess_batch_", "read_exports_")


def per_batch_rule(name: str) -> str:
    """``preprocess_batch_B3`` → ``preprocess_batch``; other rule names unchanged."""
    for prefix in PER_BATCH_RULES:
        if name.startswith(prefix):
            return prefix[:-1]
    return name


def rule_times(workdir: Path) -> dict:
    """Per rule: jobs, summed and longest job seconds, from .snakemake/metadata."""
    jobs: dict[tuple[str, object], list[float]] = {}
    meta = workdir / ".snakemake" / "metadata"
    for f in meta.iterdir() if meta.exists() else []:
        try:
            d = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if d.get("starttime") is None or d.get("endtime") is None:
            continue
        rule = per_batch_rule(d["rule"])
        key = (rule, d.get("job_hash") or base64.b64decode(f.name + "==="))
        s, e = jobs.get(key, [d["starttime"], d["endtime"]])
        jobs[key] = [min(s, d["starttime"]), max(e, d["endtime"])]
    out: dict[str, dict] = {}
    for (rule, _), (s, e) in jobs.items():
        r = out.setdefault(rule, {"jobs": 0, "sum_s": 0.0, "max_s": 0.0, "first_start": s, "last_end": e})
        r["jobs"] += 1
        r["sum_s"] += e - s
        r["max_s"] = max(r["max_s"], e - s)
        r["first_start"] = min(r["first_start"], s)
        r["last_end"] = max(r["last_end"], e)
    return dict(sorted(out.items(), key=lambda kv: kv[1]["first_start"]))


def run_workflow(n: int, sheets: Path, workdir: Path, cores: int, dry_only: bool = False) -> dict:
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    cfg = write_config(workdir, sheets)
    targets = targets_of(cfg)
    smk = snakemake_command(workdir)
    res: dict = {"targets": targets, "cores": cores}

    t0, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    dry = subprocess.run(smk + ["-n", "--cores", str(cores), *targets], capture_output=True, text=True)
    res["dry_run_s"] = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    res["dry_run_cpu_s"] = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    res["dry_run_ok"] = dry.returncode == 0
    m = re.search(r"^total\s+(\d+)", dry.stdout + dry.stderr, re.M)
    res["jobs"] = int(m.group(1)) if m else None
    (workdir / "dry_run.log").write_text(dry.stdout + dry.stderr)
    if "Config file(s): ['config/config.yaml']" not in dry.stdout + dry.stderr:
        log("warning: the dry run did not report Config file(s): ['config/config.yaml']")
    if not res["dry_run_ok"]:
        res["ok"] = False
        res["error"] = (dry.stdout + dry.stderr)[-3000:]
        return res
    if dry_only:
        res["ok"] = None
        res["skipped"] = "run not done (--dry-run-only)"
        return res

    time_v = shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time") else None)
    cmd = smk + ["--cores", str(cores), *targets]
    if time_v:
        cmd = [time_v, "-v", "-o", str(workdir / "time-v.txt")] + cmd
    logf = open(workdir / "run.log", "w")  # noqa: SIM115 (closed after the timed run)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT)
    poll = TreeRSS(proc.pid)
    poll.start()
    rc = proc.wait()
    res["wall_s"] = time.perf_counter() - t0
    poll.stop.set()
    poll.join()
    logf.close()
    res["ok"] = rc == 0
    res["peak_rss_tree_bytes"] = poll.peak
    res["peak_rss_single_polled_bytes"] = poll.peak_single
    if time_v and (workdir / "time-v.txt").exists():
        text = (workdir / "time-v.txt").read_text()
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
        if m:
            res["max_rss_single_time_v_bytes"] = int(m.group(1)) * 1024
        cpu = [re.search(rf"{kind} time \(seconds\): ([\d.]+)", text) for kind in ("User", "System")]
        if all(cpu):
            # snakemake waits for every job process, so this is the CPU time of the whole tree
            res["cpu_s"] = sum(float(c.group(1)) for c in cpu)
    res["rules"] = rule_times(workdir)
    if rc != 0:
        text = (workdir / "run.log").read_text(errors="replace")
        res["error"] = text[-3000:]
    return res


# --------------------------------------------------------------------------- 3b. report


def report_step(workdir: Path, cores: int) -> dict:
    """The rest of the workflow (every default target: QC figures, MIQE, layout,
    RDML), then ``snakemake --report`` as report.html and report.zip: wall and
    CPU time (user + sys of the child) and size of each."""
    import resource

    smk = snakemake_command(workdir)
    t0 = time.perf_counter()
    rest = subprocess.run(smk + ["--cores", str(cores)], capture_output=True, text=True)
    out: dict = {"rest_s": time.perf_counter() - t0, "rest_ok": rest.returncode == 0}
    (workdir / "rest.log").write_text(rest.stdout + rest.stderr)
    if rest.returncode != 0:
        out["error"] = (rest.stdout + rest.stderr)[-3000:]
        return out
    for name in ("report.html", "report.zip"):
        target = workdir / name
        target.unlink(missing_ok=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(smk + ["--report", str(target)], capture_output=True, text=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        out[name] = {
            "ok": proc.returncode == 0 and target.exists(),
            "wall_s": time.perf_counter() - t0,
            "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "bytes": target.stat().st_size if target.exists() else None,
            "load_average": os.getloadavg(),
        }
        (workdir / f"{name}.log").write_text(proc.stdout + proc.stderr)
    built = {k: v for k, v in out.items() if k.startswith("report.") and v["ok"]}
    out["row"] = "`snakemake --report`: wall (CPU), size"
    out["measured"] = "; ".join(
        f"{k} {v['wall_s']:.1f} s ({v['cpu_s']:.1f} s), {v['bytes'] / 1e6:.1f} MB" for k, v in built.items()
    )
    out["met"] = len(built) == 2 and all(v["wall_s"] <= 60 and v["bytes"] < 50e6 for v in built.values())
    return out


# --------------------------------------------------------------------------- 4. in-process comparison


def ensure_qpcr_venv() -> Path:
    py = QPCR_VENV / "bin" / "python"
    ok = py.exists() and subprocess.run([str(py), "-c", "import qpcr"], capture_output=True).returncode == 0
    if not ok:
        log(f"creating {QPCR_VENV} with {QPCR_SPEC} (once; git-ignored)")
        base = shutil.which("python3") or sys.executable
        subprocess.run([base, "-m", "venv", str(QPCR_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", QPCR_SPEC], check=True, stdout=sys.stderr)
    return py


def convert_for_qpcr(plates: pd.DataFrame, sheets: Path, out: Path) -> list[str]:
    """BioMark exports -> qpcr "vertical Big Table" CSVs (Sample, Assay, Ct, @qpcr). Not timed.

    Ct 999 (no amplification) -> empty; @qpcr = assay for role target, normaliser for role
    reference, empty (ignored by qpcr) for the ValidPrime and IPC assays. Rows sorted so the
    replicates of a sample are adjacent and patient/healthy samples come first (qpcr infers
    replicate groups from identical ids and checks the first group has > 1 replicate).
    """
    assays = pd.read_csv(sheets / "assays.tsv", sep="\t", dtype=str)
    samples = pd.read_csv(sheets / "samples.tsv", sep="\t", dtype=str)
    deco = assays.set_index("assay")["role"].map({"target": "assay", "reference": "normaliser"}).fillna("")
    kind = samples.set_index("sample")["kind"]
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for plate, path in zip(plates["plate"], plates["path"], strict=True):
        dest = out / f"{plate}.csv"
        paths.append(str(dest))
        if dest.exists() and dest.stat().st_mtime >= Path(path).stat().st_mtime:
            continue
        t = pd.read_csv(path, skiprows=table_start(path), header=0, usecols=[1, 4, 6])
        t.columns = ["Sample", "Assay", "Ct"]
        t["Ct"] = t["Ct"].where(t["Ct"] != 999)
        t["@qpcr"] = t["Assay"].map(deco).fillna("")
        control = ~t["Sample"].map(kind).isin(["patient", "healthy"])
        t = t.assign(_c=control).sort_values(["_c", "Sample"], kind="stable").drop(columns="_c")
        part = dest.with_name(dest.name + ".part")
        t.to_csv(part, index=False)
        os.replace(part, dest)  # a killed conversion never leaves a half file that looks done
    return paths


def ours_inprocess(plates: pd.DataFrame, sheets: Path, with_study: bool = False) -> dict:
    """Our library on the same chips: read_export per chip, then ΔCq vs the reference genes."""
    import numpy as np

    from ctc_qpcr import sheets as sh
    from ctc_qpcr.normalise import delta_cq, normalise_study, reference_normaliser
    from ctc_qpcr.parsers.registry import read_export

    samples = sh.samples_frame(sh.load_samples(str(sheets / "samples.tsv")))
    assays = sh.assays_frame(sh.load_assays(str(sheets / "assays.tsv")))
    refs = sorted(assays.loc[assays["role"] == "reference", "gene"].unique())
    t0 = time.perf_counter()
    wells = [
        read_export(p, fmt="biomark", plate=pl) for pl, p in zip(plates["plate"], plates["path"], strict=True)
    ]
    t1 = time.perf_counter()
    w = pd.concat(wells, ignore_index=True)
    role = assays.drop_duplicates("assay").set_index("assay")
    kind = samples.drop_duplicates("sample").set_index("sample")["kind"]
    w["gene"] = w["assay"].map(role["gene"])
    keep = w["assay"].map(role["role"]).isin(["target", "reference"]) & w["sample"].map(kind).isin(
        ["patient", "healthy"]
    )
    cq = w[keep].groupby(["sample", "gene"])["cq"].mean().unstack("gene")  # replicate mean (NaN = none)
    detected = cq.notna()
    norm, _flags, _used = reference_normaliser(cq, detected, refs)
    dcq = delta_cq(cq, norm)
    t2 = time.perf_counter()
    res = {
        "read_s": t1 - t0,
        "dcq_s": t2 - t1,
        "total_s": t2 - t0,
        "chips": len(plates),
        "samples": int(dcq.shape[0]),
        "genes": int(dcq.shape[1]),
        "finite_dcq": int(np.isfinite(dcq.to_numpy(dtype=float)).sum()),
    }
    if with_study:
        # the workflow's own study-level call (geNorm + NormFinder + reference strategy), for information
        cells = w[keep][["plate", "sample", "assay", "cq"]]
        t3 = time.perf_counter()
        normalise_study(cells, samples, assays, strategies=("reference",), reference_genes=refs)
        res["normalise_study_s"] = time.perf_counter() - t3
    return res


def compare(plates: pd.DataFrame, sheets: Path, scratch: Path, n: int, with_study: bool = False) -> dict:
    py = ensure_qpcr_venv()
    conv = convert_for_qpcr(plates, sheets, scratch / f"qpcr-{n}")
    manifest = scratch / f"qpcr-{n}.txt"
    manifest.write_text("\n".join(conv) + "\n")
    ours = ours_inprocess(plates, sheets, with_study)
    p = subprocess.run(
        [str(py), str(HERE / "qpcr_side.py"), "--manifest", str(manifest)], capture_output=True, text=True
    )
    if p.returncode != 0:
        return {"ours": ours, "qpcr": None, "error": p.stderr[-3000:]}
    theirs = json.loads(p.stdout.strip().splitlines()[-1])
    return {"ours": ours, "qpcr": theirs, "speedup": theirs["total_s"] / ours["total_s"]}


# --------------------------------------------------------------------------- profiling


def profile_hotspots(plates: pd.DataFrame, sheets: Path, top: int = 12) -> dict:
    """cProfile of the chip-level job of the first batch: read, write, preprocess, audit (informative)."""
    import logging

    from ctc_qpcr import chip_batch
    from ctc_qpcr import sheets as sh
    from ctc_qpcr.chip_options import chip_options
    from ctc_qpcr.tables import write_parquet, write_tsv

    samples = sh.load_samples(str(sheets / "samples.tsv"))
    assays = sh.assays_frame(sh.load_assays(str(sheets / "assays.tsv")))
    first = plates[plates["batch"] == plates["batch"].iloc[0]]
    batch = str(first["batch"].iloc[0])
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"ctc-bench-prof-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    out = {}

    def prof(name, fn):
        pr = cProfile.Profile(time.process_time)  # CPU time: the machine is shared
        t0 = time.perf_counter()
        pr.enable()
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - the workflow may be mid-change; report, go on
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
            return
        finally:
            pr.disable()
        s = io.StringIO()
        pstats.Stats(pr, stream=s).sort_stats("cumulative").print_stats(top)
        out[name] = {"seconds": time.perf_counter() - t0, "stats": s.getvalue()}

    def chip_job():
        log = logging.getLogger("bench")
        rows = first.assign(assay=first.get("assay", "")).to_dict("records")
        tables = chip_batch.read_batch(
            rows, batch, samples, assays, lod=35.0, unknown_names="error", on_incomplete="stop", log=log
        )
        for pl, wl in zip(first["plate"], tables, strict=True):
            write_parquet(wl, tmp / f"{pl}.parquet")
            write_tsv(wl, tmp / f"{pl}.tsv")
        options = chip_options({"ipc": {"on_missing": "uncalibrated"}})
        result = chip_batch.preprocess_and_audit(
            chip_batch.batch_wells(tables),
            sh.samples_frame(samples),
            assays,
            options,
            batch=batch,
            exports={},
            log=log,
        )
        write_parquet(result["audit"], tmp / "wells.parquet")
        write_tsv(result["audit"], tmp / "wells.tsv")

    prof(f"chip-level job, preprocess_batch ({len(first)} chips)", chip_job)
    shutil.rmtree(tmp, ignore_errors=True)
    return out


# --------------------------------------------------------------------------- report


def fmt_s(x) -> str:
    return "—" if x is None else f"{x:.1f} s" if x >= 10 else f"{x:.2f} s"


def verdict(ok) -> str:
    return "—" if ok is None else ("met" if ok else "**missed**")


def _noop_variant_rows(r: dict, n: int) -> list[str]:
    """The no-op graph's variants: jobs importing numpy + pyarrow only, and jobs importing nothing."""
    what = {
        "noop_dag_no_pandas": "the same, jobs importing numpy + pyarrow.parquet only (no pandas)",
        "noop_dag_bare": "the same, jobs importing nothing (Snakemake, scheduling, interpreter start)",
    }
    rows = []
    for key, text in what.items():
        noop = r.get(key) or {}
        if noop.get("ok"):
            rows.append(f"| {text} | {n} | {fmt_s(noop['wall_s'])} (CPU {fmt_s(noop['cpu_s'])}) | — | — |")
    return rows


def _io_floor_rows(r: dict, n: int) -> list[str]:
    """The writing floor: the run's tables written again by Arrow alone (``benchmarks/io_floor.py``)."""
    io = r.get("io_floor")
    if not io:
        return []
    return [
        f"| writing floor: the run's {io['tsv_files']} TSVs ({io['tsv_bytes'] / 1e6:.0f} MB) written "
        f"again by Arrow alone; its {io['parquet_files']} Parquet files encoded again (read again) "
        f"| {n} | CPU {fmt_s(io['tsv_write_cpu_s'])}; {fmt_s(io['parquet_write_cpu_s'])} "
        f"({fmt_s(io['parquet_read_cpu_s'])}) | — | — |"
    ]


def _ratio_row(n: int, wall, floor_s, base96: dict) -> str | None:
    """The ratio the target is about: wall / floor at 96 chips, wall / 96-chip wall above."""
    if wall is None:
        return None
    if n > 96:
        b = base96.get("wall_s") if base96.get("ok") else None
        return (
            f"| ratio: wall / 96-chip wall | {n} | {wall / b:.1f} × | ≤ 11 × | {verdict(wall <= 11 * b)} |"
            if b
            else None
        )
    if not floor_s:
        return None
    return f"| ratio: wall / floor | {n} | {wall / floor_s:.1f} × | — | — |"


def table(results: dict[int, dict]) -> str:
    rows = ["| measure | chips | measured | target | verdict |", "|---|---:|---:|---|---|"]
    base96 = results.get(96, {}).get("workflow", {})
    for n in sorted(results):
        r = results[n]
        fl = r.get("floor", {}).get("seconds")
        wf = r.get("workflow", {})
        wall = wf.get("wall_s") if wf.get("ok") else None
        shown = (
            fmt_s(wall)
            if wall is not None
            else (f"> {fmt_s(wf['wall_s'])} (stopped)" if wf.get("wall_s") else "—")
        )
        sim = r.get("simulate", {}).get("seconds")
        if sim is not None:
            rows.append(f"| simulate chips (not part of any target) | {n} | {fmt_s(sim)} | — | — |")
        rows.append(f"| floor: pandas read_csv of every export, one process | {n} | {fmt_s(fl)} | — | — |")
        if wf:
            rows.append(
                f"| dry run `snakemake -n` ({wf.get('jobs')} jobs) | {n} | {fmt_s(wf.get('dry_run_s'))} "
                + (f"(CPU {fmt_s(wf['dry_run_cpu_s'])}) " if wf.get("dry_run_cpu_s") is not None else "")
                + f"| ≤ 5 s | {verdict(wf['dry_run_s'] <= 5 if wf.get('dry_run_ok') else False)} |"
            )
            status = "" if wf.get("ok") else (" (not run)" if wf.get("skipped") else " (run FAILED)")
            if n == 1000 or n > 96:
                b = base96.get("wall_s") if base96.get("ok") else None
                lim = 11 * b if b else None
                rows.append(
                    f"| `snakemake --cores {wf.get('cores')}` raw → normalised + differential{status} | {n} "
                    f"| {shown} | ≤ 11 × 96-chip time"
                    f"{' = ' + fmt_s(lim) if lim else ''} | "
                    f"{verdict(_within(wall, lim, wf))} |"
                )
            else:
                lim = 3 * fl + 10 if fl is not None else None
                rows.append(
                    f"| `snakemake --cores {wf.get('cores')}` raw → normalised + differential{status} | {n} "
                    f"| {shown} | ≤ 3 × floor + 10 s = {fmt_s(lim)} | "
                    f"{verdict(_within(wall, lim, wf))} |"
                )
            noop = r.get("noop_dag") or {}
            if noop.get("ok"):
                rows.append(
                    f"| the same job graph doing nothing ({noop['jobs']} jobs that start Python and import "
                    f"pandas + pyarrow; `benchmarks/noop_dag.py`) | {n} | {fmt_s(noop['wall_s'])} "
                    f"(CPU {fmt_s(noop['cpu_s'])}) | — | — |"
                )
            rows.extend(_noop_variant_rows(r, n))
            rows.extend(_io_floor_rows(r, n))
            ratio = _ratio_row(n, wall, fl, base96)
            if ratio:
                rows.append(ratio)
            if wf.get("cpu_s") is not None:
                rows.append(
                    f"| CPU time of the run, user + sys of every process (info: the machine is shared) "
                    f"| {n} | {fmt_s(wf['cpu_s'])} | — | — |"
                )
            if wf.get("peak_rss_tree_bytes"):
                peak = wf.get("peak_rss_tree_bytes", 0) / GB
                single = wf.get("max_rss_single_time_v_bytes", wf.get("peak_rss_single_polled_bytes", 0)) / GB
                rows.append(
                    f"| peak RSS, whole process tree (largest single process) | {n} | {peak:.2f} GB "
                    f"({single:.2f} GB) | ≤ 2 GB{' (1,000 chips)' if n != 1000 else ''} | "
                    f"{verdict(peak <= 2) if n >= 1000 else verdict(peak <= 2) + ' (target is for 1,000)'} |"
                )
        rep = r.get("report") or {}
        if rep.get("row"):
            rows.append(
                f"| {rep['row']} | {n} | {rep['measured']} | ≤ 60 s (1,000 chips); < 50 MB (96) | "
                f"{verdict(rep['met'])} |"
            )
        c = r.get("compare")
        if c and c.get("qpcr"):
            o, q = c["ours"], c["qpcr"]
            rows.append(
                f"| in-process read + ΔCq, ctc-qpcr library | {o['chips']} | {fmt_s(o['total_s'])} "
                f"(read {fmt_s(o['read_s'])}, ΔCq {fmt_s(o['dcq_s'])}) | — | — |"
            )
            rows.append(
                f"| in-process read + ΔCq, PyPI qpcr {q['versions']['qpcr']} | {q['chips']} | "
                f"{fmt_s(q['total_s'])} (read {fmt_s(q['read_s'])}, ΔCq {fmt_s(q['dcq_s'])}) | — | — |"
            )
            rows.append(
                f"| speed-up over qpcr on the shared steps | {o['chips']} | {c['speedup']:.1f}× | ≥ 10× | "
                f"{verdict(c['speedup'] >= 10)} |"
            )
            if o.get("normalise_study_s") is not None:
                rows.append(
                    f"| (info) library `normalise_study`, reference strategy, incl. geNorm/NormFinder | "
                    f"{o['chips']} | {fmt_s(o['normalise_study_s'])} | — | — |"
                )
        elif c:
            rows.append(
                f"| in-process comparison with qpcr | — | failed: see results-{n}.json | ≥ 10× | **missed** |"
            )
    return "\n".join(rows)


def rules_table(results: dict[int, dict]) -> str:
    lines = []
    for n in sorted(results):
        rules = results[n].get("workflow", {}).get("rules") or {}
        if not rules:
            continue
        lines += [
            f"\nTime per rule, {n} chips (jobs; sum of job wall times; longest job):\n",
            "| rule | jobs | sum | longest |",
            "|---|---:|---:|---:|",
        ]
        for name, v in rules.items():
            lines.append(f"| {name} | {v['jobs']} | {fmt_s(v['sum_s'])} | {fmt_s(v['max_s'])} |")
    return "\n".join(lines)


def machine() -> str:
    try:
        cpu = next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")
            ),
            "?",
        )
    except OSError:
        cpu = "?"
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GB
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs ({cpu}), "
        f"{mem:.0f} GB RAM, Python {platform.python_version()}"
    )


def write_readme(text: str) -> None:
    body = README.read_text()
    if BEGIN not in body or END not in body:
        body = body.rstrip() + f"\n\n## Results\n\n{BEGIN}\n{END}\n"
    pre, rest = body.split(BEGIN, 1)
    _, post = rest.split(END, 1)
    README.write_text(pre + BEGIN + "\n" + text.strip() + "\n" + END + post)


# --------------------------------------------------------------------------- main


def measure(n: int, a: argparse.Namespace, scratch: Path) -> dict:
    """Steps 1-4 for N chips; the numbers go to SCRATCH/results-N.json (and are returned)."""
    sheets = scratch / f"chips-{n}"

    res: dict = {
        "chips": n,
        "machine": machine(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load_average_start": os.getloadavg(),
    }
    previous = scratch / f"results-{n}.json"
    if previous.exists() and (a.skip_workflow or a.skip_compare):
        # keep what this run does not measure again (e.g. --skip-workflow keeps the last workflow numbers)
        try:
            old = json.loads(previous.read_text())
            for key in ("workflow",) * a.skip_workflow + ("compare",) * a.skip_compare:
                if key in old:
                    res[key] = old[key]
        except ValueError:
            pass
    log(f"1. simulate {n} chips -> {sheets}")
    res["simulate"] = simulate(n, sheets, a.seed, a.regen)
    res["sheets"] = sheet_summary(sheets)
    log(f"   {res['sheets']}")
    if not res["sheets"]["with_response"] or not res["sheets"]["with_timepoint"]:
        log(
            "   warning: the simulated samples sheet lacks response/timepoint: "
            "differential comparisons will be skipped"
        )
    plates = pd.read_csv(sheets / "plates.tsv", sep="\t", dtype=str)

    log("2. floor: pandas read_csv of every export")
    res["floor"] = floor(list(plates["path"]))
    log(f"   {res['floor']['seconds']:.2f} s, {res['floor']['rows']} rows")

    if not a.skip_workflow:
        log(f"3. snakemake -n and snakemake --cores {a.cores} in {scratch / f'wd-{n}'}")
        res["workflow"] = run_workflow(n, sheets, scratch / f"wd-{n}", a.cores, a.dry_run_only)
        wf = res["workflow"]
        state = {True: "ok", False: "FAILED", None: "not done"}[wf.get("ok")]
        log(
            f"   dry run {wf['dry_run_s']:.2f} s; run {state}"
            + (
                f" {wf['wall_s']:.1f} s, peak RSS {wf['peak_rss_tree_bytes'] / GB:.2f} GB"
                if wf.get("wall_s")
                else ""
            )
        )
        if wf.get("ok") is False:
            log("   error tail:\n" + wf.get("error", "")[-1500:])

    if res.get("workflow", {}).get("ok") and not a.skip_workflow and n <= 96:
        log("3a. the writing floor: the run's tables written again by Arrow alone")
        res["io_floor"] = io_floor(scratch / f"wd-{n}")
        log(f"   {res['io_floor']}")
        log("3a. the same job graph doing nothing (start-up and imports only)")
        batches = list(dict.fromkeys(plates["batch"]))
        for variant, imports in NOOP_VARIANTS.items():
            key = "noop_dag" if variant == "imports" else f"noop_dag_{variant}"
            workdir = scratch / f"noop-{n}"
            res[key] = noop_floor(VENV_PY.parent / "snakemake", batches, a.cores, workdir, imports)
            log(f"   {variant}: {res[key]}")

    if res.get("workflow", {}).get("ok") and not a.skip_workflow and not a.skip_rest:
        log(f"3b. the rest of the workflow, then snakemake --report (html and zip) in {scratch / f'wd-{n}'}")
        res["report"] = report_step(scratch / f"wd-{n}", a.cores)
        log(f"   {res['report']}")

    if not a.skip_compare:
        k = min(n, a.compare_chips or 96)
        log(f"4. in-process read + ΔCq on {k} chips: ctc-qpcr library vs PyPI {QPCR_SPEC}")
        res["compare"] = compare(plates.iloc[:k], sheets, scratch, k, a.with_normalise_study)
        if res["compare"].get("qpcr"):
            log(
                f"   ours {res['compare']['ours']['total_s']:.2f} s, "
                f"qpcr {res['compare']['qpcr']['total_s']:.2f} s,"
                f" speed-up {res['compare']['speedup']:.1f}x"
            )
        else:
            log("   qpcr side failed:\n" + res["compare"].get("error", ""))

    if a.profile:
        log("profiling the chip-level read job of the first batch")
        res["profile"] = profile_hotspots(plates, sheets)
        for name, v in res["profile"].items():
            print(f"\n### cProfile: {name}\n", v.get("error") or v["stats"], file=sys.stderr)

    res["load_average_end"] = os.getloadavg()
    (scratch / f"results-{n}.json").write_text(json.dumps(res, indent=1, default=str))
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--chips",
        default="96",
        help="number(s) of 96.96 chips, comma-separated: 96,1000 measures both in one run (default 96)",
    )
    ap.add_argument(
        "--scratch", default=str(HERE / "out"), help="scratch folder (default benchmarks/out, git-ignored)"
    )
    ap.add_argument("--seed", type=int, default=2016)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument(
        "--compare-chips",
        type=int,
        default=None,
        help="chips for the in-process comparison with qpcr (default: min(N, 96))",
    )
    ap.add_argument("--regen", action="store_true", help="simulate again even if the chips are there")
    ap.add_argument("--skip-workflow", action="store_true")
    ap.add_argument("--skip-compare", action="store_true")
    ap.add_argument(
        "--skip-rest", action="store_true", help="skip step 3b (the rest of the workflow and the report)"
    )
    ap.add_argument(
        "--dry-run-only", action="store_true", help="workflow step: the dry run only, no real run"
    )
    ap.add_argument(
        "--with-normalise-study",
        action="store_true",
        help="comparison: also time the library's normalise_study on the same wells (information)",
    )
    ap.add_argument(
        "--profile",
        action="store_true",
        help="also cProfile the chip-level job of the first batch (informative)",
    )
    ap.add_argument("--write-readme", action="store_true", help="write the table into benchmarks/README.md")
    a = ap.parse_args(argv)
    chip_counts = sorted({int(c) for c in str(a.chips).split(",") if c.strip()})
    scratch = Path(a.scratch).resolve()
    scratch.mkdir(parents=True, exist_ok=True)
    for n in chip_counts:  # e.g. --chips 96,1000: both measured in this run, 96 first
        measure(n, a, scratch)
    results = {}
    for f in sorted(scratch.glob("results-*.json")):
        try:
            d = json.loads(f.read_text())
            results[int(d["chips"])] = d
        except (ValueError, KeyError):
            continue
    loads = ", ".join(
        f"{k} chips {r['load_average_start'][0]:.1f} → {r['load_average_end'][0]:.1f}"
        for k, r in sorted(results.items())
        if r.get("load_average_start") and r.get("load_average_end")
    )
    text = (
        f"Measured on {machine()}, `--cores {a.cores}`, {time.strftime('%Y-%m-%d')}"
        + (f"; 1-minute load average at start → end: {loads}" if loads else "")
        + ".\n\n"
        + table(results)
        + "\n"
        + rules_table(results)
        + "\n"
    )
    print(text)
    if a.write_readme:
        write_readme(text)
        log(f"wrote the table to {README}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
