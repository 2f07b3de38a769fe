"""Classifying metastatic site from the qPCR panel (docs/methods.md §7).

One binary task per site (multi-label, one-vs-rest): liver yes/no, bone yes/no, ...
Only sites with at least ``min_class`` positives and negatives are modelled; the
others are reported in ``skipped``.  Modules, in the order the stage runs them:

* :mod:`.inputs` — site labels, training samples of one time point, the shared panel
  (genes measured in every batch), clinical covariates;
* :mod:`.pipeline` — the in-fold pipelines (median imputation, rank-to-normal,
  SelectKBest, model) and the clinical baseline;
* :mod:`.validation` — nested CV (outer repeated stratified folds, inner grid search)
  and the metrics (AUC = mean of the outer-fold AUCs per repeat, then over repeats);
* :mod:`.permutation` — the permutation test and the statistic it is computed on;
* :mod:`.run` — :func:`run_classifier`, the stage as a short pipeline of named steps;
* :mod:`.persistence` — skops model files with a type allow-list;
* :mod:`.predict` — site probabilities for new samples, missing genes imputed by the
  model's own imputer up to ``max_missing_fraction``.
"""

from .errors import ClassifierInputError, MissingFeatureError
from .inputs import shared_panel, site_labels
from .permutation import permutation_orders, permutation_test
from .persistence import MODEL_FORMAT, TRUSTED_TYPES, load_models, save_models
from .pipeline import BASELINES, ESTIMATORS, RankGauss, make_pipeline, param_grid
from .predict import MAX_MISSING_FRACTION, mask_genes, predict, used_genes
from .run import METRIC_COLUMNS, ClassifierOptions, classifier_options, run_classifier
from .validation import (
    NestedSearch,
    cross_validated,
    fast_auc,
    fast_fold_proba,
    fast_grid_search,
    fold_auc,
    outer_splits,
    repeat_scores,
)

__all__ = [
    "BASELINES",
    "ESTIMATORS",
    "MAX_MISSING_FRACTION",
    "METRIC_COLUMNS",
    "ClassifierOptions",
    "MODEL_FORMAT",
    "TRUSTED_TYPES",
    "ClassifierInputError",
    "MissingFeatureError",
    "NestedSearch",
    "RankGauss",
    "cross_validated",
    "fast_auc",
    "fast_fold_proba",
    "fast_grid_search",
    "fold_auc",
    "load_models",
    "make_pipeline",
    "mask_genes",
    "outer_splits",
    "param_grid",
    "permutation_orders",
    "permutation_test",
    "predict",
    "repeat_scores",
    "classifier_options",
    "run_classifier",
    "save_models",
    "shared_panel",
    "site_labels",
    "used_genes",
]
