"""The fast paths of the dry run's sheet loading give what the slow ones gave.

* ``sheet_text._records`` looks for comment lines only when a line starts
  with ``#``; it must give the grid (and line numbers) of the full scan, on
  random sheets with short rows, blank and comment lines, empty cells and odd
  white space.
* ``sheets.check_distinct_exports`` compares equal-size exports by their first
  block before hashing them whole: files sharing a size and a first block but
  not their end are distinct; copies, links and links to folders are refused
  with the same messages.
* ``config_check.check_yaml_file`` parses with libyaml first: the same data,
  and for a broken file the message of PyYAML's own parser.
"""

from __future__ import annotations

import csv
import io
import os
import random
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from ctc_qpcr import config_check, sheet_text, sheets  # noqa: E402
from ctc_qpcr.errors import ConfigError, InputError  # noqa: E402


def _c_parser_records(text: str):
    """The grid with every record's first cell scanned for a comment (the earlier implementation)."""
    grid = pd.read_csv(
        io.StringIO(text),
        sep="\t",
        header=None,
        dtype=str,
        na_filter=False,
        skip_blank_lines=False,
        quoting=csv.QUOTE_NONE,
        engine="c",
    )
    cells = grid.to_numpy(dtype=object)
    blank = (cells == "").all(axis=1) | grid[0].str.startswith("#").to_numpy(dtype=bool)
    keep = np.flatnonzero(~blank)
    return cells[keep], keep + 1


def _trimmed(grid: np.ndarray) -> list[list[str]]:
    """Rows without the trailing all-empty columns (the parsers pad to different widths)."""
    filled = np.flatnonzero((grid != "").any(axis=0)) if grid.size else []
    width = int(filled[-1]) + 1 if len(filled) else 0
    return [list(row[:width]) for row in grid]


def _random_sheet(rng: random.Random) -> str:
    cells = ["", "", "a", "P1", "x y", "#c", "1.5", "NA", "\xa0", "é", "T0"]
    width = rng.randint(1, 6)
    lines = ["\t".join(f"h{j}" for j in range(width))]
    for _ in range(rng.randint(0, 30)):
        kind = rng.random()
        if kind < 0.1:
            lines.append("")
        elif kind < 0.2:
            lines.append("# a comment" + ("\twith a tab" if width > 1 else ""))
        elif kind < 0.25:
            lines.append("\t" * rng.randint(0, width - 1))
        else:  # a full or short row (never wider than the header: the C parser refused that)
            lines.append("\t".join(rng.choice(cells) for _ in range(rng.randint(1, width))))
    return "\n".join(lines) + ("\n" if rng.random() < 0.7 else "")


def test_split_records_match_the_c_parser():
    rng = random.Random(17)
    for _ in range(400):
        text = _random_sheet(rng)
        grid, lines = sheet_text._records(text)
        ref_grid, ref_lines = _c_parser_records(text)
        assert list(lines) == list(ref_lines), text
        assert _trimmed(grid) == _trimmed(ref_grid), text


def test_read_table_of_a_sheet_with_blank_comment_and_short_lines(tmp_path):
    path = tmp_path / "samples.tsv"
    path.write_text(
        "# made by hand\nsample\tkind\tpatient\n\nS1\tpatient\nS2\thealthy\tP9\n\t\t\n", encoding="utf-8"
    )
    df = sheet_text.read_table(path, "samples")
    assert list(df.columns) == ["sample", "kind", "patient"]
    assert list(df.index) == [4, 5]
    assert df.to_numpy().tolist() == [["S1", "patient", ""], ["S2", "healthy", "P9"]]


def _plates(tmp_path: Path, paths: list[str]) -> pd.DataFrame:
    rows = ["plate\tbatch\tpath"] + [f"C{i}\tB1\t{p}" for i, p in enumerate(paths, start=1)]
    (tmp_path / "plates.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return sheets.read_sheet(tmp_path / "plates.tsv", "plates")


def test_equal_size_exports_with_one_first_block_are_distinct(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    head = b"x" * (1 << 16)
    Path("a.csv").write_bytes(head + b"tail-1")
    Path("b.csv").write_bytes(head + b"tail-2")
    Path("c.csv").write_bytes(b"y" * (1 << 16) + b"tail-1")
    Path("e.csv").write_bytes(b"z" * (1 << 16) + b"tail-1")
    whole = []
    sha256 = sheets._sha256

    def counted(path, limit=None):
        if limit is None:
            whole.append(path)
        return sha256(path, limit)

    monkeypatch.setattr(sheets, "_sha256", counted)
    sheets.check_distinct_exports(_plates(tmp_path, ["a.csv", "b.csv", "c.csv", "e.csv"]))
    assert sorted(whole) == [
        os.path.realpath("a.csv"),
        os.path.realpath("b.csv"),
    ]  # c, e: first block differs


def test_a_copy_among_equal_size_exports_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    head = b"x" * (1 << 16)
    Path("a.csv").write_bytes(head + b"tail-1")
    Path("b.csv").write_bytes(head + b"tail-2")
    shutil.copy("b.csv", "d.csv")
    with pytest.raises(InputError) as err:
        sheets.check_distinct_exports(_plates(tmp_path, ["a.csv", "b.csv", "c.csv", "d.csv"][:2] + ["d.csv"]))
    assert "plate 'C3' (d.csv) has a byte-identical export to plate 'C2' on line 3 (b.csv)" in str(err.value)


@pytest.mark.parametrize("how", ["file link", "folder link", "dot-dot"])
def test_two_paths_to_one_file_are_refused(tmp_path, monkeypatch, how):
    monkeypatch.chdir(tmp_path)
    os.mkdir("chips")
    Path("chips/a.csv").write_text("a\n")
    Path("other.csv").write_text("other\n")
    if how == "file link":
        os.symlink("chips/a.csv", "link.csv")
        second = "link.csv"
    elif how == "folder link":
        os.symlink("chips", "alias")
        second = "alias/a.csv"
    else:
        second = "chips/../chips/a.csv"
    with pytest.raises(InputError) as err:
        sheets.check_distinct_exports(_plates(tmp_path, ["chips/a.csv", "other.csv", second]))
    assert f"plate 'C3' ({second}) points at the same file as plate 'C1' on line 2 (chips/a.csv)" in str(
        err.value
    )
    assert sheets._real_and_size(second, {}) == (os.path.realpath(second), os.path.getsize(second))


def test_config_file_parsed_by_libyaml_is_the_same_data():
    path = REPO / "config" / "config.yaml"
    assert config_check.check_yaml_file(path) == yaml.safe_load(path.read_text(encoding="utf-8"))
    schema = REPO / "workflow" / "schemas" / "config.schema.yaml"
    assert config_check.load_schema(schema) == yaml.safe_load(schema.read_text(encoding="utf-8"))


def test_broken_config_file_keeps_pyyaml_messages(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("lod: 35\nipc:\n  max_sd: 0.25\n  max_offset: [1.0\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        config_check.check_yaml_file(bad)
    try:  # PyYAML's own parser: the wording the message carried before libyaml parsed first
        yaml.load(bad.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        assert f"not valid YAML ({exc.problem})" in str(err.value)
    twice = tmp_path / "twice.yaml"
    twice.write_text("lod: 35\nreplicates:\n  max_sd: 0.3\n  max_sd: 0.4\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="line 4: the key 'max_sd' is given twice in one section"):
        config_check.check_yaml_file(twice)


def test_schema_view_keeps_the_distinct_constrained_rows_in_first_order():
    df = pd.DataFrame(
        {
            "sample": ["S1", "S2", "S3", "", "S5"],
            "kind": ["patient", "healthy", "patient", "patient", "healthy"],
            "response": ["responder", "", "responder", "responder", ""],
        },
        index=[2, 3, 4, 5, 6],
    )
    schema = {
        "properties": {
            "sample": {"type": "string", "minLength": 0},
            "kind": {"type": "string", "enum": ["patient", "healthy"]},
            "response": {"type": "string", "enum": ["", "responder"]},
        }
    }
    view = sheets.schema_view(df, schema)
    assert view.to_numpy().tolist() == [
        ["x", "patient", "responder"],
        ["x", "healthy", ""],
        ["", "patient", "responder"],
    ]
    assert list(view.index) == [0, 1, 2]
    assert sheets.schema_view(df.iloc[:0], schema).shape == (0, 3)


def test_settings_name_the_value_missing_from_a_large_column():
    samples = pd.DataFrame({"timepoint": ["T0", "T1", ""] * 20000, "kind": ["patient"] * 60000})
    assert config_check._missing(["T1"], samples["timepoint"], "timepoint", "w", "s.tsv") == []
    assert config_check._missing(["t1", "X9"], samples["timepoint"], "timepoint", "w", "s.tsv") == [
        "w: timepoint 't1' is not in s.tsv — did you mean 'T1'?",
        "w: timepoint 'X9' is not in s.tsv",
    ]
    assert config_check._missing([], samples["timepoint"], "timepoint", "w", "s.tsv") == []
