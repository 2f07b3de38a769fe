"""Join with the qPCR study: expression Cox and qPCR positivity against outcome
(docs/methods.md §6, §8.2).

The expression Cox uses DETECTED values only: a non-detect's ΔCq is LOD + 1 −
normaliser and carries only the normaliser's spread, so it says nothing about the
gene. A gene is tested only where at least ``min_detected`` patients (default 3)
have a detected value at the draw; otherwise its cells are empty and ``reason``
says why — a never-detected gene can never be significant.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from ..survival import benjamini_hochberg, cox_ph
from .analyses import Collector
from .associations import contingency_row
from .dynamics import thr_label
from .inputs import _line, require_columns

EXPR_COLUMNS = [
    "gene",
    "timepoint",
    "endpoint",
    "hr",
    "ci_low",
    "ci_high",
    "p",
    "q",
    "n",
    "events",
    "n_detected",
    "coef",
    "se",
    "ph_p",
    "reason",
]


def sample_patients(samples: pd.DataFrame, timepoint: str, path: str) -> pd.Series:
    """sample → patient for the samples drawn at ``timepoint`` (one per patient)."""
    require_columns(samples, ["sample", "patient", "timepoint"], path, "samples")
    smp = samples.reset_index(drop=True).copy()
    for c in ("sample", "patient", "timepoint"):
        smp[c] = smp[c].astype(str).str.strip()
    for cols, what, todo in (
        ("sample", "sample {} listed twice", "one row per sample"),
        ("patient", "patient {} has two samples at " + timepoint, "keep one sample per patient and draw"),
    ):
        sub = smp if cols == "sample" else smp[smp["timepoint"] == timepoint]
        dup = sub.duplicated(cols, keep=False)
        if dup.any():
            i = sub.index[dup][1]
            raise InputError(path, what.format(smp.at[i, cols]), todo, line=_line(i), column=cols)
    smp = smp[smp["timepoint"] == timepoint]
    return smp.set_index("sample")["patient"]


def _detected(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(values):
        return values.to_numpy(bool)
    return values.astype(str).str.strip().str.lower().isin(["true", "1", "yes"]).to_numpy()


def _gene_row(gene: str, timepoint: str, ep: str, g: pd.DataFrame, min_detected: int) -> dict:
    tcol, ecol = f"{ep}_months", f"{ep}_event"
    d = g.dropna(subset=[tcol, ecol])
    det = d[d["_detected"]]
    row = {
        "gene": gene,
        "timepoint": timepoint,
        "endpoint": ep,
        "n": len(det),
        "events": int(det[ecol].sum()),
        "n_detected": len(det),
    }
    if len(det) < min_detected:
        row["reason"] = f"detected in {len(det)} of {len(d)} patients (< {min_detected}): not tested"
        return row
    if det[ecol].sum() == 0:
        row["reason"] = "no events among patients with a detected value"
        return row
    if np.ptp(det["log2_expr"]) == 0:
        row["reason"] = "all detected values equal"
        return row
    fit = cox_ph(
        det[tcol].to_numpy(float), det[ecol].to_numpy(int), det[["log2_expr"]].to_numpy(float), ["log2_expr"]
    )
    if not fit.converged:
        row["reason"] = f"Cox fit failed: {fit.note}"
        return row
    lo, hi = fit.ci()
    row.update(
        hr=fit.hr[0],
        ci_low=lo[0],
        ci_high=hi[0],
        p=fit.p[0],
        coef=fit.coef[0],
        se=fit.se[0],
        ph_p=fit.ph_p[0],
    )
    return row


def expression_cox(
    expression: pd.DataFrame,
    s2p: pd.Series,
    clin: pd.DataFrame,
    endpoints: Sequence[str],
    timepoint: str,
    path: str,
    min_detected: int,
) -> pd.DataFrame:
    """Univariate Cox of each gene's −ΔCq (detected values only), BH across tested genes."""
    require_columns(expression, ["sample", "gene", "dcq"], path, "normalised expression")
    ex = expression.copy()
    ex["sample"] = ex["sample"].astype(str)
    ex = ex[ex["sample"].isin(s2p.index)]
    ex["patient"] = ex["sample"].map(s2p)
    ex = ex.merge(clin, on="patient", how="inner")
    ex["log2_expr"] = -pd.to_numeric(ex["dcq"], errors="coerce")
    ex["_detected"] = _detected(ex["detected"]) if "detected" in ex.columns else True
    ex["_detected"] &= ex["log2_expr"].notna().to_numpy()
    ex["gene"] = ex["gene"].astype(str)
    rows = [
        _gene_row(gene, timepoint, ep, g, min_detected)
        for gene, g in ex.groupby("gene", sort=True)
        for ep in endpoints
    ]
    out = pd.DataFrame(rows).reindex(columns=EXPR_COLUMNS)
    if len(out):
        out["reason"] = out["reason"].fillna("")
        for ep in endpoints:
            m = (out["endpoint"] == ep) & out["p"].notna()
            out.loc[m, "q"] = benjamini_hochberg(out.loc[m, "p"].to_numpy(float))
        out = out.sort_values(["endpoint", "gene"], kind="mergesort").reset_index(drop=True)
    return out


def positivity_groups(
    col: Collector,
    positivity: pd.DataFrame,
    s2p: pd.Series,
    clin: pd.DataFrame,
    base: pd.DataFrame,
    endpoints: Sequence[str],
    timepoint: str,
    main_threshold: float,
) -> list[dict]:
    """qPCR positivity as a grouping: KM/log-rank/Cox, and against baseline CTC status."""
    require_columns(positivity, ["sample", "positive"], "positivity", "positivity calls")
    pz = positivity.copy()
    pz["sample"] = pz["sample"].astype(str)
    pz = pz[pz["sample"].isin(s2p.index)]
    pz["patient"] = pz["sample"].map(s2p)
    d0 = pz.merge(clin, on="patient", how="inner")
    d0["qpcr_positive"] = d0["positive"].astype(bool).astype(int)
    grp = np.where(d0["qpcr_positive"] == 1, "qPCR+", "qPCR-")
    name = f"{timepoint} qPCR positivity"
    for ep in endpoints:
        tcol, ecol = f"{ep}_months", f"{ep}_event"
        ok = d0[tcol].notna().to_numpy()
        col.group_analysis(name, ep, d0.loc[ok, tcol], d0.loc[ok, ecol], grp[ok])
        col.cox_model(f"univariate: {name}", ep, d0[ok], tcol, ecol, ["qpcr_positive"])
    m = d0.merge(base[["patient", "ctc_per_7_5ml"]], on="patient", how="inner")
    if not len(m):
        return []
    lbl = thr_label(main_threshold)
    st = np.where(m["ctc_per_7_5ml"] >= main_threshold, f">={lbl}", f"<{lbl}")
    tab = pd.crosstab(np.where(m["qpcr_positive"] == 1, "qPCR+", "qPCR-"), st)
    return [contingency_row(name, f"baseline CTC>={lbl}", tab, len(m))]
