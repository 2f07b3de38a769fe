"""Column contract and table assembly of the differential tables (docs/methods.md §6)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from . import stats

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


def _stripped_str(values: pd.Series) -> pd.Series:
    """``values.astype(str).str.strip()``, stripping each distinct string once (linear, cheap)."""
    text = values.astype(str)
    codes, uniques = pd.factorize(text)
    stripped = np.array([u.strip() for u in uniques], dtype=object)
    return pd.Series(
        stripped[codes] if len(codes) else np.array([], dtype=object), index=values.index, dtype=object
    )


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
