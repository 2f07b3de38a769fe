"""Site probabilities for new samples with a saved model (docs/methods.md §7).

A new sample that lacks the ΔCq of some genes the model uses is predicted with the
model's own in-fold imputation (the median of the training samples, the first step
of the saved pipeline) and flagged with the imputed genes; it is rejected only when
more than ``max_missing_fraction`` of the genes the model uses are missing (or all
of them), and the status says why.  "Genes the model uses" are the genes that passed
the final model's SelectKBest step: a gene the model does not use changes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .persistence import load_models

# Chosen by benchmarks/classifier_bench.py --missing (see docs/methods.md §7).
MAX_MISSING_FRACTION = 0.25
PREDICT_COLUMNS = [
    "sample",
    "site",
    "probability",
    "estimator",
    "status",
    "imputed_genes",
    "missing_fraction",
]


def _bundles(model) -> list[dict]:
    if isinstance(model, (str, os.PathLike)):
        return list(load_models(model).values())
    if isinstance(model, Mapping) and "pipeline" in model:
        return [model]
    if isinstance(model, Mapping):
        return [model[k] for k in sorted(model)]
    raise TypeError("model must be a path, a bundle or a {(site, estimator): bundle} mapping")


def used_genes(bundle: Mapping) -> list[str]:
    """The genes the bundle's final model uses (passed its SelectKBest step)."""
    features = list(bundle["features"])
    select = bundle["pipeline"].named_steps.get("select")
    if select is None:
        return features
    return [g for g, keep in zip(features, select.get_support(), strict=True) if keep]


def _status(missing: list[str], n_used: int, unmeasured: set[str], limit: float) -> str:
    if not missing:
        return "predicted"
    share = len(missing) / n_used
    absent = [g for g in missing if g in unmeasured]
    where = f"; {len(absent)} not measured in this batch" if absent else ""
    text = f"{len(missing)} of {n_used} model genes without a ΔCq ({', '.join(missing)}{where})"
    if len(missing) == n_used:
        return f"rejected: {text}: nothing to predict from"
    if share > limit:
        return f"rejected: {text} = {share:.0%}, more than predict.max_missing_fraction {limit:g}"
    return f"predicted; {text} imputed with the training median"


def _predict_bundle(bundle: Mapping, mat: pd.DataFrame, limit: float) -> pd.DataFrame:
    features = list(bundle["features"])
    used = used_genes(bundle)
    unmeasured = {g for g in features if g not in mat.columns}
    values = mat.reindex(columns=features).apply(pd.to_numeric, errors="coerce")
    lacking = values[used].isna().to_numpy()
    missing = [[g for g, m in zip(used, row, strict=True) if m] for row in lacking]
    share = lacking.sum(axis=1) / max(len(used), 1)
    status = [_status(m, len(used), unmeasured, limit) for m in missing]
    accepted = np.array([not s.startswith("rejected") for s in status], dtype=bool)
    proba = np.full(len(values), np.nan)
    if accepted.any():
        X = values.to_numpy(dtype=float)[accepted]
        proba[accepted] = bundle["pipeline"].predict_proba(X)[:, 1]
    return pd.DataFrame(
        {
            "sample": values.index,
            "site": bundle["site"],
            "probability": proba,
            "estimator": bundle["estimator"],
            "status": status,
            "imputed_genes": [";".join(m) for m in missing],
            "missing_fraction": share,
        }
    )


def predict(model, matrix: pd.DataFrame, max_missing_fraction: float = MAX_MISSING_FRACTION) -> pd.DataFrame:
    """Site probabilities for new samples with a saved / returned model (§7).

    ``matrix`` is the wide ΔCq matrix (column ``sample`` + one column per gene, or
    indexed by sample); a model gene that is not a column counts as missing for every
    sample (not measured in this batch).  Returns one row per sample × model with
    ``sample, site, probability, estimator, status, imputed_genes, missing_fraction``:
    ``imputed_genes`` lists the genes the model uses that the sample lacks (filled with
    the training median), ``missing_fraction`` their share of the genes the model uses;
    above ``max_missing_fraction`` the probability is empty and ``status`` says why.
    """
    if not 0.0 <= float(max_missing_fraction) <= 1.0:
        raise ValueError("max_missing_fraction must lie in [0, 1]")
    mat = matrix.set_index("sample") if "sample" in matrix.columns else matrix.copy()
    mat.index = mat.index.astype(str)
    frames = [_predict_bundle(b, mat, float(max_missing_fraction)) for b in _bundles(model)]
    if not frames:
        return pd.DataFrame(columns=PREDICT_COLUMNS)
    return pd.concat(frames, ignore_index=True)[PREDICT_COLUMNS]


def mask_genes(
    matrix: np.ndarray, columns: Sequence[int], fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """A copy of ``matrix`` with round(fraction × len(columns)) of ``columns`` set to NaN
    in every row, chosen at random per row (for the missing-gene benchmark)."""
    out = np.array(matrix, dtype=float, copy=True)
    n_mask = int(round(fraction * len(columns)))
    if n_mask == 0:
        return out
    cols = np.asarray(columns)
    picks = np.argsort(rng.random((out.shape[0], len(cols))), axis=1)[:, :n_mask]
    rows = np.repeat(np.arange(out.shape[0]), n_mask)
    out[rows, cols[picks].ravel()] = np.nan
    return out
