"""Figures for the metastatic-site classifier (docs/methods.md §7, metrics point 6).

* :func:`plot_roc` — out-of-fold ROC curves (probabilities averaged over CV repeats),
  one panel per site, one line per estimator (baselines dashed); the legend gives the
  AUC of ``metrics.tsv`` (mean outer-fold AUC, range over repeats).
* :func:`plot_calibration` — mean predicted probability vs observed fraction per bin.

Both write SVG with deterministic bytes: Agg backend, fixed ``svg.hashsalt``, no
date in the metadata, rows sorted before plotting.
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .plotting import save_figure  # noqa: E402

_RC = {"svg.hashsalt": "ctc-qpcr-classifier", "svg.fonttype": "path", "font.size": 9}
_BASELINES = ("prevalence", "clinical")


def roc_points(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) of ``sklearn.metrics.roc_curve(y, score)`` (collinear points dropped),
    the same values (tested) without importing scikit-learn into the plotting job."""
    y = np.asarray(y) == 1
    score = np.asarray(score, dtype=float)
    order = np.argsort(score, kind="mergesort")[::-1]
    score, y = score[order], y[order].astype(float)
    last = np.r_[np.flatnonzero(np.diff(score)), len(y) - 1]  # last sample of each score
    tps = np.cumsum(y)[last]
    fps = 1 + last.astype(float) - tps
    if len(fps) > 2:
        corner = np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True]
        tps, fps = tps[corner], fps[corner]
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    fpr = fps / fps[-1] if fps[-1] > 0 else np.full(fps.shape, np.nan)
    tpr = tps / tps[-1] if tps[-1] > 0 else np.full(tps.shape, np.nan)
    return fpr, tpr


def _panels(n: int):
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _per_site_figure(preds: pd.DataFrame, path, draw, title: str, xlabel: str, ylabel: str, legend: str):
    """One panel per site (``title`` with ``{site}``), one line per estimator drawn by
    ``draw(ax, site, estimator, rows, linestyle)`` (baselines dashed), the diagonal, both axes 0–1."""
    sites = sorted(preds["site"].unique())
    with plt.rc_context(_RC):
        fig, axes = _panels(max(len(sites), 1))
        for ax, site in zip(axes, sites, strict=False):
            sub = preds[preds["site"] == site]
            for name in sorted(sub["estimator"].unique()):
                draw(ax, site, name, sub[sub["estimator"] == name], "--" if name in _BASELINES else "-")
            ax.plot([0, 1], [0, 1], color="0.7", linewidth=0.8)
            ax.set(title=title.format(site=site), xlabel=xlabel, ylabel=ylabel, xlim=(0, 1), ylim=(0, 1.02))
            ax.legend(loc=legend, fontsize=7, frameon=False)
        fig.tight_layout()
        save_figure(fig, path)


def roc_labels(metrics: pd.DataFrame) -> dict[tuple[str, str], str]:
    """Legend text per (site, estimator): the ``auc`` of ``metrics.tsv`` (mean of the
    outer-fold AUCs) with its 2.5-97.5 % range over repeats — the numbers of the table."""
    labels = {}
    for r in metrics.itertuples(index=False):
        labels[(str(r.site), str(r.estimator))] = (
            f"{r.estimator}: AUC {r.auc:.2f} ({r.auc_low:.2f}-{r.auc_high:.2f})"
        )
    return labels


def plot_roc(
    predictions: pd.DataFrame, path: str | os.PathLike, metrics: pd.DataFrame
) -> dict[tuple[str, str], str]:
    """ROC curves per site from out-of-fold ``predictions`` (sample, site, estimator,
    probability, label; probabilities averaged over CV repeats).  The legend shows the
    AUC of ``metrics`` (``metrics.tsv``: mean outer-fold AUC and its range over repeats),
    never an AUC of its own.  Returns the legend labels."""
    preds = predictions.sort_values(["site", "estimator", "sample"], kind="mergesort")
    sites = sorted(preds["site"].unique())
    labels = roc_labels(metrics)
    missing = sorted(
        set(zip(preds["site"].astype(str), preds["estimator"].astype(str), strict=True)) - set(labels)
    )
    if missing:
        raise ValueError("metrics table has no row for " + ", ".join("/".join(m) for m in missing))

    def curve(ax, site, name, part, linestyle):
        fpr, tpr = roc_points(part["label"].to_numpy(int), part["probability"].to_numpy(float))
        ax.plot(
            fpr,
            tpr,
            drawstyle="steps-post",
            linestyle=linestyle,
            label=labels[(str(site), str(name))],
        )

    axes = ("{site} (out-of-fold, mean over repeats)", "1 − specificity", "sensitivity", "lower right")
    _per_site_figure(preds, path, curve, *axes)
    return {k: v for k, v in labels.items() if k[0] in set(map(str, sites))}


def plot_calibration(predictions: pd.DataFrame, path: str | os.PathLike, n_bins: int = 5) -> None:
    """Calibration per site: equal-width probability bins, mean predicted vs observed
    fraction of positives (empty bins left out)."""
    preds = predictions.sort_values(["site", "estimator", "sample"], kind="mergesort")
    edges = np.linspace(0.0, 1.0, n_bins + 1)

    def points(ax, site, name, part, linestyle):
        p = part["probability"].to_numpy(float)
        y = part["label"].to_numpy(int)
        bins = np.clip(np.digitize(p, edges[1:-1]), 0, n_bins - 1)
        xs, ys = [], []
        for b in range(n_bins):
            in_bin = bins == b
            if in_bin.any():
                xs.append(p[in_bin].mean())
                ys.append(y[in_bin].mean())
        ax.plot(xs, ys, marker="o", markersize=3, linestyle=linestyle, label=name)

    axes = ("{site} calibration", "mean predicted probability", "observed fraction", "upper left")
    _per_site_figure(preds, path, points, *axes)
