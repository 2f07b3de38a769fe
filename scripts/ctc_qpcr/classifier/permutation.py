"""Permutation test of the site classifier (docs/methods.md §7, protocol 4).

``p = (C + 1) / (n_permutations + 1)`` where C counts permuted statistics ≥ the
observed one.  This p-value is exact for any statistic T(X, y) as long as the
observed and every permuted value are computed by the same procedure (labels are
exchangeable under H0 "expression is independent of site").  Re-running the full
nested CV (20 repeats × 5 folds × grid × 3 inner folds) 1000 times is far too slow,
so the default (``mode="fixed"``) uses a cheaper statistic:

    T = mean over ``repeats`` repeats of the mean outer-fold AUC (as the reported
        ``auc``) of the same pipeline (in-fold median imputation, scaling,
        SelectKBest, model) with hyper-parameters fixed a priori
        (``PERMUTATION_PARAMS``, k = middle value of ``k_features``), outer folds
        stratified on the (permuted) labels.

T is computed on the real labels and on each permutation in exactly the same way,
and every data-dependent step stays inside the folds, so the test is valid.  The
hyper-parameters are deliberately not the ones the grid search picks on the real
data: those are a function of the real labels, so the observed T would profit from
that tuning while the permuted T would not — p would be too small.  Fixed
parameters can only cost power.  ``mode="nested"`` re-runs the full nested CV on
every permutation for a test of exactly the reported protocol, at a much higher
cost.  The statistic is named in the ``permutation_statistic`` column of
``metrics.tsv`` and its observed value is ``permutation_observed``.  The same row
permutations are used for every site (the label matrix is permuted jointly, §7);
with patient groups, labels are permuted between patients.
"""

from __future__ import annotations

import numpy as np
from joblib import Parallel, delayed
from sklearn.linear_model import LogisticRegression

from .batched import RankIndex, fit_folds
from .errors import ClassifierInputError
from .pipeline import PERMUTATION_PARAMS, make_pipeline, param_grid, permutation_k
from .validation import (
    NestedSearch,
    cross_validated,
    fast_fold_proba,
    fold_auc,
    grouped,
    one_blas_thread,
    outer_splits,
    quiet,
)

PERMUTATION_CHUNK = 50


def _fixed_statistic(model, k, X, y, groups, n_splits, n_repeats, seed) -> float:
    splits = outer_splits(y, groups, n_splits, n_repeats, seed)
    aucs = []
    for folds in splits:
        oof = np.empty(len(y))
        for train, test in folds:
            oof[test] = fast_fold_proba(model, k, X[train], y[train], X[test])
        aucs.append(fold_auc(y, oof, folds))
    return float(np.mean(aucs))


def _batched_statistics(model, k, X, perms_y, groups, n_splits, n_repeats, seed) -> list[float]:
    """:func:`_fixed_statistic` of every permuted label vector at once (elastic net): all
    outer folds of all permutations in one batch of the batched solver."""
    designs, where = [], []
    index = RankIndex(X)
    for i, yp in enumerate(perms_y):
        for r, folds in enumerate(outer_splits(yp, groups, n_splits, n_repeats, seed)):
            for train, test in folds:
                designs.append(index.design(yp, train, test))
                where.append((i, r, train, test))
    n = len(designs)
    probas, _ = fit_folds(designs, [k] * n, [model.C] * n, [model.l1_ratio] * n)
    oof = np.full((len(perms_y), n_repeats, X.shape[0]), np.nan)
    folds: dict = {}
    for (i, r, train, test), proba in zip(where, probas, strict=True):
        oof[i, r, test] = proba
        folds.setdefault((i, r), []).append((train, test))
    return [
        float(np.mean([fold_auc(yp, oof[i, r], folds[(i, r)]) for r in range(n_repeats)]))
        for i, yp in enumerate(perms_y)
    ]


def _nested_statistic(search, X, y, groups, n_splits, n_repeats, seed) -> float:
    splits = outer_splits(y, groups, n_splits, n_repeats, seed)
    oof, _ = cross_validated(search, X, y, groups, splits, n_jobs=1)
    return float(np.mean([fold_auc(y, p, folds) for p, folds in zip(oof, splits, strict=True)]))


def _permutation_chunk(kind, spec, X, perms_y, groups, n_splits, n_repeats, seed):
    if kind == "fixed" and isinstance(spec[0], LogisticRegression) and spec[0].class_weight == "balanced":
        return _batched_statistics(*spec, X, perms_y, groups, n_splits, n_repeats, seed)
    with quiet():
        out = []
        for yp in perms_y:
            if kind == "fixed":
                model, k = spec
                out.append(_fixed_statistic(model, k, X, yp, groups, n_splits, n_repeats, seed))
            else:
                out.append(_nested_statistic(spec, X, yp, groups, n_splits, n_repeats, seed))
    return out


def permutation_orders(groups: np.ndarray, n_permutations: int, seed: int) -> list[np.ndarray]:
    """Row orders for the permutation test, shared by all sites (joint permutation).

    With patient groups the labels are permuted between patients: each returned
    array maps a group index to the group whose labels it takes.
    """
    rng = np.random.default_rng(seed)
    n_groups = len(np.unique(groups))
    return [rng.permutation(n_groups) for _ in range(n_permutations)]


def _permuted_labels(y: np.ndarray, groups: np.ndarray, order: np.ndarray) -> np.ndarray:
    uniq, inverse = np.unique(groups, return_inverse=True)
    group_label = np.zeros(len(uniq), dtype=y.dtype)
    group_label[inverse] = y
    return group_label[order][inverse]


def statistic_name(estimator: str, k_features, n_features: int, mode: str, repeats: int) -> str:
    """The statistic behind ``permutation_p``, in words (a ``metrics.tsv`` column)."""
    if mode == "nested":
        return f"mean outer-fold AUC of the full nested CV, {repeats} repeat(s)"
    params = ", ".join(f"{k}={v}" for k, v in sorted(PERMUTATION_PARAMS[estimator].items()))
    k = permutation_k(k_features, n_features)
    fixed = f"k={k}" + (f", {params}" if params else "")
    return f"mean outer-fold AUC, {repeats} repeat(s), fixed hyper-parameters ({fixed})"


def _check_patient_labels(y, groups) -> None:
    if not grouped(groups):
        return
    uniq, inverse = np.unique(groups, return_inverse=True)
    for g in range(len(uniq)):
        if len(np.unique(y[inverse == g])) > 1:
            raise ClassifierInputError(
                f"patient {uniq[g]} has samples with different site labels",
                "use one_timepoint or fix the sites column of the samples sheet",
            )


def permutation_test(
    X,
    y,
    groups,
    *,
    estimator: str,
    k_features,
    n_splits: int,
    n_permutations: int,
    mode: str = "fixed",
    repeats: int = 1,
    seed: int = 2016,
    n_jobs: int = 1,
    parallel=None,
    inner_search: str = "fast",
) -> dict:
    """Permutation p-value of the cross-validated AUC (§7 protocol 4; design in module doc)."""
    _check_patient_labels(y, groups)
    n_features = X.shape[1]
    if mode == "fixed":
        pipe = make_pipeline(estimator, seed=seed)
        model = pipe.named_steps["model"].set_params(**PERMUTATION_PARAMS[estimator])
        spec = (model, permutation_k(k_features, n_features))
    elif mode == "nested":
        spec = NestedSearch(
            estimator, param_grid(estimator, k_features, n_features), seed=seed, inner=inner_search
        )
    else:
        raise ClassifierInputError(f"permutation_mode must be 'fixed' or 'nested', not {mode!r}")
    observed = _permutation_chunk(mode, spec, X, [y], groups, n_splits, repeats, seed)[0]
    perms = [_permuted_labels(y, groups, o) for o in permutation_orders(groups, n_permutations, seed)]
    # chunks of a fixed size (not a function of n_jobs): same batches, same bytes for any n_jobs
    step = PERMUTATION_CHUNK
    chunks = [np.arange(i, min(i + step, len(perms))) for i in range(0, len(perms), step)]
    run = parallel or Parallel(n_jobs=n_jobs)
    results = run(
        delayed(one_blas_thread(_permutation_chunk))(
            mode, spec, X, [perms[i] for i in c], groups, n_splits, repeats, seed
        )
        for c in chunks
    )
    null = np.concatenate([np.asarray(r, dtype=float) for r in results]) if results else np.array([])
    count = int(np.sum(null >= observed - 1e-12))
    p = (count + 1) / (len(null) + 1)
    return {
        "observed": observed,
        "p": float(p),
        "count": count,
        "n": len(null),
        "null_mean": float(null.mean()) if len(null) else float("nan"),
        "statistic": statistic_name(estimator, k_features, n_features, mode, repeats),
    }
