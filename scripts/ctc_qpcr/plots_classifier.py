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
from sklearn.metrics import roc_curve  # noqa: E402

from .plotting import save_figure  # noqa: E402

_RC = {"svg.hashsalt": "ctc-qpcr-classifier", "svg.fonttype": "path", "font.size": 9}
_BASELINES = ("prevalence", "clinical")


def _panels(n: int):
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


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
    with plt.rc_context(_RC):
        fig, axes = _panels(max(len(sites), 1))
        for ax, site in zip(axes, sites, strict=False):
            sub = preds[preds["site"] == site]
            for name in sorted(sub["estimator"].unique()):
                part = sub[sub["estimator"] == name]
                fpr, tpr, _ = roc_curve(part["label"].to_numpy(int), part["probability"].to_numpy(float))
                ax.plot(
                    fpr,
                    tpr,
                    drawstyle="steps-post",
                    linestyle="--" if name in _BASELINES else "-",
                    label=labels[(str(site), str(name))],
                )
            ax.plot([0, 1], [0, 1], color="0.7", linewidth=0.8)
            ax.set(
                title=f"{site} (out-of-fold, mean over repeats)",
                xlabel="1 − specificity",
                ylabel="sensitivity",
                xlim=(0, 1),
                ylim=(0, 1.02),
            )
            ax.legend(loc="lower right", fontsize=7, frameon=False)
        fig.tight_layout()
        save_figure(fig, path)
    return {k: v for k, v in labels.items() if k[0] in set(map(str, sites))}


def plot_calibration(predictions: pd.DataFrame, path: str | os.PathLike, n_bins: int = 5) -> None:
    """Calibration per site: equal-width probability bins, mean predicted vs observed
    fraction of positives (points sized by bin count)."""
    preds = predictions.sort_values(["site", "estimator", "sample"], kind="mergesort")
    sites = sorted(preds["site"].unique())
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    with plt.rc_context(_RC):
        fig, axes = _panels(max(len(sites), 1))
        for ax, site in zip(axes, sites, strict=False):
            sub = preds[preds["site"] == site]
            for name in sorted(sub["estimator"].unique()):
                part = sub[sub["estimator"] == name]
                p = part["probability"].to_numpy(float)
                y = part["label"].to_numpy(int)
                bins = np.clip(np.digitize(p, edges[1:-1]), 0, n_bins - 1)
                xs, ys, ns = [], [], []
                for b in range(n_bins):
                    in_bin = bins == b
                    if in_bin.any():
                        xs.append(p[in_bin].mean())
                        ys.append(y[in_bin].mean())
                        ns.append(int(in_bin.sum()))
                ax.plot(
                    xs,
                    ys,
                    marker="o",
                    markersize=3,
                    linestyle="--" if name in _BASELINES else "-",
                    label=name,
                )
            ax.plot([0, 1], [0, 1], color="0.7", linewidth=0.8)
            ax.set(
                title=f"{site} calibration",
                xlabel="mean predicted probability",
                ylabel="observed fraction",
                xlim=(0, 1),
                ylim=(0, 1.02),
            )
            ax.legend(loc="upper left", fontsize=7, frameon=False)
        fig.tight_layout()
        save_figure(fig, path)
