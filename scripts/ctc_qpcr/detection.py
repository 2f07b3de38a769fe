"""Detection call, NTC margin and imputation of non-detects (docs/methods.md §3.3).

1. A well is detected ⇔ state CALC and Cq ≤ LOD (the LOD part is the LOWSIGNAL
   state of :mod:`ctc_qpcr.wells`) — and, with an NTC margin, Cq ≤ min NTC Cq − margin
   for that assay on that chip (``tdsmith/eleven`` uses log2(10) = 3.32 cycles).
2. A cell is detected ⇔ at least ``min_detected`` of its replicates are detected
   (``"all"`` = strict, the default; an int, e.g. 1 = lenient 1-of-2).
3. Non-detects are imputed as LOD + 1 (the assay's LOD where given) after all
   corrections, keeping ``detected = False`` (§3.3 recommendation, §9 choice).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .wells import CALC, LOWSIGNAL


def ntc_thresholds(wells: pd.DataFrame, ntc_samples, margin: float) -> pd.DataFrame:
    """Per chip × assay: the lowest NTC Cq and the detection threshold ``min NTC Cq − margin``.

    NTC wells that amplified count (CALC or LOWSIGNAL: background above the LOD
    still marks contamination); EXPFAIL and NOAMP NTC wells do not. Chips/assays
    whose NTC did not amplify impose no threshold (no row).
    """
    ntc = wells[wells["sample"].isin(set(map(str, ntc_samples))) & wells["state"].isin([CALC, LOWSIGNAL])]
    out = ntc.groupby(["plate", "assay"])["cq"].min().rename("ntc_min_cq").reset_index()
    out["ntc_threshold"] = out["ntc_min_cq"] - float(margin)
    return out


def above_ntc(measurements: pd.DataFrame, thresholds: pd.DataFrame, cq_col: str = "cq") -> np.ndarray:
    """True where a well's Cq is above its chip × assay NTC threshold (not distinguishable from the NTC)."""
    key = pd.MultiIndex.from_frame(measurements[["plate", "assay"]])
    thr = thresholds.set_index(["plate", "assay"])["ntc_threshold"].reindex(key).to_numpy(dtype=float)
    cq = measurements[cq_col].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        return np.isfinite(thr) & np.isfinite(cq) & (cq > thr)


def detection_call(n_detected, n_replicates, min_detected="all") -> np.ndarray:
    """Cell detected ⇔ ≥ 1 detected replicate and (all answering replicates, or ≥ ``min_detected``)."""
    nd = np.asarray(n_detected, dtype=int)
    nr = np.asarray(n_replicates, dtype=int)
    if min_detected == "all":
        return (nd >= 1) & (nd == nr)
    k = int(min_detected)
    if k < 1:
        raise ValueError("min_detected must be 'all' or an integer ≥ 1")
    return nd >= k


def impute_nondetects(cq, detected, limit, n_replicates=None) -> np.ndarray:
    """``cq`` where detected, else ``limit + 1``; NaN for cells without an answering replicate (missing)."""
    cq = np.asarray(cq, dtype=float)
    detected = np.asarray(detected, dtype=bool)
    limit = np.broadcast_to(np.asarray(limit, dtype=float), cq.shape)
    out = np.where(detected, cq, limit + 1.0)
    if n_replicates is not None:
        out = np.where(np.asarray(n_replicates) > 0, out, np.nan)
    return out


def call_cells(
    cells: pd.DataFrame, *, lod: float = 35.0, assay_lod: dict[str, float] | None = None, min_detected="all"
) -> pd.DataFrame:
    """Add ``detected`` and ``cq_imputed`` to replicate summaries (assay, cq, n_detected, n_replicates)."""
    from .wells import well_lod

    out = cells.copy()
    out["detected"] = detection_call(out["n_detected"], out["n_replicates"], min_detected)
    limit = well_lod(out, lod, assay_lod)
    out["cq_imputed"] = impute_nondetects(out["cq"], out["detected"], limit, out["n_replicates"])
    return out
