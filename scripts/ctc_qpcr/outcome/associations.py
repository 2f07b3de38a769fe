"""Baseline CTC positivity against clinical characteristics, conversion and response
(docs/methods.md §8.1).

Each characteristic is tested by its kind: categorical (Fisher exact for 2×2,
χ² otherwise), ordinal (Cochran–Armitage trend test of the positive share over
the ordered levels), continuous (Mann–Whitney U of the values between CTC-positive
and CTC-negative patients). BH q-values within each CTC grouping (column ``ctc``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..survival import benjamini_hochberg
from .dynamics import thr_label
from .inputs import RESPONSES

ASSOC_COLUMNS = ["variable", "ctc", "test", "statistic", "p", "n", "table", "kind", "q"]


def describe_crosstab(tab: pd.DataFrame) -> str:
    return "; ".join(
        f"{idx}: " + ", ".join(f"{c}={int(tab.at[idx, c])}" for c in tab.columns) for idx in tab.index
    )


def contingency_test(tab: pd.DataFrame) -> tuple[str, float, float]:
    tab = tab.loc[tab.sum(axis=1) > 0, tab.sum(axis=0) > 0]
    if tab.shape[0] < 2 or tab.shape[1] < 2:
        return "none (one level only)", np.nan, np.nan
    if tab.shape == (2, 2):
        res = stats.fisher_exact(tab.to_numpy())
        return "Fisher exact (odds ratio)", float(res.statistic), float(res.pvalue)
    res = stats.chi2_contingency(tab.to_numpy(), correction=False)
    return "chi-square", float(res.statistic), float(res.pvalue)


def contingency_row(variable: str, ctc: str, tab: pd.DataFrame, n: int, table: str | None = None, kind: str = "categorical") -> dict:
    """One associations row: the contingency test of ``tab`` and its description."""
    test, stat, p = contingency_test(tab)
    return dict(
        variable=variable, ctc=ctc, test=test, statistic=stat, p=p, n=n,
        table=describe_crosstab(tab) if table is None else table, kind=kind,
    )


def mann_whitney(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Two-sided MW; exact if no ties and both groups < 50 (§9), else asymptotic."""
    allv = np.concatenate([x, y])
    ties = len(np.unique(allv)) < len(allv)
    method = "exact" if (not ties and len(x) < 50 and len(y) < 50) else "asymptotic"
    res = stats.mannwhitneyu(x, y, alternative="two-sided", method=method)
    return float(res.statistic), float(res.pvalue)


def cochran_armitage(scores, positive, total) -> tuple[float, float]:
    """Cochran–Armitage test for a trend in proportions (as R ``prop.trend.test``).

    With scores s_i, x_i positives of n_i per ordered level, N = Σ n_i and
    p̄ = Σ x_i / N: T = Σ s_i (x_i − n_i p̄), Var T = p̄(1 − p̄)[Σ n_i s_i² −
    (Σ n_i s_i)²/N]; z = T/√Var, two-sided p from χ²₁ = z². Returns (z, p).
    """
    s, x, n = (np.asarray(a, float) for a in (scores, positive, total))
    N = n.sum()
    pbar = x.sum() / N
    t = (s * (x - n * pbar)).sum()
    var = pbar * (1 - pbar) * ((n * s**2).sum() - (n * s).sum() ** 2 / N)
    if not var > 0:
        return np.nan, np.nan
    z = t / np.sqrt(var)
    return float(z), float(stats.chi2.sf(z**2, 1))


def variable_kind(series: pd.Series, name: str, categorical: Sequence[str], ordinal: Sequence[str]) -> str:
    if name in ordinal:
        return "ordinal"
    numeric = pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)
    return "categorical" if name in categorical or not numeric else "continuous"


def _ordinal_row(var: str, ctc: str, x: pd.Series, positive: np.ndarray) -> dict:
    num = pd.to_numeric(x, errors="coerce")
    if num.notna().all():
        levels = np.sort(num.unique())
        key = num.to_numpy()
    else:
        levels = np.array(sorted(x.astype(str).unique()))
        key = x.astype(str).to_numpy()
    scores = levels.astype(float) if num.notna().all() else np.arange(len(levels), dtype=float)
    pos = np.array([positive[key == lv].sum() for lv in levels])
    tot = np.array([(key == lv).sum() for lv in levels])
    z, p = cochran_armitage(scores, pos, tot)
    desc = "; ".join(f"{lv:g}: {a}/{b}" if isinstance(lv, float) else f"{lv}: {a}/{b}" for lv, a, b in zip(levels, pos, tot))
    return dict(variable=var, ctc=ctc, test="Cochran-Armitage trend (z)", statistic=z, p=p, n=int(tot.sum()),
                table=f"positive/total per level — {desc}", kind="ordinal")


def _continuous_rows(
    var: str, ctc: str, x: pd.Series, positive: np.ndarray, counts: np.ndarray, with_count: bool
) -> list[dict]:
    v = x.to_numpy(float)
    a, b = v[positive], v[~positive]
    rows = []
    if len(a) and len(b):
        u, p = mann_whitney(a, b)
        rows.append(dict(variable=var, ctc=ctc, test="Mann-Whitney U", statistic=u, p=p, n=len(v),
                         table=f"median {var}: positive={np.median(a):g} (n={len(a)}), negative={np.median(b):g} (n={len(b)})",
                         kind="continuous"))
    if with_count and len(v) >= 3 and np.ptp(v) > 0 and np.ptp(counts) > 0:
        res = stats.spearmanr(counts, v)
        rows.append(dict(variable=var, ctc="baseline CTC count", test="Spearman rho", statistic=float(res.statistic),
                         p=float(res.pvalue), n=len(v), table="rank correlation (numeric characteristic)", kind="continuous"))
    return rows


def baseline_rows(
    base: pd.DataFrame, variables: Sequence[str], categorical: Sequence[str], ordinal: Sequence[str], thr: float,
    with_count: bool = True,
) -> list[dict]:
    """Rows for baseline CTC ≥ ``thr`` against each characteristic (``with_count``: also
    the Spearman correlation of continuous characteristics with the count, once)."""
    ctc = f"baseline CTC>={thr_label(thr)}"
    rows = []
    for var in variables:
        x = base[var]
        ok = x.notna().to_numpy()
        pos = (base["ctc_per_7_5ml"] >= thr).to_numpy()[ok]
        kind = variable_kind(x, var, categorical, ordinal)
        if kind == "ordinal":
            rows.append(_ordinal_row(var, ctc, x[ok], pos))
        elif kind == "categorical":
            status = np.where(pos, f">={thr_label(thr)}", f"<{thr_label(thr)}")
            rows.append(contingency_row(var, ctc, pd.crosstab(x[ok].astype(str).to_numpy(), status), int(ok.sum())))
        else:
            rows += _continuous_rows(var, ctc, x[ok], pos, base["ctc_per_7_5ml"].to_numpy()[ok], with_count)
    return rows


def response_rows(d: pd.DataFrame, ctc: str, status: np.ndarray) -> list[dict]:
    """Best response (RECIST) and objective response (CR/PR vs SD/PD) against a CTC grouping."""
    if "best_response" not in d.columns:
        return []
    r = d["best_response"]
    ok = r.notna().to_numpy()
    if not ok.sum():
        return []
    tab = pd.crosstab(r[ok].to_numpy(), status[ok]).reindex([x for x in RESPONSES if x in set(r[ok])])
    obj = np.where(np.isin(r[ok], ["CR", "PR"]), "CR/PR", "SD/PD")
    return [
        contingency_row("best_response", ctc, tab, int(ok.sum())),
        contingency_row("objective_response", ctc, pd.crosstab(obj, status[ok]), int(ok.sum())),
    ]


def conversion_rows(dyn: pd.DataFrame, base: pd.DataFrame, arm_column: str, followups: Sequence[str]) -> list[dict]:
    """Conversion high→low among baseline-high patients, by treatment arm, per follow-up draw."""
    arms = base.set_index("patient")[arm_column]
    rows = []
    for fu in followups:
        d = dyn[(dyn["timepoint"] == fu) & dyn["change"].isin(["high→low", "high→high"])].copy()
        d["arm"] = d["patient"].map(arms)
        d = d[d["arm"].notna()]
        if d.empty:
            continue
        tab = pd.crosstab(d["arm"].astype(str), d["change"]).reindex(columns=["high→low", "high→high"], fill_value=0)
        desc = "; ".join(
            f"{a}: {int(tab.at[a, 'high→low'])}/{int(tab.loc[a].sum())} converted "
            f"({100 * tab.at[a, 'high→low'] / tab.loc[a].sum():.0f}%)"
            for a in tab.index
        )
        rows.append(contingency_row(str(arm_column), f"conversion high→low at {fu} (baseline-high)", tab, len(d), desc))
    return rows


def persistence_rows(dyn: pd.DataFrame, clin: pd.DataFrame, followups: Sequence[str], thr: float) -> list[dict]:
    """CTC ≥ ``thr`` at each follow-up draw (persistence) against tumour response."""
    rows = []
    for fu in followups:
        d = dyn[dyn["timepoint"] == fu].merge(clin, on="patient", how="inner")
        if d.empty:
            continue
        status = np.where(d["ctc_per_7_5ml"] >= thr, f">={thr_label(thr)}", f"<{thr_label(thr)}")
        rows += response_rows(d, f"{fu} CTC>={thr_label(thr)} (persistence)", status)
        bh = d[d["change"].isin(["high→low", "high→high"])]
        rows += response_rows(bh, f"{fu} change among baseline-high", bh["change"].to_numpy())
    return rows


def associations_table(
    base: pd.DataFrame,
    variables: Sequence[str],
    categorical: Sequence[str],
    ordinal: Sequence[str],
    thresholds: Sequence[float],
    arm_column: str | None,
    dyn: pd.DataFrame,
    clin: pd.DataFrame,
    followups: Sequence[str],
    main_threshold: float,
) -> pd.DataFrame:
    rows = []
    for k, thr in enumerate(thresholds):
        rows += baseline_rows(base, variables, categorical, ordinal, thr, with_count=k == 0)
        status = np.where(base["ctc_per_7_5ml"] >= thr, f">={thr_label(thr)}", f"<{thr_label(thr)}")
        rows += response_rows(base, f"baseline CTC>={thr_label(thr)}", status)
    if arm_column and arm_column in base.columns:
        rows += conversion_rows(dyn, base, arm_column, followups)
    rows += persistence_rows(dyn, clin, followups, main_threshold)
    return finish(pd.DataFrame(rows, columns=ASSOC_COLUMNS[:-1]))


def finish(out: pd.DataFrame) -> pd.DataFrame:
    """Fill ``kind`` and the BH q-values (within each ``ctc`` grouping); sort."""
    out = out.reindex(columns=ASSOC_COLUMNS)
    out["kind"] = out["kind"].fillna("categorical")
    out["q"] = np.nan
    for _, idx in out.groupby("ctc", sort=True).groups.items():
        p = out.loc[idx, "p"].to_numpy(float)
        ok = np.isfinite(p)
        q = np.full(len(p), np.nan)
        q[ok] = benjamini_hochberg(p[ok])
        out.loc[idx, "q"] = q
    return out.sort_values(["variable", "ctc", "test"], kind="mergesort").reset_index(drop=True)
