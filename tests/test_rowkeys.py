"""Integer-key helpers of the chip-level job give what the pandas operations they replace give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ctc_qpcr.rowkeys import (
    as_text,
    distinct,
    joined_texts,
    joint_codes,
    left_lookup,
    missing_as,
    own_frame,
    pick_text,
    set_at,
    sorted_rows,
    sorted_rows_and_order,
    text_is,
)


def _frames(seed: int = 0):
    rng = np.random.default_rng(seed)
    plates = np.array(["P10", "P2", "P1", np.nan], dtype=object)
    names = np.array(["S-b", "S-a", "=x", "s-a", ""], dtype=object)
    left = pd.DataFrame(
        {
            "plate": rng.choice(plates, 400),
            "sample": rng.choice(names, 400),
            "line": rng.integers(0, 5, 400),
            "cq": np.where(rng.random(400) < 0.2, np.nan, rng.normal(25, 3, 400).round(1)),
        }
    )
    right = left[["plate", "sample"]].drop_duplicates().iloc[::2].reset_index(drop=True)
    right["value"] = np.arange(len(right), dtype=float) / 3
    right["label"] = [f"v{i}" for i in range(len(right))]
    return left, right


def test_joint_codes_equal_exactly_where_the_key_tuples_are_equal():
    left, right = _frames()
    lc, rc = joint_codes(
        [left["plate"].to_numpy(), left["sample"].to_numpy()],
        [right["plate"].to_numpy(), right["sample"].to_numpy()],
    )
    tuples = [tuple("NA" if pd.isna(v) else v for v in row) for row in left[["plate", "sample"]].to_numpy()]
    rtuples = [tuple("NA" if pd.isna(v) else v for v in row) for row in right[["plate", "sample"]].to_numpy()]
    code_of = {}
    for t, c in zip(tuples + rtuples, np.concatenate([lc, rc]), strict=True):
        assert code_of.setdefault(t, c) == c  # one code per tuple
    assert len(set(code_of.values())) == len(code_of)  # and one tuple per code


def test_left_lookup_is_a_left_merge():
    left, right = _frames(1)
    got = left_lookup(left, right, ["plate", "sample"], ["value", "label"])
    want = left[["plate", "sample"]].merge(right, on=["plate", "sample"], how="left")
    pd.testing.assert_series_equal(got["value"], want["value"])
    assert list(got["label"].fillna("NA")) == list(want["label"].fillna("NA"))
    repeated = pd.concat([right, right.iloc[:3]], ignore_index=True)  # repeated keys: rows repeat, as a merge
    assert len(left_lookup(left, repeated, ["plate", "sample"], ["value"])) > len(left)


@pytest.mark.parametrize("keys", [["plate", "line", "sample"], ["sample", "plate"], ["cq", "plate"]])
def test_sorted_rows_is_a_stable_sort_values(keys):
    left, _ = _frames(2)
    want = left.sort_values(keys, kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(sorted_rows(left, keys), want)
    again = sorted_rows(want, keys)  # already in order: not moved, the same table
    pd.testing.assert_frame_equal(again, want)
    assert again is not want and all(np.shares_memory(again[c], want[c]) for c in ["line", "cq"])
    shifted = want.set_axis(want.index + 1)  # in order, but not index 0..n-1: a new index
    pd.testing.assert_frame_equal(sorted_rows(shifted, keys), want)


def test_own_frame_and_set_at_never_write_into_the_callers_arrays():
    left, _ = _frames(3)
    before = left.copy()
    w = own_frame(left.iloc[::-1])  # not 0..n-1: a new index
    assert list(w.index) == list(range(len(left)))
    w = own_frame(left)
    set_at(w, "cq", np.arange(len(w)) % 2 == 0, 0.0)
    w["sample"] = as_text(w["sample"])
    pd.testing.assert_frame_equal(left, before)
    assert (w["cq"].to_numpy()[::2] == 0).all()
    assert as_text(pd.Series([1, "a"], dtype=object)).tolist() == ["1", "a"]


def test_audit_flags_joined_per_well_as_a_grouped_sum():
    """_WellRows.joined_flags: per (plate, well) its distinct flags, sorted, ;-joined — the
    grouped text sum and left join it replaces (written out here as the reference)."""
    from ctc_qpcr.audit import _WellRows

    rng = np.random.default_rng(5)
    table = pd.DataFrame(
        {"plate": rng.choice(["P2", "P1", "P10"], 300), "well": rng.choice(list("ABCDEFGHIJ"), 300)}
    )
    wf = pd.DataFrame(
        {
            "plate": rng.choice(["P2", "P1", "P9"], 500),
            "well": rng.choice(list("ABCDEFGHIJK"), 500),
            "flag": rng.choice(np.array(["HIGHSD", "B (x)", "A", "VPA_MISSING", None], dtype=object), 500),
        }
    )
    got = _WellRows(table).joined_flags(wf)
    flags = wf.dropna().drop_duplicates().sort_values(["plate", "well", "flag"])
    joined = (";" + flags["flag"]).groupby([flags["plate"], flags["well"]]).sum().str[1:]
    want = [joined.get((p, w), np.nan) for p, w in table.itertuples(index=False)]
    assert [("NA" if pd.isna(v) else v) for v in got] == [("NA" if pd.isna(v) else v) for v in want]
    assert pd.isna(_WellRows(table).joined_flags(wf.iloc[:0])).all()


def test_text_is_matches_pandas_comparison():
    values = pd.Series(["CALC", "", None, np.nan, "calc", "CALC "], dtype=object)
    for text in ("CALC", ""):
        assert text_is(values, text).tolist() == (values == text).tolist()
        assert (~text_is(values, text)).tolist() == (values != text).tolist()


def test_joint_codes_of_integer_columns_as_of_their_text():
    """Integer key columns are factorised as integers: the codes are those of the same keys as text."""
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 5, 40), rng.integers(0, 5, 25)
    x, y = rng.choice(["S01", "S02", "S03"], 40), rng.choice(["S01", "S02", "S03"], 25)
    ints = joint_codes([a, x], [b, y])
    texts = joint_codes([a.astype(str).astype(object), x], [b.astype(str).astype(object), y])
    assert all((i == t).all() for i, t in zip(ints, texts, strict=True))


def test_distinct_is_the_set_of_a_text_column():
    values = pd.Series(["P2", "P1", "P2", "", "P10"] * 3, dtype=object)
    assert distinct(values) == set(values) and distinct(values.to_numpy()[:0]) == set()


def test_pick_text_is_numpy_select_as_python_strings():
    x = np.array([0.5, 2.0, np.nan, 30.0, 70.0])
    conditions = [x < 1, x < 25, x < 60]
    ours = pick_text(conditions, ["A", "B", "C"], "F")
    assert ours.dtype == object and ours.tolist() == np.select(conditions, ["A", "B", "C"], "F").tolist()
    assert pick_text([pd.Series([True, False])], ["kept"], "excluded").tolist() == ["kept", "excluded"]


def test_joint_codes_number_missing_keys_as_pandas_does():
    """Missing keys share one code: the codes are those of ``pd.factorize(use_na_sentinel=False)``
    of each column, renumbered in order of first appearance."""
    left, right = _frames(4)
    cols = ["plate", "sample"]
    got = joint_codes([left[c].to_numpy() for c in cols], [right[c].to_numpy() for c in cols])
    both = pd.concat([left[cols], right[cols]], ignore_index=True)
    key = np.zeros(len(both), dtype=np.int64)
    for c in cols:
        codes, uniques = pd.factorize(both[c].to_numpy(dtype=object), use_na_sentinel=False)
        key = key * len(uniques) + codes
    want = pd.factorize(key)[0]
    assert (np.concatenate(got) == want).all()


def test_sorted_rows_stops_at_the_key_that_orders_every_row():
    """Rows strictly ordered by the first keys (plate, line) are not sorted by the later ones: the
    table comes back as it was, sharing its columns, as a full sort would give it."""
    table = pd.DataFrame(
        {"plate": ["P1", "P1", "P2", "P2"], "line": [1, 2, 1, 5], "well": ["B1", "A1", "A2", "A1"]}
    )
    got = sorted_rows(table, ["plate", "line", "well"])
    pd.testing.assert_frame_equal(got, table.sort_values(["plate", "line", "well"], kind="stable"))
    assert np.shares_memory(got["well"].to_numpy(), table["well"].to_numpy())
    tie = table.assign(line=[1, 1, 1, 5])  # a tie on (plate, line): the well decides
    want = tie.sort_values(["plate", "line", "well"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(sorted_rows(tie, ["plate", "line", "well"]), want)


def _audit_by_pandas(wells: pd.DataFrame, well_flags: pd.DataFrame) -> pd.DataFrame:
    """build_audit written with pandas' own operations (the reference)."""
    from ctc_qpcr.audit import AUDIT_COLUMNS, EXCLUDING_FLAGS, STATE_FLAGS

    reason = wells["excluded"].fillna("").to_numpy(dtype=object).copy()
    failed = (reason == "") & (wells["state"].to_numpy(dtype=object) == "EXPFAIL")
    reason[failed] = ("EXPFAIL:" + wells.loc[failed, "state_reason"].astype(str)).to_numpy(dtype=object)
    wf = well_flags[~well_flags["flag"].isin(STATE_FLAGS)].copy()
    if "excluded" not in wf.columns:
        wf["excluded"] = wf["flag"].isin(EXCLUDING_FLAGS)
    wf["excluded"] = wf["excluded"].astype(bool)
    why = wf["reason"].fillna("").astype(str)
    wf["flag"] = wf["flag"] + (" (" + why + ")").where(why != "", "")

    def joined(part):
        part = part.dropna(subset=["flag"])[["plate", "well", "flag"]].drop_duplicates()
        part = part.sort_values(["plate", "well", "flag"])
        text = (";" + part["flag"]).groupby([part["plate"], part["well"]]).sum().str[1:]
        keys = wells[["plate", "well"]].itertuples(index=False)
        return np.array([text.get((p, w), np.nan) for p, w in keys], dtype=object)

    exclusions = joined(wf[wf["excluded"]])
    use = (reason == "") & pd.notna(exclusions)
    reason[use] = exclusions[use]
    found = joined(wf[~wf["excluded"]])
    made = {
        "reason": reason,
        "flags": np.where(pd.notna(found), found, "").astype(object),
        "fate": np.where(reason == "", "kept", "excluded").astype(object),
    }
    columns = [c for c in AUDIT_COLUMNS if c in made or c in wells.columns]
    return pd.DataFrame({c: made[c] if c in made else wells[c].to_numpy() for c in columns})


@pytest.mark.parametrize("explicit", [False, True])
def test_build_audit_is_the_pandas_reference(explicit):
    """Reasons from reading (missing read as kept), EXPFAIL states, excluding and listed flags
    (a missing flag, flags without a reason, explicit ``excluded``): as pandas' operations give."""
    from ctc_qpcr.audit import build_audit

    rng = np.random.default_rng(11)
    n = 200
    wells = pd.DataFrame(
        {
            "batch": "B1",
            "plate": rng.choice(["P2", "P1"], n),
            "well": [f"W{i % 60}" for i in range(n)],
            "line": np.arange(n),
            "state": rng.choice(["CALC", "EXPFAIL", "NOAMP"], n),
            "state_reason": rng.choice(["quality<threshold", "failed"], n),
            "excluded": rng.choice(np.array(["", "", "", "empty well", None, np.nan], dtype=object), n),
        }
    )
    flags = pd.DataFrame(
        {
            "plate": rng.choice(["P2", "P1", "P9"], 300),
            "well": [f"W{i}" for i in rng.integers(0, 70, 300)],
            "flag": rng.choice(np.array(["HIGHSD", "HIGHDNA", "NOAMP", "VPA_LOWSIGNAL", None], object), 300),
            "reason": rng.choice(np.array(["grade B", "", None, "cq=31.2"], dtype=object), 300),
        }
    )
    if explicit:
        flags["excluded"] = rng.random(300) < 0.3
    pd.testing.assert_frame_equal(build_audit(wells, flags), _audit_by_pandas(wells, flags))


def test_left_lookup_fill_is_the_results_fillna():
    """``fill``: missing values of the found rows and rows not found, as ``fillna`` of the result."""
    left, right = _frames(6)
    right.loc[right.index[::3], "label"] = None  # missing in the table looked up as well
    got = left_lookup(left, right, ["plate", "sample"], ["value", "label"], fill={"label": "Low"})
    want = left_lookup(left, right, ["plate", "sample"], ["value", "label"]).fillna({"label": "Low"})
    pd.testing.assert_frame_equal(got, want)
    assert (got["label"] == "Low").any() and got["value"].isna().any()  # the value column is not filled
    repeated = pd.concat([right, right.iloc[:3]], ignore_index=True)  # the merge path fills the same way
    merged = left_lookup(left, repeated, ["plate", "sample"], ["label"], fill={"label": "Low"})
    assert merged["label"].notna().all()


def test_missing_as_is_fillna_of_a_text_column():
    values = pd.Series(["", "HIGHSD", None, np.nan, "", pd.NA, "A+"], dtype=object)
    for text in ("", "Low"):
        got = missing_as(values, text)
        assert got.tolist() == values.fillna(text).tolist()
        assert got.dtype == object and not np.shares_memory(got, values.to_numpy())


@pytest.mark.parametrize("keys", [["plate", "line", "sample"], ["sample", "plate"]])
def test_sorted_rows_and_order_names_the_rows_it_took(keys):
    left, _ = _frames(5)
    got, order = sorted_rows_and_order(left, keys)
    pd.testing.assert_frame_equal(got, left.iloc[order].reset_index(drop=True))
    pd.testing.assert_frame_equal(got, sorted_rows(left, keys))
    again, none = sorted_rows_and_order(got, keys)  # already in order: no positions, not moved
    assert none is None and np.shares_memory(again["cq"], got["cq"])
    shifted, none = sorted_rows_and_order(got.set_axis(got.index + 1), keys)  # in order, another index
    assert none is None
    pd.testing.assert_frame_equal(shifted, got)


def test_joined_texts_joins_only_where_both_have_a_text():
    first = np.array(["", "a", "", "b", "a;c"], dtype=object)
    second = np.array(["", "", "x", "y", "z"], dtype=object)
    want = np.where(first == "", second, np.where(second == "", first, first + ";" + second))
    assert joined_texts(first, second).tolist() == want.tolist() == ["", "a", "x", "b;y", "a;c;z"]
    assert joined_texts(first[:0], second[:0]).tolist() == []
