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
from scipy import special

from .wells import CALC, LOWSIGNAL, NOAMP

CELL_KEYS = ["plate", "sample", "assay"]


def grubbs_critical(n, alpha: float = 0.05) -> np.ndarray:
    """Two-sided Grubbs critical value G(n, α) = (n−1)/√n · √(t²/(n−2+t²)), t = t_{α/(2n), n−2}."""
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        # Student-t quantile (what scipy.stats.t.ppf computes, bit for bit; scipy.special
        # loads in a fraction of scipy.stats' import time, paid by every preprocess job)
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
        np.where(state == CALC, "value", np.where(state.isin([NOAMP, LOWSIGNAL]), "nondetect", "excluded")),
        index=state.index,
    )


def summarise_replicates(
    measurements: pd.DataFrame,
    *,
    by=CELL_KEYS,
    value_col: str = "cq",
    max_delta: float = 0.5,
    max_sd: float | None = None,
    method: str = "mean",
    grubbs: bool = False,
    grubbs_alpha: float = 0.05,
) -> tuple[pd.DataFrame, pd.Index]:
    """Average technical replicates per cell (§3.2).

    ``measurements`` needs the ``by`` columns, ``value_col`` and ``use`` (or
    ``state``, from which ``use`` is derived). Returns ``(cells, outliers)``:
    ``cells`` has the ``by`` columns, ``cq`` (mean or median of the used values;
    NaN if none), ``n_wells``, ``n_replicates``, ``n_detected``,
    ``replicate_delta`` (max − min of the used values), ``replicate_sd`` (SD,
    n − 1) and ``flags`` (``;``-joined, sorted); ``outliers`` holds the index
    labels of wells removed by Grubbs.
    """
    if method not in ("mean", "median"):
        raise ValueError(f"replicates method must be 'mean' or 'median', not {method!r}")
    if max_sd is None:
        max_sd = max_delta / np.sqrt(2.0)
    by = list(by)
    m = measurements
    use = m["use"] if "use" in m.columns else use_from_state(m["state"])
    base = pd.DataFrame({c: m[c] for c in by})
    base["_value"] = (use == "value").to_numpy()
    base["_answer"] = use.isin(["value", "nondetect"]).to_numpy()
    counts = base.groupby(by, sort=False).agg(
        n_wells=("_value", "size"), n_replicates=("_answer", "sum"), _n_value_all=("_value", "sum")
    )

    vals = m.loc[base["_value"].to_numpy(), [*by, value_col]]
    vals = vals[np.isfinite(vals[value_col].to_numpy(dtype=float))]
    outliers = pd.Index([])
    if grubbs and not vals.empty:
        outliers = grubbs_outliers(vals, by, value_col, grubbs_alpha)
        vals = vals.drop(index=outliers)
    agg = vals.groupby(by, sort=False)[value_col].agg(["size", "mean", "median", "std", "min", "max"])
    cells = counts.join(agg, how="left").reset_index()
    cells["n_detected"] = cells["size"].fillna(0).astype(int)
    use_median = (method == "median") & (cells["n_detected"] >= 3)
    cells["cq"] = np.where(use_median, cells["median"], cells["mean"])
    cells["replicate_delta"] = cells["max"] - cells["min"]
    cells["replicate_sd"] = cells["std"]
    cells["n_replicates"] = cells["n_replicates"].astype(int)

    nd = cells["n_detected"]
    flags = pd.DataFrame(index=cells.index)
    flags["a"] = np.where(
        (nd == 2) & (cells["replicate_delta"] > max_delta), f"replicate_delta>{max_delta:g}", ""
    )
    flags["b"] = np.where((nd >= 3) & (cells["replicate_sd"] > max_sd), f"replicate_sd>{max_sd:.3g}", "")
    flags["c"] = np.where((nd == 1) & (cells["n_wells"] > 1), "single_replicate", "")
    flags["d"] = np.where(cells["n_replicates"] == 0, "no_valid_replicate", "")
    flags["e"] = np.where(cells["_n_value_all"] > nd, "grubbs_outlier_removed", "")
    cells["flags"] = join_flag_columns(flags)
    cols = [*by, "cq", "n_wells", "n_replicates", "n_detected", "replicate_delta", "replicate_sd", "flags"]
    return cells[cols], outliers


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
    sub = flags[has].astype(str)
    joined = sub.iloc[:, 0]
    for c in sub.columns[1:]:
        joined = joined.str.cat(sub[c], sep=";")
    uniq = {s: ";".join(sorted({x for x in s.split(";") if x})) for s in joined.unique()}
    out[has] = joined.map(uniq).to_numpy(dtype=object)
    return out
