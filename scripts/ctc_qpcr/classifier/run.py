"""The classifier stage as a short pipeline of named steps (docs/methods.md §7).

prepare the training samples → per site: outer folds → baselines (prevalence,
clinical) → nested CV per estimator → permutation test → final model refitted on
all samples → sorted tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel
from sklearn.dummy import DummyClassifier

from ..errors import ConfigError
from ..options import from_config
from .inputs import TrainingData, clinical_frame, prepare, shared_panel, site_labels
from .permutation import permutation_test
from .persistence import MODEL_FORMAT, versions
from .pipeline import ESTIMATORS, clinical_pipeline, final_coefficients, param_grid
from .validation import NestedSearch, cross_validated, one_blas_thread, outer_splits, quiet, repeat_scores

METRIC_COLUMNS = [
    "site",
    "estimator",
    "n_pos",
    "n_neg",
    "auc",
    "auc_low",
    "auc_high",
    "balanced_accuracy",
    "brier",
    "permutation_p",
    "clinical_auc",
    "delta_auc",
    "n_permutations",
    "strategy",
    "auc_pooled",
    "permutation_statistic",
    "permutation_observed",
    "n_genes",
]
PREDICTION_COLUMNS = ["sample", "site", "estimator", "probability", "label"]
FEATURE_COLUMNS = ["site", "estimator", "gene", "selection_frequency", "coefficient"]


@dataclass(frozen=True)
class ClassifierOptions:
    """``classifier:`` (methods §7), field names as in the config."""

    activate: bool
    estimators: tuple[str, ...]
    min_class: int
    n_splits: int
    n_repeats: int
    n_permutations: int
    one_timepoint: str  # "" = every time point (patients as CV groups)
    clinical_columns: tuple[str, ...]
    seed: int


def classifier_options(given: dict | None = None) -> ClassifierOptions:
    """The ``classifier:`` section (missing keys: the schema's defaults), checked."""
    return from_config(ClassifierOptions, "classifier", given)


@dataclass(frozen=True)
class _Run:
    """What the per-site steps use: the options and this run's computing choices."""

    options: ClassifierOptions
    k_features: tuple
    n_jobs: int
    permutation_mode: str
    permutation_repeats: int
    inner_search: str


class _Collector:
    """Rows of the three output tables, filled site by site."""

    def __init__(self):
        self.metrics, self.predictions, self.features, self.models = [], [], [], {}

    def record(self, base_row, name, y, oof, splits, samples, extra=None) -> dict:
        scores = repeat_scores(y, oof, splits)
        self.metrics.append({**base_row, "estimator": name, **scores, **(extra or {})})
        mean = oof.mean(axis=0)
        self.predictions += [
            {
                "sample": s,
                "site": base_row["site"],
                "estimator": name,
                "probability": float(p),
                "label": int(lab),
            }
            for s, p, lab in zip(samples, mean, y, strict=True)
        ]
        return scores

    def tables(self) -> dict[str, pd.DataFrame]:
        def frame(rows, columns, keys):
            df = pd.DataFrame(rows, columns=columns)
            return df.sort_values(keys, kind="mergesort").reset_index(drop=True)

        return {
            "metrics": frame(self.metrics, METRIC_COLUMNS, ["site", "estimator"]),
            "predictions": frame(self.predictions, PREDICTION_COLUMNS, ["site", "estimator", "sample"]),
            "features": frame(self.features, FEATURE_COLUMNS, ["site", "estimator", "gene"]),
        }


def _final_model(search: NestedSearch, data: TrainingData, y, *, site, strategy) -> dict:
    """Refit on all samples: grid search (same inner CV) on all data, best pipeline refitted."""
    with quiet():
        pipe, params = search.fit_best(data.X, y, data.groups)
    return {
        "format": MODEL_FORMAT,
        "pipeline": pipe,
        "features": list(data.genes),
        "site": site,
        "estimator": search.name,
        "strategy": strategy,
        "params": {k: str(v) for k, v in params.items()},
        "training_samples": list(data.sheet["sample"]),
        "versions": versions(),
    }


def _baselines(out: _Collector, base_row, data: TrainingData, y, splits, clinical, seed, parallel) -> float:
    """Prevalence and (with clinical columns) clinical-only models on the same folds."""
    samples = data.sheet["sample"]
    oof, _ = cross_validated(
        DummyClassifier(strategy="prior"), data.X, y, data.groups, splits, parallel=parallel
    )
    out.record(base_row, "prevalence", y, oof, splits, samples)
    if clinical is None:
        return np.nan
    oof, _ = cross_validated(
        clinical_pipeline(clinical, seed), clinical, y, data.groups, splits, parallel=parallel
    )
    return out.record(base_row, "clinical", y, oof, splits, samples)["auc"]


def _gene_model(
    out: _Collector, base_row, name, data: TrainingData, y, splits, clinical_auc, run: _Run, parallel, notes
) -> None:
    """Nested CV, permutation test and final model of one estimator for one site."""
    site = base_row["site"]
    o = run.options
    search = NestedSearch(
        name, param_grid(name, run.k_features, data.X.shape[1]), seed=o.seed, inner=run.inner_search
    )
    oof, freq = cross_validated(search, data.X, y, data.groups, splits, parallel=parallel)
    perm = {"p": np.nan, "n": 0, "statistic": "", "observed": np.nan}
    if o.n_permutations > 0:
        perm = permutation_test(
            data.X,
            y,
            data.groups,
            estimator=name,
            k_features=run.k_features,
            n_splits=o.n_splits,
            n_permutations=o.n_permutations,
            mode=run.permutation_mode,
            repeats=run.permutation_repeats,
            seed=o.seed,
            parallel=parallel,
            n_jobs=run.n_jobs,
            inner_search=run.inner_search,
        )
        notes.append(
            f"{site}/{name}: permutation statistic ({perm['statistic']}) observed "
            f"{perm['observed']:.4f}, null mean {perm['null_mean']:.4f}, C={perm['count']}"
        )
    scores = out.record(
        base_row,
        name,
        y,
        oof,
        splits,
        data.sheet["sample"],
        {
            "permutation_p": perm["p"],
            "n_permutations": perm["n"],
            "clinical_auc": clinical_auc,
            "permutation_statistic": perm["statistic"],
            "permutation_observed": perm["observed"],
        },
    )
    out.metrics[-1]["delta_auc"] = scores["auc"] - clinical_auc
    bundle = _final_model(search, data, y, site=site, strategy=base_row["strategy"])
    out.models[(site, name)] = bundle
    coef = final_coefficients(bundle["pipeline"], len(data.genes))
    out.features += [
        {"site": site, "estimator": name, "gene": g, "selection_frequency": float(f), "coefficient": float(c)}
        for g, f, c in zip(data.genes, freq, coef, strict=True)
    ]


def _site(out, site, Y, data: TrainingData, clinical, strategy, run: _Run, parallel, notes) -> None:
    o = run.options
    y = Y[site].to_numpy(dtype=int)
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    splits = outer_splits(y, data.groups, o.n_splits, o.n_repeats, o.seed)
    if len(splits[0]) < o.n_splits:
        notes.append(f"{site}: n_splits lowered to {len(splits[0])} (minority class)")
    base_row = {
        "site": site,
        "n_pos": n_pos,
        "n_neg": n_neg,
        "n_permutations": 0,
        "strategy": strategy,
        "permutation_p": np.nan,
        "clinical_auc": np.nan,
        "delta_auc": np.nan,
        "permutation_statistic": "",
        "permutation_observed": np.nan,
        "n_genes": len(data.genes),
    }
    clinical_auc = _baselines(out, base_row, data, y, splits, clinical, o.seed, parallel)
    for name in o.estimators:
        _gene_model(out, base_row, name, data, y, splits, clinical_auc, run, parallel, notes)


def _labelled(data: TrainingData, min_class: int) -> tuple[TrainingData, pd.DataFrame, list]:
    Y, skipped = site_labels(data.sheet, min_class=min_class)
    keep = data.sheet["sample"].isin(Y.index).to_numpy()
    sheet = data.sheet[keep].reset_index(drop=True)
    data = TrainingData(data.X[keep], data.genes, sheet, data.groups[keep], data.notes)
    return data, Y.loc[sheet["sample"]], skipped


@one_blas_thread
def run_classifier(
    matrix: pd.DataFrame,
    samples: pd.DataFrame,
    options: ClassifierOptions | None = None,
    *,
    strategy: str,
    k_features: Sequence = (5, 10, "all"),
    n_jobs: int = 1,
    permutation_mode: str = "fixed",
    permutation_repeats: int = 1,
    inner_search: str = "fast",
    cells: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Nested-CV site classifiers with permutation test and baselines (§7).

    ``options``: :func:`classifier_options` (None: the schema's defaults); the other
    arguments are computing choices the config does not expose.
    Returns a dict with ``metrics``, ``predictions`` (out-of-fold, averaged over
    repeats), ``features`` (selection frequency over outer folds, coefficient in the
    final model), ``models`` ({(site, estimator): bundle}), ``skipped``, ``notes``.
    Baseline rows ``prevalence`` (DummyClassifier prior) and ``clinical`` (when
    ``clinical_columns`` given) use the same outer folds.  With ``cells`` (the Cells
    table, column ``batch``) only genes measured in every batch are used (issue 13.3).
    """
    o = options if options is not None else classifier_options()
    for name in o.estimators:
        if name not in ESTIMATORS:
            raise ConfigError(
                f"config classifier.estimators: unknown estimator {name!r} — "
                f"choose from {', '.join(ESTIMATORS)}"
            )
    panel = (
        None
        if cells is None
        else shared_panel(cells, matrix["sample"] if "sample" in matrix.columns else matrix.index)
    )
    data, Y, skipped = _labelled(prepare(matrix, samples, o.one_timepoint or None, panel), o.min_class)
    notes = data.notes
    clinical = clinical_frame(data.sheet, o.clinical_columns) if o.clinical_columns else None
    notes.append(
        f"AUC = mean over repeats of the mean outer-fold AUC ({o.n_repeats} repeats); "
        "auc_low/auc_high = 2.5-97.5 % range of the per-repeat means"
    )
    notes.append(
        f"permutation test: mode={permutation_mode}, repeats={permutation_repeats}, "
        f"{o.n_permutations} permutations, p=(C+1)/(n+1)"
    )
    run = _Run(o, tuple(k_features), n_jobs, permutation_mode, permutation_repeats, inner_search)
    out = _Collector()
    with Parallel(n_jobs=n_jobs) as parallel:
        for site in Y.columns:
            _site(out, site, Y, data, clinical, strategy, run, parallel, notes)
    return {**out.tables(), "models": out.models, "skipped": skipped, "notes": notes}
