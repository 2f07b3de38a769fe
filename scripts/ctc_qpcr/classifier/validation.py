"""Nested cross-validation of the site classifier (docs/methods.md §7, protocol 2-3, 6).

* Outer loop: ``RepeatedStratifiedKFold`` (``StratifiedGroupKFold`` reshuffled per
  repeat when patients contribute several samples); ``n_splits`` is lowered to the
  minority-class count when needed.
* Inner loop: grid search with ``StratifiedKFold(3)`` and ROC AUC chooses k and the
  model's hyper-parameters on the outer training fold only.  By default
  (``inner="fast"``) the search follows ``GridSearchCV`` semantics but computes
  imputation, scaling and F-scores once per inner fold (~5× faster, same choices —
  tested); ``inner="gridsearch"`` uses ``GridSearchCV`` itself.  For the elastic net
  the fast search and the outer refits solve all folds of a batch at once
  (:mod:`.batched`, the exact optimum where saga stops at tol 1e-4; docs/methods.md §7).
* Metrics (§7 protocol 3): the AUC of each outer test fold, averaged over the folds
  of a repeat, then over repeats; the interval is the 2.5-97.5 % range of the
  per-repeat means.  A fold whose test samples hold one class only has no AUC and
  is left out of its repeat's mean.
"""

from __future__ import annotations

import functools
import sys
import threading
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.dummy import DummyClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import (
    GridSearchCV,
    ParameterGrid,
    StratifiedGroupKFold,
    StratifiedKFold,
)
from sklearn.pipeline import Pipeline
from threadpoolctl import ThreadpoolController

from .batched import RankIndex, fit_folds
from .clinical import categorical_only, clinical_fold_proba
from .errors import ClassifierInputError
from .pipeline import make_pipeline, rank_scaler, selected_mask


def grouped(groups: np.ndarray) -> bool:
    """True when some patient contributes several samples."""
    return len(np.unique(groups)) < len(groups)


def outer_splits(
    y: np.ndarray, groups: np.ndarray, n_splits: int, n_repeats: int, seed: int
) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """Outer folds per repeat (§7 protocol 2); same for every estimator of a site."""
    y = np.asarray(y)
    patients = grouped(groups)
    if patients:
        _, first = np.unique(groups, return_index=True)
        minority = int(min(y[first].sum(), len(first) - y[first].sum()))
    else:
        minority = int(min(y.sum(), len(y) - y.sum()))
    n_splits = min(n_splits, minority)
    if n_splits < 2:
        raise ClassifierInputError("fewer than 2 samples in the minority class: cannot cross-validate")
    if patients:
        dummy = np.zeros((len(y), 1))
        return [
            list(StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed + r).split(dummy, y, groups))
            for r in range(n_repeats)
        ]
    return stratified_folds(y, n_splits, n_repeats, seed)


_SHUFFLERS = threading.local()


def _seeded(seed: int) -> np.random.RandomState:
    """This thread's RandomState re-seeded with ``seed``: the state of
    ``RandomState(seed)``, without the new generator's entropy seeding that a fresh
    ``RandomState`` pays first (0.2 ms, a twentieth of the permutation test)."""
    rng = getattr(_SHUFFLERS, "rng", None)
    if rng is None:
        rng = _SHUFFLERS.rng = np.random.RandomState(seed)
    rng.seed(seed)
    return rng


def stratified_folds(y: np.ndarray, n_splits: int, n_repeats: int, seed: int) -> list[list[tuple]]:
    """The folds of ``RepeatedStratifiedKFold(n_splits, n_repeats, random_state=seed)`` for
    binary ``y`` (tested equal), computed directly: the permutation test asks for them
    thousands of times and the splitter's input checks cost more than the folds.

    Per repeat and per class (in order of first appearance in ``y``) the fold numbers
    0..n_splits−1, dealt to the class in the proportions of the sorted labels, are shuffled
    by one RandomState(seed) shared by all repeats; fold i tests the samples numbered i.
    """
    rng = _seeded(seed)
    _, first, inverse = np.unique(y, return_index=True, return_inverse=True)
    encoded = np.argsort(np.argsort(first))[inverse]  # classes by first appearance
    ordered = np.sort(encoded)
    allocation = np.array([np.bincount(ordered[i::n_splits], minlength=len(first)) for i in range(n_splits)])
    members = [np.flatnonzero(encoded == k) for k in range(len(first))]
    index = np.arange(len(y))
    out = []
    for _ in range(n_repeats):
        test_folds = np.empty(len(y), dtype=int)
        for k, rows in enumerate(members):
            fold_of = np.arange(n_splits).repeat(allocation[:, k])
            rng.shuffle(fold_of)
            test_folds[rows] = fold_of
        out.append([(index[test_folds != i], index[test_folds == i]) for i in range(n_splits)])
    return out


def inner_cv(y: np.ndarray, groups: np.ndarray):
    """Inner folds of the hyper-parameter search (3, fewer for a tiny minority class)."""
    minority = int(min(y.sum(), len(y) - y.sum()))
    n = max(2, min(3, minority))
    return StratifiedGroupKFold(n) if grouped(groups) else StratifiedKFold(n)


def _take(X, idx):
    return X.iloc[idx] if isinstance(X, pd.DataFrame) else X[idx]


_CONTROLLER: list = [None, -1]  # ThreadpoolController, len(sys.modules) when it was made


def _limit_blas():
    """``threadpool_limits(1)`` from a cached controller: making one scans every loaded
    library (a third of a small fold task's time); it is made again when modules (hence
    perhaps native libraries) were imported since."""
    if _CONTROLLER[1] != len(sys.modules):
        _CONTROLLER[0], _CONTROLLER[1] = ThreadpoolController(), len(sys.modules)
    return _CONTROLLER[0].limit(limits=1)


class quiet:
    """One BLAS thread and no convergence chatter inside worker tasks (determinism)."""

    def __enter__(self):
        self._limits = _limit_blas()
        self._config = sklearn.config_context(skip_parameter_validation=True)
        self._config.__enter__()
        self._warn = warnings.catch_warnings()
        self._warn.__enter__()
        warnings.simplefilter("ignore", ConvergenceWarning)
        return self

    def __exit__(self, *exc):
        self._warn.__exit__(*exc)
        self._config.__exit__(*exc)
        self._limits.restore_original_limits()
        return False


def one_blas_thread(function):
    """Run ``function`` with one BLAS/OpenMP thread, in the main process and in joblib
    workers alike: floating-point sums then happen in the same order whatever
    ``n_jobs`` is, so results are identical for any number of jobs."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with _limit_blas():
            return function(*args, **kwargs)

    return wrapper


class NestedSearch:
    """Inner-loop specification of the nested CV (§7 protocol 3).

    ``inner="fast"`` (default) chooses the parameters with :func:`fast_grid_search`
    (GridSearchCV semantics, shared preprocessing) and refits the real Pipeline with
    them; ``inner="gridsearch"`` runs scikit-learn's ``GridSearchCV`` literally.
    Both see the outer training fold only.
    """

    def __init__(self, name: str, grid: Mapping[str, list], seed: int = 2016, inner: str = "fast"):
        if inner not in ("fast", "gridsearch"):
            raise ClassifierInputError(f"inner_search must be 'fast' or 'gridsearch', not {inner!r}")
        self.name, self.grid, self.seed, self.inner = name, dict(grid), seed, inner

    def fit_best(self, X, y, groups) -> tuple[Pipeline, dict]:
        """Choose parameters on (X, y) by inner CV, refit the pipeline on all of (X, y)."""
        pipe = make_pipeline(self.name, seed=self.seed)
        combos = list(ParameterGrid(self.grid))
        if len(combos) == 1:
            params = combos[0]
        elif self.inner == "fast":
            params = fast_grid_search(self.name, self.grid, X, y, groups, seed=self.seed)
        else:
            search = GridSearchCV(
                pipe,
                self.grid,
                scoring="roc_auc",
                n_jobs=1,
                refit=False,
                error_score="raise",
                cv=inner_cv(y, groups),
            )
            search.fit(X, y, **({"groups": groups} if grouped(groups) else {}))
            params = search.best_params_
        return pipe.set_params(**params).fit(X, y), dict(params)


def _fold_task(spec, X, y, groups, train, test, n_features):
    if isinstance(spec, DummyClassifier) and spec.strategy == "prior":
        # the prevalence baseline: the training fold's share of positives, as the
        # fitted DummyClassifier predicts it (n_pos / n), without a fit per fold
        return np.full(len(test), np.count_nonzero(y[train] == 1) / len(train)), np.zeros(n_features, bool)
    with quiet():
        if categorical_only(spec):
            proba = clinical_fold_proba(spec, X, y, train, test)
            if proba is not None:
                return proba, np.zeros(n_features, bool)
        if isinstance(spec, NestedSearch):
            est, _ = spec.fit_best(X[train], y[train], groups[train])
        else:
            est = clone(spec).fit(_take(X, train), y[train])
        proba = est.predict_proba(_take(X, test))[:, 1]
        mask = (
            selected_mask(est, n_features)
            if isinstance(est, Pipeline) and "select" in est.named_steps
            else np.zeros(n_features, bool)
        )
    return proba, mask


def batched_search(spec) -> bool:
    """True when the nested CV of ``spec`` runs on the batched elastic-net solver."""
    return isinstance(spec, NestedSearch) and spec.inner == "fast" and spec.name == "elasticnet"


def _grid_models(spec: NestedSearch):
    """ParameterGrid order, and the elastic-net (k, C, l1_ratio) of each combination."""
    combos = list(ParameterGrid(spec.grid))
    base = make_pipeline(spec.name, seed=spec.seed).named_steps["model"]
    C = [c.get("model__C", base.C) for c in combos]
    l1 = [c.get("model__l1_ratio", base.l1_ratio) for c in combos]
    return combos, [c.get("select__k", "all") for c in combos], C, l1


def _best_combos(spec: NestedSearch, X, y, groups, trains) -> list[int]:
    """Grid index chosen on each training set: every inner fold × grid combination in one
    batch of the batched solver; same choice rule as :func:`fast_grid_search`
    (ParameterGrid order, mean inner-fold AUC, first best wins)."""
    combos, ks, C, l1 = _grid_models(spec)
    designs, owner, inner_tests = [], [], []
    index = RankIndex(X)
    for f, train in enumerate(trains):
        ytr, gtr = y[train], groups[train]
        split_kw = {"groups": gtr} if grouped(gtr) else {}
        for itr, ite in inner_cv(ytr, gtr).split(X[train], ytr, **split_kw):
            designs.append(index.design(y, train[itr], train[ite]))
            inner_tests.append(ytr[ite])
            owner.append(f)
    problems = [(d, j) for d in designs for j in range(len(combos))]
    probas, _ = fit_folds(
        [d for d, _ in problems],
        [ks[j] for _, j in problems],
        [C[j] for _, j in problems],
        [l1[j] for _, j in problems],
    )
    auc = np.array([fast_auc(inner_tests[i // len(combos)], p) for i, p in enumerate(probas)])
    auc = auc.reshape(len(designs), len(combos))
    owner = np.asarray(owner)
    return [int(np.argmax(auc[owner == f].mean(axis=0))) for f in range(len(trains))]


def _batched_fold_chunk(spec: NestedSearch, X, y, groups, chunk) -> list:
    """Nested CV of a chunk of outer folds with the batched solver (docs/methods.md §7):
    the inner search of every fold in one batch, then the outer refits in a second one."""
    _, ks, C, l1 = _grid_models(spec)
    best = _best_combos(spec, X, y, groups, [train for train, _ in chunk])
    index = RankIndex(X)
    outer = [index.design(y, train, test) for train, test in chunk]
    probas, used = fit_folds(outer, [ks[j] for j in best], [C[j] for j in best], [l1[j] for j in best])
    masks = []
    for u in used:
        mask = np.zeros(X.shape[1], bool)
        mask[u] = True
        masks.append(mask)
    return list(zip(probas, masks, strict=True))


FOLD_CHUNK = 10  # outer folds per batch: fixed, so results do not depend on n_jobs


def _fold_chunk(spec, X, y, groups, chunk, n_features) -> list:
    return [_fold_task(spec, X, y, groups, train, test, n_features) for train, test in chunk]


def cross_validated(spec, X, y, groups, splits, n_jobs: int = 1, parallel=None):
    """Out-of-fold probabilities (repeats × samples) and gene-selection frequency.

    ``spec`` is a :class:`NestedSearch` (nested CV) or a plain estimator/Pipeline;
    the same ``splits`` (from :func:`outer_splits`) are used for every model of a site.
    """
    n_features = X.shape[1]
    tasks = [(r, train, test) for r, folds in enumerate(splits) for train, test in folds]
    run = parallel or Parallel(n_jobs=n_jobs)
    if batched_search(spec):
        chunks = [tasks[i : i + FOLD_CHUNK] for i in range(0, len(tasks), FOLD_CHUNK)]
        done = run(
            delayed(one_blas_thread(_batched_fold_chunk))(spec, X, y, groups, [(tr, te) for _, tr, te in c])
            for c in chunks
        )
        results = [r for part in done for r in part]
    else:
        chunks = [tasks[i : i + FOLD_CHUNK] for i in range(0, len(tasks), FOLD_CHUNK)]
        done = run(
            delayed(one_blas_thread(_fold_chunk))(spec, X, y, groups, [(a, b) for _, a, b in c], n_features)
            for c in chunks
        )
        results = [r for part in done for r in part]
    oof = np.full((len(splits), len(y)), np.nan)
    counts = np.zeros(n_features)
    for (r, _, test), (proba, mask) in zip(tasks, results, strict=True):
        oof[r, test] = proba
        counts += mask
    return oof, counts / max(len(tasks), 1)


def fast_auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic: the share of (positive, negative) pairs
    ordered correctly, ties 1/2 — same value as ``roc_auc_score`` without its
    input-checking overhead; NaN with one class only."""
    y = np.asarray(y)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    score = np.asarray(score)
    pos, neg = score[y == 1][:, None], score[y == 0][None, :]
    wins = np.count_nonzero(pos > neg) + 0.5 * np.count_nonzero(pos == neg)
    return float(wins / (n_pos * n_neg))


def fold_auc(y: np.ndarray, oof_row: np.ndarray, folds) -> float:
    """Mean of the outer test folds' AUCs of one repeat (folds with one class skipped)."""
    aucs = [fast_auc(y[test], oof_row[test]) for _, test in folds]
    aucs = [a for a in aucs if np.isfinite(a)]
    return float(np.mean(aucs)) if aucs else float("nan")


def repeat_scores(y: np.ndarray, oof: np.ndarray, splits) -> dict[str, float]:
    """Metrics of §7: ``auc`` = mean over repeats of the mean outer-fold AUC, with the
    2.5 and 97.5 percentiles of the per-repeat means; ``auc_pooled`` = mean over repeats
    of the AUC of the repeat's pooled out-of-fold probabilities (earlier definition,
    biased low for small n); balanced accuracy (threshold 0.5) and Brier score of the
    pooled out-of-fold probabilities, mean over repeats."""
    per_repeat = np.array([fold_auc(y, p, folds) for p, folds in zip(oof, splits, strict=True)])
    # numpy forms of roc_auc_score, balanced_accuracy_score and brier_score_loss (same values
    # to 1e-12, tested): 9 rows × 20 repeats of sklearn input checks cost seconds per run
    pooled = np.array([fast_auc(y, p) for p in oof])
    hit = oof >= 0.5
    pos, neg = y == 1, y == 0
    bal = np.array([np.mean([np.mean(h[pos]), np.mean(~h[neg])]) for h in hit])
    brier = np.mean((y[None, :] - oof) ** 2, axis=1)
    return {
        "auc": float(np.nanmean(per_repeat)),
        "auc_low": float(np.nanpercentile(per_repeat, 2.5)),
        "auc_high": float(np.nanpercentile(per_repeat, 97.5)),
        "balanced_accuracy": float(bal.mean()),
        "brier": float(brier.mean()),
        "auc_pooled": float(pooled.mean()),
    }


def fit_model(model, X: np.ndarray, y: np.ndarray):
    """A fitted clone of ``model``.  A class-balanced LogisticRegression gets its class
    weights n / (2 n_class) as sample weights instead: bit-for-bit the same fit (scikit-learn
    multiplies unit sample weights by the same numbers), without the per-call class-weight
    bookkeeping that took a third of each fit on n ≈ 36 (the fast paths run thousands)."""
    est = clone(model)
    if isinstance(est, LogisticRegression) and est.class_weight == "balanced":
        weights = (len(y) / (2.0 * np.bincount(y, minlength=2)))[y]
        return est.set_params(class_weight=None).fit(X, y, sample_weight=weights)
    return est.fit(X, y)


class Prepared:
    """Median imputation, scaling and F-scores of one training fold, done once (numpy).

    Same steps and order as the first three steps of :func:`make_pipeline`; used by
    the fast inner search and the permutation statistic.  Equivalent to the Pipeline
    up to floating-point rounding (tested).
    """

    def __init__(self, Xtr: np.ndarray, ytr: np.ndarray, Xte: np.ndarray):
        if np.isnan(Xtr).any() or np.isnan(Xte).any():
            med = np.nanmedian(Xtr, axis=0)
            Xtr = np.where(np.isnan(Xtr), med, Xtr)
            Xte = np.where(np.isnan(Xte), med, Xte)
        scaler = rank_scaler().fit(Xtr)
        self.Ztr = scaler.transform(Xtr)
        self.Zte = scaler.transform(Xte)
        self.ytr = ytr
        scores, _ = f_classif(self.Ztr, ytr)
        self.order = np.argsort(np.where(np.isnan(scores), np.finfo(float).min, scores), kind="mergesort")

    def proba(self, model, k) -> np.ndarray:
        if k == "all":
            Ztr, Zte = self.Ztr, self.Zte
        else:
            cols = np.sort(self.order[-k:])
            Ztr, Zte = self.Ztr[:, cols], self.Zte[:, cols]
        return fit_model(model, Ztr, self.ytr).predict_proba(Zte)[:, 1]


def fast_fold_proba(model, k, Xtr, ytr, Xte) -> np.ndarray:
    """Test-fold probabilities of ``model`` on the top-k genes (fast path of the Pipeline)."""
    return Prepared(Xtr, ytr, Xte).proba(model, k)


def fast_grid_search(
    name: str, grid: Mapping[str, list], X: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int = 2016
) -> dict[str, Any]:
    """Best parameters as ``GridSearchCV(make_pipeline(name), grid, cv=inner, scoring="roc_auc")``
    would choose them (same ParameterGrid order, mean inner-fold AUC, first best wins),
    but with imputation/scaling/F-scores computed once per inner fold instead of once per
    candidate — about 5× faster on n ≈ 45.  Still fitted on the given (training) data only.
    """
    combos = list(ParameterGrid(dict(grid)))
    if name == "elasticnet":
        spec = NestedSearch(name, grid, seed=seed)
        return combos[_best_combos(spec, X, y, groups, [np.arange(len(y))])[0]]
    base = make_pipeline(name, seed=seed).named_steps["model"]
    models = [
        clone(base).set_params(
            **{key[len("model__") :]: v for key, v in c.items() if key.startswith("model__")}
        )
        for c in combos
    ]
    split_kw = {"groups": groups} if grouped(groups) else {}
    scores = []
    for train, test in inner_cv(y, groups).split(X, y, **split_kw):
        prep = Prepared(X[train], y[train], X[test])
        scores.append(
            [
                fast_auc(y[test], prep.proba(m, c.get("select__k", "all")))
                for m, c in zip(models, combos, strict=True)
            ]
        )
    mean = np.asarray(scores).mean(axis=0)
    return combos[int(np.argmax(mean))]
