"""Technical replicates: averaging and QC (docs/methods.md §3.2).

* Average = arithmetic mean of Cq (GenEx, qbase+, NormqPCR; §9 choice), optionally
  the median for ≥ 3 replicates (qbase+ option).
* Duplicates: ``replicate_delta`` = max − min; flag ``replicate_delta>0.5`` when above
  ``max_delta`` (EasyqpcR ``badCt`` "0.5 classically"; qbase+ flags, never excludes).
* ≥ 3 replicates: flag ``replicate_sd>…`` when the SD (n − 1) exceeds ``max_sd``.
  Default ``max_sd = max_delta/√2`` (= 0.354 for Δ 0.5): for duplicates SD = |Δ|/√2
  (Biogazelle), so triplicates are held to the same spread as duplicates.
* One replicate with a value and the others non-detected or failed: keep the single
  value, flag ``single_replicate`` (§3.2 extension; the detection call is §3.3's).
* Optional two-sided Grubbs outlier removal (α = 0.05), ≥ 3 replicates, repeated
  while an outlier is found and ≥ 3 values remain.

Input rows carry ``use``: "value" (a usable Cq), "nondetect" (NOAMP/LOWSIGNAL — a
replicate that answered "not detected") or "excluded" (EXPFAIL, or removed by
ValidPrime: no information). ``n_replicates`` counts value + nondetect wells,
``n_detected`` the value wells.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .chip_options import ReplicateOptions
from .errors import ConfigError
from .rowkeys import as_text, missing_as, pick_text, text_is
from .wells import CALC, LOWSIGNAL, NOAMP

CELL_KEYS = ["plate", "sample", "assay"]


def grubbs_critical(n, alpha: float = 0.05) -> np.ndarray:
    """Two-sided Grubbs critical value G(n, α) = (n−1)/√n · √(t²/(n−2+t²)), t = t_{α/(2n), n−2}."""
    # Student-t quantile (what scipy.stats.t.ppf computes, bit for bit). Imported here:
    # only replicates.outliers: grubbs needs it, and the import (~0.5 s) would otherwise
    # be paid by every chip-level job.
    from scipy import special

    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(n > 2.0, special.stdtrit(n - 2.0, 1.0 - alpha / (2.0 * n)), np.nan)
        return (n - 1.0) / np.sqrt(n) * np.sqrt(t * t / (n - 2.0 + t * t))


def grubbs_outliers(
    values: pd.DataFrame, by=CELL_KEYS, value_col: str = "cq", alpha: float = 0.05, max_rounds: int = 10
) -> pd.Index:
    """Index labels of the rows removed by iterated two-sided Grubbs tests per group (≥ 3 values)."""
    active = values[[*by, value_col]].copy()
    removed: list = []
    for _ in range(max_rounds):
        g = active.groupby(by, sort=False)[value_col]
        n = g.transform("size")
        mean = g.transform("mean")
        sd = g.transform("std")
        with np.errstate(invalid="ignore", divide="ignore"):
            dev = (active[value_col] - mean).abs() / sd
        ok = (n >= 3) & (sd > 0)
        dev = dev.where(ok)
        if not dev.notna().any():
            break
        cand = dev.dropna()
        top = cand.groupby([active.loc[cand.index, c] for c in by], sort=False).idxmax()
        top_idx = pd.Index(top.to_numpy())
        crit = grubbs_critical(n.loc[top_idx].to_numpy(), alpha)
        out = top_idx[dev.loc[top_idx].to_numpy() > crit]
        if len(out) == 0:
            break
        removed.extend(out.tolist())
        active = active.drop(index=out)
    return pd.Index(removed)


def use_from_state(state: pd.Series) -> pd.Series:
    """Default ``use`` of a well from its state (CALC → value, NOAMP/LOWSIGNAL → nondetect, else excluded)."""
    return pd.Series(
        pick_text([text_is(state, CALC), state.isin([NOAMP, LOWSIGNAL])], ["value", "nondetect"], "excluded"),
        index=state.index,
    )


def summarise_replicates(
    measurements: pd.DataFrame,
    options: ReplicateOptions,
    *,
    by=CELL_KEYS,
    value_col: str = "cq",
    grubbs_alpha: float = 0.05,
    cell_ids: np.ndarray | None = None,
) -> tuple[pd.DataFrame, pd.Index]:
    """Average technical replicates per cell (§3.2).

    ``measurements`` needs the ``by`` columns, ``value_col`` and ``use`` (or
    ``state``, from which ``use`` is derived). ``options``: flags above
    ``max_delta`` / ``max_sd``; ``outliers`` ``median`` averages by the median,
    ``grubbs`` removes Grubbs outliers (level ``grubbs_alpha``) first.
    Returns ``(cells, outliers)``:
    ``cells`` has the ``by`` columns, ``cq`` (mean or median of the used values;
    NaN if none), ``n_wells``, ``n_replicates``, ``n_detected``,
    ``replicate_delta`` (max − min of the used values), ``replicate_sd`` (SD,
    n − 1) and ``flags`` (``;``-joined, sorted); ``outliers`` holds the index
    labels of wells removed by Grubbs. ``cell_ids``: ``measurements.groupby(by, sort=False).ngroup()``
    when the caller has it (the text keys grouped once for both).
    """
    if options.outliers not in ("none", "grubbs", "median"):
        raise ConfigError(
            f"config replicates.outliers: {options.outliers!r} is not one of none, grubbs, median"
        )
    max_delta, max_sd = options.max_delta, options.max_sd
    method = "median" if options.outliers == "median" else "mean"
    grubbs = options.outliers == "grubbs"
    by = list(by)
    m = measurements
    use = m["use"] if "use" in m.columns else use_from_state(m["state"])
    # Integer cell ids in order of first appearance (the text keys are grouped once).
    cid = m.groupby(by, sort=False).ngroup().to_numpy() if cell_ids is None else cell_ids
    value = text_is(use, "value")
    counts = _cell_counts(cid, value, use.isin(["value", "nondetect"]).to_numpy())
    ids, first = np.unique(cid, return_index=True)
    first = first[ids >= 0]
    value &= cid >= 0
    keys = m[by].iloc[first].reset_index(drop=True)

    vals = m.loc[value, [*by, value_col]] if grubbs else m.loc[value, [value_col]]
    vals = vals.assign(_cid=cid[value])
    vals = vals[np.isfinite(vals[value_col].to_numpy(dtype=float))]
    outliers = pd.Index([])
    if grubbs and not vals.empty:
        outliers = grubbs_outliers(vals, by, value_col, grubbs_alpha)
        vals = vals.drop(index=outliers)
    stats = ["size", "mean", "std", "min", "max"] + (["median"] if method == "median" else [])
    agg = vals.groupby("_cid", sort=True)[value_col].agg(stats)
    cells = pd.concat([keys, counts.join(agg, how="left").reset_index(drop=True)], axis=1)
    cells["n_detected"] = cells["size"].fillna(0).astype(int)
    if method == "median":
        cells["cq"] = np.where(cells["n_detected"] >= 3, cells["median"], cells["mean"])
    else:
        cells["cq"] = cells["mean"].to_numpy(copy=True)
    cells["replicate_delta"] = cells["max"] - cells["min"]
    cells["replicate_sd"] = cells["std"]
    cells["n_replicates"] = cells["n_replicates"].astype(int)

    nd = cells["n_detected"]
    flags = pd.DataFrame(index=cells.index)
    flags["a"] = pick_text(
        [(nd == 2) & (cells["replicate_delta"] > max_delta)], [f"replicate_delta>{max_delta:g}"], ""
    )
    flags["b"] = pick_text([(nd >= 3) & (cells["replicate_sd"] > max_sd)], [f"replicate_sd>{max_sd:.3g}"], "")
    flags["c"] = pick_text([(nd == 1) & (cells["n_wells"] > 1)], ["single_replicate"], "")
    flags["d"] = pick_text([cells["n_replicates"] == 0], ["no_valid_replicate"], "")
    flags["e"] = pick_text([cells["_n_value_all"] > nd], ["grubbs_outlier_removed"], "")
    cells["flags"] = join_flag_columns(flags)
    cols = [*by, "cq", "n_wells", "n_replicates", "n_detected", "replicate_delta", "replicate_sd", "flags"]
    return cells[cols], outliers


def _cell_counts(cid: np.ndarray, value: np.ndarray, answer: np.ndarray) -> pd.DataFrame:
    """Per cell id present (sorted; −1, a key missing, is no cell): ``n_wells``, ``n_replicates``
    (wells that answered) and ``_n_value_all`` (wells with a value) — a grouping by the id, counted
    by ``np.bincount``."""
    known = cid >= 0
    ids = cid[known]
    size = int(ids.max()) + 1 if len(ids) else 0
    n_wells = np.bincount(ids, minlength=size)
    counts = pd.DataFrame(
        {
            "n_wells": n_wells,
            "n_replicates": np.bincount(ids, weights=answer[known], minlength=size).astype(np.int64),
            "_n_value_all": np.bincount(ids, weights=value[known], minlength=size).astype(np.int64),
        }
    )
    return counts[n_wells > 0]


def join_flag_columns(flags: pd.DataFrame) -> pd.Series:
    """Row-wise ``;``-join of flag columns (each "" or ``;``-joined flags), sorted and unique."""
    if flags.shape[1] == 0:
        return pd.Series("", index=flags.index)
    out = pd.Series("", index=flags.index, dtype=object)
    # Join only the rows that carry a flag (most rows carry none).
    has = np.zeros(len(flags), dtype=bool)
    for c in flags.columns:
        has |= flags[c].to_numpy(dtype=object) != ""
    if not has.any():
        return out
    sub = [as_text(pd.Series(flags[c].to_numpy()[has], dtype=object)).to_numpy() for c in flags.columns]
    joined = sub[0]
    for column in sub[1:]:
        joined = joined + ";" + column
    codes, uniques = pd.factorize(joined)  # each distinct joined text sorted and made unique once
    clean = np.array([";".join(sorted({x for x in s.split(";") if x})) for s in uniques], dtype=object)
    out[has] = clean[codes]
    return out


def worst_per_cell(labels: pd.Series, cid: np.ndarray, n_cells: int, severity: dict) -> np.ndarray:
    """Per cell id (0 … n_cells − 1): the worst of its wells' ``labels`` by ``severity`` (label →
    rank 0, 1, …; a missing or unknown label ranks 0), looked up once per distinct label."""
    codes, uniques = pd.factorize(labels)
    rank = np.append(pd.Series(uniques, dtype=object).map(severity).fillna(0).to_numpy(int), 0)
    worst = np.zeros(n_cells, dtype=np.int64)
    np.maximum.at(worst, cid, rank[codes])  # code −1 (a missing label) → the appended 0
    name = np.full(max(severity.values()) + 1, "", dtype=object)
    name[list(severity.values())] = list(severity)
    return name[worst]


def distinct_flag_columns(flags: pd.Series, cid: np.ndarray, n_cells: int) -> dict[str, np.ndarray]:
    """The distinct non-empty ``flags`` of each cell's wells as columns ``v0``, ``v1``, … (the k-th
    distinct flag of a cell in well order, "" where it has fewer; missing read as "")."""
    has = ~text_is(flags, "")
    found = pd.DataFrame({"cid": cid[has], "flag": flags.to_numpy()[has]}).drop_duplicates()
    kth = found.groupby("cid", sort=False).cumcount().to_numpy()
    text, at = missing_as(found["flag"], ""), found["cid"].to_numpy()
    columns = {}
    for k in range(int(kth.max(initial=-1)) + 1):
        columns[f"v{k}"] = np.full(n_cells, "", dtype=object)
        columns[f"v{k}"][at[kth == k]] = text[kth == k]
    return columns


# --------------------------------------------------------------------------- replicate design
#: Sample kinds whose replicate count defines (and is held to) a plate's design. Controls
#: (IPC, NTC, gDNA, standards) legitimately sit on other numbers of wells.
DESIGN_KINDS = ("patient", "healthy")


def replicate_design(wells: pd.DataFrame, expected: int | None = None) -> pd.Series:
    """Replicate wells per sample × assay each plate is designed for (§3.2, §12).

    ``expected`` given: that number on every plate. ``None``: per plate, the most
    common count among its patient and healthy cells (a tie goes to the larger
    count). Plates without such cells are absent.
    """
    return _design_of(_design_counts(wells), expected)


def _design_of(counts: pd.DataFrame, expected: int | None) -> pd.Series:
    if expected is not None:
        plates = pd.Index(sorted(set(counts["plate"])), name="plate")
        return pd.Series(int(expected), index=plates, name="expected", dtype="int64")
    tally = counts.groupby(["plate", "n_wells"], sort=False).size().rename("k").reset_index()
    tally = tally.sort_values(["plate", "k", "n_wells"], ascending=[True, False, False])
    mode = tally.drop_duplicates("plate").set_index("plate")["n_wells"]
    return mode.rename("expected").astype("int64")


def _design_counts(wells: pd.DataFrame) -> pd.DataFrame:
    study = wells.loc[wells["kind"].isin(DESIGN_KINDS).to_numpy(), CELL_KEYS]  # the keys, not every column
    return study.groupby(CELL_KEYS, sort=True).size().rename("n_wells").reset_index()


def extra_replicates(wells: pd.DataFrame, expected: int | None = None) -> pd.DataFrame:
    """Patient/healthy cells with more wells than their plate's design (two samples under one name?).

    ``wells`` needs plate, sample, assay, kind. Returns one row per such cell:
    plate, sample, assay, n_wells, expected (sorted).
    """
    counts = _design_counts(wells)
    design = _design_of(counts, expected)  # one grouping of the wells, not two
    counts["expected"] = counts["plate"].map(design).to_numpy()
    over = counts[counts["n_wells"] > counts["expected"]]
    return over.reset_index(drop=True)


def extra_wells_mask(wells: pd.DataFrame, over: pd.DataFrame) -> np.ndarray:
    """True for the wells of the cells in ``over`` (from :func:`extra_replicates`)."""
    if over.empty:
        return np.zeros(len(wells), dtype=bool)
    return pd.MultiIndex.from_frame(wells[CELL_KEYS]).isin(pd.MultiIndex.from_frame(over[CELL_KEYS]))


def _places(wells: pd.Series, limit: int = 12) -> str:
    """'inlets S03, S04' (BioMark chambers S..-A..) or 'wells A1, A2' of one sample, in order."""
    inlet = wells.str.extract(r"^(S\d+)-", expand=False)
    names, word = (inlet, "inlets") if inlet.notna().all() else (wells, "wells")
    names = sorted(set(names), key=lambda n: (len(n), n))
    more = f" … and {len(names) - limit} more" if len(names) > limit else ""
    return f"{word} {', '.join(names[:limit])}{more}"


def extra_replicates_error(wells: pd.DataFrame, over: pd.DataFrame, exports: dict, expected_key: str):
    """The :class:`~ctc_qpcr.errors.InputError` for the first plate × sample of ``over``.

    Names the export (``exports``: plate → path; else the plate), the line of the
    first well beyond the design, the sample, its inlets or wells and what to do.
    """
    from .errors import InputError

    plate, sample = over.iloc[0]["plate"], over.iloc[0]["sample"]
    mine = over[(over["plate"] == plate) & (over["sample"] == sample)]
    n, e = int(mine["n_wells"].max()), int(mine["expected"].iloc[0])
    sub = wells[((wells["plate"] == plate) & (wells["sample"] == sample)).to_numpy()]
    sub = sub.sort_values(["line", "well"], kind="stable")
    beyond = sub[(sub.groupby("assay", sort=False).cumcount() >= e).to_numpy()]
    line = int(beyond["line"].min()) if "line" in beyond.columns and len(beyond) else 0
    pairs = over[["plate", "sample"]].drop_duplicates()
    others = (
        f" ({len(pairs) - 1} more sample(s) like it: "
        + ", ".join(f"{p}/{s}" for p, s in pairs.iloc[1:6].itertuples(index=False))
        + (" …" if len(pairs) > 6 else "")
        + ")"
        if len(pairs) > 1
        else ""
    )
    where = f"{exports[plate]} (plate {plate})" if exports.get(plate) else f"plate {plate}"
    return InputError(
        where,
        f"sample '{sample}' has {n} wells for each of {len(mine)} assay(s) where the "
        f"plate's replicate design is {e} ({expected_key}) — on {_places(sub['well'])}: two samples seem "
        f"to carry one name and would be averaged into one{others}",
        "give each sample its own name in the export (or rename it in the samples sheet); if this sample "
        f"really was run on {n} wells, set replicates.expected: {n}; or set replicates.on_extra: flag to go "
        "on with its cells flagged extra_replicates",
        line=line or None,
        column="sample",
    )


def flag_extra_cells(cells: pd.DataFrame, over: pd.DataFrame) -> pd.DataFrame:
    """Add ``extra_replicates`` to the flags of the cells in ``over``."""
    hit = extra_wells_mask(cells, over)
    if not hit.any():
        return cells
    cells = cells.copy()
    mark = pd.Series(np.where(hit, "extra_replicates", ""), index=cells.index)
    cells["flags"] = join_flag_columns(pd.DataFrame({"f": cells["flags"].fillna(""), "x": mark}))
    return cells
