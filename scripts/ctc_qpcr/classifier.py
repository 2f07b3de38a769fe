"""Classifying metastatic site from the qPCR panel (algorithms.md §7).

One binary task per site (multi-label, one-vs-rest): liver yes/no, bone yes/no, ...
Only sites with at least ``min_class`` positives *and* negatives are modelled
(§7 "only model sites with enough positives and negatives"); the others are
reported in ``skipped``.

Honest evaluation (§7 protocol 1-4)
-----------------------------------
* Everything that looks at the data sits in one scikit-learn ``Pipeline`` that is
  fitted on training folds only: median imputation, a rank-to-normal transform,
  ``SelectKBest(f_classif)``, model.  The ΔCq input has non-detects imputed at a
  fixed LOD + 1 upstream, which uses no labels and no other samples (leak-free).
* Outer loop: ``RepeatedStratifiedKFold`` (``StratifiedGroupKFold`` reshuffled per
  repeat when patients contribute several samples); ``n_splits`` is lowered to the
  minority-class count when needed.  Inner loop: grid search with
  ``StratifiedKFold(3)`` and ROC AUC chooses k and the model's hyper-parameters on
  the outer training fold only -> nested CV.  By default (``inner_search="fast"``)
  the search follows ``GridSearchCV`` semantics but computes imputation, scaling
  and F-scores once per inner fold (~5× faster, same choices — tested);
  ``inner_search="gridsearch"`` uses ``GridSearchCV`` itself.
* AUC is computed per repeat on the pooled out-of-fold probabilities; we report its
  mean and 2.5-97.5 % range over repeats.  Balanced accuracy (threshold 0.5) and
  Brier score are also per-repeat means.  ``predictions`` are out-of-fold
  probabilities averaged over repeats.

Permutation test (§7 protocol 4) — design
-----------------------------------------
``p = (C + 1) / (n_permutations + 1)`` where C counts permuted statistics ≥ the
observed one.  This p-value is *exact* for any statistic T(X, y) as long as the
observed and every permuted value are computed by the same procedure (labels are
exchangeable under H0 "expression is independent of site").  Re-running the full
nested CV (20 repeats × 5 folds × grid × 3 inner folds) 1000 times is far too slow,
so the default (``permutation_mode="fixed"``) uses a cheaper statistic:

    T = mean over ``permutation_repeats`` repeats of the pooled out-of-fold AUC of the
        same pipeline (in-fold median imputation, scaling, SelectKBest, model) with
        hyper-parameters fixed *a priori* (``PERMUTATION_PARAMS``, k = middle value of
        ``k_features``), outer folds stratified on the (permuted) labels.

T is computed on the real labels and on each permutation in exactly the same way,
and every data-dependent step stays inside the folds, so the test is valid.  The
hyper-parameters are deliberately *not* the ones GridSearch picks on the real data:
those are a function of the real labels (and of every test fold), so the observed
T would profit from that tuning while the permuted T would run with parameters
tuned to other labels — the null distribution would be shifted down and p would be
too small (anti-conservative), not conservative.  Fixed parameters can only cost
power.  ``permutation_mode="nested"`` re-runs the full nested CV on every
permutation (``permutation_repeats`` repeats) for a test of exactly the reported
protocol, at a much higher cost.  The same row permutations are used for every site
(the label matrix is permuted jointly, §7); with patient groups, labels are
permuted between patients.

Models on disk
--------------
:func:`save_models` writes a skops file; :func:`load_models` only accepts the types
listed in ``TRUSTED_TYPES``.  Loading a model file still runs code chosen by whoever
wrote the file: never load model files from untrusted sources.
"""

from __future__ import annotations

import logging
import os
import platform
import functools
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import sklearn
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits
from scipy.stats import rankdata
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import (
    GridSearchCV,
    ParameterGrid,
    RepeatedStratifiedKFold,
    StratifiedGroupKFold,
    StratifiedKFold,
)
from sklearn.pipeline import Pipeline
from scipy.special import ndtri
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

log = logging.getLogger(__name__)

ESTIMATORS = ("elasticnet", "lda_shrinkage", "linear_svm", "random_forest")
BASELINES = ("prevalence", "clinical")
METRIC_COLUMNS = [
    "site", "estimator", "n_pos", "n_neg", "auc", "auc_low", "auc_high",
    "balanced_accuracy", "brier", "permutation_p", "clinical_auc",
    "delta_auc", "n_permutations", "strategy",
]
MODEL_FORMAT = "ctc-qpcr-classifier/1"

# Inner-loop grids (besides k of SelectKBest), kept small: n ≈ 45 (§7).
PARAM_GRIDS: dict[str, dict[str, list]] = {
    "elasticnet": {"model__C": [0.1, 1.0], "model__l1_ratio": [0.2, 0.8]},
    "lda_shrinkage": {},
    "linear_svm": {"model__estimator__C": [0.1, 1.0]},
    "random_forest": {"model__max_features": [2, "sqrt"]},
}
# Hyper-parameters used by the permutation statistic, fixed a priori (never tuned).
PERMUTATION_PARAMS: dict[str, dict[str, Any]] = {
    "elasticnet": {"C": 1.0, "l1_ratio": 0.5},
    "lda_shrinkage": {},
    "linear_svm": {"estimator__C": 1.0},
    "random_forest": {"max_features": "sqrt"},
}

# Types a classifier model file may contain (skops allow-list, see load_models).
TRUSTED_TYPES = [
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.discriminant_analysis.LinearDiscriminantAnalysis",
    "sklearn.dummy.DummyClassifier",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.feature_selection._univariate_selection.SelectKBest",
    "sklearn.feature_selection._univariate_selection.f_classif",
    "sklearn.impute._base.SimpleImputer",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "ctc_qpcr.classifier.RankGauss",
    "sklearn.svm._classes.SVC",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._tree.Tree",
    "numpy.dtype",
    "numpy.ndarray",
    "numpy.float64",
    "numpy.int64",
    "numpy.random.mtrand.RandomState",
    "builtins.slice",
]


class MissingFeatureError(ValueError):
    """Samples given to :func:`predict` lack a value for a gene the model needs."""


class ClassifierInputError(ValueError):
    """The matrix / samples sheet cannot be used for the classifier as given."""


# --------------------------------------------------------------------------- labels


def site_labels(
    samples: pd.DataFrame, sites_column: str = "sites", min_class: int = 8
) -> tuple[pd.DataFrame, list[dict]]:
    """Multi-label site indicator matrix from the ``;``-separated ``sites`` column (§7).

    Returns ``(Y, skipped)``: ``Y`` is indexed by ``sample`` with one 0/1 column per
    modelled site (sorted); ``skipped`` lists ``{"site", "n_pos", "n_neg", "reason"}``
    for sites with fewer than ``min_class`` positives or negatives.  Samples whose
    sites cell is empty are left out of ``Y`` (unknown, not "no metastasis") and
    listed as one ``skipped`` entry with ``site = ""``.
    """
    if "sample" not in samples.columns or sites_column not in samples.columns:
        raise ClassifierInputError(
            f"samples sheet needs columns 'sample' and '{sites_column}' for the classifier"
        )
    ids = samples["sample"].astype(str).str.strip()
    if ids.duplicated().any():
        dup = sorted(ids[ids.duplicated()].unique())
        raise ClassifierInputError(f"duplicate sample ids in samples sheet: {', '.join(dup)}")
    site_sets: dict[str, set[str]] = {}
    unknown: list[str] = []
    for sample, cell in zip(ids, samples[sites_column]):
        text = "" if pd.isna(cell) else str(cell).strip().lower()
        if not text:
            unknown.append(sample)
            continue
        site_sets[sample] = {part.strip() for part in text.split(";") if part.strip()}
    index = pd.Index(sorted(site_sets), name="sample")
    all_sites = sorted(set().union(*site_sets.values())) if site_sets else []
    Y = pd.DataFrame(
        {site: [int(site in site_sets[s]) for s in index] for site in all_sites},
        index=index, dtype=int,
    )
    skipped: list[dict] = []
    if unknown:
        log.warning("classifier: %d samples without a sites annotation left out", len(unknown))
        skipped.append({"site": "", "n_pos": 0, "n_neg": 0,
                        "reason": "no sites annotation for samples: " + ", ".join(sorted(unknown))})
    keep = []
    for site in all_sites:
        n_pos = int(Y[site].sum())
        n_neg = int(len(Y) - n_pos)
        if n_pos < min_class or n_neg < min_class:
            skipped.append({"site": site, "n_pos": n_pos, "n_neg": n_neg,
                            "reason": f"{n_pos} positives / {n_neg} negatives; "
                                      f"need at least {min_class} of each (§7)"})
        else:
            keep.append(site)
    return Y[keep], skipped


# ------------------------------------------------------------------- estimators


def make_pipeline(name: str, k: int | str = "all", seed: int = 2016) -> Pipeline:
    """The in-fold pipeline for estimator ``name`` (§7 protocol 1)."""
    if name == "elasticnet":
        model = LogisticRegression(solver="saga", C=1.0, l1_ratio=0.5, class_weight="balanced",
                                   max_iter=5000, tol=1e-4, random_state=seed)
    elif name == "lda_shrinkage":
        model = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")
    elif name == "linear_svm":
        # Platt scaling fitted on internal, unshuffled 3-fold CV -> deterministic
        # probabilities (SVC(probability=True) is deprecated in scikit-learn 1.9).
        model = CalibratedClassifierCV(SVC(kernel="linear", C=1.0, class_weight="balanced"),
                                       method="sigmoid", cv=3, ensemble=False)
    elif name == "random_forest":
        model = RandomForestClassifier(n_estimators=100, max_features="sqrt", min_samples_leaf=2,
                                       class_weight="balanced", random_state=seed, n_jobs=1)
    else:
        raise ClassifierInputError(f"unknown estimator {name!r}; choose from {', '.join(ESTIMATORS)}")
    return Pipeline([
        ("impute", SimpleImputer(strategy="median")),
        ("scale", rank_scaler(seed)),
        ("select", SelectKBest(f_classif, k=k)),
        ("model", model),
    ])


class RankGauss(TransformerMixin, BaseEstimator):
    """In-fold rank-to-normal transform of each gene (replaces a z-score).

    ΔCq with non-detects imputed at LOD + 1 is bimodal and heavy-tailed (a
    non-detect sits many cycles beyond every detected value), which a z-score
    passes on to the linear models: on the example study the honest nested AUC
    for the planted liver signature was 0.67 with StandardScaler and 0.83 with
    a rank transform (same folds). ``fit`` keeps the sorted training values of
    each gene; ``transform`` maps a value to its mid-rank position p among them
    (ties share the average rank; values outside the training range get the
    extreme positions), p in [0.5/n, 1 − 0.5/n], then to the normal quantile
    Φ⁻¹(p). Monotone per gene and fitted on the training fold only: no leak.
    Vectorised numpy (scikit-learn's QuantileTransformer loops per column and
    made the classifier stage 3× slower).
    """

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=float)
        self.sorted_ = np.sort(X, axis=0)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        X = np.asarray(X, dtype=float)
        ref = self.sorted_
        n = ref.shape[0]
        out = np.empty_like(X)
        for j in range(X.shape[1]):
            lo = np.searchsorted(ref[:, j], X[:, j], side="left")
            hi = np.searchsorted(ref[:, j], X[:, j], side="right")
            out[:, j] = (lo + hi) / 2.0
        p = np.clip(out / n, 0.5 / n, 1.0 - 0.5 / n)
        return ndtri(p)


def rank_scaler(seed: int = 2016) -> "RankGauss":
    """The in-fold scaling step of every gene model (see :class:`RankGauss`)."""
    return RankGauss()


def _k_values(k_features: Sequence, n_features: int) -> list:
    out: list = []
    for k in k_features:
        k = "all" if k == "all" or int(k) >= n_features else int(k)
        if k not in out:
            out.append(k)
    return out


def _param_grid(name: str, k_features: Sequence, n_features: int) -> dict[str, list]:
    grid = {"select__k": _k_values(k_features, n_features)}
    grid.update(PARAM_GRIDS[name])
    return grid


def _permutation_k(k_features: Sequence, n_features: int):
    ks = _k_values(k_features, n_features)
    return ks[len(ks) // 2]


def _clinical_pipeline(columns: pd.DataFrame, seed: int) -> Pipeline:
    numeric = [c for c in columns.columns if pd.api.types.is_numeric_dtype(columns[c])]
    categorical = [c for c in columns.columns if c not in numeric]
    parts = []
    if numeric:
        parts.append(("num", Pipeline([("impute", SimpleImputer(strategy="median")),
                                       ("scale", StandardScaler())]), numeric))
    if categorical:
        parts.append(("cat", Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                                       ("onehot", OneHotEncoder(handle_unknown="ignore"))]),
                      categorical))
    return Pipeline([
        ("prep", ColumnTransformer(parts)),
        ("model", LogisticRegression(C=1.0, l1_ratio=0.0, class_weight="balanced",
                                     max_iter=1000, random_state=seed)),
    ])


# --------------------------------------------------------------------- CV machinery


def _grouped(groups: np.ndarray) -> bool:
    return len(np.unique(groups)) < len(groups)


def outer_splits(y: np.ndarray, groups: np.ndarray, n_splits: int, n_repeats: int,
                 seed: int) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """Outer folds per repeat (§7 protocol 2); same for every estimator of a site."""
    y = np.asarray(y)
    if _grouped(groups):
        _, first = np.unique(groups, return_index=True)
        minority = int(min(y[first].sum(), len(first) - y[first].sum()))
    else:
        minority = int(min(y.sum(), len(y) - y.sum()))
    n_splits = min(n_splits, minority)
    if n_splits < 2:
        raise ClassifierInputError("fewer than 2 samples in the minority class: cannot cross-validate")
    dummy = np.zeros((len(y), 1))
    if _grouped(groups):
        return [list(StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed + r)
                     .split(dummy, y, groups)) for r in range(n_repeats)]
    folds = list(RepeatedStratifiedKFold(n_splits=n_splits, n_repeats=n_repeats,
                                         random_state=seed).split(dummy, y))
    return [folds[r * n_splits:(r + 1) * n_splits] for r in range(n_repeats)]


def _inner_cv(y: np.ndarray, groups: np.ndarray):
    minority = int(min(y.sum(), len(y) - y.sum()))
    n = max(2, min(3, minority))
    return StratifiedGroupKFold(n) if _grouped(groups) else StratifiedKFold(n)


def _take(X, idx):
    return X.iloc[idx] if isinstance(X, pd.DataFrame) else X[idx]


class _quiet:
    """One BLAS thread and no convergence chatter inside worker tasks (determinism)."""

    def __enter__(self):
        self._limits = threadpool_limits(1)
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


def _selected_mask(pipe: Pipeline, n_features: int) -> np.ndarray:
    """Genes used by a fitted pipeline: passed SelectKBest and (linear) non-zero weight."""
    if "select" not in pipe.named_steps:
        return np.zeros(n_features, dtype=bool)
    mask = pipe.named_steps["select"].get_support().copy()
    weights = _model_weights(pipe.named_steps["model"])
    if weights is not None:
        idx = np.flatnonzero(mask)
        mask[idx[weights == 0]] = False
    return mask


def _model_weights(model) -> np.ndarray | None:
    if isinstance(model, (LogisticRegression, LinearDiscriminantAnalysis)):
        return np.ravel(model.coef_)
    if isinstance(model, CalibratedClassifierCV):
        return np.ravel(model.calibrated_classifiers_[0].estimator.coef_)
    if isinstance(model, RandomForestClassifier):
        return np.asarray(model.feature_importances_)
    return None


class NestedSearch:
    """Inner-loop specification of the nested CV (§7 protocol 3).

    ``inner="fast"`` (default) chooses the parameters with :func:`fast_grid_search`
    (GridSearchCV semantics, shared preprocessing) and refits the real Pipeline with
    them; ``inner="gridsearch"`` runs scikit-learn's ``GridSearchCV`` literally.
    Both see the outer training fold only.
    """

    def __init__(self, name: str, grid: Mapping[str, list], seed: int = 2016,
                 inner: str = "fast"):
        if inner not in ("fast", "gridsearch"):
            raise ClassifierInputError(f"inner_search must be 'fast' or 'gridsearch', not {inner!r}")
        self.name, self.grid, self.seed, self.inner = name, dict(grid), seed, inner

    def fit_best(self, X, y, groups) -> tuple[Pipeline, dict]:
        """Choose parameters on (X, y) by inner CV, refit the pipeline on all of (X, y)."""
        pipe = make_pipeline(self.name, seed=self.seed)
        if len(list(ParameterGrid(self.grid))) == 1:
            params = list(ParameterGrid(self.grid))[0]
        elif self.inner == "fast":
            params = fast_grid_search(self.name, self.grid, X, y, groups, seed=self.seed)
        else:
            search = GridSearchCV(pipe, self.grid, scoring="roc_auc", n_jobs=1, refit=False,
                                  error_score="raise", cv=_inner_cv(y, groups))
            search.fit(X, y, **({"groups": groups} if _grouped(groups) else {}))
            params = search.best_params_
        return pipe.set_params(**params).fit(X, y), dict(params)


def _fold_task(spec, X, y, groups, train, test, n_features):
    with _quiet():
        if isinstance(spec, NestedSearch):
            est, _ = spec.fit_best(X[train], y[train], groups[train])
        else:
            est = clone(spec).fit(_take(X, train), y[train])
        proba = est.predict_proba(_take(X, test))[:, 1]
        mask = (_selected_mask(est, n_features) if isinstance(est, Pipeline)
                and "select" in est.named_steps else np.zeros(n_features, bool))
    return proba, mask


def cross_validated(spec, X, y, groups, splits, n_jobs: int = 1, parallel=None):
    """Out-of-fold probabilities (repeats × samples) and gene-selection frequency.

    ``spec`` is a :class:`NestedSearch` (nested CV) or a plain estimator/Pipeline;
    the same ``splits`` (from :func:`outer_splits`) are used for every model of a site.
    """
    n_features = X.shape[1]
    tasks = [(r, train, test) for r, folds in enumerate(splits) for train, test in folds]
    run = parallel or Parallel(n_jobs=n_jobs)
    results = run(delayed(_one_blas_thread(_fold_task))(spec, X, y, groups, tr, te, n_features)
                  for _, tr, te in tasks)
    oof = np.full((len(splits), len(y)), np.nan)
    counts = np.zeros(n_features)
    for (r, _, test), (proba, mask) in zip(tasks, results):
        oof[r, test] = proba
        counts += mask
    return oof, counts / max(len(tasks), 1)


def repeat_scores(y: np.ndarray, oof: np.ndarray) -> dict[str, float]:
    """AUC per repeat (mean, 2.5 and 97.5 percentiles), balanced accuracy at 0.5, Brier."""
    aucs = np.array([roc_auc_score(y, p) for p in oof])
    bal = np.array([balanced_accuracy_score(y, (p >= 0.5).astype(int)) for p in oof])
    brier = np.array([brier_score_loss(y, p) for p in oof])
    return {
        "auc": float(aucs.mean()),
        "auc_low": float(np.percentile(aucs, 2.5)),
        "auc_high": float(np.percentile(aucs, 97.5)),
        "balanced_accuracy": float(bal.mean()),
        "brier": float(brier.mean()),
    }


# ------------------------------------------------------------- permutation test


def fast_auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic (ties count 1/2) — same value as
    ``roc_auc_score`` without its input-checking overhead (used in the hot loops)."""
    y = np.asarray(y)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    ranks = rankdata(score)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


class _Prepared:
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
        self.order = np.argsort(np.where(np.isnan(scores), np.finfo(float).min, scores),
                                kind="mergesort")

    def proba(self, model, k) -> np.ndarray:
        if k == "all":
            Ztr, Zte = self.Ztr, self.Zte
        else:
            cols = np.sort(self.order[-k:])
            Ztr, Zte = self.Ztr[:, cols], self.Zte[:, cols]
        return clone(model).fit(Ztr, self.ytr).predict_proba(Zte)[:, 1]


def _fast_fold_proba(model, k, Xtr, ytr, Xte) -> np.ndarray:
    return _Prepared(Xtr, ytr, Xte).proba(model, k)


def fast_grid_search(name: str, grid: Mapping[str, list], X: np.ndarray, y: np.ndarray,
                     groups: np.ndarray, seed: int = 2016) -> dict[str, Any]:
    """Best parameters as ``GridSearchCV(make_pipeline(name), grid, cv=inner, scoring="roc_auc")``
    would choose them (same ParameterGrid order, mean inner-fold AUC, first best wins),
    but with imputation/scaling/F-scores computed once per inner fold instead of once per
    candidate — about 5× faster on n ≈ 45.  Still fitted on the given (training) data only.
    """
    combos = list(ParameterGrid(dict(grid)))
    base = make_pipeline(name, seed=seed).named_steps["model"]
    models = [clone(base).set_params(**{key[len("model__"):]: v for key, v in c.items()
                                        if key.startswith("model__")}) for c in combos]
    inner = _inner_cv(y, groups)
    split_kw = {"groups": groups} if _grouped(groups) else {}
    scores = []
    for train, test in inner.split(X, y, **split_kw):
        prep = _Prepared(X[train], y[train], X[test])
        scores.append([fast_auc(y[test], prep.proba(m, c.get("select__k", "all")))
                       for m, c in zip(models, combos)])
    mean = np.asarray(scores).mean(axis=0)
    return combos[int(np.argmax(mean))]


def _fixed_statistic(model, k, X, y, groups, n_splits, n_repeats, seed) -> float:
    splits = outer_splits(y, groups, n_splits, n_repeats, seed)
    aucs = []
    for folds in splits:
        oof = np.empty(len(y))
        for train, test in folds:
            oof[test] = _fast_fold_proba(model, k, X[train], y[train], X[test])
        aucs.append(fast_auc(y, oof))
    return float(np.mean(aucs))


def _nested_statistic(search, X, y, groups, n_splits, n_repeats, seed) -> float:
    splits = outer_splits(y, groups, n_splits, n_repeats, seed)
    oof, _ = cross_validated(search, X, y, groups, splits, n_jobs=1)
    return float(np.mean([roc_auc_score(y, p) for p in oof]))


def _permutation_chunk(kind, spec, X, perms_y, groups, n_splits, n_repeats, seed):
    with _quiet():
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


def permutation_test(X, y, groups, *, estimator: str, k_features, n_splits: int,
                     n_permutations: int, mode: str = "fixed", repeats: int = 1,
                     seed: int = 2016, n_jobs: int = 1, parallel=None,
                     inner_search: str = "fast") -> dict[str, float]:
    """Permutation p-value of the cross-validated AUC (§7 protocol 4; design in module doc)."""
    if _grouped(groups):
        uniq, inverse = np.unique(groups, return_inverse=True)
        for g in range(len(uniq)):
            if len(np.unique(y[inverse == g])) > 1:
                raise ClassifierInputError(
                    f"patient {uniq[g]} has samples with different site labels; "
                    "use one_timepoint or fix the samples sheet")
    n_features = X.shape[1]
    if mode == "fixed":
        pipe = make_pipeline(estimator, seed=seed)
        model = pipe.named_steps["model"].set_params(**PERMUTATION_PARAMS[estimator])
        spec = (model, _permutation_k(k_features, n_features))
    elif mode == "nested":
        spec = NestedSearch(estimator, _param_grid(estimator, k_features, n_features),
                            seed=seed, inner=inner_search)
    else:
        raise ClassifierInputError(f"permutation_mode must be 'fixed' or 'nested', not {mode!r}")
    observed = _permutation_chunk(mode, spec, X, [y], groups, n_splits, repeats, seed)[0]
    perms = [_permuted_labels(y, groups, o)
             for o in permutation_orders(groups, n_permutations, seed)]
    n_chunks = max(1, min(len(perms), 4 * max(1, n_jobs)))
    chunks = [c for c in np.array_split(np.arange(len(perms)), n_chunks) if len(c)]
    run = parallel or Parallel(n_jobs=n_jobs)
    results = run(delayed(_one_blas_thread(_permutation_chunk))(mode, spec, X, [perms[i] for i in c], groups,
                                              n_splits, repeats, seed) for c in chunks)
    null = np.concatenate([np.asarray(r, dtype=float) for r in results]) if results else np.array([])
    count = int(np.sum(null >= observed - 1e-12))
    p = (count + 1) / (len(null) + 1)
    return {"observed": observed, "p": float(p), "count": count, "n": len(null),
            "null_mean": float(null.mean()) if len(null) else float("nan")}


# ------------------------------------------------------------------ data preparation


def _prepare(matrix: pd.DataFrame, samples: pd.DataFrame, one_timepoint: str | None,
             notes: list[str]):
    if "sample" in matrix.columns:
        mat = matrix.set_index("sample")
    else:
        mat = matrix.copy()
    mat.index = mat.index.astype(str).str.strip()
    if mat.index.duplicated().any():
        raise ClassifierInputError("duplicate sample ids in the expression matrix")
    genes = [c for c in mat.columns]
    mat = mat.apply(pd.to_numeric, errors="coerce")
    sheet = samples.copy()
    sheet["sample"] = sheet["sample"].astype(str).str.strip()
    if "kind" in sheet.columns:
        sheet = sheet[sheet["kind"].astype(str).str.strip() == "patient"]
    if one_timepoint is not None and "timepoint" in sheet.columns:
        keep = sheet["timepoint"].astype(str).str.strip() == str(one_timepoint)
        notes.append(f"one_timepoint={one_timepoint}: {int(keep.sum())} of {len(sheet)} "
                     "patient samples kept")
        sheet = sheet[keep]
    missing = sorted(set(sheet["sample"]) - set(mat.index))
    if missing:
        notes.append("samples in the sheet but not in the matrix (left out): " + ", ".join(missing))
    sheet = sheet[sheet["sample"].isin(mat.index)].sort_values("sample").reset_index(drop=True)
    if sheet.empty:
        raise ClassifierInputError("no patient samples shared by the matrix and the samples sheet")
    mat = mat.loc[sheet["sample"]]
    empty = [g for g in genes if mat[g].isna().all()]
    if empty:
        notes.append("genes without any value left out: " + ", ".join(empty))
        genes = [g for g in genes if g not in empty]
    if "patient" in sheet.columns:
        groups = sheet["patient"].where(sheet["patient"].notna() & (sheet["patient"].astype(str) != ""),
                                        sheet["sample"]).astype(str).to_numpy()
    else:
        groups = sheet["sample"].to_numpy()
    if _grouped(groups):
        notes.append("several samples per patient: outer and inner CV grouped by patient "
                     "(StratifiedGroupKFold)")
    return mat[genes].to_numpy(dtype=float), genes, sheet, groups


def _clinical_frame(sheet: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    absent = [c for c in columns if c not in sheet.columns]
    if absent:
        raise ClassifierInputError("clinical covariate columns not in the samples sheet: "
                                   + ", ".join(absent))
    out = pd.DataFrame(index=range(len(sheet)))
    for c in columns:
        col = sheet[c].reset_index(drop=True)
        num = pd.to_numeric(col, errors="coerce")
        if num.notna().sum() == col.notna().sum() and col.notna().any():
            out[c] = num.astype(float)
        else:
            out[c] = col.astype(object).where(col.notna(), np.nan)
    return out


# ------------------------------------------------------------------- orchestrator


def _one_blas_thread(function):
    """Run ``function`` with one BLAS/OpenMP thread, in the main process and in joblib
    workers alike: floating-point sums then happen in the same order whatever
    ``n_jobs`` is, so results are identical for any number of jobs."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with threadpool_limits(limits=1):
            return function(*args, **kwargs)

    return wrapper


@_one_blas_thread
def run_classifier(
    matrix: pd.DataFrame,
    samples: pd.DataFrame,
    *,
    strategy: str,
    estimators: Sequence[str] = ("elasticnet",),
    min_class: int = 8,
    n_splits: int = 5,
    n_repeats: int = 20,
    n_permutations: int = 1000,
    clinical_columns: Sequence[str] = (),
    one_timepoint: str | None = "T0",
    k_features: Sequence = (5, 10, "all"),
    n_jobs: int = 1,
    seed: int = 2016,
    permutation_mode: str = "fixed",
    permutation_repeats: int = 1,
    inner_search: str = "fast",
) -> dict[str, Any]:
    """Nested-CV site classifiers with permutation test and baselines (§7).

    Returns a dict with ``metrics``, ``predictions`` (out-of-fold, averaged over
    repeats), ``features`` (selection frequency over outer folds, coefficient in the
    final model), ``models`` ({(site, estimator): bundle}), ``skipped``, ``notes``.
    Baseline rows ``prevalence`` (DummyClassifier prior) and ``clinical`` (when
    ``clinical_columns`` given) use the same outer folds.
    """
    for name in estimators:
        if name not in ESTIMATORS:
            raise ClassifierInputError(f"unknown estimator {name!r}; choose from {', '.join(ESTIMATORS)}")
    notes: list[str] = []
    X, genes, sheet, groups = _prepare(matrix, samples, one_timepoint, notes)
    Y, skipped = site_labels(sheet, min_class=min_class)
    labelled = sheet["sample"].isin(Y.index).to_numpy()
    X, groups, sheet = X[labelled], groups[labelled], sheet[labelled].reset_index(drop=True)
    Y = Y.loc[sheet["sample"]]
    clinical = _clinical_frame(sheet, clinical_columns) if clinical_columns else None
    notes.append(f"permutation test: mode={permutation_mode}, repeats={permutation_repeats}, "
                 f"{n_permutations} permutations, p=(C+1)/(n+1)")

    metrics, predictions, features, models = [], [], [], {}
    with Parallel(n_jobs=n_jobs) as parallel:
        for site in Y.columns:
            y = Y[site].to_numpy(dtype=int)
            n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
            splits = outer_splits(y, groups, n_splits, n_repeats, seed)
            if len(splits[0]) < n_splits:
                notes.append(f"{site}: n_splits lowered to {len(splits[0])} (minority class)")
            base_row = {"site": site, "n_pos": n_pos, "n_neg": n_neg,
                        "n_permutations": 0, "strategy": strategy, "permutation_p": np.nan,
                        "clinical_auc": np.nan, "delta_auc": np.nan}

            def record(name, oof, extra):
                scores = repeat_scores(y, oof)
                metrics.append({**base_row, "estimator": name, **scores, **extra})
                for s, p, lab in zip(sheet["sample"], oof.mean(axis=0), y):
                    predictions.append({"sample": s, "site": site, "estimator": name,
                                        "probability": float(p), "label": int(lab)})
                return scores

            record("prevalence", cross_validated(DummyClassifier(strategy="prior"), X, y, groups,
                                                 splits, parallel=parallel)[0], {})
            clinical_auc = np.nan
            if clinical is not None:
                oof, _ = cross_validated(_clinical_pipeline(clinical, seed), clinical, y, groups,
                                         splits, parallel=parallel)
                clinical_auc = record("clinical", oof, {})["auc"]

            for name in estimators:
                grid = _param_grid(name, k_features, X.shape[1])
                search = NestedSearch(name, grid, seed=seed, inner=inner_search)
                oof, freq = cross_validated(search, X, y, groups, splits, parallel=parallel)
                perm = {"p": np.nan, "n": 0}
                if n_permutations > 0:
                    perm = permutation_test(X, y, groups, estimator=name, k_features=k_features,
                                            n_splits=n_splits, n_permutations=n_permutations,
                                            mode=permutation_mode, repeats=permutation_repeats,
                                            seed=seed, parallel=parallel, n_jobs=n_jobs,
                                            inner_search=inner_search)
                    notes.append(f"{site}/{name}: permutation statistic observed "
                                 f"{perm['observed']:.4f}, null mean {perm['null_mean']:.4f}, "
                                 f"C={perm['count']}")
                scores = record(name, oof, {
                    "permutation_p": perm["p"], "n_permutations": perm["n"],
                    "clinical_auc": clinical_auc,
                })
                metrics[-1]["delta_auc"] = scores["auc"] - clinical_auc
                bundle = _final_model(search, X, y, groups, genes, site=site,
                                      strategy=strategy, samples=list(sheet["sample"]))
                models[(site, name)] = bundle
                coef = _final_coefficients(bundle["pipeline"], len(genes))
                for g, f, c in zip(genes, freq, coef):
                    features.append({"site": site, "estimator": name, "gene": g,
                                     "selection_frequency": float(f), "coefficient": float(c)})

    metrics_df = pd.DataFrame(metrics, columns=METRIC_COLUMNS)
    if not metrics_df.empty:
        metrics_df = metrics_df.sort_values(["site", "estimator"], kind="mergesort").reset_index(drop=True)
    pred_df = pd.DataFrame(predictions, columns=["sample", "site", "estimator", "probability", "label"])
    pred_df = pred_df.sort_values(["site", "estimator", "sample"], kind="mergesort").reset_index(drop=True)
    feat_df = pd.DataFrame(features, columns=["site", "estimator", "gene", "selection_frequency",
                                              "coefficient"])
    feat_df = feat_df.sort_values(["site", "estimator", "gene"], kind="mergesort").reset_index(drop=True)
    return {"metrics": metrics_df, "predictions": pred_df, "features": feat_df,
            "models": models, "skipped": skipped, "notes": notes}


# ---------------------------------------------------------------- final model, I/O


def _versions() -> dict[str, str]:
    import joblib
    import scipy
    import skops

    from . import __version__
    return {"python": platform.python_version(), "scikit-learn": sklearn.__version__,
            "numpy": np.__version__, "scipy": scipy.__version__, "pandas": pd.__version__,
            "skops": skops.__version__, "joblib": joblib.__version__, "ctc_qpcr": __version__}


def _final_model(search: NestedSearch, X, y, groups, genes, *, site, strategy, samples) -> dict:
    """Refit on all samples: grid search (same inner CV) on all data, best pipeline refitted."""
    with _quiet():
        pipe, params = search.fit_best(X, y, groups)
    return {"format": MODEL_FORMAT, "pipeline": pipe, "features": list(genes), "site": site,
            "estimator": search.name, "strategy": strategy, "params": {k: str(v) for k, v in params.items()},
            "training_samples": list(samples), "versions": _versions()}


def _final_coefficients(pipe: Pipeline, n_features: int) -> np.ndarray:
    """Weights on the standardised scale (RF: impurity importance), 0 for unselected genes."""
    out = np.zeros(n_features)
    support = pipe.named_steps["select"].get_support()
    weights = _model_weights(pipe.named_steps["model"])
    if weights is not None:
        out[np.flatnonzero(support)] = weights
    return out


def save_models(models: Mapping[tuple[str, str], dict], path: str | os.PathLike) -> None:
    """Write model bundles to one skops file (see :func:`load_models` for the safety note)."""
    import skops.io as sio

    from .tables import atomic_path
    payload = {"format": MODEL_FORMAT,
               "bundles": [models[key] for key in sorted(models)]}
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(_deterministic_zip(sio.dumps(payload)))


def _deterministic_zip(data: bytes) -> bytes:
    """The same skops archive, made byte-reproducible.

    skops names each stored array file and each memo ``__id__`` after the
    object's memory address (``id()``), and stamps members with the current
    time; equal models then give different bytes in every process. Here every
    such number is replaced by its rank of first appearance in ``schema.json``
    (the same number everywhere it occurs, so shared objects stay shared),
    members are renamed accordingly, sorted, and dated 1980-01-01.
    """
    import io
    import re
    import zipfile

    source = zipfile.ZipFile(io.BytesIO(data))
    schema = source.read("schema.json").decode("utf-8")
    numbers: dict[str, str] = {}
    for match in re.finditer(r'"__id__": (\d+)|"(\d+)\.npy"', schema):
        key = match.group(1) or match.group(2)
        numbers.setdefault(key, str(len(numbers) + 1))

    def renumber(text: str) -> str:
        text = re.sub(r'"__id__": (\d+)', lambda m: f'"__id__": {numbers[m.group(1)]}', text)
        return re.sub(r'"(\d+)\.npy"', lambda m: f'"{numbers.get(m.group(1), m.group(1))}.npy"', text)

    members = {}
    for name in source.namelist():
        content = source.read(name)
        if name == "schema.json":
            content = renumber(schema).encode("utf-8")
        else:
            stem = name[: -len(".npy")] if name.endswith(".npy") else None
            if stem is not None and stem in numbers:
                name = f"{numbers[stem]}.npy"
        members[name] = content
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            target.writestr(info, members[name])
    return out.getvalue()


def load_models(path: str | os.PathLike) -> dict[tuple[str, str], dict]:
    """Read bundles written by :func:`save_models`.

    WARNING: loading a model file executes code chosen by whoever wrote the file.
    Only types in ``TRUSTED_TYPES`` are accepted, but never load model files from
    untrusted sources.
    """
    import skops.io as sio

    log.warning("loading classifier models from %s: model files can execute code — "
                "only load files from a trusted source", path)
    untrusted = sio.get_untrusted_types(file=path)
    unexpected = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if unexpected:
        raise ClassifierInputError(
            f"{path}: model file contains types not on the allow-list: {', '.join(unexpected)} "
            "— it was not written by ctc_qpcr.classifier.save_models of this version; do not load it")
    payload = sio.load(path, trusted=[t for t in untrusted if t in TRUSTED_TYPES])
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise ClassifierInputError(f"{path}: not a ctc-qpcr classifier model file")
    return {(b["site"], b["estimator"]): b for b in payload["bundles"]}


def _bundles(model) -> list[dict]:
    if isinstance(model, (str, os.PathLike)):
        return list(load_models(model).values())
    if isinstance(model, Mapping) and "pipeline" in model:
        return [model]
    if isinstance(model, Mapping):
        return [model[k] for k in sorted(model)]
    raise TypeError("model must be a path, a bundle or a {(site, estimator): bundle} mapping")


def predict(model, matrix: pd.DataFrame) -> pd.DataFrame:
    """Site probabilities for new samples with a saved / returned model (§7).

    ``matrix`` is the wide ΔCq matrix (column ``sample`` + one column per gene, or
    indexed by sample).  Every gene the model was trained on must be present with a
    value for every sample, otherwise :class:`MissingFeatureError` names the samples
    and genes.  Returns columns ``sample, site, probability, estimator``.
    """
    mat = matrix.set_index("sample") if "sample" in matrix.columns else matrix
    mat.index = mat.index.astype(str)
    frames = []
    for bundle in _bundles(model):
        features = bundle["features"]
        absent = [g for g in features if g not in mat.columns]
        if absent:
            raise MissingFeatureError(
                f"model for site {bundle['site']} ({bundle['estimator']}) needs genes missing "
                f"from the matrix: {', '.join(absent)} (all {len(mat)} samples affected) — use a "
                "matrix from the same normalisation strategy and panel as the training data")
        values = mat[features].apply(pd.to_numeric, errors="coerce")
        bad = values.isna()
        if bad.to_numpy().any():
            lines = [f"{s}: {', '.join(values.columns[bad.loc[s].to_numpy()])}"
                     for s in values.index[bad.any(axis=1).to_numpy()]]
            raise MissingFeatureError(
                f"model for site {bundle['site']} ({bundle['estimator']}): samples without a "
                f"value for model genes — {'; '.join(lines)} — every sample needs a ΔCq for all "
                "model genes (non-detects imputed at LOD+1 upstream); fix or drop these samples")
        proba = bundle["pipeline"].predict_proba(values.to_numpy(dtype=float))[:, 1]
        frames.append(pd.DataFrame({"sample": values.index, "site": bundle["site"],
                                    "probability": proba, "estimator": bundle["estimator"]}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["sample", "site", "probability", "estimator"])
