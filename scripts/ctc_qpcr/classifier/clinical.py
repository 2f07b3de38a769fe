"""The clinical-only baseline on categorical covariates without the Pipeline machinery
(docs/methods.md §7, protocol 4).

:func:`~.pipeline.clinical_pipeline` with categorical columns only (e.g. ``subtype``) is
most-frequent imputation, one-hot encoding (unknown categories → all zeros) and an L2
logistic regression, refitted on each of 100 outer training folds per site.  On 45
samples the ColumnTransformer's and encoders' input checks cost several times the fit
itself.  :func:`categorical_design` builds the matrices the ColumnTransformer hands to
the model — same values, same dense or sparse type (its ``sparse_threshold`` rule) — so
the logistic regression sees the same input and gives the same probabilities, bit for
bit (tested against the pipeline).  Numeric covariates take the pipeline path.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline


def categorical_only(spec) -> bool:
    """True for a clinical pipeline whose covariates are all categorical."""
    if not (isinstance(spec, Pipeline) and list(spec.named_steps) == ["prep", "model"]):
        return False
    prep = spec.named_steps["prep"]
    return isinstance(prep, ColumnTransformer) and [t[0] for t in prep.transformers] == ["cat"]


def _missing(values: np.ndarray) -> np.ndarray:
    return values != values  # SimpleImputer's NaN test for object arrays (None is a value)


def _most_frequent(values: np.ndarray):
    """SimpleImputer(strategy="most_frequent") on an object column: ties → the smallest."""
    counts = Counter(values)
    top = counts.most_common(1)[0][1]
    return min(v for v, c in counts.items() if c == top)


def _one_hot(values: np.ndarray, categories: list) -> np.ndarray:
    position = {c: i for i, c in enumerate(categories)}
    out = np.zeros((len(values), len(categories)))
    for row, v in enumerate(values):
        j = position.get(v)
        if j is not None:  # handle_unknown="ignore": an unseen category is all zeros
            out[row, j] = 1.0
    return out


def categorical_design(train: pd.DataFrame, test: pd.DataFrame, threshold: float = 0.3):
    """(Xtr, Xte) as the fitted ColumnTransformer of the clinical pipeline outputs them,
    or None when a column has no value in the training fold (the pipeline's own path)."""
    blocks_tr, blocks_te = [], []
    for column in train.columns:
        tr = train[column].to_numpy(dtype=object)
        te = test[column].to_numpy(dtype=object)
        miss = _missing(tr)
        if miss.all():
            return None
        fill = _most_frequent(tr[~miss])
        tr = np.where(miss, fill, tr)
        te = np.where(_missing(te), fill, te)
        categories = sorted(set(tr))
        blocks_tr.append(_one_hot(tr, categories))
        blocks_te.append(_one_hot(te, categories))
    Xtr, Xte = np.hstack(blocks_tr), np.hstack(blocks_te)
    # one stored value per row and column in training: ColumnTransformer's density rule
    if len(train.columns) / Xtr.shape[1] < threshold:
        return sparse.csr_matrix(Xtr), sparse.csr_matrix(Xte)
    return Xtr, Xte


def clinical_fold_proba(spec: Pipeline, frame: pd.DataFrame, y: np.ndarray, train, test):
    """Test-fold probabilities of the categorical clinical pipeline ``spec`` fitted on
    ``train``; None when :func:`categorical_design` declines."""
    prep = spec.named_steps["prep"]
    columns = list(prep.transformers[0][2])
    design = categorical_design(frame.iloc[train][columns], frame.iloc[test][columns], prep.sparse_threshold)
    if design is None:
        return None
    Xtr, Xte = design
    model = clone(spec.named_steps["model"]).fit(Xtr, y[train])
    return model.predict_proba(Xte)[:, 1]
