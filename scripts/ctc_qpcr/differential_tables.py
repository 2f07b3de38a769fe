"""Differential tables: column contract, "off" calls, per-patient pooling, assembly (docs/methods.md §6)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from . import stats

#: "Off" call: a detected ΔCq more than OFF_Z robust SDs above the gene's median (see call_on);
#: 3.5 = the modified z-score cut-off of Iglewicz & Hoaglin.
OFF_Z = 3.5
OFF_MIN_SD = 0.5

COLUMNS = [
    "gene",
    "strategy",
    "n_a",
    "n_b",
    "mean_a",
    "mean_b",
    "log2fc",
    "ci_low",
    "ci_high",
    "statistic",
    "p",
    "q",
    "test",
    "detected_a",
    "detected_b",
]
EXTRA_TWO_GROUP = [
    "comparison",
    "level_a",
    "level_b",
    "site",
    "p_welch",
    "p_mannwhitney",
    "hl_shift",
    "p_fisher",
    "p_welch_detected",
    "p_hurdle",
    "reason",
    "detection_rate_a",
    "detection_rate_b",
    "detection_diff",
    "p_brunner_munzel",
    "p_yuen",
    "p_mannwhitney_detected",
    "p_detection",
    "off_a",
    "off_b",
]
EXTRA_MULTI = [
    "comparison",
    "level_a",
    "level_b",
    "groups",
    "p_anova",
    "p_welch_anova",
    "p_kruskal",
    "reason",
]
EXTRA_TIME = [
    "comparison",
    "level_a",
    "level_b",
    "n_pairs",
    "p_paired_t",
    "p_wilcoxon",
    "p_lmm_time",
    "q_lmm_time",
    "p_lmm_interaction",
    "q_lmm_interaction",
    "lmm_n_patients",
    "reason",
    "detection_rate_a",
    "detection_rate_b",
    "detection_diff",
    "lmm_df",
    "lmm_reason",
]


#: the columns of a normalised table the comparisons read
NORMALISED_COLUMNS = ("sample", "gene", "dcq", "detected")


def read_normalised(path) -> pd.DataFrame:
    """The columns :data:`NORMALISED_COLUMNS` of a normalised TSV (``tables.write_tsv``), the ids
    ``sample`` and ``gene`` as categoricals (each id's text once: 4 bytes a row, not a Python
    string; issue 17, the 1,000-chip tables).

    pyarrow's CSV reader, with the cells pandas ``read_csv`` reads as missing (its default NA
    words and the empty cell) read as missing: the values of ``tables.read_tsv(path,
    usecols=NORMALISED_COLUMNS)`` (floats correctly rounded, bit for bit; checked in
    tests/test_differential.py) for about half the CPU time (issue 17). Ids stay text even
    when they look like numbers ("001"). A missing ``detected`` cell (never written by the
    normalise stage) falls back to pandas, whose reading of it the comparisons rely on.
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv
    from pandas._libs.parsers import STR_NA_VALUES

    ids = pa.dictionary(pa.int32(), pa.string())
    types = {"sample": ids, "gene": ids, "dcq": pa.float64(), "detected": pa.bool_()}
    convert = pcsv.ConvertOptions(
        include_columns=list(NORMALISED_COLUMNS),
        column_types=types,
        null_values=sorted(STR_NA_VALUES | {""}),
        strings_can_be_null=True,
    )
    try:
        # one thread: Arrow's reader threads cost CPU (≈ 25 %) and gave no wall time here (issue 17)
        table = pcsv.read_csv(
            path,
            read_options=pcsv.ReadOptions(use_threads=False),
            parse_options=pcsv.ParseOptions(delimiter="\t"),
            convert_options=convert,
        )
    except pa.ArrowInvalid:  # e.g. a detected cell that is not a boolean word: pandas decides
        table = None
    if table is None or table.column("detected").null_count:
        from .tables import read_tsv

        return read_tsv(path, usecols=list(NORMALISED_COLUMNS))
    frame = table.to_pandas()
    del table
    pa.default_memory_pool().release_unused()  # the parser's blocks (≈ 100 MB at 1,000 chips)
    return frame


#: the columns of a normalised table the comparisons read (``strategy`` optional)
NEEDED_COLUMNS = ("sample", "gene", "dcq", "detected", "strategy")


class _Rows:
    """A normalised table's columns the comparisons read, as arrays, with the work every
    comparison of a strategy shares done once (issue 17): ids as codes into their distinct values
    (samples as text), ``detected`` as bool, which ΔCq are finite. :meth:`take` gives the columns
    of some rows; the ids' text is not repeated per row before (a 1,000-chip table: 4 M rows).
    ``strategy``: the strategy of every row (as ``normalised.assign(strategy=strategy)``, without
    copying the table); None = the table's own ``strategy`` column, "" when it has none."""

    def __init__(self, normalised: pd.DataFrame, strategy: str | None = None):
        self.n = len(normalised)
        own = strategy is None and "strategy" in normalised.columns
        self.strategy = "" if strategy is None else strategy
        self._strategies = normalised["strategy"].to_numpy() if own else None
        self.sample_codes, self.samples = _text_codes(normalised["sample"])
        self._genes, self._gene_codes = _id_codes(normalised["gene"])
        self.dcq = normalised["dcq"].to_numpy()
        self.detected = normalised["detected"].astype(bool).to_numpy()
        self.finite = np.isfinite(self.dcq.astype(float))
        if own:
            self.pair = pair_codes(self._strategies, self.take(np.arange(self.n))["gene"])
        else:
            self.pair = _sorted_codes(normalised["gene"])
        self.on_calls: dict[tuple, np.ndarray] = {}  # (rows kept, off_z) -> call_on (_prepare)

    def take(self, positions: np.ndarray) -> dict[str, np.ndarray]:
        """The columns :data:`NEEDED_COLUMNS` at ``positions`` (ids as text, ``detected`` as bool)."""
        genes = positions if self._gene_codes is None else self._gene_codes[positions]
        if self._strategies is None:
            strategies = np.empty(len(positions), dtype=object)
            strategies[:] = self.strategy  # one str object (np.full: one a row)
        else:
            strategies = self._strategies[positions]
        return {
            "sample": self.samples.to_numpy()[self.sample_codes[positions]],
            "gene": self._genes[genes],
            "dcq": self.dcq[positions],
            "detected": self.detected[positions],
            "strategy": strategies,
        }

    @property
    def columns(self) -> dict[str, np.ndarray]:
        """Every row's columns (:meth:`take` of all)."""
        return self.take(np.arange(self.n))

    @property
    def frame(self) -> pd.DataFrame:
        """The columns as a table (:data:`NEEDED_COLUMNS`)."""
        return pd.DataFrame(self.columns, columns=list(NEEDED_COLUMNS))


def _id_codes(ids: pd.Series) -> tuple[np.ndarray, np.ndarray | None]:
    """The ids' values and each row's position in them: a categorical's categories (code −1, a
    missing id: the value after them) and codes; other ids: the values themselves and None."""
    if not isinstance(ids.dtype, pd.CategoricalDtype):
        return ids.to_numpy(), None
    values = np.append(ids.cat.categories.to_numpy(object), np.nan)
    return values, ids.cat.codes.to_numpy()


def _text_codes(ids: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """``pd.factorize(ids.astype(str))``: each row's code into the distinct ids as text. A
    categorical's text is made once per category, not once per row (a missing id: "nan")."""
    if not isinstance(ids.dtype, pd.CategoricalDtype):
        codes, uniques = pd.factorize(ids.astype(str).to_numpy())
        return codes, pd.Index(uniques)
    text = np.append(ids.cat.categories.astype(str).to_numpy(object), "nan")
    text_codes, uniques = pd.factorize(text)
    # a row's code −1 (missing id): the last text, "nan"
    return text_codes.astype(np.int32)[ids.cat.codes.to_numpy()], pd.Index(uniques)


def _sorted_codes(ids: pd.Series) -> np.ndarray:
    """:func:`pair_codes` of one strategy's ids: codes in the ids' sorted order, −1 = missing. A
    categorical's order is found among its categories, not its rows."""
    if not isinstance(ids.dtype, pd.CategoricalDtype):
        return pair_codes(None, ids.to_numpy())
    rank = pd.factorize(ids.cat.categories.to_numpy(object), sort=True)[0].astype(np.int32)
    return np.append(rank, np.int32(-1))[ids.cat.codes.to_numpy()]  # code −1 (missing): the last


def pair_codes(strategy: np.ndarray | None, gene: np.ndarray) -> np.ndarray:
    """Each row's (strategy, gene) as one integer, in the sorted order of the pairs (−1: a missing
    id); ``strategy`` None: one strategy. The groups of ``groupby(["strategy", "gene"], sort=True)``
    without hashing the text columns again in each comparison (issue 17)."""
    genes, names = pd.factorize(gene, sort=True)
    if strategy is None:
        return genes.astype(np.int64)
    strategies = pd.factorize(strategy, sort=True)[0].astype(np.int64)
    return np.where((strategies < 0) | (genes < 0), -1, strategies * max(len(names), 1) + genes)


def gene_rows(data: pd.DataFrame) -> dict[tuple, np.ndarray]:
    """``data.groupby(["strategy", "gene"], sort=True).indices`` (the row positions of each strategy ×
    gene, both in ascending order) from the rows' ``_pair`` codes (:func:`pair_codes`) when the table
    has them."""
    if "_pair" not in data.columns:
        return data.groupby(["strategy", "gene"], sort=True).indices
    pair = data["_pair"].to_numpy()
    if not pair.size:
        return {}
    order = np.argsort(pair, kind="stable")
    first = np.flatnonzero(np.r_[True, pair[order][1:] != pair[order][:-1]])
    strategy, gene = data["strategy"].to_numpy(), data["gene"].to_numpy()
    groups = np.split(order, first[1:])
    return {(strategy[idx[0]], gene[idx[0]]): idx for idx in groups if pair[idx[0]] >= 0}


def _join_sheet(rows: _Rows, sheet: pd.DataFrame) -> tuple[pd.DataFrame, bytes | None]:
    """``rows.frame.merge(sheet, on="sample", how="inner")`` (rows in the table's order), then the
    rows with a finite ΔCq; the index is the row's position in the join, as filtering the merged
    frame gives. ``_pair``: the rows' :func:`pair_codes`. Also which samples were kept (None: not
    known), the key of what depends on the rows alone (:func:`call_on`).

    With one sheet row per sample (the samples sheet's rule) the join is a lookup of each
    distinct sample in the sheet: no hash join of sample × gene × strategy string keys."""
    if not sheet["sample"].is_unique:
        joined = rows.frame.merge(sheet, on="sample", how="inner")
        joined = joined[np.isfinite(joined["dcq"].astype(float))]
        pair = pair_codes(joined["strategy"].to_numpy(), joined["gene"].to_numpy())
        return joined.assign(_pair=pair), None
    where_sample = pd.Index(sheet["sample"]).get_indexer(rows.samples).astype(np.int32)
    where = where_sample[rows.sample_codes]  # int32: the temporaries of 4 M rows halved
    keep = where >= 0
    take = np.flatnonzero(keep & rows.finite)
    index = pd.Index(np.flatnonzero(rows.finite[keep]))
    sheet_rows = where[take]
    columns = rows.take(take)
    columns.update({col: sheet[col].to_numpy()[sheet_rows] for col in sheet.columns if col != "sample"})
    columns["_pair"] = rows.pair[take]
    data = pd.DataFrame(columns, index=index, copy=False)  # fresh arrays: no copy, no consolidation
    return data, np.packbits(where_sample >= 0).tobytes()


def _empty(extra: list[str]) -> pd.DataFrame:
    return pd.DataFrame(columns=COLUMNS + extra)


def _finish(
    rows: list[dict], extra: list[str], q_groups: list[str], q_extra: Iterable[tuple[str, str]] = ()
) -> pd.DataFrame:
    if not rows:
        return _empty(extra)
    table = pd.DataFrame(rows)
    for col in COLUMNS + extra:
        if col not in table.columns:
            table[col] = np.nan
    table["q"] = np.nan
    for _, idx in table.groupby(q_groups, sort=False, dropna=False).groups.items():
        table.loc[idx, "q"] = stats.bh_qvalues(table.loc[idx, "p"].to_numpy(float))
        for p_col, q_col in q_extra:
            table.loc[idx, q_col] = stats.bh_qvalues(table.loc[idx, p_col].to_numpy(float))
    sort = [c for c in ("strategy", "site", "gene") if c in q_groups + ["gene"]]
    table = table.sort_values(sort, kind="mergesort").reset_index(drop=True)
    return table[COLUMNS + extra]


def call_on(data: pd.DataFrame, off_z: float | None = OFF_Z) -> pd.Series:
    """Detected values at the gene's expressed level (not "off"), per strategy × gene, label-blind.

    A CTC sample whose cells do not express a gene can still give a late background
    signal (8-14 cycles later, often under the LOD, so called detected). A detected ΔCq
    more than ``off_z`` robust SDs above the median of the gene's detected ΔCq (robust
    SD = 1.4826 · MAD, at least :data:`OFF_MIN_SD` cycles) is called "off": it counts as
    detected for the detection rate but is left out of every level statistic. Computed
    over all units of the comparison without their group labels, so it cannot favour a
    group. ``off_z`` None or 0: no off calls.
    """
    det = data["detected"].to_numpy(bool)
    if not off_z:
        return pd.Series(det, index=data.index)
    level = data["dcq"].where(data["detected"])
    # one number per strategy × gene (a missing id stays out of every group, as in a groupby on
    # the text columns): the rows' _pair codes, or the groups of the two text columns
    if "_pair" in data.columns:
        pair = data["_pair"].to_numpy()
    else:
        pair = pair_codes(data["strategy"].to_numpy(), data["gene"].to_numpy())
    keys = pd.Series(np.where(pair < 0, np.nan, pair.astype(float)), index=data.index)
    med = level.groupby(keys).transform("median")
    mad = (level - med).abs().groupby(keys).transform("median")
    sd = np.maximum(1.4826 * mad.to_numpy(float), OFF_MIN_SD)
    with np.errstate(invalid="ignore"):
        off = det & ((level - med).to_numpy(float) > off_z * sd)
    return pd.Series(det & ~off, index=data.index)


def _pool(data: pd.DataFrame, spec: dict, notes: list[str]) -> pd.DataFrame:
    """One row per patient: detection = share of its draws detected, level = mean ΔCq of on-level draws."""
    by = ["strategy", "gene", "unit"]
    if spec["type"] == "timepoints":
        by.append(spec["column"])
    labels = [c for c in data.columns if c not in by + ["sample", "dcq", "detected", "on", "_pair"]]
    data = data.assign(_level=data["dcq"].where(data["on"]))
    grouped = data.groupby(by, sort=True)
    pooled = grouped.agg(
        _all=("dcq", "mean"),
        _level=("_level", "mean"),
        _n_det=("detected", "sum"),
        _n_on=("on", "sum"),
        n_samples=("sample", "size"),
    )
    # the imputed mean is kept only for patients with no on-level draw (for the tied-rank test)
    pooled["detected"] = pooled["_n_det"] > 0
    pooled["on"] = pooled["_n_on"] > 0
    pooled["detected_fraction"] = pooled["_n_det"] / pooled["n_samples"]
    pooled["dcq"] = pooled["_level"].where(pooled["on"], pooled["_all"])
    pooled = pooled.drop(columns=["_all", "_level", "_n_det", "_n_on"])
    for col in labels:
        if col == "_level":
            continue
        nunique = grouped[col].nunique(dropna=False)
        if (nunique > 1).any():
            bad = sorted({str(k[2]) for k in nunique[nunique > 1].index})
            notes.append(
                f"{spec['name']}: patients {', '.join(bad[:10])} have several values of {col!r}; "
                "the first is used after pooling"
            )
        pooled[col] = grouped[col].first()
    data = pooled.reset_index()
    data["_pair"] = pair_codes(data["strategy"].to_numpy(), data["gene"].to_numpy())
    if (data["n_samples"] > 1).any():
        notes.append(
            f"{spec['name']}: pooled several samples per patient: detection = share of the "
            "patient's draws detected, level = mean ΔCq of the detected (on-level) draws"
        )
    return data
