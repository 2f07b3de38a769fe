"""A job killed mid-run leaves no partial output that a later run would trust.

* Unit: ``ctc_qpcr.tables.write_tsv`` / ``write_parquet`` leave no file (and
  keep an older complete one unchanged) when the writer raises half-way or the
  writing process is SIGKILLed; the next write removes a killed writer's
  hidden ``.part`` file.
* Workflow: the example study is started in a scratch copy, snakemake's whole
  process group is SIGKILLed while the first chip-level job
  (``preprocess_batch_<batch>``) writes its tables, the lock is cleared
  (``snakemake --unlock``, as a user would) and the run is repeated: it
  completes and its results are byte-identical to an uninterrupted run's. The
  targets stop at the merged chip-level tables (read and preprocess per batch →
  merge, every job that writes per-plate and per-batch tables), which keeps the
  test independent of the study-level stages.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from ctc_qpcr.tables import write_parquet, write_tsv  # noqa: E402


class Boom:
    """A cell whose text conversion fails after ``n`` successful ones (a writer dying half-way)."""

    calls = 0

    def __init__(self, n: int) -> None:
        self.n = n

    def __str__(self) -> str:
        Boom.calls += 1
        if Boom.calls > self.n:
            raise RuntimeError("writer died")
        return "x"


def _frame_that_fails(rows: int = 5000, after: int = 2500) -> pd.DataFrame:
    Boom.calls = 0
    boom = Boom(after)
    return pd.DataFrame(
        {
            "sample": [f"S{i}" for i in range(rows)],
            "cq": [20.0 + i / rows for i in range(rows)],
            "obj": [boom] * rows,
        }
    )


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_write_tsv_leaves_no_file_when_the_writer_raises(tmp_path):
    target = tmp_path / "out" / "cells.tsv"
    with pytest.raises(RuntimeError, match="writer died"):
        write_tsv(_frame_that_fails(), target)
    assert Boom.calls > 1, "the writer must have started writing before it failed"
    assert _leftovers(target.parent) == []


def test_write_tsv_keeps_the_old_complete_table_when_the_writer_raises(tmp_path):
    target = tmp_path / "cells.tsv"
    write_tsv(pd.DataFrame({"sample": ["A"], "cq": [21.5]}), target)
    before = target.read_bytes()
    with pytest.raises(RuntimeError):
        write_tsv(_frame_that_fails(), target)
    assert target.read_bytes() == before
    assert _leftovers(tmp_path) == ["cells.tsv"]


def test_write_parquet_leaves_no_file_when_the_writer_raises(tmp_path):
    target = tmp_path / "cells.parquet"
    frame = pd.DataFrame({"sample": ["A", "B"], "cq": [1.0, object()]})  # not convertible to Parquet
    with pytest.raises((ValueError, TypeError)):  # pyarrow's ArrowInvalid / ArrowTypeError
        write_parquet(frame, target)
    assert _leftovers(tmp_path) == []


def test_tables_get_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        write_tsv(pd.DataFrame({"a": [1]}), tmp_path / "t.tsv")
    finally:
        os.umask(old)
    assert (tmp_path / "t.tsv").stat().st_mode & 0o777 == 0o644


def test_sigkill_during_write_tsv_leaves_no_table_and_the_next_write_cleans_up(tmp_path):
    target = tmp_path / "big.tsv"
    script = textwrap.dedent(
        f"""
        import sys, pandas as pd
        sys.path.insert(0, {str(REPO / "scripts")!r})
        from ctc_qpcr.tables import write_tsv
        n = 3_000_000
        df = pd.DataFrame({{"sample": ["S%d" % (i % 997) for i in range(n)], "cq": [20.0 + i / n for i in range(n)]}})
        print("ready", flush=True)
        write_tsv(df, {str(target)!r})
        """  # noqa: E501 (one long line of the child script)
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 60
        while (
            not list(tmp_path.glob(".big.tsv.*.part"))
            or next(tmp_path.glob(".big.tsv.*.part")).stat().st_size == 0
        ):
            assert proc.poll() is None and time.monotonic() < deadline, (
                "the writer finished before it could be killed"
            )
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not target.exists(), "a killed writer must not leave the table"
    assert len(list(tmp_path.glob(".big.tsv.*.part"))) == 1  # hidden, never trusted
    write_tsv(pd.DataFrame({"a": [1]}), target)
    assert _leftovers(tmp_path) == ["big.tsv"]


# --------------------------------------------------------------------------- workflow

TARGETS = ("results/preprocessed/cq.tsv", "results/qc/wells.tsv", "results/qc/wells_summary.tsv")
#: what the chip-level job writes for its batch besides each plate's results/cq tables
BATCH_TABLES = (
    "cells.parquet",
    "wells.parquet",
    "wells.tsv",
    "wells_summary.tsv",
    "validprime_assays.tsv",
    "plate_calibration.tsv",
    "efficiency.tsv",
)


def _run(work: Path, *args: str) -> subprocess.CompletedProcess:
    from workflow_helpers import snakemake

    return snakemake(work, "--cores", "2", *args, *TARGETS)


@pytest.mark.workflow
def test_killed_run_is_redone_and_matches_an_uninterrupted_run(tmp_path):
    from workflow_helpers import make_workdir, result_hashes, snakemake_bin

    reference = make_workdir(tmp_path / "reference")
    _run(reference)
    expected = result_hashes(reference)
    assert any(k.endswith("preprocessed/cq.tsv") for k in expected)

    work = make_workdir(tmp_path / "killed")
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONHASHSEED="0")
    proc = subprocess.Popen(
        [snakemake_bin(), "--cores", "2", *TARGETS],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    cq = work / "results" / "cq"
    try:
        deadline = time.monotonic() + 300
        while not (cq.is_dir() and any(p.suffix == ".parquet" for p in cq.iterdir())):
            assert proc.poll() is None, "snakemake ended before a chip-level output appeared"
            assert time.monotonic() < deadline, "no chip-level output after 300 s"
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGKILL)  # snakemake and the job it runs, mid-job
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    interrupted = result_hashes(work)
    assert not any(k.endswith("preprocessed/cq.tsv") for k in interrupted), (
        "killed before the end, as intended"
    )
    plates = pd.read_csv(work / "resources/example/plates.tsv", sep="\t")
    started = set()  # batches whose chip-level job had written some, but not all, of its tables
    for batch, grp in plates.groupby("batch"):
        outputs = [f"results/cq/{p}.{ext}" for p in grp["plate"] for ext in ("parquet", "tsv")]
        outputs += [f"results/batches/{batch}/{name}" for name in BATCH_TABLES]
        present = [o for o in outputs if o in interrupted]
        if present and len(present) < len(outputs):
            started.add(batch)
    assert started, f"the kill should hit a chip-level job half-way: {sorted(interrupted)}"
    # Whatever a killed job left must not be taken as done: the rerun redoes that job.
    _run(work, "--unlock")
    rerun = _run(work)
    for batch in started:
        assert f"preprocess_batch_{batch}" in rerun.stdout + rerun.stderr
    assert result_hashes(work) == expected


def test_concat_tsv_files_is_exact_across_read_blocks(tmp_path):
    from ctc_qpcr.tables import concat_tsv_files

    a, b = tmp_path / "a.tsv", tmp_path / "b.tsv"
    a.write_text("x\ty\n" + "".join(f"{i}\tlong-text-{i}\n" for i in range(500)))
    b.write_text("x\ty\n" + "".join(f"{i}\tb{i}\n" for i in range(300)) + "300\tno-final-newline")
    out = tmp_path / "out.tsv"
    rows = concat_tsv_files([a, b], out, block_size=7)  # blocks end mid-line
    lines = out.read_text().splitlines()
    assert rows == 801 == len(lines) - 1
    assert lines[0] == "x\ty" and lines[1] == "0\tlong-text-0" and lines[-1] == "300\tno-final-newline"
    assert out.read_text().endswith("\n")
