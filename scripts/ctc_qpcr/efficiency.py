"""Amplification efficiency (docs/methods.md §3.4).

* Standard curve: Cq regressed on log10(input); slope b; E = 10^(−1/b);
  eff % = (E − 1)·100; r² (ideal 90–110 %, r² > 0.98).
* Efficiency-scaled Cq: Cq* = Cq·log2(E) — the Cq an E = 2 reaction would show.
* Pfaffl (2001) ratio and the Livak 2^−ΔΔCq ratio.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .wells import CALC

EFFICIENCY_COLUMNS = ["assay", "slope", "intercept", "E", "efficiency_pct", "r2", "n", "source"]


def standard_curve(log10_quantity, cq) -> dict[str, float]:
    """Least squares Cq = intercept + slope·log10(quantity): slope, intercept, E, efficiency_pct, r2, n."""
    x = np.asarray(log10_quantity, dtype=float)
    y = np.asarray(cq, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = len(x)
    if n < 2 or np.ptp(x) == 0:
        return {
            "slope": np.nan,
            "intercept": np.nan,
            "E": np.nan,
            "efficiency_pct": np.nan,
            "r2": np.nan,
            "n": n,
        }
    xm, ym = x.mean(), y.mean()
    sxx = ((x - xm) ** 2).sum()
    sxy = ((x - xm) * (y - ym)).sum()
    syy = ((y - ym) ** 2).sum()
    slope = sxy / sxx
    intercept = ym - slope * xm
    r2 = sxy * sxy / (sxx * syy) if syy > 0 else np.nan
    e = 10.0 ** (-1.0 / slope) if slope != 0 else np.nan
    return {
        "slope": slope,
        "intercept": intercept,
        "E": e,
        "efficiency_pct": (e - 1.0) * 100.0,
        "r2": r2,
        "n": n,
    }


def standard_curves(
    wells: pd.DataFrame, quantity: pd.Series | None = None, *, min_points: int = 3
) -> pd.DataFrame:
    """One standard curve per assay from the CALC wells of ``standard`` samples.

    ``wells`` must already be restricted to standard samples; ``quantity`` (aligned
    with ``wells``) is the known input (samples-sheet ``quantity``, any unit), by
    default the well's own ``quantity`` column. Replicate wells all enter the
    regression. Assays with fewer than ``min_points`` distinct quantities are skipped.
    """
    q = wells["quantity"] if quantity is None else quantity
    q = pd.to_numeric(q, errors="coerce")
    use = (wells["state"] == CALC) & (q > 0)
    d = pd.DataFrame(
        {"assay": wells["assay"], "x": np.log10(q.where(use)), "y": wells["cq"].where(use)}
    ).dropna()
    rows = []
    for assay, grp in d.groupby("assay", sort=True):  # one small regression per assay, not per well
        if grp["x"].nunique() < min_points:
            continue
        rows.append({"assay": assay, **standard_curve(grp["x"], grp["y"]), "source": "standard_curve"})
    return pd.DataFrame(rows, columns=EFFICIENCY_COLUMNS)


def scale_cq(cq, efficiency) -> np.ndarray:
    """Efficiency-scaled Cq* = Cq·log2(E) (Bio-Rad CFX / GenEx hs130; E = 2 → unchanged)."""
    return np.asarray(cq, dtype=float) * np.log2(np.asarray(efficiency, dtype=float))


def pfaffl_ratio(e_target: float, dcq_target: float, e_ref: float, dcq_ref: float) -> float:
    """Pfaffl (2001): E_target^ΔCq_target / E_ref^ΔCq_ref, ΔCq = Cq(control) − Cq(treated)."""
    return float(e_target) ** float(dcq_target) / float(e_ref) ** float(dcq_ref)


def livak_ratio(ddcq: float) -> float:
    """Livak 2^−ΔΔCq (E = 2)."""
    return 2.0 ** (-float(ddcq))
