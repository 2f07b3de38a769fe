"""Survival analyses of CTC status: KM, log-rank, Cox, landmarks, subgroups (docs/methods.md §8.2)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..survival import KM_COLUMNS as SURVIVAL_KM_COLUMNS
from ..survival import cox_ph, design_matrix, kaplan_meier, km_median, logrank
from .dynamics import thr_label

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
SUBGROUP_COLUMNS = [
    "endpoint",
    "analysis",
    "variable",
    "subgroup",
    "n",
    "events",
    "hr",
    "ci_low",
    "ci_high",
    "p",
    "interaction_chi2",
    "interaction_df",
    "interaction_p",
    "note",
]


def status_term(thr) -> str:
    """Name of the 0/1 CTC-status term in Cox models."""
    return f"CTC>={thr_label(thr)} (ref <{thr_label(thr)})"


def status_label(values, thr: float) -> np.ndarray:
    v = np.asarray(values, float)
    return np.where(v >= thr, f"CTC>={thr_label(thr)}", f"CTC<{thr_label(thr)}").astype(object)


def with_status(d: pd.DataFrame, thr: float) -> pd.DataFrame:
    return d.assign(**{status_term(thr): (d["ctc_per_7_5ml"] >= thr).astype(int)})


#: The tables a :class:`Collector` fills: their columns and sort order.
COLLECTED = {
    "km": (KM_COLUMNS, ["analysis", "endpoint", "group", "time"]),
    "logrank": (LOGRANK_COLUMNS, ["analysis", "endpoint"]),
    "cox": (COX_COLUMNS, ["model", "endpoint"]),
    "cox_models": (COX_MODEL_COLUMNS, ["model", "endpoint"]),
    "medians": (MEDIAN_COLUMNS, ["analysis", "endpoint", "group"]),
    "subgroups": (SUBGROUP_COLUMNS, ["endpoint", "analysis", "variable"]),
}


def _frame(rows, columns, sort) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame(columns=columns)
    df = pd.concat(rows, ignore_index=True) if isinstance(rows[0], pd.DataFrame) else pd.DataFrame(rows)
    df = df.reindex(columns=columns)
    # stable sort: within a model, terms keep their model-matrix order
    return df.sort_values(sort, kind="mergesort").reset_index(drop=True)


class Collector:
    """Accumulates the rows of the km / logrank / medians / cox / cox_models / subgroups tables."""

    def __init__(self) -> None:
        self.km: list[pd.DataFrame] = []
        self.logrank: list[dict] = []
        self.cox: list[dict] = []
        self.cox_models: list[dict] = []
        self.medians: list[dict] = []
        self.subgroups: list[dict] = []
        self.notes: list[str] = []

    def tables(self) -> dict[str, pd.DataFrame]:
        """The collected tables (:data:`COLLECTED`), each with its columns and sort order."""
        return {name: _frame(getattr(self, name), *spec) for name, spec in COLLECTED.items()}

    def group_analysis(self, analysis: str, endpoint: str, time, event, group) -> None:
        """KM per group, medians with CI and the k-group log-rank test."""
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
                {
                    "analysis": analysis,
                    "endpoint": endpoint,
                    "group": level,
                    "median": med,
                    "ci_low": lo,
                    "ci_high": hi,
                    "n": int(m.sum()),
                }
            )
        lr = logrank(time, event, group)
        self.logrank.append(
            {
                "analysis": analysis,
                "endpoint": endpoint,
                "chi2": lr.chi2,
                "df": lr.df,
                "p": lr.p,
                "n": len(time),
                "groups": lr.describe(),
            }
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
    ):
        """Fit one Cox model; add its term rows and model row. Returns the fit (or None)."""
        d = data.dropna(subset=[tcol, ecol, *covariates])
        if len(data) - len(d):
            self.notes.append(
                f"{model} / {endpoint}: {len(data) - len(d)} patient(s) with missing values left out"
            )
        if len(d) == 0 or d[ecol].sum() == 0:
            self.notes.append(f"{model} / {endpoint}: no events, Cox model not fitted")
            return None
        X, terms = design_matrix(d, covariates, categorical, reference)
        keep = [j for j in range(X.shape[1]) if np.ptp(X[:, j]) > 0]
        if len(keep) < X.shape[1]:
            gone = [terms[j].name for j in range(X.shape[1]) if j not in keep]
            self.notes.append(f"{model} / {endpoint}: constant term(s) dropped: {', '.join(gone)}")
            X, terms = X[:, keep], [terms[j] for j in keep]
        if X.shape[1] == 0:
            return None
        fit = cox_ph(d[tcol].to_numpy(float), d[ecol].to_numpy(int), X, [t.name for t in terms])
        self._add_fit(model, endpoint, fit)
        return fit

    def _add_fit(self, model: str, endpoint: str, fit) -> None:
        lo, hi = fit.ci()
        ok = fit.converged

        def val(a, j):
            return a[j] if ok else np.nan

        for j, term in enumerate(fit.terms):
            self.cox.append(
                {
                    "model": model,
                    "endpoint": endpoint,
                    "term": term,
                    "hr": val(fit.hr, j),
                    "ci_low": val(lo, j),
                    "ci_high": val(hi, j),
                    "p": val(fit.p, j),
                    "n": fit.n,
                    "events": fit.events,
                    "coef": val(fit.coef, j),
                    "se": val(fit.se, j),
                    "ph_p": fit.ph_p[j],
                }
            )
        self.cox_models.append(
            {
                "model": model,
                "endpoint": endpoint,
                "n": fit.n,
                "events": fit.events,
                "loglik": fit.loglik,
                "loglik_null": fit.loglik_null,
                "lr_chi2": fit.lr_chi2,
                "lr_df": fit.lr_df,
                "lr_p": fit.lr_p,
                "ph_global_p": fit.ph_global_p,
                "converged": fit.converged,
                "note": fit.note,
            }
        )
        if fit.note:
            self.notes.append(f"{model} / {endpoint}: {fit.note}; estimates reported as NaN")

    def status_analyses(self, name: str, endpoint: str, d: pd.DataFrame, thresholds: Sequence[float]) -> None:
        """KM/log-rank and univariate Cox of CTC status at each threshold.

        ``name`` is the analysis name with ``{thr}`` where the threshold goes,
        e.g. ``"cycle2 CTC>={thr} (landmark)"``.
        """
        tcol, ecol = f"{endpoint}_months", f"{endpoint}_event"
        for thr in thresholds:
            label = name.format(thr=thr_label(thr))
            self.group_analysis(label, endpoint, d[tcol], d[ecol], status_label(d["ctc_per_7_5ml"], thr))
            self.cox_model(
                f"univariate: {label}", endpoint, with_status(d, thr), tcol, ecol, [status_term(thr)]
            )


def landmark_cohort(data: pd.DataFrame, endpoint: str, landmark_col: str) -> tuple[pd.DataFrame, list[str]]:
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


def _subgroup_rows(
    col: Collector, analysis: str, endpoint: str, d: pd.DataFrame, var: str, thr: float
) -> list[dict]:
    tcol, ecol = f"{endpoint}_months", f"{endpoint}_event"
    rows = []
    for level in sorted(d[var].astype(str).unique()):
        s = with_status(d[d[var].astype(str) == level], thr)
        row = {
            "endpoint": endpoint,
            "analysis": analysis,
            "variable": var,
            "subgroup": level,
            "n": len(s),
            "events": int(s[ecol].sum()),
        }
        if s[ecol].sum() == 0 or s[status_term(thr)].nunique() < 2:
            row["note"] = "no events or one CTC group only: HR not estimable"
        else:
            fit = cox_ph(
                s[tcol].to_numpy(float), s[ecol].to_numpy(int), s[[status_term(thr)]].to_numpy(float)
            )
            lo, hi = fit.ci()
            if fit.converged:
                row.update(hr=fit.hr[0], ci_low=lo[0], ci_high=hi[0], p=fit.p[0])
            else:
                row["note"] = fit.note
        rows.append(row)
    return rows


def interaction_test(d: pd.DataFrame, endpoint: str, var: str, thr: float) -> tuple[float, int, float, str]:
    """Likelihood-ratio test of CTC status × ``var`` (§8.2): Cox with status, ``var``
    levels and their products against the model without products; χ² with
    (levels − 1) df."""
    tcol, ecol = f"{endpoint}_months", f"{endpoint}_event"
    s = with_status(d, thr).assign(**{var: d[var].astype(str)})
    Xv, terms = design_matrix(s, [var], [var])
    x = s[status_term(thr)].to_numpy(float)[:, None]
    reduced = np.hstack([x, Xv])
    full = np.hstack([reduced, x * Xv])
    t, e = s[tcol].to_numpy(float), s[ecol].to_numpy(int)
    f_red, f_full = cox_ph(t, e, reduced), cox_ph(t, e, full)
    chi2 = max(2 * (f_full.loglik - f_red.loglik), 0.0)
    df = Xv.shape[1]
    note = (
        ""
        if f_full.converged
        else "interaction model did not converge (a subgroup without events in one CTC group)"
    )
    return chi2, df, float(stats.chi2.sf(chi2, df)) if df else np.nan, note


def subgroup_analyses(
    col: Collector, analysis: str, endpoint: str, d: pd.DataFrame, variables: Sequence[str], thr: float
) -> None:
    """HR of CTC ≥ ``thr`` overall and within each level of each variable, with the
    interaction test (a forest plot reads this table)."""
    tcol, ecol = f"{endpoint}_months", f"{endpoint}_event"
    for var in variables:
        v = d.dropna(subset=[var, tcol, ecol])
        if v[var].astype(str).nunique() < 2:
            col.notes.append(f"subgroups by {var} / {endpoint}: one level only, skipped")
            continue
        overall = _subgroup_rows(col, analysis, endpoint, v.assign(_all="all"), "_all", thr)[0]
        overall.update(variable=var, subgroup="all")
        rows = [overall, *_subgroup_rows(col, analysis, endpoint, v, var, thr)]
        chi2, df, p, note = interaction_test(v, endpoint, var, thr)
        for r in rows:
            r.update(interaction_chi2=chi2, interaction_df=df, interaction_p=p)
            if note and r["subgroup"] == "all":
                r["note"] = note
        col.subgroups.extend(rows)
