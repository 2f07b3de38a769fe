"""Row keys and row order of the chip-level tables, by integer codes instead of text.

The batch's working table has ~10^5 wells; joining, sorting and updating it by
its text columns (plate, sample, assay, well) costs more than the arithmetic.
These helpers factorise each key column once and work on integer codes, giving
the same rows in the same order as the pandas operation each one names.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype

from .tables import has_default_index


def joint_codes(left: list, right: list) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of the key tuples of two tables, equal where the tuples are equal.

    ``left``/``right``: the key columns (same count) of each table. A left join of
    text columns becomes an array lookup: missing values match each other, as in
    ``merge``. Codes count the distinct tuples of both tables (0 … n-1).
    """
    n_left = len(left[0]) if left else 0
    key = np.zeros(n_left + (len(right[0]) if right else 0), dtype=np.int64)
    for a, b in zip(left, right, strict=True):
        codes, n_codes = _missing_as_code(_joined_column(a, b))
        key = key * max(n_codes, 1) + codes
        key = pd.factorize(key)[0]  # kept below the number of rows: no overflow however many columns
    return key[:n_left], key[n_left:]


def _missing_as_code(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer codes of ``values`` and how many: missing values (None, NaN) share one code after
    the others. The classes of ``pd.factorize(values, use_na_sentinel=False)`` without its
    second pass over the column looking for missing values (as long as the factorising)."""
    codes, uniques = pd.factorize(values)
    n_codes = len(uniques)
    missing = codes < 0
    if missing.any():
        codes[missing] = n_codes
        n_codes += 1
    return codes, n_codes


def _joined_column(a, b) -> np.ndarray:
    """One key column of both tables: integer codes as integers (factorised several times faster
    than as objects, with the same codes), anything else as objects."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        return np.concatenate([a.astype(np.int64), b.astype(np.int64)])
    return np.concatenate([a.astype(object), b.astype(object)])


def left_lookup(
    left: pd.DataFrame, right: pd.DataFrame, on: list[str], columns: list[str], fill: dict | None = None
) -> pd.DataFrame:
    """``columns`` of ``right`` for each row of ``left`` by the keys ``on`` (NaN where none): a
    left merge on a ``right`` with unique keys, by integer codes (:func:`joint_codes`). ``fill``:
    {column: value} for its missing values, as the result's ``fillna`` (filled in ``right``'s
    few rows and where no row is found, not looked for in every row of the result)."""
    fill = fill or {}
    l_code, r_code = joint_codes(
        [left[c].to_numpy(dtype=object) for c in on], [right[c].to_numpy(dtype=object) for c in on]
    )
    if len(np.unique(r_code)) < len(r_code):  # repeated keys: a merge repeats rows
        merged = left[on].merge(right[[*on, *columns]], on=on, how="left")
        return merged.fillna(fill) if fill else merged
    at = np.full(int(max(l_code.max(initial=-1), r_code.max(initial=-1))) + 1, -1, dtype=np.int64)
    at[r_code] = np.arange(len(r_code))
    rows = at[l_code]
    found = rows >= 0
    out = {}
    for c in columns:
        values = (right[c].fillna(fill[c]) if c in fill else right[c]).to_numpy()
        kind = values.dtype if values.dtype.kind in "fO" else object
        col = np.full(len(left), fill.get(c, np.nan), dtype=kind)
        col[found] = values[rows[found]]
        out[c] = col
    return pd.DataFrame(out)


def _sort_codes(values: pd.Series) -> np.ndarray:
    """Integer codes that order as ``values`` sort (missing last, as ``sort_values`` puts them)."""
    if values.dtype.kind in "iub":
        return values.to_numpy()
    codes, uniques = pd.factorize(values, sort=True)
    return np.where(codes < 0, len(uniques), codes)


def counts_per_key(table: pd.DataFrame, keys: list[str], marks: dict[str, np.ndarray]) -> pd.DataFrame:
    """``table[keys].assign(**marks).groupby(keys, sort=True).sum().reset_index()`` for boolean
    ``marks`` (int64 counts), by integer codes: each key column factorised once, sorted, and the
    marks counted by ``np.bincount`` (rows with a missing key left out, as the grouping does)."""
    factorised = [pd.factorize(table[k], sort=True) for k in keys]
    known = np.ones(len(table), dtype=bool)
    key = np.zeros(len(table), dtype=np.int64)
    for codes, uniques in factorised:
        known &= codes >= 0
        key = key * max(len(uniques), 1) + codes
    inverse, groups = pd.factorize(key[known], sort=True)  # hashed, then the few groups sorted
    out, rest = {}, groups
    for k, (_, uniques) in reversed(list(zip(keys, factorised, strict=True))):
        size = max(len(uniques), 1)
        out[k] = np.asarray(uniques, dtype=object)[rest % size] if len(groups) else np.array([], dtype=object)
        rest = rest // size
    out = {k: out[k] for k in keys}
    for name, mark in marks.items():
        out[name] = np.bincount(inverse, weights=np.asarray(mark)[known], minlength=len(groups)).astype(
            np.int64
        )
    return pd.DataFrame(out)


def sorted_rows(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """``frame.sort_values(keys, kind="stable").reset_index(drop=True)``, sorted by integer codes
    of the keys (each text column factorised once; one ``np.lexsort``, which is stable).

    Rows already in that order (a batch's wells as read) are not moved: a shallow copy of
    ``frame`` is returned, sharing its columns (callers replace columns, never write into them)."""
    return sorted_rows_and_order(frame, keys)[0]


def sorted_rows_and_order(frame: pd.DataFrame, keys: list[str]) -> tuple[pd.DataFrame, np.ndarray | None]:
    """:func:`sorted_rows` of ``frame`` and the positions in ``frame`` of its rows (None: the
    rows as they are, 0..n-1)."""
    if len(frame) < 2:
        return frame.reset_index(drop=True), None
    codes = []
    for k in keys:
        codes.append(_sort_codes(frame[k]))
        if _strictly_ascending(codes):  # the later keys cannot move a row
            return _in_order(frame), None
    order = np.lexsort(codes[::-1])
    if (order == np.arange(len(order))).all():
        return _in_order(frame), None
    out = frame.take(order)
    out.index = pd.RangeIndex(len(out))  # reset_index(drop=True) would copy every column again
    return out, order


def _in_order(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with index 0..n-1, its columns shared (a shallow copy) where it has that index."""
    if has_default_index(frame):
        return frame.copy(deep=False)
    out = frame.take(np.arange(len(frame)))
    out.index = pd.RangeIndex(len(out))
    return out


def _strictly_ascending(codes: list[np.ndarray]) -> bool:
    """True when every row's key tuple (one code array per key) is greater than the previous row's:
    the rows are in sorted order and no two tie (a batch's wells by plate and line, as read)."""
    decided = np.zeros(len(codes[0]) - 1, dtype=bool)  # pairs of rows already ordered by a key
    for code in codes:
        if (code[1:] < code[:-1])[~decided].any():
            return False
        decided |= code[1:] > code[:-1]
    return bool(decided.all())


def own_frame(wells: pd.DataFrame) -> pd.DataFrame:
    """A frame of the same columns, with index 0..n-1, that the steps may add columns to.

    Shallow: the steps replace whole columns (never writing into the caller's
    arrays) and change only columns they made, so the wells are not copied.
    """
    if has_default_index(wells):
        return wells.copy(deep=False)
    return wells.reset_index(drop=True)


def as_text(values: pd.Series) -> pd.Series:
    """``values.astype(str)``, without converting a column that holds only text."""
    if values.dtype == object and infer_dtype(values, skipna=False) == "string":
        return values
    return values.astype(str)


def set_at(w: pd.DataFrame, col: str, at: np.ndarray, values: np.ndarray) -> None:
    """``w.loc[at, col] = values`` for a boolean ``at``, as one new column (the working table's own)."""
    column = w[col].to_numpy(copy=True)
    column[at] = values
    w[col] = column


def text_is(values: pd.Series | np.ndarray, text: str) -> np.ndarray:
    """``(values == text).to_numpy()`` by numpy's comparison of the object array: a few times
    faster than pandas' on a text column (missing values are never equal, as in pandas)."""
    return np.asarray(values, dtype=object) == text


def joined_texts(first: np.ndarray, second: np.ndarray, sep: str = ";") -> np.ndarray:
    """``first + sep + second`` where both are non-empty, else the one that is (""): the texts
    joined only where both have one (most of a flag column is "")."""
    first, second = np.asarray(first, dtype=object), np.asarray(second, dtype=object)
    empty = text_is(first, "")
    out = np.where(empty, second, first)
    both = ~empty & ~text_is(second, "")
    if both.any():
        out[both] = first[both] + sep + second[both]
    return out


def missing_as(values, text: str = "") -> np.ndarray:
    """``pd.Series(values).fillna(text)`` as a new object array, missing values looked for only in
    the cells that are not ``text`` (most of a reason or grade column is "")."""
    out = np.array(values, dtype=object)
    try:
        other = ~text_is(out, text)
    except TypeError:  # pd.NA, which numpy cannot compare: every cell looked at
        other = np.ones(len(out), dtype=bool)
    if other.any():
        given = out[other]
        out[other] = np.where(pd.isna(given), text, given)
    return out


def distinct(values: pd.Series | np.ndarray) -> set:
    """``set(values)`` of a text column, found by pandas' hash table rather than a Python set of
    every cell (missing values, if any, count once)."""
    return set(pd.unique(np.asarray(values, dtype=object)))


def pick_text(conditions: list, texts: list[str], default: str) -> np.ndarray:
    """``np.select(conditions, texts, default)`` as an object array taken from the few texts:
    numpy's own text array, converted cell by cell to Python strings, costs ~10x more."""
    code = np.select([np.asarray(c, dtype=bool) for c in conditions], range(1, len(texts) + 1), 0)
    return np.array([default, *texts], dtype=object)[code]
