"""CTC counts (CellSearch) and outcome — the stage orchestrator (algorithms.md §8).

Inputs
------
``ctc_counts``: patient, timepoint, ctc_count[, blood_volume_ml (default 7.5)].
``clinical``: patient, pfs_months, pfs_event, os_months, os_event[, best_response
(CR/PR/SD/PD; blank or NE = not evaluable), landmark_<timepoint>_months (time
from baseline to that draw), covariates such as subtype, ecog, arm, serum
markers].

What it does (§8.1, §8.2)
-------------------------
* Counts normalised to 7.5 ml; positivity per draw at each threshold
  (``ctc ≥ threshold``); change category between baseline and each follow-up at
  the main threshold (``low→low``, ``high→low``, ``low→high``, ``high→high``)
  and ``log2((F + 1)/(B + 1))``.
* KM, log-rank and Cox for CTC status at baseline (time zero = baseline), and
  for status / change categories at a follow-up draw as a LANDMARK analysis
  (time zero = that draw: time − landmark; only patients with a sample at the
  draw and with observed time > landmark, i.e. event-free and still followed
  beyond it). ``landmark=False`` analyses them from baseline, with a note on
  guarantee-time bias.
* Associations: baseline status vs characteristics and best response;
  conversion (high→low among baseline-high) by treatment arm.
* Optional join with qPCR expression: univariate Cox of each gene's −ΔCq at a
  draw, BH across genes; qPCR positivity calls as another grouping.

All tables are sorted deterministically. Input problems raise
:class:`~ctc_qpcr.errors.InputError` naming file, line (row index + 2),
column and what to do.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .errors import InputError
from .survival import KM_COLUMNS as SURVIVAL_KM_COLUMNS
from .survival import (
    benjamini_hochberg,
    cox_ph,
    design_matrix,
    kaplan_meier,
    km_median,
    logrank,
)

STANDARD_VOLUME_ML = 7.5
RESPONSES = ("CR", "PR", "SD", "PD")
CHANGE_CATEGORIES = ("low→low", "high→low", "low→high", "high→high")

KM_COLUMNS = ["analysis", "endpoint", *SURVIVAL_KM_COLUMNS]
LOGRANK_COLUMNS = ["analysis", "endpoint", "chi2", "df", "p", "n", "groups"]
COX_COLUMNS = [
    "model",
    "endpoint",
    "term",
    "hr",
    "ci_low",
    "ci_high",
    "p",
    "n",
    "events",
    "coef",
    "se",
    "ph_p",
]
COX_MODEL_COLUMNS = [
    "model",
    "endpoint",
    "n",
    "events",
    "loglik",
    "loglik_null",
    "lr_chi2",
    "lr_df",
    "lr_p",
    "ph_global_p",
    "converged",
    "note",
]
MEDIAN_COLUMNS = ["analysis", "endpoint", "group", "median", "ci_low", "ci_high", "n"]
ASSOC_COLUMNS = ["variable", "ctc", "test", "statistic", "p", "n", "table"]
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
]


def _line(index) -> int:
    """1-based line in the TSV (header is line 1) of a 0-based row index."""
    return int(index) + 2


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


def _require_columns(
    df: pd.DataFrame, columns: Sequence[str], path: str, what: str
) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(
            path,
            f"missing column(s) {', '.join(missing)} in the {what} table",
            f"the header must contain {', '.join(columns)} (found: {', '.join(map(str, df.columns))})",
            line=1,
        )


def _numeric(
    df: pd.DataFrame, column: str, path: str, *, allow_missing: bool
) -> pd.Series:
    raw = df[column]
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
    if bad.any():
        i = bad.idxmax()
        raise InputError(
            path,
            f"{raw[i]!r} is not a number",
            "enter a number",
            line=_line(i),
            column=column,
        )
    if not allow_missing and values.isna().any():
        i = values.isna().idxmax()
        raise InputError(
            path,
            "value is empty",
            "fill it in or remove the row",
            line=_line(i),
            column=column,
        )
    return values.astype(float)


def validate_counts(counts: pd.DataFrame, path: str) -> pd.DataFrame:
    """Check the ctc_counts table; return a clean copy with ``ctc_per_7_5ml``."""
    df = counts.reset_index(drop=True).copy()
    _require_columns(df, ["patient", "timepoint", "ctc_count"], path, "CTC counts")
    for col in ("patient", "timepoint"):
        empty = df[col].isna() | (df[col].astype(str).str.strip() == "")
        if empty.any():
            i = empty.idxmax()
            raise InputError(
                path,
                f"empty {col}",
                f"give every row a {col}",
                line=_line(i),
                column=col,
            )
        df[col] = df[col].astype(str).str.strip()
    count = _numeric(df, "ctc_count", path, allow_missing=False)
    neg = count < 0
    if neg.any():
        i = neg.idxmax()
        raise InputError(
            path,
            f"negative CTC count {count[i]:g}",
            "a CellSearch count is 0 or more cells",
            line=_line(i),
            column="ctc_count",
        )
    frac = count != np.round(count)
    if frac.any():
        i = frac.idxmax()
        raise InputError(
            path,
            f"CTC count {count[i]:g} is not a whole number",
            "enter the number of cells counted (an integer), not a concentration",
            line=_line(i),
            column="ctc_count",
        )
    df["ctc_count"] = count.astype(int)
    if "blood_volume_ml" in df.columns:
        vol = _numeric(df, "blood_volume_ml", path, allow_missing=True).fillna(
            STANDARD_VOLUME_ML
        )
        badv = vol <= 0
        if badv.any():
            i = badv.idxmax()
            raise InputError(
                path,
                f"blood volume {vol[i]:g} ml is not positive",
                "enter the volume analysed in ml, or leave it empty for 7.5 ml",
                line=_line(i),
                column="blood_volume_ml",
            )
        df["blood_volume_ml"] = vol
    else:
        df["blood_volume_ml"] = STANDARD_VOLUME_ML
    dup = df.duplicated(["patient", "timepoint"], keep=False)
    if dup.any():
        rows = df.index[dup]
        first = rows[0]
        same = rows[
            (df.loc[rows, "patient"] == df.at[first, "patient"])
            & (df.loc[rows, "timepoint"] == df.at[first, "timepoint"])
        ]
        raise InputError(
            path,
            f"patient {df.at[first, 'patient']} has more than one count for timepoint "
            f"{df.at[first, 'timepoint']} (lines {', '.join(str(_line(i)) for i in same)})",
            "keep one row per patient and draw (sum or choose the valid cartridge)",
            line=_line(same[1]),
            column="timepoint",
        )
    df["ctc_per_7_5ml"] = df["ctc_count"] * STANDARD_VOLUME_ML / df["blood_volume_ml"]
    return df


def validate_clinical(
    clinical: pd.DataFrame, path: str, endpoints: Sequence[str] = ("pfs", "os")
) -> pd.DataFrame:
    """Check the clinical table; return a clean copy (events as int, times float)."""
    df = clinical.reset_index(drop=True).copy()
    need = ["patient"] + [
        c for ep in endpoints for c in (f"{ep}_months", f"{ep}_event")
    ]
    _require_columns(df, need, path, "clinical")
    empty = df["patient"].isna() | (df["patient"].astype(str).str.strip() == "")
    if empty.any():
        i = empty.idxmax()
        raise InputError(
            path,
            "empty patient",
            "give every row a patient id",
            line=_line(i),
            column="patient",
        )
    df["patient"] = df["patient"].astype(str).str.strip()
    dup = df.duplicated("patient", keep=False)
    if dup.any():
        pid = df.loc[dup, "patient"].iloc[0]
        rows = df.index[df["patient"] == pid]
        raise InputError(
            path,
            f"patient {pid} appears more than once (lines {', '.join(str(_line(i)) for i in rows)})",
            "keep one row per patient",
            line=_line(rows[1]),
            column="patient",
        )
    for ep in endpoints:
        tcol, ecol = f"{ep}_months", f"{ep}_event"
        t = _numeric(df, tcol, path, allow_missing=True)
        e = _numeric(df, ecol, path, allow_missing=True)
        half = t.isna() != e.isna()
        if half.any():
            i = half.idxmax()
            col = tcol if t.isna()[i] else ecol
            raise InputError(
                path,
                f"{col} is empty but {ecol if col == tcol else tcol} is given",
                "give both time and event, or leave both empty if the endpoint is unknown",
                line=_line(i),
                column=col,
            )
        bad_e = e.notna() & ~e.isin([0, 1])
        if bad_e.any():
            i = bad_e.idxmax()
            raise InputError(
                path,
                f"event {e[i]:g} is not 0 or 1",
                "use 1 = event (progression/death), 0 = censored",
                line=_line(i),
                column=ecol,
            )
        neg = t < 0
        if neg.any():
            i = neg.idxmax()
            raise InputError(
                path,
                f"negative time {t[i]:g} months",
                "times are counted from the baseline draw",
                line=_line(i),
                column=tcol,
            )
        zero_ev = (t <= 0) & (e == 1)
        if zero_ev.any():
            i = zero_ev.idxmax()
            raise InputError(
                path,
                f"event at time {t[i]:g} months (must be after baseline)",
                "check the dates: an event needs a time greater than 0",
                line=_line(i),
                column=tcol,
            )
        df[tcol] = t
        df[ecol] = e
    for col in [c for c in df.columns if re.fullmatch(r"landmark_.+_months", str(c))]:
        lm = _numeric(df, col, path, allow_missing=True)
        if (lm < 0).any():
            i = (lm < 0).idxmax()
            raise InputError(
                path,
                f"negative landmark time {lm[i]:g}",
                "time from baseline to the draw, in months",
                line=_line(i),
                column=col,
            )
        df[col] = lm
    if "best_response" in df.columns:
        resp = df["best_response"].astype("string").str.strip().str.upper()
        resp = resp.mask(resp.isin(["", "NE", "NA"]))
        bad = resp.notna() & ~resp.isin(RESPONSES)
        if bad.any():
            i = bad.idxmax()
            raise InputError(
                path,
                f"best response {df.at[i, 'best_response']!r} is not a RECIST category",
                "use CR, PR, SD or PD (leave empty or NE if not evaluable)",
                line=_line(i),
                column="best_response",
            )
        df["best_response"] = resp.astype(object).where(resp.notna(), None)
    return df


def match_patients(
    counts: pd.DataFrame,
    clinical: pd.DataFrame,
    counts_path: str,
    clinical_path: str,
    on_unmatched: str = "error",
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Check both tables describe the same patients.

    ``on_unmatched="error"`` raises one InputError listing every unmatched
    patient in both directions; ``"exclude"`` drops them with a note.
    """
    a = set(counts["patient"])
    b = set(clinical["patient"])
    only_counts = sorted(a - b)
    only_clin = sorted(b - a)
    notes: list[str] = []
    if not only_counts and not only_clin:
        return counts, clinical, notes
    parts = []
    if only_counts:
        parts.append(
            f"in {counts_path} but not in {clinical_path}: {', '.join(only_counts)}"
        )
    if only_clin:
        parts.append(
            f"in {clinical_path} but not in {counts_path}: {', '.join(only_clin)}"
        )
    text = "; ".join(parts)
    if on_unmatched == "error":
        raise InputError(
            counts_path if only_counts else clinical_path,
            f"patients do not match between CTC counts and clinical data — {text}",
            "fix the patient ids (spelling, leading zeros) or set on_unmatched: exclude",
            column="patient",
        )
    if on_unmatched != "exclude":
        raise ValueError("on_unmatched must be 'error' or 'exclude'")
    notes.append(f"excluded unmatched patients — {text}")
    keep = a & b
    return (
        counts[counts["patient"].isin(keep)],
        clinical[clinical["patient"].isin(keep)],
        notes,
    )


# --------------------------------------------------------------------------
# Status and dynamics
# --------------------------------------------------------------------------


def _thr_label(thr) -> str:
    return f"{thr:g}"


def change_category(base: float, follow: float, cutoff: float) -> str:
    """§8.1 change category between a baseline and a follow-up count."""
    b = "high" if base >= cutoff else "low"
    f = "high" if follow >= cutoff else "low"
    return f"{b}→{f}"


def dynamics_table(
    counts: pd.DataFrame,
    thresholds: Sequence[float],
    main_threshold: float,
    baseline: str,
    followups: Sequence[str],
) -> pd.DataFrame:
    """One row per (patient, draw): counts, status per threshold, change vs baseline."""
    df = counts.copy()
    order = [baseline, *followups]
    others = sorted(set(df["timepoint"]) - set(order))
    rank = {tp: i for i, tp in enumerate(order + others)}
    for thr in thresholds:
        df[f"status_ge{_thr_label(thr)}"] = (df["ctc_per_7_5ml"] >= thr).astype(int)
    base = df[df["timepoint"] == baseline].set_index("patient")["ctc_per_7_5ml"]
    b = df["patient"].map(base)
    has = b.notna() & (df["timepoint"] != baseline)
    df["change"] = None
    df.loc[has, "change"] = [
        change_category(x, y, main_threshold)
        for x, y in zip(b[has], df.loc[has, "ctc_per_7_5ml"])
    ]
    df["log2_change"] = np.where(
        has, np.log2((df["ctc_per_7_5ml"] + 1) / (b + 1)), np.nan
    )
    df["_rank"] = df["timepoint"].map(rank)
    df = df.sort_values(["patient", "_rank"], kind="mergesort").drop(columns="_rank")
    cols = [
        "patient",
        "timepoint",
        "ctc_count",
        "blood_volume_ml",
        "ctc_per_7_5ml",
        *[f"status_ge{_thr_label(t)}" for t in thresholds],
        "change",
        "log2_change",
    ]
    return df[cols].reset_index(drop=True)


# --------------------------------------------------------------------------
# Survival analyses
# --------------------------------------------------------------------------


class _Collector:
    def __init__(self) -> None:
        self.km: list[pd.DataFrame] = []
        self.logrank: list[dict] = []
        self.cox: list[dict] = []
        self.cox_models: list[dict] = []
        self.medians: list[dict] = []
        self.notes: list[str] = []

    def group_analysis(self, analysis: str, endpoint: str, time, event, group) -> None:
        time = np.asarray(time, float)
        event = np.asarray(event, int)
        group = np.asarray(group, dtype=object)
        if len(time) == 0:
            self.notes.append(f"{analysis} / {endpoint}: no patients eligible")
            return
        km = kaplan_meier(time, event, group)
        km.insert(0, "endpoint", endpoint)
        km.insert(0, "analysis", analysis)
        self.km.append(km)
        for level in sorted(pd.unique(group), key=str):
            m = group == level
            med, lo, hi = km_median(time[m], event[m])
            self.medians.append(
                dict(
                    analysis=analysis,
                    endpoint=endpoint,
                    group=level,
                    median=med,
                    ci_low=lo,
                    ci_high=hi,
                    n=int(m.sum()),
                )
            )
        lr = logrank(time, event, group)
        self.logrank.append(
            dict(
                analysis=analysis,
                endpoint=endpoint,
                chi2=lr.chi2,
                df=lr.df,
                p=lr.p,
                n=len(time),
                groups=lr.describe(),
            )
        )

    def cox_model(
        self,
        model: str,
        endpoint: str,
        data: pd.DataFrame,
        tcol: str,
        ecol: str,
        covariates: Sequence[str],
        categorical: Sequence[str] = (),
        reference: dict | None = None,
    ) -> None:
        d = data.dropna(subset=[tcol, ecol, *covariates])
        dropped = len(data) - len(d)
        if dropped:
            self.notes.append(
                f"{model} / {endpoint}: {dropped} patient(s) with missing values left out"
            )
        if len(d) == 0 or d[ecol].sum() == 0:
            self.notes.append(f"{model} / {endpoint}: no events, Cox model not fitted")
            return
        X, terms = design_matrix(d, covariates, categorical, reference)
        keep = [j for j in range(X.shape[1]) if np.ptp(X[:, j]) > 0]
        if len(keep) < X.shape[1]:
            gone = [terms[j].name for j in range(X.shape[1]) if j not in keep]
            self.notes.append(
                f"{model} / {endpoint}: constant term(s) dropped: {', '.join(gone)}"
            )
            X, terms = X[:, keep], [terms[j] for j in keep]
        if X.shape[1] == 0:
            return
        fit = cox_ph(
            d[tcol].to_numpy(float), d[ecol].to_numpy(int), X, [t.name for t in terms]
        )
        lo, hi = fit.ci()
        ok = fit.converged
        for j, term in enumerate(fit.terms):
            self.cox.append(
                dict(
                    model=model,
                    endpoint=endpoint,
                    term=term,
                    hr=fit.hr[j] if ok else np.nan,
                    ci_low=lo[j] if ok else np.nan,
                    ci_high=hi[j] if ok else np.nan,
                    p=fit.p[j] if ok else np.nan,
                    n=fit.n,
                    events=fit.events,
                    coef=fit.coef[j] if ok else np.nan,
                    se=fit.se[j] if ok else np.nan,
                    ph_p=fit.ph_p[j],
                )
            )
        self.cox_models.append(
            dict(
                model=model,
                endpoint=endpoint,
                n=fit.n,
                events=fit.events,
                loglik=fit.loglik,
                loglik_null=fit.loglik_null,
                lr_chi2=fit.lr_chi2,
                lr_df=fit.lr_df,
                lr_p=fit.lr_p,
                ph_global_p=fit.ph_global_p,
                converged=fit.converged,
                note=fit.note,
            )
        )
        if fit.note:
            self.notes.append(
                f"{model} / {endpoint}: {fit.note}; estimates reported as NaN"
            )


def _ind(thr) -> str:
    """Name of the 0/1 CTC-status term in Cox models."""
    return f"CTC>={_thr_label(thr)} (ref <{_thr_label(thr)})"


def _status_label(value: float, thr: float) -> str:
    return f"CTC>={_thr_label(thr)}" if value >= thr else f"CTC<{_thr_label(thr)}"


def landmark_cohort(
    data: pd.DataFrame, endpoint: str, landmark_col: str
) -> tuple[pd.DataFrame, list[str]]:
    """Patients eligible for a landmark analysis at a draw (§8.2).

    ``data`` has one row per patient with a sample at the draw. Kept: landmark
    time known and endpoint time > landmark (event-free and still followed
    beyond the draw). Time is reset to ``time − landmark``. Returns the cohort
    and the ids excluded (with reasons) for the notes.
    """
    tcol, ecol = f"{endpoint}_months", f"{endpoint}_event"
    d = data.dropna(subset=[tcol, ecol])
    lm = d[landmark_col]
    no_lm = d.loc[lm.isna(), "patient"].tolist()
    before = d.loc[lm.notna() & (d[tcol] <= lm) & (d[ecol] == 1), "patient"].tolist()
    cens = d.loc[lm.notna() & (d[tcol] <= lm) & (d[ecol] == 0), "patient"].tolist()
    keep = d[lm.notna() & (d[tcol] > lm)].copy()
    keep[tcol] = keep[tcol] - keep[landmark_col]
    why = []
    if no_lm:
        why.append(f"no {landmark_col}: {', '.join(sorted(no_lm))}")
    if before:
        why.append(f"event at or before the landmark: {', '.join(sorted(before))}")
    if cens:
        why.append(f"censored at or before the landmark: {', '.join(sorted(cens))}")
    return keep, why


# --------------------------------------------------------------------------
# Associations
# --------------------------------------------------------------------------


def _describe_crosstab(tab: pd.DataFrame) -> str:
    return "; ".join(
        f"{idx}: " + ", ".join(f"{c}={int(tab.at[idx, c])}" for c in tab.columns)
        for idx in tab.index
    )


def _contingency_row(variable: str, ctc: str, tab: pd.DataFrame, n: int, table: str | None = None) -> dict:
    """One associations row: the contingency test of ``tab`` and its description."""
    test, stat, p = _contingency_test(tab)
    return dict(
        variable=variable, ctc=ctc, test=test, statistic=stat, p=p, n=n,
        table=_describe_crosstab(tab) if table is None else table,
    )


def _contingency_test(tab: pd.DataFrame) -> tuple[str, float, float]:
    tab = tab.loc[tab.sum(axis=1) > 0, tab.sum(axis=0) > 0]
    if tab.shape[0] < 2 or tab.shape[1] < 2:
        return "none (one level only)", np.nan, np.nan
    if tab.shape == (2, 2):
        res = stats.fisher_exact(tab.to_numpy())
        return "Fisher exact (odds ratio)", float(res.statistic), float(res.pvalue)
    res = stats.chi2_contingency(tab.to_numpy(), correction=False)
    return "chi-square", float(res.statistic), float(res.pvalue)


def _mann_whitney(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Two-sided MW; exact if no ties and both groups < 50 (§9), else asymptotic."""
    allv = np.concatenate([x, y])
    ties = len(np.unique(allv)) < len(allv)
    method = "exact" if (not ties and len(x) < 50 and len(y) < 50) else "asymptotic"
    res = stats.mannwhitneyu(x, y, alternative="two-sided", method=method)
    return float(res.statistic), float(res.pvalue)


def _is_categorical(series: pd.Series, name: str, categorical: Sequence[str]) -> bool:
    return name in categorical or not (
        pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)
    )


def associations_table(
    base: pd.DataFrame,
    covariates: Sequence[str],
    categorical: Sequence[str],
    main_threshold: float,
    arm_column: str | None,
    dyn: pd.DataFrame,
    followups: Sequence[str],
) -> pd.DataFrame:
    rows = []
    ctc_name = f"baseline CTC>={_thr_label(main_threshold)}"
    status = np.where(
        base["ctc_per_7_5ml"] >= main_threshold,
        f">={_thr_label(main_threshold)}",
        f"<{_thr_label(main_threshold)}",
    )
    variables = list(
        dict.fromkeys(
            [*covariates, *([arm_column] if arm_column and arm_column in base else [])]
        )
    )
    for var in variables:
        x = base[var]
        ok = x.notna()
        if _is_categorical(x, var, categorical):
            tab = pd.crosstab(x[ok].astype(str), status[ok.to_numpy()])
            rows.append(_contingency_row(var, ctc_name, tab, int(ok.sum())))
            levels = sorted(x[ok].astype(str).unique())
            if len(levels) == 2:
                c = base.loc[ok, "ctc_per_7_5ml"].to_numpy()
                lv = x[ok].astype(str).to_numpy()
                a, b = c[lv == levels[0]], c[lv == levels[1]]
                u, p = _mann_whitney(a, b)
                rows.append(
                    dict(
                        variable=var,
                        ctc="baseline CTC count",
                        test="Mann-Whitney U",
                        statistic=u,
                        p=p,
                        n=int(ok.sum()),
                        table=f"median CTC {levels[0]}={np.median(a):g} (n={len(a)}), "
                        f"{levels[1]}={np.median(b):g} (n={len(b)})",
                    )
                )
        else:
            c = base.loc[ok, "ctc_per_7_5ml"].to_numpy()
            v = x[ok].to_numpy(float)
            if len(v) >= 3 and np.ptp(v) > 0 and np.ptp(c) > 0:
                res = stats.spearmanr(c, v)
                rows.append(
                    dict(
                        variable=var,
                        ctc="baseline CTC count",
                        test="Spearman rho",
                        statistic=float(res.statistic),
                        p=float(res.pvalue),
                        n=int(ok.sum()),
                        table="rank correlation (numeric characteristic)",
                    )
                )
    if "best_response" in base.columns:
        r = base["best_response"]
        ok = r.notna().to_numpy()
        if ok.sum():
            tab = pd.crosstab(r[ok], status[ok]).reindex(
                [x for x in RESPONSES if x in set(r[ok])]
            )
            rows.append(_contingency_row("best_response", ctc_name, tab, int(ok.sum())))
            obj = np.where(np.isin(r[ok], ["CR", "PR"]), "CR/PR", "SD/PD")
            tab = pd.crosstab(obj, status[ok])
            rows.append(_contingency_row("objective_response", ctc_name, tab, int(ok.sum())))
    if arm_column and arm_column in base.columns:
        arms = base.set_index("patient")[arm_column]
        for fu in followups:
            d = dyn[
                (dyn["timepoint"] == fu) & dyn["change"].isin(["high→low", "high→high"])
            ].copy()
            d["arm"] = d["patient"].map(arms)
            d = d[d["arm"].notna()]
            if d.empty:
                continue
            tab = pd.crosstab(d["arm"].astype(str), d["change"]).reindex(
                columns=["high→low", "high→high"], fill_value=0
            )
            desc = "; ".join(
                f"{a}: {int(tab.at[a, 'high→low'])}/{int(tab.loc[a].sum())} converted "
                f"({100 * tab.at[a, 'high→low'] / tab.loc[a].sum():.0f}%)"
                for a in tab.index
            )
            rows.append(
                _contingency_row(str(arm_column), f"conversion high→low at {fu} (baseline-high)", tab, len(d), desc)
            )
    out = pd.DataFrame(rows, columns=ASSOC_COLUMNS)
    return out.sort_values(["variable", "ctc", "test"], kind="mergesort").reset_index(
        drop=True
    )


# --------------------------------------------------------------------------
# Orchestrator
# --------------------------------------------------------------------------


def run_outcome(
    counts: pd.DataFrame,
    clinical: pd.DataFrame,
    *,
    counts_path: str = "ctc_counts.tsv",
    clinical_path: str = "clinical.tsv",
    thresholds: Sequence[float] = (1, 5),
    main_threshold: float = 5,
    baseline: str = "baseline",
    followups: Sequence[str] = ("cycle2", "cycle3"),
    covariates: Sequence[str] = (),
    categorical: Sequence[str] = (),
    arm_column: str | None = "arm",
    endpoints: Sequence[str] = ("pfs", "os"),
    landmark: bool = True,
    on_unmatched: str = "error",
    expression: pd.DataFrame | None = None,
    samples: pd.DataFrame | None = None,
    positivity: pd.DataFrame | None = None,
    expression_timepoint: str | None = None,
    expression_path: str = "expression",
    samples_path: str = "samples",
) -> dict[str, pd.DataFrame]:
    """Run the CTC counts and outcome stage (§8). Returns a dict of tables.

    Keys: ``dynamics``, ``km``, ``logrank``, ``cox``, ``cox_models``,
    ``medians``, ``associations``, ``expression_cox``, ``notes`` (one column
    ``note``).
    """
    thresholds = sorted({float(t) for t in thresholds} | {float(main_threshold)})
    cnt = validate_counts(counts, counts_path)
    clin = validate_clinical(clinical, clinical_path, endpoints)
    for var in covariates:
        if var not in clin.columns:
            raise InputError(
                clinical_path,
                f"covariate column {var!r} not found",
                "add the column or remove it from the configured covariates",
                line=1,
            )
    cnt, clin, notes = match_patients(
        cnt, clin, counts_path, clinical_path, on_unmatched
    )
    col = _Collector()
    col.notes.extend(notes)
    present = set(cnt["timepoint"])
    if baseline not in present:
        raise InputError(
            counts_path,
            f"no draw named {baseline!r} (the baseline)",
            f"timepoints found: {', '.join(sorted(present))}; set baseline to one of them",
            column="timepoint",
        )
    fus = []
    for fu in followups:
        if fu not in present:
            col.notes.append(f"follow-up draw {fu!r} not in the counts; skipped")
        else:
            fus.append(fu)
        if fu in present and landmark and f"landmark_{fu}_months" not in clin.columns:
            raise InputError(
                clinical_path,
                f"missing column landmark_{fu}_months for the landmark analysis at {fu}",
                "add the time from baseline to that draw (months) or set landmark: false",
                line=1,
            )
    dyn = dynamics_table(cnt, thresholds, main_threshold, baseline, fus)

    def draw(tp: str) -> pd.DataFrame:
        d = dyn[dyn["timepoint"] == tp].merge(clin, on="patient", how="inner")
        return d

    base = draw(baseline)
    no_base = sorted(set(clin["patient"]) - set(base["patient"]))
    if no_base:
        col.notes.append(
            f"patients without a {baseline} count (left out of baseline analyses): {', '.join(no_base)}"
        )
    main_lbl = _thr_label(main_threshold)
    for ep in endpoints:
        tcol, ecol = f"{ep}_months", f"{ep}_event"
        b = base.dropna(subset=[tcol, ecol])
        if len(b) < len(base):
            col.notes.append(
                f"{ep}: {len(base) - len(b)} patient(s) without {ep} data left out"
            )
        # baseline status, time zero = baseline
        for thr in thresholds:
            name = f"{baseline} CTC>={_thr_label(thr)}"
            grp = [_status_label(v, thr) for v in b["ctc_per_7_5ml"]]
            col.group_analysis(name, ep, b[tcol], b[ecol], grp)
            d = b.assign(**{_ind(thr): (b["ctc_per_7_5ml"] >= thr).astype(int)})
            col.cox_model(f"univariate: {name}", ep, d, tcol, ecol, [_ind(thr)])
        d = b.assign(**{"log(CTC+1)": np.log(b["ctc_per_7_5ml"] + 1)})
        col.cox_model(
            f"univariate: {baseline} log(CTC+1)", ep, d, tcol, ecol, ["log(CTC+1)"]
        )
        if covariates:
            d = b.assign(
                **{
                    _ind(main_threshold): (b["ctc_per_7_5ml"] >= main_threshold).astype(
                        int
                    )
                }
            )
            col.cox_model(
                f"multivariate: {baseline} CTC>={main_lbl}",
                ep,
                d,
                tcol,
                ecol,
                [_ind(main_threshold), *covariates],
                categorical,
            )
        # follow-up draws
        for fu in fus:
            f = draw(fu).dropna(subset=[tcol, ecol])
            suffix = "landmark" if landmark else "from baseline"
            if landmark:
                f, why = landmark_cohort(f, ep, f"landmark_{fu}_months")
                if why:
                    col.notes.append(
                        f"{fu} landmark / {ep}: excluded — " + "; ".join(why)
                    )
            else:
                col.notes.append(
                    f"{fu} / {ep}: groups defined at {fu} analysed from baseline "
                    "(landmark: false) — subject to guarantee-time bias (§8.2)"
                )
            for thr in thresholds:
                name = f"{fu} CTC>={_thr_label(thr)} ({suffix})"
                grp = [_status_label(v, thr) for v in f["ctc_per_7_5ml"]]
                col.group_analysis(name, ep, f[tcol], f[ecol], grp)
                d = f.assign(**{_ind(thr): (f["ctc_per_7_5ml"] >= thr).astype(int)})
                col.cox_model(f"univariate: {name}", ep, d, tcol, ecol, [_ind(thr)])
            ch = f[f["change"].notna()]
            name = f"{baseline}→{fu} change at {main_lbl} ({suffix})"
            col.group_analysis(name, ep, ch[tcol], ch[ecol], ch["change"].to_numpy())
            col.cox_model(
                f"univariate: {name}",
                ep,
                ch,
                tcol,
                ecol,
                ["change"],
                ["change"],
                {"change": "low→low"} if "low→low" in set(ch["change"]) else None,
            )
            col.cox_model(
                f"univariate: {baseline}→{fu} log2((F+1)/(B+1)) ({suffix})",
                ep,
                ch,
                tcol,
                ecol,
                ["log2_change"],
            )
            if covariates:
                d = f.assign(
                    **{
                        _ind(main_threshold): (
                            f["ctc_per_7_5ml"] >= main_threshold
                        ).astype(int)
                    }
                )
                col.cox_model(
                    f"multivariate: {fu} CTC>={main_lbl} ({suffix})",
                    ep,
                    d,
                    tcol,
                    ecol,
                    [_ind(main_threshold), *covariates],
                    categorical,
                )
    assoc = associations_table(
        base, covariates, categorical, main_threshold, arm_column, dyn, fus
    )
    expr_cox = pd.DataFrame(columns=EXPR_COLUMNS)
    if expression is not None or positivity is not None:
        if samples is None:
            raise InputError(
                samples_path,
                "a samples sheet is needed to join expression with patients",
                "give the samples sheet (sample, patient, timepoint)",
            )
        expr_cox, pos_assoc = _join_expression(
            expression,
            samples,
            positivity,
            clin,
            base,
            col,
            endpoints,
            expression_timepoint or baseline,
            main_threshold,
            expression_path,
            samples_path,
        )
        if len(pos_assoc):
            assoc = (
                pd.concat([assoc, pos_assoc], ignore_index=True)
                .sort_values(["variable", "ctc", "test"], kind="mergesort")
                .reset_index(drop=True)
            )
    return {
        "dynamics": dyn,
        "km": _frame(col.km, KM_COLUMNS, ["analysis", "endpoint", "group", "time"]),
        "logrank": _frame(col.logrank, LOGRANK_COLUMNS, ["analysis", "endpoint"]),
        "cox": _frame(col.cox, COX_COLUMNS, ["model", "endpoint"]),
        "cox_models": _frame(col.cox_models, COX_MODEL_COLUMNS, ["model", "endpoint"]),
        "medians": _frame(
            col.medians, MEDIAN_COLUMNS, ["analysis", "endpoint", "group"]
        ),
        "associations": assoc,
        "expression_cox": expr_cox,
        "notes": pd.DataFrame({"note": col.notes}),
    }


def _frame(rows, columns, sort) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame(columns=columns)
    df = (
        pd.concat(rows, ignore_index=True)
        if isinstance(rows[0], pd.DataFrame)
        else pd.DataFrame(rows)
    )
    df = df[columns]
    # stable sort: within a model, terms keep their model-matrix order
    return df.sort_values(sort, kind="mergesort").reset_index(drop=True)


def _join_expression(
    expression,
    samples,
    positivity,
    clin,
    base,
    col: _Collector,
    endpoints,
    timepoint,
    main_threshold,
    expression_path,
    samples_path,
):
    """Cox of each gene's −ΔCq at ``timepoint`` (BH across genes) and qPCR positivity groups."""
    _require_columns(
        samples, ["sample", "patient", "timepoint"], samples_path, "samples"
    )
    smp = samples.reset_index(drop=True).copy()
    for c in ("sample", "patient", "timepoint"):
        smp[c] = smp[c].astype(str).str.strip()
    dup = smp.duplicated("sample", keep=False)
    if dup.any():
        i = smp.index[dup][1]
        raise InputError(
            samples_path,
            f"sample {smp.at[i, 'sample']} listed twice",
            "one row per sample",
            line=_line(i),
            column="sample",
        )
    smp = smp[smp["timepoint"] == timepoint]
    dup = smp.duplicated("patient", keep=False)
    if dup.any():
        i = smp.index[dup][1]
        raise InputError(
            samples_path,
            f"patient {smp.at[i, 'patient']} has two samples at {timepoint}",
            "keep one sample per patient and draw",
            line=_line(i),
            column="patient",
        )
    unknown = sorted(set(smp["patient"]) - set(clin["patient"]))
    if unknown:
        col.notes.append(
            f"expression at {timepoint}: patients without clinical data left out: {', '.join(unknown)}"
        )
    s2p = smp.set_index("sample")["patient"]
    rows = []
    if expression is not None:
        _require_columns(
            expression,
            ["sample", "gene", "dcq"],
            expression_path,
            "normalised expression",
        )
        ex = expression.copy()
        ex["sample"] = ex["sample"].astype(str)
        ex = ex[ex["sample"].isin(s2p.index)]
        ex["patient"] = ex["sample"].map(s2p)
        ex = ex.merge(clin, on="patient", how="inner")
        for gene in sorted(ex["gene"].astype(str).unique()):
            g = ex[ex["gene"].astype(str) == gene].copy()
            g["log2_expr"] = -pd.to_numeric(g["dcq"], errors="coerce")
            g = g.dropna(subset=["log2_expr"])
            ndet = (
                int(g["detected"].astype(bool).sum())
                if "detected" in g.columns
                else len(g)
            )
            for ep in endpoints:
                tcol, ecol = f"{ep}_months", f"{ep}_event"
                d = g.dropna(subset=[tcol, ecol])
                if len(d) < 3 or d[ecol].sum() == 0 or np.ptp(d["log2_expr"]) == 0:
                    rows.append(
                        dict(
                            gene=gene,
                            timepoint=timepoint,
                            endpoint=ep,
                            n=len(d),
                            events=int(d[ecol].sum()),
                            n_detected=ndet,
                        )
                    )
                    continue
                fit = cox_ph(
                    d[tcol].to_numpy(float),
                    d[ecol].to_numpy(int),
                    d[["log2_expr"]].to_numpy(float),
                    ["log2_expr"],
                )
                lo, hi = fit.ci()
                ok = fit.converged
                rows.append(
                    dict(
                        gene=gene,
                        timepoint=timepoint,
                        endpoint=ep,
                        hr=fit.hr[0] if ok else np.nan,
                        ci_low=lo[0] if ok else np.nan,
                        ci_high=hi[0] if ok else np.nan,
                        p=fit.p[0] if ok else np.nan,
                        n=fit.n,
                        events=fit.events,
                        n_detected=ndet,
                        coef=fit.coef[0] if ok else np.nan,
                        se=fit.se[0] if ok else np.nan,
                        ph_p=fit.ph_p[0],
                    )
                )
    out = pd.DataFrame(rows, columns=EXPR_COLUMNS)
    if len(out):
        out["q"] = np.nan
        for ep in endpoints:
            m = out["endpoint"] == ep
            out.loc[m, "q"] = benjamini_hochberg(out.loc[m, "p"].to_numpy(float))
        out = out.sort_values(["endpoint", "gene"], kind="mergesort").reset_index(
            drop=True
        )
        col.notes.append(
            "expression Cox: HR per unit of −ΔCq (per doubling of expression relative to the "
            f"normaliser) at {timepoint}; BH q across genes within each endpoint"
        )
    pos_rows = []
    if positivity is not None:
        _require_columns(
            positivity, ["sample", "positive"], "positivity", "positivity calls"
        )
        pz = positivity.copy()
        pz["sample"] = pz["sample"].astype(str)
        pz = pz[pz["sample"].isin(s2p.index)]
        pz["patient"] = pz["sample"].map(s2p)
        d0 = pz.merge(clin, on="patient", how="inner")
        d0["qpcr_positive"] = d0["positive"].astype(bool).astype(int)
        grp = np.where(d0["qpcr_positive"] == 1, "qPCR+", "qPCR-")
        for ep in endpoints:
            tcol, ecol = f"{ep}_months", f"{ep}_event"
            ok = d0[tcol].notna().to_numpy()
            name = f"{timepoint} qPCR positivity"
            col.group_analysis(name, ep, d0.loc[ok, tcol], d0.loc[ok, ecol], grp[ok])
            col.cox_model(
                f"univariate: {name}", ep, d0[ok], tcol, ecol, ["qpcr_positive"]
            )
        m = d0.merge(base[["patient", "ctc_per_7_5ml"]], on="patient", how="inner")
        if len(m):
            st = np.where(
                m["ctc_per_7_5ml"] >= main_threshold,
                f">={_thr_label(main_threshold)}",
                f"<{_thr_label(main_threshold)}",
            )
            tab = pd.crosstab(np.where(m["qpcr_positive"] == 1, "qPCR+", "qPCR-"), st)
            test, stat, p = _contingency_test(tab)
            pos_rows.append(
                dict(
                    variable=f"{timepoint} qPCR positivity",
                    ctc=f"baseline CTC>={_thr_label(main_threshold)}",
                    test=test,
                    statistic=stat,
                    p=p,
                    n=len(m),
                    table=_describe_crosstab(tab),
                )
            )
    return out, pd.DataFrame(pos_rows, columns=ASSOC_COLUMNS)


# --------------------------------------------------------------------------
# Simulator for the example cohort
# --------------------------------------------------------------------------


def simulate_outcome(
    n_patients: int = 267,
    seed: int = 20160502,
    patient_ids: Sequence[str] | None = None,
    hr: float = 2.0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulated CellSearch + clinical cohort in the seed design (§8.1).

    * Draws ``baseline``, ``cycle2`` (landmark ≈ 0.75 months) and ``cycle3``
      (≈ 2.5 months); a follow-up draw exists only if the patient is still
      progression-free and followed at that time (≈ 8 % missing at random).
    * Baseline counts: zero-inflated Poisson–log-normal, ≈ 50 % ≥ 5 CTC.
    * PFS exponential, median 7.0 months for < 5 CTC, hazard × ``hr`` for ≥ 5
      (constant in time, so the baseline Cox HR estimates ``hr``); OS = PFS +
      post-progression survival (median 10 months, × 1.5 hazard if ≥ 5).
      Administrative censoring uniform 12–36 months plus 5 %/year dropout.
    * Arms A/B/C; conversion high→low at cycle 2 among baseline-high with
      probability 0.53 / 0.64 / 0.83.
    * Covariates subtype (HR+/HER2-, HER2+, TNBC), ecog (0/1/2), ca15_3 (U/ml),
      best_response (RECIST).
    ``patient_ids`` name the first patients (e.g. the 45 qPCR patients); the
    rest are ``SIM001``… Deterministic for a given seed.
    """
    rng = np.random.default_rng(seed)
    n = int(n_patients)
    given = list(patient_ids or [])[:n]
    ids = list(given)
    k = 1
    while len(ids) < n:
        cand = f"SIM{k:03d}"
        if cand not in given:
            ids.append(cand)
        k += 1
    arm = rng.choice(["A", "B", "C"], size=n)
    subtype = rng.choice(["HR+/HER2-", "HER2+", "TNBC"], size=n, p=[0.6, 0.2, 0.2])
    ecog = rng.choice([0, 1, 2], size=n, p=[0.5, 0.4, 0.1])

    def low_count(size):
        return rng.choice([0, 0, 0, 1, 1, 2, 3, 4], size=size)

    def high_count(size):
        return 5 + rng.poisson(np.exp(rng.normal(2.3, 1.2, size=size)))

    high0 = rng.random(n) < 0.5
    b = np.where(high0, high_count(n), low_count(n))
    conv_p = np.select([arm == "A", arm == "B"], [0.53, 0.64], 0.83)
    high_c2 = np.where(high0, rng.random(n) >= conv_p, rng.random(n) < 0.08)
    c2 = np.where(high_c2, high_count(n), low_count(n))
    high_c3 = np.where(high_c2, rng.random(n) >= 0.3, rng.random(n) < 0.1)
    c3 = np.where(high_c3, high_count(n), low_count(n))

    lam0 = np.log(2) / 7.0
    pfs_true = rng.exponential(1 / (lam0 * np.where(high0, hr, 1.0)))
    post = rng.exponential(1 / ((np.log(2) / 10.0) * np.where(high0, 1.5, 1.0)))
    os_true = pfs_true + post
    cens = np.minimum(
        rng.uniform(12, 36, size=n), rng.exponential(1 / (0.05 / 12), size=n)
    )
    pfs = np.maximum(np.round(np.minimum(pfs_true, cens), 2), 0.01)
    pfs_event = (pfs_true <= cens).astype(int)
    os_ = np.maximum(np.round(np.minimum(os_true, cens), 2), pfs)
    os_event = (os_true <= cens).astype(int)
    lm2 = np.round(rng.uniform(0.6, 0.9, size=n), 2)
    lm3 = np.round(rng.uniform(2.2, 2.8, size=n), 2)
    resp = np.where(
        rng.random(n) < np.where(high0, 0.35, 0.55),
        rng.choice(["CR", "PR"], size=n, p=[0.15, 0.85]),
        np.where(rng.random(n) < np.where(high0, 0.45, 0.6), "SD", "PD"),
    )
    ca153 = np.round(np.exp(rng.normal(3.5 + 0.4 * high0, 1.0)), 1)

    rows = []
    for i, pid in enumerate(ids):
        rows.append((pid, "baseline", int(b[i]), 7.5))
        if pfs[i] > lm2[i] and rng.random() > 0.08:
            rows.append((pid, "cycle2", int(c2[i]), 7.5))
        if pfs[i] > lm3[i] and rng.random() > 0.08:
            rows.append((pid, "cycle3", int(c3[i]), 7.5))
    counts = pd.DataFrame(
        rows, columns=["patient", "timepoint", "ctc_count", "blood_volume_ml"]
    )
    clinical = pd.DataFrame(
        {
            "patient": ids,
            "pfs_months": pfs,
            "pfs_event": pfs_event,
            "os_months": os_,
            "os_event": os_event,
            "best_response": resp,
            "landmark_cycle2_months": lm2,
            "landmark_cycle3_months": lm3,
            "arm": arm,
            "subtype": subtype,
            "ecog": ecog,
            "ca15_3": ca153,
        }
    )
    return counts, clinical
