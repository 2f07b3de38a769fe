"""scripts/merge_batches.py: the study cells written batch by batch equal the whole-study sort,
and the whole-frame fallback (panel gaps, differing column types) still stops or flags."""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ctc_qpcr.tables import write_parquet, write_tsv

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "resources" / "example"


class Named(list):
    def __init__(self, items: dict):
        flat = []
        for key, value in items.items():
            setattr(self, key, value)
            flat += value if isinstance(value, list) else [value]
        super().__init__(flat)


class Job:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def batch_tables(
    root: Path, batch: str, assays: list[str], seed: int, samples=("S2", "S10", "S1"), copies: int = 1
) -> None:
    """A batch's tables; samples unsorted on purpose; ``copies`` > 1: every cell that many times
    (rows with equal sort keys, kept in their order by a stable sort)."""
    rng = np.random.default_rng(seed)
    plates = [f"{batch}_p2", f"{batch}_p1"]
    cells = pd.DataFrame(
        [(batch, p, s, a) for _ in range(copies) for p in plates for s in samples for a in assays],
        columns=["batch", "plate", "sample", "assay"],
    )
    cells["cq"] = rng.normal(25, 3, len(cells)).round(6)
    cells["detected"] = rng.random(len(cells)) < 0.8
    cells["flags"] = np.where(rng.random(len(cells)) < 0.2, "HIGHSD", "")
    cells = cells.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    out = root / "results" / "batches" / batch
    write_parquet(cells, out / "cells.parquet")
    wells = cells[["batch", "plate", "sample", "assay"]].assign(well=[f"w{i}" for i in range(len(cells))])
    write_parquet(wells, out / "wells.parquet")
    write_tsv(wells, out / "wells.tsv")
    summary = wells.groupby(["batch", "plate"]).size().rename("read").reset_index()
    summary = summary.assign(kept=summary["read"], excluded=0, non_detected=0)
    write_tsv(summary, out / "wells_summary.tsv")
    for name in ("validprime_assays", "plate_calibration", "efficiency"):
        write_tsv(pd.DataFrame({"batch": [batch], "value": [1.5]}), out / f"{name}.tsv")


def run_merge(root: Path, batches: list[str], on_panel_mismatch: str = "stop") -> pd.DataFrame:
    def tables(name):
        return [str(root / "results" / "batches" / b / name) for b in batches]

    job = Job(
        input=Named(
            {
                "cells": tables("cells.parquet"),
                "wells": tables("wells.parquet"),
                "audit": tables("wells.tsv"),
                "audit_summary": tables("wells_summary.tsv"),
                "validprime": tables("validprime_assays.tsv"),
                "calibration": tables("plate_calibration.tsv"),
                "efficiency": tables("efficiency.tsv"),
                "samples": str(EXAMPLE / "samples.tsv"),
                "assays": str(EXAMPLE / "assays.tsv"),
            }
        ),
        output=Named(
            {
                name: str(root / "out" / f"{name}.{'parquet' if name == 'cq_parquet' else 'tsv'}")
                for name in (
                    "cq",
                    "cq_parquet",
                    "wells",
                    "wells_summary",
                    "validprime",
                    "calibration",
                    "efficiency",
                    "unplated",
                )
            }
        ),
        params=Job(on_panel_mismatch=on_panel_mismatch),
        log=[str(root / "merge.log")],
        wildcards=Job(),
    )
    runpy.run_path(str(REPO / "scripts" / "merge_batches.py"), init_globals={"snakemake": job})
    return pd.read_parquet(job.output.cq_parquet)


def expected(root: Path, batches: list[str]) -> pd.DataFrame:
    cells = pd.concat([pd.read_parquet(root / "results" / "batches" / b / "cells.parquet") for b in batches])
    return cells.sort_values(["batch", "plate", "sample", "assay"], kind="stable").reset_index(drop=True)


def test_streamed_cells_equal_the_whole_study_sort(tmp_path):
    batches = ["B2", "B10", "B1"]  # plates.tsv order; the study table sorts them as text
    for i, b in enumerate(batches):
        batch_tables(tmp_path, b, ["ESR1", "ABCC1", "KRT19"], seed=i)
    got = run_merge(tmp_path, batches)
    want = expected(tmp_path, batches)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    written = (tmp_path / "out" / "cq.tsv").read_bytes()
    write_tsv(want, tmp_path / "whole.tsv")
    assert written == (tmp_path / "whole.tsv").read_bytes()
    assert list(got["batch"].drop_duplicates()) == ["B1", "B10", "B2"]


def test_arrow_sort_is_the_pandas_stable_sort(tmp_path):
    """The batches are sorted in Arrow: the same order as pandas' stable sort with non-ASCII
    names, case, a missing sample name (last) and rows with equal keys (kept in file order)."""
    batches = ["B2", "B1"]
    names = ["s1", "Ärzte", None, "S10", "Zeta", "S2", "éclair", "S1"]
    for i, b in enumerate(batches):
        batch_tables(tmp_path, b, ["ESR1", "ABCC1"], seed=i + 5, samples=names, copies=3)
    got = run_merge(tmp_path, batches)
    want = expected(tmp_path, batches)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert got["sample"].isna().sum() == 2 * 2 * 2 * 3  # kept, and sorted last within each plate
    write_tsv(want, tmp_path / "whole.tsv")
    assert (tmp_path / "out" / "cq.tsv").read_bytes() == (tmp_path / "whole.tsv").read_bytes()


def test_panel_gap_stops_or_flags_as_before(tmp_path):
    batch_tables(tmp_path, "B1", ["ESR1", "ABCC1", "KRT19"], seed=1)
    batch_tables(tmp_path, "B2", ["ESR1", "ABCC1"], seed=2)
    with pytest.raises(SystemExit):  # the adapter ends the job with the ConfigError's message
        run_merge(tmp_path, ["B1", "B2"], "stop")
    assert "KRT19 (missing from batch B2" in (tmp_path / "merge.log").read_text()
    got = run_merge(tmp_path, ["B1", "B2"], "restrict")
    flagged = got["flags"].str.contains("panel_partial")
    assert flagged.equals(got["assay"] == "KRT19")
    assert len(got) == len(expected(tmp_path, ["B1", "B2"]))


def test_config_value_checked_on_the_streamed_path(tmp_path):
    batch_tables(tmp_path, "B1", ["ESR1"], seed=1)
    with pytest.raises(SystemExit):
        run_merge(tmp_path, ["B1"], "drop")
    assert "not one of stop, restrict" in (tmp_path / "merge.log").read_text()  # panel.py's ConfigError


def test_cell_order_and_distinct_values():
    """A batch already in (batch, plate, sample, assay) order is recognised (then not sorted
    again); one out of order, or with a missing key, is not. Distinct values of a dictionary
    column come from its chunks' dictionaries."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from ctc_qpcr.study_cells import distinct_values, in_cell_order

    keys = {"batch": ["B1"] * 4, "plate": ["p1", "p1", "p1", "p2"], "sample": ["S1", "S1", "S2", "S0"]}
    ordered = pa.table({**keys, "assay": ["a", "b", "a", "a"]})
    assert in_cell_order(ordered) and in_cell_order(ordered.slice(0, 1))
    assert not in_cell_order(pa.table({**keys, "assay": ["b", "a", "a", "a"]}))
    assert not in_cell_order(pa.table({**keys, "assay": ["a", None, "b", "a"]}))
    column = pa.chunked_array([pc.dictionary_encode(pa.array(v)) for v in (["x", "y", "x"], ["z", None])])
    assert distinct_values(column) == {"x", "y", "z", None}


def cells_paths(root: Path, batches: list[str]) -> list[str]:
    return [str(root / "results" / "batches" / b / "cells.parquet") for b in batches]


@pytest.mark.parametrize(
    "panels, mode",
    [
        (
            {
                "B2": ["ESR1", "ABCC1", "KRT19"],
                "B10": ["ESR1", "ABCC1", "KRT19"],
                "B1": ["ESR1", "ABCC1", "KRT19"],
            },
            "stop",
        ),
        ({"B1": ["ESR1", "ABCC1", "KRT19"], "B2": ["ESR1", "ABCC1"]}, "restrict"),  # the whole-frame path
    ],
)
@pytest.mark.parametrize("names", [["S2", "s1", None, "S10", "Ärzte"], ["S2", "s1", "S10", "Ärzte"]])
def test_normalise_reads_the_cells_merge_writes(tmp_path, panels, mode, names):
    """The normalise job reads the batches (it runs beside merge_batches): the frame it gets is
    the one it read from merge's cq.parquet before, row for row (batches out of order, samples
    unsorted, with and without missing names; a panel gap flagged by ``restrict``)."""
    from ctc_qpcr.normalise_io import read_cells, read_study_cells

    for i, (batch, assays) in enumerate(panels.items()):
        batch_tables(tmp_path, batch, assays, seed=i + 3, samples=names, copies=2)
    run_merge(tmp_path, list(panels), mode)
    want = read_cells(tmp_path / "out" / "cq_parquet.parquet")
    got = read_study_cells(cells_paths(tmp_path, list(panels)), mode)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert len(got) == sum(len(a) for a in panels.values()) * 2 * len(names) * 2


def test_normalise_stops_on_a_panel_gap_as_merge_does(tmp_path):
    from ctc_qpcr.errors import ConfigError
    from ctc_qpcr.normalise_io import read_study_cells

    batch_tables(tmp_path, "B1", ["ESR1", "ABCC1", "KRT19"], seed=1)
    batch_tables(tmp_path, "B2", ["ESR1", "ABCC1"], seed=2)
    with pytest.raises(ConfigError, match="KRT19 \\(missing from batch B2"):
        read_study_cells(cells_paths(tmp_path, ["B1", "B2"]), "stop")
    with pytest.raises(ConfigError, match="not one of stop, restrict"):
        read_study_cells(cells_paths(tmp_path, ["B1"]), "drop")


def test_order_keys_of_dictionary_columns_compare_as_their_words():
    """A dictionary column is checked for cell order by the rank of its words (no string per
    row): the same answer as its words, chunks with their own dictionaries included."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from ctc_qpcr.study_cells import _order_key, in_cell_order

    rng = np.random.default_rng(3)
    words = np.array(["S1", "S10", "S2", "s1", "Ärzte", "P0050_T2"], dtype=object)
    for _ in range(20):
        parts = [
            sorted(rng.choice(words, 6)) if rng.random() < 0.5 else list(rng.choice(words, 6))
            for _ in range(3)
        ]
        plain = pa.chunked_array([pa.array(p) for p in parts])
        coded = pa.chunked_array([pc.dictionary_encode(pa.array(p)) for p in parts])
        key = _order_key(coded)
        flat_key, flat_plain = key.combine_chunks(), plain.combine_chunks()
        n = len(flat_plain)
        same = pc.equal(
            pc.less(flat_key[: n - 1], flat_key[1:]), pc.less(flat_plain[: n - 1], flat_plain[1:])
        )
        assert pc.all(same).as_py()
        table = {"batch": ["B1"] * n, "plate": ["p1"] * n, "sample": ["S"] * n}
        assert in_cell_order(pa.table({**table, "assay": key})) == in_cell_order(
            pa.table({**table, "assay": plain})
        )
