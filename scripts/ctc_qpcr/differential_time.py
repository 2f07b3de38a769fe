"""Time points of a longitudinal CTC study: paired tests and a small-sample mixed model (docs/methods.md §6).

Split from :mod:`ctc_qpcr.differential` (which declares the comparisons and calls
:func:`timepoints`).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from . import stats
from .differential_tables import EXTRA_TIME, _empty, _finish, gene_rows
from .normalise_cells import stripped_str

# --------------------------------------------------------------------------------------------
# Time points: paired tests + linear mixed model


def _unique_codes(values) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)``; for the per-gene integer codes of patients, time
    points and groups (small, non-negative) by counting instead of sorting: the same distinct values
    and inverse (issue 17: about seven of these per gene and strategy in the time-point table)."""
    values = np.asarray(values)
    if values.dtype.kind not in "iu" or not values.size or values.min() < 0 or values.max() > 4 * values.size:
        return np.unique(values, return_inverse=True)
    present = np.bincount(values) > 0
    return np.flatnonzero(present).astype(values.dtype), (np.cumsum(present) - 1)[values]


def random_intercept_reml(y: np.ndarray, X: np.ndarray, groups: np.ndarray) -> dict:
    """REML fit of ``y = Xβ + u_patient + e`` (one random intercept), closed form.

    Same model and REML criterion as statsmodels ``MixedLM(y, X, groups).fit(reml=True)``
    (checked in tests/test_differential.py), but profiled over the single variance
    ratio ``λ = τ²/σ²`` with a bounded 1-D search, which takes about a millisecond and
    cannot wander off at the boundary τ² = 0 (statsmodels needs 0.1–0.8 s per gene
    there and sometimes reports non-convergence). With ``V = σ²(I + λZZ')`` and blocks
    of size n_i, ``V⁻¹`` is ``(I − w_i 11')/σ²`` with ``w_i = λ/(1 + λ n_i)``.
    Returns ``beta``, ``cov`` (σ²(X'V̄⁻¹X)⁻¹), ``sigma2``, ``tau2``, ``converged``.
    """
    from scipy.optimize import minimize_scalar

    y = np.asarray(y, float)
    X = np.asarray(X, float)
    codes, g = _unique_codes(groups)
    n_groups, (n, p) = codes.size, X.shape
    n_i = np.bincount(g, minlength=n_groups).astype(float)
    # per-patient column sums, each added in row order (as np.add.at does), without ufunc.at's overhead
    S = np.column_stack([np.bincount(g, weights=col, minlength=n_groups) for col in X.T]).reshape(n_groups, p)
    t = np.bincount(g, weights=y, minlength=n_groups)
    xtx, xty, yty = X.T @ X, X.T @ y, float(y @ y)
    if n - p < 1 or np.linalg.matrix_rank(xtx) < p:
        raise np.linalg.LinAlgError("fixed-effect design is rank deficient")

    # patients of the same size n_i share w_i and log(1 + λ n_i): each computed once per size, then
    # given to every patient of that size (the same values in the same order: the same sums; issue 17)
    sizes, size_of = np.unique(n_i, return_inverse=True)
    seen: dict[float, tuple] = {}  # log λ -> pieces: the optimum's are not computed twice (issue 17)

    def pieces(log_lam: float):
        if log_lam not in seen:
            lam = math.exp(log_lam)
            lam_n = lam * sizes
            w = (lam / (1.0 + lam_n))[size_of]
            A = xtx - (S * w[:, None]).T @ S
            wt = w * t
            b = xty - S.T @ wt
            beta = np.linalg.solve(A, b)
            rss = yty - float((wt * t).sum()) - float(b @ beta)  # (w·t)·t: the product w * t * t
            log_v = float(np.log1p(lam_n)[size_of].sum())  # log det(I + λZZ')
            seen[log_lam] = A, beta, max(rss, 1e-300) / (n - p), lam, log_v
        return seen[log_lam]

    def objective(log_lam: float) -> float:
        A, _, sigma2, _, log_v = pieces(log_lam)
        logdet_a = np.linalg.slogdet(A)[1]
        return 0.5 * ((n - p) * math.log(sigma2) + log_v + logdet_a)

    opt = minimize_scalar(objective, bounds=(-20.0, 12.0), method="bounded", options={"xatol": 1e-8})
    log_lam = float(opt.x)
    if objective(-30.0) <= opt.fun:  # boundary τ² = 0 at least as good
        log_lam = -30.0
    A, beta, sigma2, lam, _ = pieces(log_lam)
    cov = sigma2 * np.linalg.inv(A)
    return {
        "beta": beta,
        "cov": cov,
        "sigma2": sigma2,
        "tau2": lam * sigma2,
        "converged": bool(opt.success) and log_lam < 11.9,
    }


def _wald_p(beta: np.ndarray, cov: np.ndarray, idx: list[int], ddf: float | None = None) -> float:
    """Joint Wald test that the fixed effects ``idx`` are all zero.

    ``ddf=None``: χ²(q) reference (large-sample; too liberal with 10-15 patients).
    Otherwise F = W / q against F(q, ddf) (small-sample reference, docs/methods.md §6).
    """
    if not idx:
        return math.nan
    b = beta[idx]
    v = cov[np.ix_(idx, idx)]
    try:
        stat = float(b @ np.linalg.solve(v, b))
    except np.linalg.LinAlgError:
        return math.nan
    from scipy.special import chdtrc, fdtrc  # = scipy.stats chi2.sf / f.sf, without importing scipy.stats

    if not (math.isfinite(stat) and stat >= 0):
        return math.nan
    if ddf is None:
        return float(chdtrc(len(idx), stat))
    return float(fdtrc(len(idx), ddf, stat / len(idx))) if ddf > 0 else math.nan


def within_df(X: np.ndarray, patients: np.ndarray) -> float:
    """Between–within denominator df for effects that vary within patients.

    ``N − rank([X | Z])`` with Z the patient indicators: the residual df of the model
    with a fixed effect per patient (SAS ``DDFM=BETWITHIN`` for within-patient terms;
    the time and time × group terms here are all within-patient).

    Computed without building Z: ``rank([Z | X]) = rank(Z) + rank(X − P_Z X)``, where
    ``P_Z X`` replaces each row by its patient's column means, so only the small
    within-patient-centred X is decomposed (the full SVD grew with the square of the
    number of patients: 160 s for the 96-chip benchmark's time-point table).
    """
    _, code = _unique_codes(patients)
    n_patients = code.max() + 1
    counts = np.bincount(code, minlength=n_patients).astype(float)
    means = (
        np.column_stack([np.bincount(code, weights=col, minlength=n_patients) for col in X.T])
        / counts[:, None]
    )
    within = X - means[code]
    return float(len(code) - n_patients - np.linalg.matrix_rank(within))


def _time_design(frame: pd.DataFrame, with_group: bool) -> tuple[np.ndarray, list[int], list[int]]:
    """Design of ``C(tp) * C(grp, Sum)`` built directly (patsy is slow per gene):
    intercept, treatment dummies of time (reference = lowest code), sum-coded group
    (last group = minus the others), and their products."""
    tp = np.asarray(frame["tp"])
    tps = _unique_codes(tp)[0]
    cols = [np.ones(len(tp))]
    cols += [(tp == t).astype(float) for t in tps[1:]]
    time_idx = list(range(1, len(cols)))
    inter_idx: list[int] = []
    if with_group:
        grp = np.asarray(frame["grp"])
        levels = _unique_codes(grp)[0]
        sums = [(grp == g).astype(float) - (grp == levels[-1]).astype(float) for g in levels[:-1]]
        cols += sums
        for t in tps[1:]:
            for sc in sums:
                inter_idx.append(len(cols))
                cols.append((tp == t).astype(float) * sc)
    return np.column_stack(cols), time_idx, inter_idx


def fit_time_lmm(
    frame: pd.DataFrame, with_group: bool, engine: str = "profile", reference: str = "f"
) -> tuple[float, float, str, float]:
    """Fit ``y ~ C(tp) * C(grp, Sum) + (1 | pt)`` by REML; return Wald p-values.

    ``frame`` (a DataFrame or a dict of arrays) has columns ``y`` (ΔCq), ``tp`` (0, 1, ... in
    time order; 0 = reference), ``grp`` (group label) and ``pt`` (patient); patients with some time points
    missing are kept (§6). With Sum coding of the group the time terms are the
    time effect averaged over the groups (the *main effect*), the interaction
    terms the between-group difference of the time effect. Returns ``(p_time,
    p_interaction, problem, ddf)`` from joint Wald tests on the REML fit (§6 allows
    Wald or LR; Wald needs one fit per gene instead of three ML fits).
    ``reference="f"`` (default): F = W/q against F(q, ddf) with the between–within
    ddf of :func:`within_df` — the χ² reference (``reference="wald"``, ddf NaN) rejects
    a true null 0.08-0.11 of the time at α 0.05 with 10-15 patients
    (benchmarks/bench_differential.py). ``problem``
    is "" or the reason why the p-values are NaN (failed / non-converged fit).

    ``engine="profile"`` (default) uses :func:`random_intercept_reml`;
    ``engine="statsmodels"`` uses ``statsmodels`` ``MixedLM`` (same model, ~100× slower).
    """
    try:
        X, time_idx, inter_idx = _time_design(frame, with_group)
        if engine == "statsmodels":
            from statsmodels.regression.mixed_linear_model import MixedLM

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = MixedLM(np.asarray(frame["y"], float), X, groups=np.asarray(frame["pt"]))
                result = model.fit(reml=True)
            converged = bool(result.converged)
            beta = np.asarray(result.fe_params, float)
            cov = np.asarray(result.cov_params(), float)[: X.shape[1], : X.shape[1]]
        else:
            fit = random_intercept_reml(np.asarray(frame["y"], float), X, np.asarray(frame["pt"]))
            converged, beta, cov = fit["converged"], fit["beta"], fit["cov"]
    except (np.linalg.LinAlgError, ValueError, ZeroDivisionError) as exc:
        return math.nan, math.nan, f"fit failed ({type(exc).__name__}: {exc})", math.nan
    if not converged:
        return math.nan, math.nan, "did not converge", math.nan
    if not np.all(np.isfinite(cov)):
        return math.nan, math.nan, "non-finite covariance", math.nan
    ddf = within_df(X, np.asarray(frame["pt"])) if reference == "f" else None
    p_time = _wald_p(beta, cov, time_idx, ddf)
    p_inter = _wald_p(beta, cov, inter_idx, ddf) if with_group else math.nan
    problem = "" if math.isfinite(p_time) else "singular fixed-effect covariance"
    return p_time, p_inter, problem, math.nan if ddf is None else ddf


def _time_setup(data: pd.DataFrame, spec: dict, notes: list[str], min_per_group: int):
    """Time points in order, the rows at one of them with each one's position in that order
    (``tp``, hashed once per distinct value), each row's unit as a code in text order, each row's group
    (:func:`_group_labels`), and which analyses can run."""
    col = spec["column"]
    a_lvl, b_lvl = spec["levels"]
    tps = spec["timepoints"] or sorted(v for v in data[col].unique() if v != "")
    for lvl in (a_lvl, b_lvl):
        if lvl not in tps:
            tps = tps + [lvl]
    group_col = spec.get("group")
    if group_col and group_col not in data.columns:
        notes.append(f"{spec['name']}: group column {group_col!r} absent; mixed model without interaction")
        group_col = None
    pos = {lvl: i for i, lvl in enumerate(tps)}
    codes, uniques = pd.factorize(data[col])  # each row's time point as its position in tps (−1: none)
    tp = np.array([pos.get(u, -1) for u in uniques] + [-1], dtype=np.int64)[codes]
    if not (tp >= 0).all():
        data, tp = data[tp >= 0], tp[tp >= 0]
    unit = _sorted_text_codes(data["unit"])  # hashed once: the units of each level, their overlap, count
    n_pairs_units = _distinct_units(unit, tp == pos[a_lvl], tp == pos[b_lvl])
    do_paired = n_pairs_units >= min_per_group
    if not do_paired:
        notes.append(
            f"{spec['name']}: paired {a_lvl} vs {b_lvl} skipped — {n_pairs_units} patients with both "
            f"(need ≥ {min_per_group})"
        )
    groups = _group_labels(data, unit, group_col, spec["name"], notes)
    n_lmm_units = _distinct_units(unit)
    do_lmm = len(tps) >= 2 and n_lmm_units >= min_per_group
    if not do_lmm:
        notes.append(f"{spec['name']}: mixed model skipped — {n_lmm_units} patients / {len(tps)} time points")
    return data, tps, tp, unit, groups, do_paired, do_lmm


def _distinct_units(unit: np.ndarray, *rows: np.ndarray) -> int:
    """How many units (codes ≥ 0) have a row in each of ``rows`` (masks; none: any row)."""
    present = np.ones(unit.max() + 1 if unit.size else 0, dtype=bool)
    for mask in rows or (np.ones(unit.size, dtype=bool),):
        present &= np.bincount(unit[mask], minlength=present.size) > 0
    return int(present.sum())


def _group_labels(data: pd.DataFrame, unit: np.ndarray, group_col: str | None, name: str, notes: list[str]):
    """Each row's group of the time × group interaction as a code in the text order of the stripped
    labels (:func:`_group_codes`), whether the row has one, and whether two groups are present. Arrays
    beside the rows, not columns added to them: no copy of the frame (issue 17)."""
    if not group_col:
        return np.zeros(len(data), dtype=np.intp), np.zeros(len(data), dtype=bool), False
    codes, has_group, labels = _group_codes(data[group_col])
    with_group = len(set(labels) - {""}) >= 2
    if not with_group:
        notes.append(f"{name}: fewer than two {group_col!r} groups; mixed model without interaction")
    elif n_missing := _distinct_units(unit, ~has_group):
        notes.append(f"{name}: {n_missing} patient(s) without {group_col!r} left out of the mixed model")
    return codes, has_group, with_group


def _group_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``pd.factorize(labels, sort=True)[0]``, ``labels != ""`` and the distinct labels, for the labels
    :func:`_stripped_labels` gives each row: text values hashed once and stripped once per distinct
    value (issue 17: three passes over the rows' text before)."""
    codes, uniques = pd.factorize(values.to_numpy(object))
    if not all(isinstance(u, str) for u in uniques):  # numbers: their text (1 and 1.0 differ)
        labels = _stripped_labels(values)
        return pd.factorize(labels, sort=True)[0], labels != "", pd.unique(labels)
    missing = [""] if (codes < 0).any() else []  # code −1: the last label
    labels = np.array([u.strip() for u in uniques] + missing, dtype=object)
    return pd.factorize(labels, sort=True)[0][codes], (labels != "")[codes], labels


def _stripped_labels(values: pd.Series) -> np.ndarray:
    """Each value as stripped text, missing as "" (:func:`stripped_str`: once per distinct value)."""
    return stripped_str(values.astype(object).where(values.notna(), "")).to_numpy()


def _sorted_text_codes(values: pd.Series) -> np.ndarray:
    """``pd.factorize(values.astype(str), sort=True)[0]``, without the text copy of values that are
    text already (none missing)."""
    codes, uniques = pd.factorize(values.to_numpy(object), sort=True)
    if (codes < 0).any() or not all(isinstance(u, str) for u in uniques):
        return pd.factorize(values.astype(str), sort=True)[0]
    return codes


def _paired(xa, xb, da, db, spec, min_detected: int) -> dict:
    """Paired statistics on the pairs detected at both time points (levels of detected draws only)."""
    both = da & db
    out = {"n_pairs": int(both.sum())}
    if both.sum() < min_detected:
        out["reason"] = (
            "not detected at both time points in any patient"
            if not both.any()
            else f"fewer than {min_detected} patients detected at both time points ({int(both.sum())})"
        )
        return out
    ya, yb = xa[both], xb[both]
    pt = stats.paired_t(ya, yb)
    wx = stats.wilcoxon_signed_rank(ya, yb)
    fc = stats.fold_change_dcq(pt.mean_diff, pt.ci_low, pt.ci_high)
    test = {"auto": "paired_t"}.get(spec["test"], spec["test"])
    if test == "paired_t" and not math.isfinite(pt.p):
        test = "wilcoxon"
    prim = pt if test == "paired_t" else wx
    out.update(
        {
            "mean_a": float(ya.mean()),
            "mean_b": float(yb.mean()),
            "log2fc": fc.log2fc,
            "ci_low": fc.log2fc_low,
            "ci_high": fc.log2fc_high,
            "statistic": prim.statistic,
            "p": prim.p,
            "test": test,
            "p_paired_t": pt.p,
            "p_wilcoxon": wx.p,
        }
    )
    return out


def _fewer_than_three_values(y: np.ndarray) -> bool:
    """``np.unique(y).size < 3`` without sorting: at least three distinct values when one lies
    strictly between the smallest and the largest."""
    if not y.size:
        return True
    low, high = y.min(), y.max()
    return not ((y > low) & (y < high)).any()


def _lmm(y, det, tp, grp, pt, n_tp: int, use_group: bool, engine: str, min_detected: int) -> dict:
    """Mixed model on the detected draws; every time point needs ≥ ``min_detected`` of them."""
    keep = det
    per_tp = np.bincount(tp[keep], minlength=n_tp)
    out = {
        "lmm_n_patients": int(_unique_codes(pt[keep])[0].size),
        "p_lmm_time": math.nan,
        "p_lmm_interaction": math.nan,
        "lmm_df": math.nan,
        "lmm_reason": "",
    }
    if per_tp.min() < min_detected:
        out["lmm_reason"] = (
            "not detected in any sample"
            if not keep.any()
            else f"fewer than {min_detected} detected at a time point ({'/'.join(map(str, per_tp))})"
        )
        return out
    if _fewer_than_three_values(y[keep]):
        out["lmm_reason"] = "too little variation"
        return out
    frame = {"y": y[keep], "tp": tp[keep], "grp": grp[keep], "pt": pt[keep]}  # no DataFrame per gene
    use_group = use_group and _unique_codes(grp[keep])[0].size >= 2
    p_time, p_inter, problem, ddf = fit_time_lmm(frame, use_group, engine)
    out.update({"p_lmm_time": p_time, "p_lmm_interaction": p_inter, "lmm_df": ddf, "lmm_reason": problem})
    return out


def timepoints(data, spec, notes, *, min_per_group, lmm_engine="profile", min_detected=3, **_):
    """Paired test (levels[0] vs levels[1]) and mixed model per gene, on on-level detected values only."""
    data, tps, tp, unit, (grp, has_grp, with_group), do_paired, do_lmm = _time_setup(
        data, spec, notes, min_per_group
    )
    if not do_paired and not do_lmm:
        notes.append(f"{spec['name']}: skipped — too few patients")
        return _empty(EXTRA_TIME)
    det = data["detected"].to_numpy(bool)
    pos = {lvl: i for i, lvl in enumerate(tps)}  # tp: each row's position in tps
    arr = {
        "is_a": tp == pos[spec["levels"][0]], "is_b": tp == pos[spec["levels"][1]],
        "unit": unit,  # code order = string order
        "dcq": data["dcq"].to_numpy(float), "det": det,
        "on": data["on"].to_numpy(bool) if "on" in data else det,
        "frac": data["detected_fraction"].to_numpy(float),
        "tp": tp,
        "grp": grp,
        "has_grp": has_grp,
    }  # fmt: skip
    ctx = {"spec": spec, "n_tp": len(tps), "with_group": with_group, "do_paired": do_paired, "do_lmm": do_lmm,
           "engine": lmm_engine, "min_detected": min_detected}  # fmt: skip
    rows, problems = [], []
    for (strategy, gene), idx in gene_rows(data).items():
        row = _time_row(gene, strategy, idx, arr, ctx)
        if row.get("lmm_reason") and not row["lmm_reason"].startswith(("not detected", "fewer than")):
            problems.append(
                f"{gene} ({strategy}): {row['lmm_reason']}" if strategy else f"{gene}: {row['lmm_reason']}"
            )
        rows.append(row)
    if problems:
        notes.append(
            f"{spec['name']}: mixed model gave NaN for {len(problems)} gene(s): "
            + "; ".join(problems[:20])
            + (" ..." if len(problems) > 20 else "")
        )
    q_extra = [("p_lmm_time", "q_lmm_time"), ("p_lmm_interaction", "q_lmm_interaction")]
    return _finish(rows, EXTRA_TIME, ["strategy"], q_extra=q_extra)


def _time_row(gene: str, strategy: str, idx: np.ndarray, arr: dict, ctx: dict) -> dict:
    """One gene of the time-point table: detection at the two levels, paired test, mixed model."""
    spec, unit = ctx["spec"], arr["unit"]

    def first_per_unit(ix: np.ndarray) -> np.ndarray:
        _, first = np.unique(unit[ix], return_index=True)
        return ix[first]

    row = {"gene": gene, "strategy": strategy, "comparison": spec["name"], "level_a": spec["levels"][0],
           "level_b": spec["levels"][1], "test": "none", "p": math.nan, "reason": ""}  # fmt: skip
    ia, ib = first_per_unit(idx[arr["is_a"][idx]]), first_per_unit(idx[arr["is_b"][idx]])
    ra = float(arr["frac"][ia].mean()) if ia.size else math.nan
    rb = float(arr["frac"][ib].mean()) if ib.size else math.nan
    row.update({"n_a": len(ia), "n_b": len(ib), "detected_a": int(arr["det"][ia].sum()),
                "detected_b": int(arr["det"][ib].sum()), "detection_rate_a": ra, "detection_rate_b": rb,
                "detection_diff": ra - rb})  # fmt: skip
    if ctx["do_paired"]:
        _, pa, pb = np.intersect1d(unit[ia], unit[ib], assume_unique=True, return_indices=True)
        ja, jb = ia[pa], ib[pb]
        row.update(
            _paired(arr["dcq"][ja], arr["dcq"][jb], arr["on"][ja], arr["on"][jb], spec, ctx["min_detected"])
        )
    if ctx["do_lmm"]:
        ix = idx[arr["has_grp"][idx]] if ctx["with_group"] else idx
        row.update(_lmm(arr["dcq"][ix], arr["on"][ix], arr["tp"][ix], arr["grp"][ix], unit[ix], ctx["n_tp"],
                        ctx["with_group"], ctx["engine"], ctx["min_detected"]))  # fmt: skip
    return row
