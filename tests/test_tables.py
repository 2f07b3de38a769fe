"""``tables.write_tsv`` writes the bytes pandas ``to_csv`` writes, by its fast Arrow path
or by pandas when a cell needs quoting (issue 17: the writer was most of a read job)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ctc_qpcr import tables

FLOATS = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e-5, 1e10, 1234567890123.0, 0.1, 1 / 3, 5e-324, -2.5]
TEXTS = ["", "a", "=1+2", "-3", "+x", "@a", "-", "x y", " lead", "é", "'q", "1e5", "-1.5e3", "="]


def pandas_bytes(df: pd.DataFrame, path) -> bytes:
    tables._safe_frame(df).to_csv(
        path, sep="\t", index=False, float_format=tables.FLOAT_FORMAT, na_rep="", lineterminator="\n"
    )
    return path.read_bytes()


def frame(seed: int, extra: dict | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 300
    text = pd.Series(rng.choice(np.array(TEXTS, dtype=object), n))
    return pd.DataFrame(
        {
            "cq": rng.choice(FLOATS, n),
            "scaled": rng.normal(size=n) * 10.0 ** rng.integers(-6, 12, n),
            "f32": rng.normal(size=n).astype(np.float32),
            "line": rng.integers(-5, 10**12, n),
            "small": rng.integers(0, 9, n).astype(np.uint8),
            "flag": rng.random(n) < 0.5,
            "sample": text,
            "assay": text.where(rng.random(n) < 0.7, None),
            "note": text.where(rng.random(n) < 0.7, np.nan),
            "state": pd.Categorical(rng.choice(["CALC", "=x", "NOAMP"], n)),
            **(extra or {}),
        }
    )


@pytest.mark.parametrize(
    "extra",
    [
        None,
        {"mixed": [3, "a", "=b"] * 100},  # text and numbers in one column: pandas path
        {"tabbed": ["a\tb", 'q"', "l\nx", "ok"] * 75},  # cells pandas quotes: pandas path
        {"=name": ["x"] * 300},  # a formula-like column name
        # categorical text with missing values and unused categories: taken by code
        {
            "site": pd.Categorical(
                ["liver", None, "-bone", "é"] * 75, categories=["-bone", "liver", "lung", "é"]
            )
        },
    ],
)
def test_write_tsv_same_bytes_as_pandas(tmp_path, extra):
    for seed in range(5):
        df = frame(seed, extra)
        tables.write_tsv(df, tmp_path / "fast.tsv")
        assert (tmp_path / "fast.tsv").read_bytes() == pandas_bytes(df, tmp_path / "ref.tsv")


def test_write_tsv_edge_frames(tmp_path):
    for df in (
        frame(1).iloc[:0],  # header only
        pd.DataFrame({"note": ["", "a", None]}),  # one column: the csv module quotes a lone empty cell
        pd.DataFrame({"x": [1.5, np.nan], "y": ["=1", "-1"]}),
    ):
        tables.write_tsv(df, tmp_path / "fast.tsv")
        assert (tmp_path / "fast.tsv").read_bytes() == pandas_bytes(df, tmp_path / "ref.tsv")


def test_write_tsv_known_bytes(tmp_path):
    df = pd.DataFrame({"cq": [31.8985988195554, -0.0, np.nan], "sample": ["=HYPERLINK()", "-5", None]})
    tables.write_tsv(df, tmp_path / "t.tsv")
    assert (tmp_path / "t.tsv").read_bytes() == b"cq\tsample\n31.89859882\t'=HYPERLINK()\n-0\t-5\n\t\n"


def test_arrow_path_taken_for_plain_tables(tmp_path, monkeypatch):
    used = []
    real = tables._write_arrow
    monkeypatch.setattr(tables, "_write_arrow", lambda *a: used.append(real(*a)) or used[-1])
    tables.write_tsv(frame(0), tmp_path / "t.tsv")
    assert used == [True]


def test_nothing_to_escape_converted_once(tmp_path, monkeypatch):
    """No text cell (nor name) starts with a formula character (negative numbers may): the text is
    converted once, _safe_frame is not run, and the bytes are still those of pandas."""
    safe = []
    real = tables._safe_frame
    monkeypatch.setattr(tables, "_safe_frame", lambda df: safe.append(1) or real(df))
    plain = ["", "a", "x y", " lead", "é", "'q", "1e5"]
    for seed in range(3):
        df = frame(seed)
        df["sample"] = df["sample"].where(~df["sample"].str.match(r"^[=+\-@]"), "ok")
        df["assay"] = np.random.default_rng(seed).choice(np.array(plain, dtype=object), len(df))
        df["note"] = df["assay"].where(df["cq"].notna(), None)
        df["state"] = pd.Categorical(df["assay"], categories=[*plain, "=unused"])
        tables.write_tsv(df, tmp_path / "fast.tsv")
        assert safe == []
        assert (tmp_path / "fast.tsv").read_bytes() == pandas_bytes(df, tmp_path / "ref.tsv")
        safe.clear()
    df = frame(0)  # formula-like cells: escaped by the _safe_frame path
    tables.write_tsv(df, tmp_path / "fast.tsv")
    assert safe and (tmp_path / "fast.tsv").read_bytes() == pandas_bytes(df, tmp_path / "ref.tsv")


@pytest.mark.parametrize(
    "extra",
    [
        None,
        {"mixed_text": ["a", None, "=b"] * 100},
        {"tabbed": ["a\tb", "ok", "c"] * 100},
        {"empty": [None] * 300},
    ],
)
def test_parquet_and_tsv_together_same_bytes_as_each_alone(tmp_path, extra):
    for seed in range(3):
        df = frame(seed, extra).iloc[::-1] if seed == 2 else frame(seed, extra)  # seed 2: not index 0..n-1
        df.attrs = {"missing_wells": ["S01-A01"], "incomplete_groups": []} if seed else {}
        tables.write_parquet(df, tmp_path / "a.parquet")
        tables.write_tsv(df, tmp_path / "a.tsv")
        arrow = tables.write_parquet_tsv(df, tmp_path / "b.parquet", tmp_path / "b.tsv")
        assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
        assert (tmp_path / "a.tsv").read_bytes() == (tmp_path / "b.tsv").read_bytes()
        tables.write_parquet_tsv(df, tmp_path / "c.parquet", tmp_path / "c.tsv", arrow=arrow)  # made already
        assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "c.parquet").read_bytes()
        assert (tmp_path / "a.tsv").read_bytes() == (tmp_path / "c.tsv").read_bytes()


def test_parts_equal_the_whole_table(tmp_path):
    frames = [frame(seed) for seed in range(3)]
    frames.insert(1, frames[0].iloc[:0])  # an empty part adds nothing
    frames.append(frame(9, {"tabbed": ["a\tb", "ok", "x"] * 100}).drop(columns="tabbed"))
    whole = pd.concat(frames, ignore_index=True)
    with (
        tables.tsv_parts(tmp_path / "parts.tsv") as add_tsv,
        tables.parquet_parts(tmp_path / "p.parquet") as add_pq,
    ):
        for part in frames:
            add_tsv(part)
            add_pq(part)
    tables.write_tsv(whole, tmp_path / "whole.tsv")
    assert (tmp_path / "parts.tsv").read_bytes() == (tmp_path / "whole.tsv").read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "p.parquet"), whole, check_exact=True)


def test_tsv_parts_quoted_cells_as_pandas(tmp_path):
    parts = [
        pd.DataFrame({"a": ["x\ty", "=1"], "b": [1.5, np.nan]}),
        pd.DataFrame({"a": ['q"', "z"], "b": [2.0, 3.0]}),
    ]
    with tables.tsv_parts(tmp_path / "parts.tsv") as add:
        for part in parts:
            add(part)
    assert (tmp_path / "parts.tsv").read_bytes() == pandas_bytes(
        pd.concat(parts, ignore_index=True), tmp_path / "r.tsv"
    )


def _every_magnitude(seed: int) -> np.ndarray:
    """A million floats: normal Cq-like values, every magnitude from 1e-9 to 1e12, short
    decimals (0.125, 2.5: ties at the 11th digit are exact), 11-digit decimals ending in 5
    (a tie after rounding to 10 digits), powers of ten and their neighbours, specials."""
    rng = np.random.default_rng(seed)
    n = 200_000
    powers = 10.0 ** np.arange(-10, 14)
    neighbours = np.concatenate([powers, np.nextafter(powers, 0), np.nextafter(powers, np.inf)])
    places = 10.0 ** rng.integers(0, 6, n)
    ties = (rng.integers(10**9, 10**10, n) * 10 + 5) / 10.0 ** rng.integers(1, 16, n)
    return np.concatenate(
        [
            rng.normal(20, 6, n),
            rng.normal(size=n) * 10.0 ** rng.uniform(-9, 12, n),
            np.rint(rng.normal(0, 50, n) * places) / places,
            ties,
            neighbours,
            -neighbours,
            FLOATS,
            [9.9999e9, 1.0001e-4, 9999999999.5, 0.000100005, 1.00000000005, 2.0**53],
        ]
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_float_text_is_percent_format(seed):
    """The numpy/Arrow fast path prints exactly what ``%.10g`` prints, value by value
    (NaN as null), on a million values of every magnitude including rounding ties."""
    values = _every_magnitude(seed)
    got = tables._float_text(values).to_pylist()
    want = [None if np.isnan(v) else tables.FLOAT_FORMAT % v for v in values.tolist()]
    bad = [(v, g, w) for v, g, w in zip(values.tolist(), got, want, strict=True) if g != w]
    assert not bad, bad[:5]
    _, fast = tables._rounded_fixed(values)
    assert fast.mean() > 0.5  # the fast path is taken (else the check above tests only `%`)


@pytest.mark.parametrize("rows", [300, 5000])  # 5000 rows: pandas' from_pandas would use threads
def test_write_parquet_same_bytes_as_pandas(tmp_path, rows):
    """write_parquet converts with Table.from_pandas on one thread: the bytes of pandas' to_parquet."""
    for seed in range(3):
        df = pd.concat([frame(seed)] * (rows // 300), ignore_index=True)
        df = df.iloc[::-1] if seed == 2 else df  # not index 0..n-1
        df.attrs = {"missing_wells": ["S01-A01"]} if seed else {}
        tables.write_parquet(df, tmp_path / "ours.parquet")
        df.reset_index(drop=True).to_parquet(tmp_path / "pandas.parquet", index=False, compression="zstd")
        assert (tmp_path / "ours.parquet").read_bytes() == (tmp_path / "pandas.parquet").read_bytes()


def test_formula_start_by_first_byte_as_the_regex():
    """_formula_like (each cell's first byte) answers as the regular expression it replaced,
    on cells with and without nulls, non-ASCII text, and sliced or chunked arrays."""
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng(7)
    pool = np.array([*TEXTS, None, "é=", "\t", "\rx", "ß", "a=b", " =x"], dtype=object)
    for _ in range(300):
        cells = list(rng.choice(pool, rng.integers(0, 6)))
        array = pa.array(cells, type=pa.string())
        start = int(rng.integers(0, len(cells) + 1))
        for part in (array, array.slice(start), array.slice(0, start)):
            expected = pc.any(pc.match_substring_regex(part, tables._FORMULA_PATTERN)).as_py() or False
            found = tables._formula_like(pa.table({"x": part}), pd.DataFrame({"x": part.to_pylist()}))
            assert found is expected, part
    chunked = pa.chunked_array([pa.array(["a", "b"]), pa.array(["c", "-d"]).slice(1)])
    table = pa.table({"x": chunked})
    assert tables._formula_like(table, pd.DataFrame({"x": ["a", "b", "-d"]}))
    assert not tables._formula_like(table.slice(0, 2), pd.DataFrame({"x": ["a", "b"]}))


@pytest.mark.parametrize(
    "extra",
    [
        None,
        {"tabbed": ["a\tb", 'q"', "l\nx", "ok"] * 75},  # a cell pandas quotes: rolled back, pandas writes
        {"n": pd.array([1, None, 3] * 100, dtype="Int64")},  # integers with missing values: pandas
    ],
)
def test_tsv_parts_arrow_tables_as_their_pandas_frames(tmp_path, extra, monkeypatch):
    """An Arrow table added to tsv_parts gives write_tsv's bytes of its ``to_pandas()``: text
    with nulls and formula-like cells, dictionaries, integers, booleans, float32; written
    from Arrow (pandas only where a cell needs quoting or a column type is not covered)."""
    import pyarrow as pa

    if extra is None:  # the Arrow path alone: pandas' writer is not called
        monkeypatch.setattr(tables, "_safe_frame", None)
    parts = [pa.Table.from_pandas(frame(seed, extra), preserve_index=False) for seed in range(3)]
    parts.insert(1, parts[0].slice(0, 0))
    parts.append(parts[2].slice(17, 40))  # an offset into the buffers
    with tables.tsv_parts(tmp_path / "parts.tsv") as add:
        for part in parts:
            add(part)
    monkeypatch.undo()
    whole = pd.concat([p.to_pandas() for p in parts], ignore_index=True)
    tables.write_tsv(whole, tmp_path / "whole.tsv")
    assert (tmp_path / "parts.tsv").read_bytes() == (tmp_path / "whole.tsv").read_bytes()


def test_formula_starts_equal_the_pattern():
    """The first-byte test finds exactly the cells the regular expression finds (nulls,
    empty cells, non-ASCII text, an offset into the buffers, large strings)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng(5)
    letters = list("ab=+-@\t\r é1.'") + ["ü", "€"]
    values = ["".join(rng.choice(letters, rng.integers(0, 4))) for _ in range(5000)]
    values = [None if i % 13 == 0 else v for i, v in enumerate(values)]
    for kind in (pa.string(), pa.large_string()):
        column = pa.array(values, type=kind)
        for part in (column, column.slice(7, 3000), column.slice(0, 0), pa.array(["", None], type=kind)):
            want = pc.match_substring_regex(part, tables._FORMULA_PATTERN).fill_null(False)
            assert tables._formula_starts(part).tolist() == want.to_pylist()


def test_float_text_in_blocks_and_runs(monkeypatch):
    """Blocks of values (a chunked array) and runs of one value give ``%.10g`` of each value."""
    values = _every_magnitude(2)[:20_000]
    values = np.concatenate([values, np.repeat(values[:50], 40), np.full(300, np.nan)])  # long runs
    want = [None if np.isnan(v) else tables.FLOAT_FORMAT % v for v in values.tolist()]
    assert tables._float_text(values).to_pylist() == want
    monkeypatch.setattr(tables, "_FLOAT_BLOCK", 999)
    got = tables._float_text(values)
    assert got.num_chunks == -(-len(values) // 999) and got.to_pylist() == want
