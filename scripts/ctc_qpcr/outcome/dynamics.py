"""CTC status per draw, change between draws and positivity rates (docs/methods.md §8.1)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

CHANGE_CATEGORIES = ("low→low", "high→low", "low→high", "high→high")
RATE_COLUMNS = ["timepoint", "threshold", "n", "positive", "rate", "ci_low", "ci_high"]


def thr_label(thr) -> str:
    return f"{thr:g}"


def status_column(thr) -> str:
    return f"status_ge{thr_label(thr)}"


def change_category(base: float, follow: float, cutoff: float) -> str:
    """§8.1 change category between a baseline and a follow-up count."""
    b = "high" if base >= cutoff else "low"
    f = "high" if follow >= cutoff else "low"
    return f"{b}→{f}"


def draw_order(timepoints, baseline: str, followups: Sequence[str]) -> dict:
    order = [baseline, *followups]
    others = sorted(set(timepoints) - set(order))
    return {tp: i for i, tp in enumerate(order + others)}


def dynamics_table(
    counts: pd.DataFrame,
    thresholds: Sequence[float],
    main_threshold: float,
    baseline: str,
    followups: Sequence[str],
) -> pd.DataFrame:
    """One row per (patient, draw): counts, status per threshold, change vs baseline."""
    df = counts.copy()
    for thr in thresholds:
        df[status_column(thr)] = (df["ctc_per_7_5ml"] >= thr).astype(int)
    base = df[df["timepoint"] == baseline].set_index("patient")["ctc_per_7_5ml"]
    b = df["patient"].map(base)
    has = b.notna() & (df["timepoint"] != baseline)
    before = np.where(b >= main_threshold, "high", "low")
    after = np.where(df["ctc_per_7_5ml"] >= main_threshold, "high", "low")
    df["change"] = pd.Series(np.char.add(np.char.add(before, "→"), after), index=df.index).where(has, None)
    df["log2_change"] = np.where(has, np.log2((df["ctc_per_7_5ml"] + 1) / (b + 1)), np.nan)
    df["_rank"] = df["timepoint"].map(draw_order(df["timepoint"], baseline, followups))
    df = df.sort_values(["patient", "_rank"], kind="mergesort").drop(columns="_rank")
    cols = [
        "patient",
        "timepoint",
        "ctc_count",
        "blood_volume_ml",
        "ctc_per_7_5ml",
        *[status_column(t) for t in thresholds],
        "change",
        "log2_change",
    ]
    return df[cols].reset_index(drop=True)


def clopper_pearson(k, n, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper–Pearson) interval of a binomial proportion k/n (§8.1).

    lower = Beta(α/2; k, n − k + 1) (0 if k = 0); upper = Beta(1 − α/2; k + 1,
    n − k) (1 if k = n).
    """
    from scipy import stats  # here, not at the top: the figures job imports this module

    k = np.asarray(k, float)
    n = np.asarray(n, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(k > 0, stats.beta.ppf(alpha / 2, k, n - k + 1), 0.0)
        hi = np.where(k < n, stats.beta.ppf(1 - alpha / 2, k + 1, n - k), 1.0)
    return lo, hi


def positivity_rates(dyn: pd.DataFrame, thresholds: Sequence[float], order: dict) -> pd.DataFrame:
    """Share of patients with CTC ≥ threshold at each draw, exact 95 % CI."""
    rows = []
    for tp, d in dyn.groupby("timepoint", sort=False):
        for thr in thresholds:
            k = int(d[status_column(thr)].sum())
            rows.append({"timepoint": tp, "threshold": float(thr), "n": len(d), "positive": k})
    out = pd.DataFrame(rows, columns=RATE_COLUMNS[:4])
    out["rate"] = out["positive"] / out["n"]
    out["ci_low"], out["ci_high"] = clopper_pearson(out["positive"], out["n"])
    out["_rank"] = out["timepoint"].map(order)
    out = out.sort_values(["_rank", "threshold"], kind="mergesort").drop(columns="_rank")
    return out[RATE_COLUMNS].reset_index(drop=True)
