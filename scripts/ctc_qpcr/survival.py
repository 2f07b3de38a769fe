"""Survival estimators and tests for CTC counts and outcome (docs/methods.md §8.2).

Own numpy/scipy implementations, cross-checked in the tests against
statsmodels 0.15.0 (``SurvfuncRight``, ``survdiff``, ``PHReg``) and against
the worked example of §8.2. Only formulas were taken from the literature and
the libraries' documentation; no code was copied.

Contents
--------
* :func:`kaplan_meier` – product-limit estimate with Greenwood SE and pointwise
  95 % CI on the log(−log) scale (lifelines convention, §8.2).
* :func:`km_median` – median (first time with S(t) ≤ 0.5; the midpoint of the
  interval where S(t) = 0.5 exactly, as R survival and SAS LIFETEST) and its
  Brookmeyer–Crowley CI by test inversion on the log(−log) scale; this is the
  same rule as statsmodels ``SurvfuncRight.quantile_ci(0.5, method="cloglog")``
  (lower limit = first event time inside the acceptance region, upper limit =
  the event time following the last one inside it, ``inf`` if there is none).
* :func:`numbers_at_risk` – patients still under observation at given times.
* :func:`logrank` – k-group log-rank test, hypergeometric (co)variance, df k−1.
* :func:`cox_ph` – Cox proportional hazards, Efron (default, §9) or Breslow
  ties, own Newton–Raphson with step halving; Wald and likelihood-ratio tests,
  proportional-hazards check with scaled Schoenfeld residuals.
* :func:`design_matrix` – numeric/categorical covariates → model matrix, one-hot
  with a named reference level.
* :func:`benjamini_hochberg` – BH q-values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

Z95 = float(stats.norm.ppf(0.975))  # 1.959963984540054

KM_COLUMNS = [
    "group",
    "time",
    "n_at_risk",
    "n_events",
    "n_censored",
    "survival",
    "se",
    "ci_low",
    "ci_high",
]


def _as_arrays(time, event) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(time, dtype=float)
    e = np.asarray(event, dtype=float)
    if t.shape != e.shape or t.ndim != 1:
        raise ValueError("time and event must be 1-D arrays of the same length")
    if np.isnan(t).any() or np.isnan(e).any():
        raise ValueError("time and event must not contain missing values")
    if not np.isin(e, (0.0, 1.0)).all():
        raise ValueError("event must be 0 (censored) or 1 (event)")
    if (t < 0).any():
        raise ValueError("times must be non-negative")
    return t, e.astype(int)


# --------------------------------------------------------------------------
# Kaplan–Meier
# --------------------------------------------------------------------------


def _km_single(t: np.ndarray, e: np.ndarray) -> pd.DataFrame:
    """KM table for one group: one row per distinct observed time (§8.2).

    ``n_at_risk`` at time t = number with T ≥ t. ``survival`` is S(t) just after
    t. ``se`` is Greenwood: S·sqrt(Σ d/(n(n−d))). The pointwise CI is
    S^exp(±z·se_ll) with se_ll = sqrt(Σ d/(n(n−d)))/|ln S| (log(−log) scale).
    While S = 1 the CI is (1, 1); when S reaches 0, se and CI are undefined
    (NaN), as in statsmodels.
    """
    times = np.unique(t)
    rows = []
    surv = 1.0
    green = 0.0  # Σ d/(n(n−d))
    for u in times:
        n = int((t >= u).sum())
        d = int(((t == u) & (e == 1)).sum())
        c = int(((t == u) & (e == 0)).sum())
        if d > 0:
            surv *= 1.0 - d / n
            green = green + d / (n * (n - d)) if n > d else np.inf
        if surv <= 0.0 or not np.isfinite(green):
            se = lo = hi = np.nan
        elif surv >= 1.0:
            se, lo, hi = 0.0, 1.0, 1.0
        else:
            se = surv * np.sqrt(green)
            se_ll = np.sqrt(green) / abs(np.log(surv))
            lo = surv ** np.exp(Z95 * se_ll)
            hi = surv ** np.exp(-Z95 * se_ll)
        rows.append((float(u), n, d, c, surv, se, lo, hi))
    return pd.DataFrame(rows, columns=KM_COLUMNS[1:])


def kaplan_meier(time, event, group=None) -> pd.DataFrame:
    """Kaplan–Meier table per group (§8.2).

    Returns columns ``group, time, n_at_risk, n_events, n_censored, survival,
    se, ci_low, ci_high``, sorted by group then time. Without ``group`` every
    row has group ``"all"``.
    """
    t, e = _as_arrays(time, event)
    g = (
        np.array(["all"] * len(t), dtype=object)
        if group is None
        else np.asarray(group, dtype=object)
    )
    parts = []
    for level in sorted(pd.unique(g), key=str):
        mask = g == level
        tab = _km_single(t[mask], e[mask])
        tab.insert(0, "group", level)
        parts.append(tab)
    if not parts:
        return pd.DataFrame(columns=KM_COLUMNS)
    return pd.concat(parts, ignore_index=True)[KM_COLUMNS]


def km_median(time, event, alpha: float = 0.05) -> tuple[float, float, float]:
    """Median survival and Brookmeyer–Crowley CI on the log(−log) scale (§8.2).

    Median = first event time with S(t) ≤ 0.5 (NaN if not reached); when S(t)
    is exactly 0.5 up to the next event time, the midpoint of that interval
    (R survival / SAS LIFETEST; see :func:`_median_point`). The CI is the
    set of event times whose S(t) is not rejected as 0.5 at level ``alpha`` with
    the statistic (ln(−ln S) − ln(ln 2)) / se_ll; lower limit = first such time,
    upper limit = the event time after the last such time (``inf`` if none) —
    identical to statsmodels ``quantile_ci(0.5, method="cloglog")``.
    """
    t, e = _as_arrays(time, event)
    tab = _km_single(t, e)
    ev = tab[tab["n_events"] > 0].reset_index(drop=True)
    if ev.empty:
        return np.nan, np.nan, np.nan
    s = ev["survival"].to_numpy()
    median = _median_point(ev["time"].to_numpy(float), s)
    z = float(stats.norm.ppf(1 - alpha / 2))
    n = ev["n_at_risk"].to_numpy(float)
    d = ev["n_events"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        green = np.cumsum(d / (n * (n - d)))
        se_ll = np.sqrt(green) / np.abs(np.log(s))
        r = (np.log(-np.log(s)) - np.log(np.log(2.0))) / se_ll
    ok = np.flatnonzero(np.abs(r) <= z)
    if len(ok) == 0:
        return median, np.nan, np.nan
    lo = float(ev["time"].iloc[ok[0]])
    hi = float(ev["time"].iloc[ok[-1] + 1]) if ok[-1] < len(ev) - 1 else np.inf
    return median, lo, hi


def _median_point(event_times: np.ndarray, surv: np.ndarray) -> float:
    """Median from the KM steps at the event times (R survival / SAS LIFETEST rule).

    The median is the first event time t_j with S(t_j) ≤ 0.5. When S equals 0.5
    exactly from t_j to the next event time t_(j+1) (the curve is flat at 0.5 over
    that interval), the median is the midpoint (t_j + t_(j+1))/2, as R
    ``quantile.survfit`` and SAS LIFETEST report it; if no event follows, t_j.
    """
    hit = np.flatnonzero(surv <= 0.5 + 1e-12)
    if len(hit) == 0:
        return np.nan
    j = int(hit[0])
    if abs(surv[j] - 0.5) <= 1e-12 and j + 1 < len(event_times):
        return float((event_times[j] + event_times[j + 1]) / 2)
    return float(event_times[j])


def numbers_at_risk(time, times: Sequence[float]) -> list[int]:
    """Number of patients with observed time ≥ t for each t in ``times``."""
    t = np.asarray(time, dtype=float)
    return [int((t >= u).sum()) for u in times]


# --------------------------------------------------------------------------
# Log-rank
# --------------------------------------------------------------------------


@dataclass
class LogRankResult:
    chi2: float
    df: int
    p: float
    table: pd.DataFrame  # group, n, observed, expected
    variance: np.ndarray = field(repr=False)  # k×k hypergeometric covariance of O−E

    def describe(self) -> str:
        return "; ".join(
            f"{r.group}: n={r.n} O={r.observed:g} E={r.expected:.4g}"
            for r in self.table.itertuples()
        )


def logrank(time, event, group) -> LogRankResult:
    """k-group log-rank test (§8.2).

    At each distinct event time with d events among n at risk (n_j in group j):
    E_j += d·n_j/n and the hypergeometric covariance
    V_jl += d·(n_j/n)(δ_jl − n_l/n)(n − d)/(n − 1). The statistic is
    (O − E)ᵀ V⁻¹ (O − E) over the first k − 1 groups, χ² with k − 1 df; for two
    groups it equals (O₁ − E₁)²/V₁₁.
    """
    t, e = _as_arrays(time, event)
    g = np.asarray(group, dtype=object)
    levels = sorted(pd.unique(g), key=str)
    k = len(levels)
    idx = np.array([levels.index(x) for x in g])
    obs = np.zeros(k)
    exp = np.zeros(k)
    var = np.zeros((k, k))
    for u in np.unique(t[e == 1]):
        at_risk = t >= u
        n = at_risk.sum()
        died = (t == u) & (e == 1)
        d = died.sum()
        nj = np.bincount(idx[at_risk], minlength=k).astype(float)
        dj = np.bincount(idx[died], minlength=k).astype(float)
        obs += dj
        frac = nj / n
        exp += d * frac
        if n > 1:
            factor = d * (n - d) / (n - 1)
            var += factor * (np.diag(frac) - np.outer(frac, frac))
    table = pd.DataFrame(
        {
            "group": levels,
            "n": np.bincount(idx, minlength=k),
            "observed": obs,
            "expected": exp,
        }
    )
    if k < 2:
        return LogRankResult(np.nan, 0, np.nan, table, var)
    diff = (obs - exp)[: k - 1]
    sub = var[: k - 1, : k - 1]
    try:
        chi2 = float(diff @ np.linalg.solve(sub, diff))
    except np.linalg.LinAlgError:
        chi2 = float(diff @ np.linalg.pinv(sub) @ diff)
    df = k - 1
    return LogRankResult(chi2, df, float(stats.chi2.sf(chi2, df)), table, var)


# --------------------------------------------------------------------------
# Design matrix
# --------------------------------------------------------------------------


@dataclass
class Term:
    name: str  # column label in the model matrix, e.g. "subtype=TNBC (ref HR+)"
    variable: str
    level: object | None = None
    reference: object | None = None


def design_matrix(
    df: pd.DataFrame,
    covariates: Sequence[str],
    categorical: Sequence[str] = (),
    reference: dict | None = None,
) -> tuple[np.ndarray, list[Term]]:
    """Model matrix for Cox regression.

    Numeric columns enter linearly unless listed in ``categorical``; other
    columns are one-hot coded with a reference level (``reference[var]`` or
    the first level in sorted order), named in the term as ``var=level (ref
    r)``. Boolean columns enter as 0/1. Rows must be complete (caller drops
    missing values).
    """
    reference = reference or {}
    cols: list[np.ndarray] = []
    terms: list[Term] = []
    for var in covariates:
        x = df[var]
        if var not in categorical and (
            pd.api.types.is_bool_dtype(x) or pd.api.types.is_numeric_dtype(x)
        ):
            cols.append(x.to_numpy(dtype=float))
            terms.append(Term(var, var))
            continue
        levels = sorted(
            pd.unique(x),
            key=lambda v: (str(type(v)), v) if not isinstance(v, str) else ("", v),
        )
        ref = reference.get(var, levels[0])
        if ref not in levels:
            raise ValueError(f"reference level {ref!r} not found in {var}")
        for level in levels:
            if level == ref:
                continue
            cols.append((x == level).to_numpy(dtype=float))
            terms.append(Term(f"{var}={level} (ref {ref})", var, level, ref))
    X = np.column_stack(cols) if cols else np.zeros((len(df), 0))
    return X, terms


# --------------------------------------------------------------------------
# Cox proportional hazards
# --------------------------------------------------------------------------


@dataclass
class CoxResult:
    terms: list[str]
    coef: np.ndarray
    se: np.ndarray
    loglik: float
    loglik_null: float
    n: int
    events: int
    converged: bool
    iterations: int
    ties: str
    ph_p: np.ndarray  # per-term Grambsch–Therneau p (NaN if not computable)
    ph_global_p: float
    note: str = ""

    @property
    def hr(self) -> np.ndarray:
        with np.errstate(over="ignore"):
            return np.exp(self.coef)

    @property
    def z(self) -> np.ndarray:
        return self.coef / self.se

    @property
    def p(self) -> np.ndarray:
        return 2 * stats.norm.sf(np.abs(self.z))

    def ci(self, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
        zq = stats.norm.ppf(1 - alpha / 2)
        with np.errstate(over="ignore"):
            return np.exp(self.coef - zq * self.se), np.exp(self.coef + zq * self.se)

    @property
    def lr_chi2(self) -> float:
        return float(2 * (self.loglik - self.loglik_null))

    @property
    def lr_df(self) -> int:
        return len(self.coef)

    @property
    def lr_p(self) -> float:
        return float(stats.chi2.sf(self.lr_chi2, self.lr_df)) if self.lr_df else np.nan

    def summary(self) -> pd.DataFrame:
        lo, hi = self.ci()
        return pd.DataFrame(
            {
                "term": self.terms,
                "coef": self.coef,
                "se": self.se,
                "hr": self.hr,
                "ci_low": lo,
                "ci_high": hi,
                "z": self.z,
                "p": self.p,
                "ph_p": self.ph_p,
            }
        )


def _cox_loglik(beta, X, t, e, event_times, ties):
    """Log partial likelihood, gradient and information matrix (Efron/Breslow)."""
    eta = X @ beta
    eta_max = eta.max() if len(eta) else 0.0
    w = np.exp(eta - eta_max)  # rescaled for numerical safety; cancels in ratios
    p = X.shape[1]
    ll = 0.0
    grad = np.zeros(p)
    info = np.zeros((p, p))
    for u in event_times:
        risk = t >= u
        dead = (t == u) & (e == 1)
        d = int(dead.sum())
        wr, Xr = w[risk], X[risk]
        wd, Xd = w[dead], X[dead]
        s0r = wr.sum()
        s1r = wr @ Xr
        s2r = (Xr * wr[:, None]).T @ Xr
        s0d = wd.sum()
        s1d = wd @ Xd
        s2d = (Xd * wd[:, None]).T @ Xd
        ll += eta[dead].sum()
        grad += Xd.sum(axis=0)
        for ell in range(d):
            f = ell / d if ties == "efron" else 0.0
            phi = s0r - f * s0d
            s1 = s1r - f * s1d
            s2 = s2r - f * s2d
            ll -= np.log(phi) + eta_max
            mean = s1 / phi
            grad -= mean
            info += s2 / phi - np.outer(mean, mean)
    return ll, grad, info


def _schoenfeld_test(X, t, e, beta, cov, transform: str) -> tuple[np.ndarray, float]:
    """Grambsch–Therneau test on scaled Schoenfeld residuals (§8.2).

    Schoenfeld residual of an event i: x_i − x̄(t_i), with x̄ the exp(xβ)-weighted
    mean over the risk set (Breslow form, also used for Efron fits here).
    Scaled residual r*_i = β̂ + D·Var(β̂)·r_i (D = number of events). For
    covariate j, with g(t) the transformed event time (``"km"``: 1 − KM(t) of
    the pooled data as R ``cox.zph`` default; ``"rank"``; ``"identity"``):
    T_j = [Σ (g_i − ḡ) r*_ij]² / (D · Var(β̂)_jj · Σ (g_i − ḡ)²) ~ χ²₁; this is
    the score test of a zero slope of r*_j on g(t) (a correlation test). The
    global test uses the full matrix.
    """
    p = X.shape[1]
    ev = np.flatnonzero(e == 1)
    D = len(ev)
    if D < 3 or p == 0:
        return np.full(p, np.nan), np.nan
    w = np.exp(X @ beta - (X @ beta).max())
    resid = np.empty((D, p))
    for k, i in enumerate(ev):
        risk = t >= t[i]
        xbar = (w[risk] @ X[risk]) / w[risk].sum()
        resid[k] = X[i] - xbar
    times = t[ev]
    if transform == "km":
        tab = _km_single(t, e)
        surv_at = dict(zip(tab["time"], tab["survival"]))
        g = 1.0 - np.array([surv_at[u] for u in times])
    elif transform == "rank":
        g = stats.rankdata(times)
    else:
        g = times.astype(float)
    g = g - g.mean()
    ssg = (g**2).sum()
    if ssg <= 0:
        return np.full(p, np.nan), np.nan
    # Σ g_i r*_i = Σ g_i (β + D V r_i) = D V Σ g_i r_i (Σ g_i = 0)
    u = D * cov @ (resid.T @ g)
    with np.errstate(divide="ignore", invalid="ignore"):
        per = u**2 / (D * np.diag(cov) * ssg)
    per_p = stats.chi2.sf(per, 1)
    # global: score for all slopes, Var = D V ssg / ... ⇒ uᵀ (D·ssg·V)⁻¹ u
    try:
        glob = float(u @ np.linalg.solve(D * ssg * cov, u))
        glob_p = float(stats.chi2.sf(glob, p))
    except np.linalg.LinAlgError:
        glob_p = np.nan
    return per_p, glob_p


def cox_ph(
    time,
    event,
    X,
    terms: Sequence[str] | None = None,
    ties: str = "efron",
    max_iter: int = 50,
    tol: float = 1e-10,
    ph_transform: str = "km",
) -> CoxResult:
    """Fit a Cox proportional-hazards model by Newton–Raphson (§8.2, §9: Efron).

    Efron's approximation for d tied events at time t with risk set R and tied
    set D: log L += Σ_D η_i − Σ_{l=0}^{d−1} log(Σ_R e^η − (l/d) Σ_D e^η);
    Breslow drops the l/d term. Start β = 0; halve the step while the
    log-likelihood decreases; stop when it changes by < ``tol``. SE from the
    inverse observed information; Wald p and CI on the coefficient scale;
    LR test against β = 0. If a coefficient diverges (|β| > 15, monotone
    likelihood / a group without events) the fit is flagged
    ``converged=False`` with a note.
    """
    t, e = _as_arrays(time, event)
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    n, p = X.shape
    names = list(terms) if terms is not None else [f"x{j}" for j in range(p)]
    event_times = np.unique(t[e == 1])
    if ties not in ("efron", "breslow"):
        raise ValueError("ties must be 'efron' or 'breslow'")
    beta = np.zeros(p)
    ll, grad, info = _cox_loglik(beta, X, t, e, event_times, ties)
    ll_null = ll
    converged = False
    it = 0
    note = ""
    if p == 0 or len(event_times) == 0:
        nan = np.full(p, np.nan)
        return CoxResult(
            names,
            nan,
            nan,
            ll,
            ll_null,
            n,
            int(e.sum()),
            False,
            0,
            ties,
            nan,
            np.nan,
            "no events" if len(event_times) == 0 else "",
        )
    for it in range(1, max_iter + 1):
        try:
            step = np.linalg.solve(info, grad)
        except np.linalg.LinAlgError:
            step = np.linalg.pinv(info) @ grad
        new = beta + step
        ll_new, g_new, i_new = _cox_loglik(new, X, t, e, event_times, ties)
        halvings = 0
        while (not np.isfinite(ll_new) or ll_new < ll - 1e-12) and halvings < 30:
            step /= 2
            new = beta + step
            ll_new, g_new, i_new = _cox_loglik(new, X, t, e, event_times, ties)
            halvings += 1
        change = abs(ll_new - ll)
        beta, ll, grad, info = new, ll_new, g_new, i_new
        if change < tol and np.max(np.abs(step)) < 1e-6 * (1 + np.max(np.abs(beta))):
            converged = True
            break
        if change < tol and it > 5:
            converged = True
            break
    try:
        cov = np.linalg.inv(info)
        se = np.sqrt(np.diag(cov))
    except np.linalg.LinAlgError:
        cov = np.full((p, p), np.nan)
        se = np.full(p, np.nan)
    if np.any(np.abs(beta) > 15) or not np.all(np.isfinite(se)):
        converged = False
        note = "coefficient diverges (monotone likelihood: a group without events or perfect separation)"
    elif not converged:
        note = f"Newton–Raphson did not converge in {max_iter} iterations"
    if converged:
        ph_p, ph_global = _schoenfeld_test(X, t, e, beta, cov, ph_transform)
    else:
        ph_p, ph_global = np.full(p, np.nan), np.nan
    return CoxResult(
        names,
        beta,
        se,
        float(ll),
        float(ll_null),
        n,
        int(e.sum()),
        converged,
        it,
        ties,
        np.asarray(ph_p, float),
        ph_global,
        note,
    )


# --------------------------------------------------------------------------
# Multiplicity
# --------------------------------------------------------------------------


def benjamini_hochberg(p) -> np.ndarray:
    """Benjamini–Hochberg q-values (NaN stays NaN): the one implementation in :mod:`ctc_qpcr.stats`."""
    from .stats import bh_qvalues

    return bh_qvalues(p)
    order = ok[np.argsort(p[ok], kind="mergesort")]
    ranked = p[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    q[order] = np.minimum(ranked, 1.0)
    return q
