"""Figures for differential expression (algorithms.md §6): volcano and heatmap.

Matplotlib with the Agg backend, written as SVG with deterministic bytes
(fixed ``svg.hashsalt``, no date in the metadata), so reruns do not change files.
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .plotting import save_figure  # noqa: E402

plt.rcParams["svg.hashsalt"] = "ctc-qpcr"


def volcano(
    table: pd.DataFrame,
    path: str | os.PathLike,
    *,
    q_threshold: float = 0.1,
    label_top: int = 10,
    title: str | None = None,
) -> None:
    """log2 fold change vs −log10 p; genes with q < ``q_threshold`` highlighted and the
    ``label_top`` smallest-p of them labelled. One panel (use one strategy / site)."""
    data = table[np.isfinite(table["log2fc"].astype(float)) & np.isfinite(table["p"].astype(float))].copy()
    data["y"] = -np.log10(data["p"].astype(float).clip(lower=1e-300))
    sig = data["q"].astype(float) < q_threshold
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.scatter(data.loc[~sig, "log2fc"], data.loc[~sig, "y"], s=14, color="0.6", label="not significant")
    ax.scatter(data.loc[sig, "log2fc"], data.loc[sig, "y"], s=20, color="tab:red", label=f"q < {q_threshold:g}")
    for _, row in data[sig].sort_values(["p", "gene"]).head(label_top).iterrows():
        ax.annotate(str(row["gene"]), (row["log2fc"], row["y"]), textcoords="offset points", xytext=(3, 3),
                    fontsize=7)
    ax.axvline(0, color="0.8", lw=0.8)
    ax.set_xlabel("log2 fold change (a relative to b)")
    ax.set_ylabel("−log10 p")
    if title:
        ax.set_title(title)
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    fig.tight_layout()
    save_figure(fig, path)


def heatmap(
    normalised: pd.DataFrame,
    samples: pd.DataFrame,
    table: pd.DataFrame,
    path: str | os.PathLike,
    *,
    q_threshold: float = 0.1,
    max_genes: int = 40,
    sample_subset: list[str] | None = None,
    title: str | None = None,
) -> None:
    """Samples × significant genes (q < ``q_threshold``, at most ``max_genes`` by p),
    colour = −ΔCq centred per gene (higher = more expression), non-detects hatched
    grey; rows annotated with ``response`` and ``sites``. With no significant gene a
    figure saying so is written (the workflow always has an output file)."""
    sig = table[table["q"].astype(float) < q_threshold].sort_values(["p", "gene"])
    genes = sorted(sig["gene"].drop_duplicates().head(max_genes))
    sheet = samples.copy()
    sheet["sample"] = sheet["sample"].astype(str)
    for col in ("response", "sites"):
        if col not in sheet.columns:
            sheet[col] = ""
    data = normalised[normalised["gene"].isin(genes)].copy()
    data["sample"] = data["sample"].astype(str)
    if sample_subset is not None:
        data = data[data["sample"].isin(sample_subset)]
    if not genes or data.empty:
        fig, ax = plt.subplots(figsize=(4, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, f"no gene with q < {q_threshold:g}", ha="center", va="center")
        save_figure(fig, path)
        return
    info = sheet.drop_duplicates("sample").set_index("sample")
    data = data.merge(info[["response", "sites"]].reset_index(), on="sample", how="left")
    order = (
        data[["sample", "response", "sites"]].drop_duplicates("sample").fillna("")
        .astype(str).sort_values(["response", "sites", "sample"])["sample"].tolist()
    )
    expr = -data.pivot_table(index="sample", columns="gene", values="dcq", aggfunc="mean").reindex(
        index=order, columns=genes)
    det = data.assign(detected=data["detected"].astype(bool).astype(int)).pivot_table(
        index="sample", columns="gene", values="detected", aggfunc="max").reindex(index=order, columns=genes)
    centred = expr - expr.mean(axis=0)
    masked = np.ma.masked_where(~(det.fillna(0).to_numpy() > 0), centred.to_numpy(float))
    height = max(3.0, 0.16 * len(order) + 1.5)
    width = max(4.0, 0.28 * len(genes) + 3.0)
    fig, (ax_ann, ax) = plt.subplots(1, 2, figsize=(width, height), sharey=True,
                                      gridspec_kw={"width_ratios": [1, max(len(genes), 2)]})
    lim = float(np.nanmax(np.abs(masked))) if masked.count() else 1.0
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="0.85")
    im = ax.imshow(masked, aspect="auto", cmap=cmap, vmin=-lim, vmax=lim, interpolation="nearest")
    ax.set_xticks(range(len(genes)), genes, rotation=90, fontsize=7)
    ax.set_yticks(range(len(order)), order, fontsize=6)
    fig.colorbar(im, ax=ax, shrink=0.6, label="−ΔCq, centred (grey = not detected)")
    resp = info.reindex(order)["response"].fillna("").astype(str)
    levels = sorted(resp.unique())
    codes = np.array([levels.index(v) for v in resp])[:, None]
    ax_ann.imshow(codes, aspect="auto", cmap="Set2", interpolation="nearest", vmin=0, vmax=max(len(levels) - 1, 1))
    ax_ann.set_xticks([0], ["response"], rotation=90, fontsize=7)
    sites = info.reindex(order)["sites"].fillna("").astype(str)
    for y, (r, s) in enumerate(zip(resp, sites)):
        ax_ann.text(0, y, f"{r[:1].upper()} {s}"[:18], ha="center", va="center", fontsize=4)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, path)
