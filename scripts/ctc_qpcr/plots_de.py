"""Figures for differential expression (docs/methods.md §6): volcano and heatmap.

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

from .plotting import empty_figure, save_figure  # noqa: E402

plt.rcParams["svg.hashsalt"] = "ctc-qpcr"


CONTRAST = ["site", "level_a", "level_b"]


def contrasts(table: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """(a, b, rows) per contrast of a differential table: one per site of a
    per-site comparison, one for a two-group comparison (sorted, deterministic)."""
    keys = [c for c in CONTRAST if c in table.columns and table[c].notna().any()]
    if not {"level_a", "level_b"} <= set(keys):
        return [("a", "b", table)]
    groups = table.fillna(dict.fromkeys(keys, "")).groupby(keys, sort=True)
    return [
        (
            str(dict(zip(keys, k, strict=True))["level_a"]),
            str(dict(zip(keys, k, strict=True))["level_b"]),
            rows,
        )
        for k, rows in groups
    ]


def _place_labels(ax, xs, ys, names, fontsize=7) -> None:
    """Label points without overlaps: greedy, in display space, moving a label
    down (then up) by its height until it clears the labels already placed."""
    fig = ax.figure
    # transData needs the autoscaled view limits only (the axes sit at their subplot
    # position until tight_layout): settle them instead of rendering the whole figure
    ax.get_xlim()
    ax.get_ylim()
    placed: list[tuple[float, float, float, float]] = []
    height = fontsize * fig.dpi / 72 * 1.25
    for x, y, name in zip(xs, ys, names, strict=True):
        px, py = ax.transData.transform((x, y))
        width = 0.62 * fontsize * fig.dpi / 72 * len(name)
        lx, ly = px + 4, py + 4
        for step in range(60):
            shift = (step + 1) // 2 * height * (1 if step % 2 else -1)
            box = (lx, ly + shift, lx + width, ly + shift + height)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
                break
        placed.append(box)
        tx, ty = ax.transData.inverted().transform((box[0], box[1]))
        ax.annotate(
            name,
            (x, y),
            xytext=(tx, ty),
            textcoords="data",
            fontsize=fontsize,
            arrowprops={"arrowstyle": "-", "color": "0.5", "lw": 0.5} if step else None,
        )


def _volcano_panel(
    ax, data: pd.DataFrame, a: str, b: str, q_threshold: float, label_top: int, context: str = ""
) -> None:
    data = data[np.isfinite(data["log2fc"].astype(float)) & np.isfinite(data["p"].astype(float))].copy()
    data["y"] = -np.log10(data["p"].astype(float).clip(lower=1e-300))
    sig = data["q"].astype(float) < q_threshold
    ax.scatter(data.loc[~sig, "log2fc"], data.loc[~sig, "y"], s=14, color="0.6", label="not significant")
    ax.scatter(
        data.loc[sig, "log2fc"], data.loc[sig, "y"], s=20, color="tab:red", label=f"q < {q_threshold:g}"
    )
    ax.axvline(0, color="0.8", lw=0.8)
    ax.set_xlabel(f"log2 fold change ({a} relative to {b})")
    ax.set_ylabel("−log10 p")
    ax.set_title(f"{a} vs {b}{context} ({len(data)} genes)", fontsize=10)
    ax.legend(frameon=False, fontsize=8, loc="best")
    top = data[sig].sort_values(["p", "gene"]).head(label_top)
    _place_labels(ax, top["log2fc"].astype(float), top["y"], top["gene"].astype(str))


def volcano(
    table: pd.DataFrame,
    path: str | os.PathLike,
    *,
    q_threshold: float = 0.1,
    label_top: int = 10,
    title: str | None = None,
) -> None:
    """log2 fold change vs −log10 p, one panel per contrast (per site for a
    per-site comparison) titled with its groups ("liver vs not liver"); genes
    with q < ``q_threshold`` highlighted and the ``label_top`` smallest-p of
    them labelled without overlaps. Genes with no fold change (a group with too
    few detected samples) are left out. Use one normalisation strategy."""
    panels = contrasts(table)
    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.5 * ncols, 4.5 * nrows), squeeze=False)
    for ax, (a, b, rows) in zip(axes.ravel()[: len(panels)], panels, strict=True):
        _volcano_panel(ax, rows, a, b, q_threshold, label_top)
    for ax in axes.ravel()[len(panels) :]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


def site_volcanoes(
    table: pd.DataFrame,
    paths: dict[str, str | os.PathLike],
    *,
    comparison: str,
    strategy: str,
    q_threshold: float = 0.1,
    label_top: int = 10,
) -> None:
    """One volcano per metastatic site of a per-site comparison, ``paths`` =
    {site: SVG path} (the sites of the samples sheet, known before the run).
    Each is titled with its groups ("liver vs not liver"); a site the table has
    no rows for (too few patients with or without it) gets a figure saying so,
    so every declared file exists."""
    tested = {}
    if "site" in table.columns and table["site"].notna().any():
        tested = {str(rows["site"].iloc[0]): (a, b, rows) for a, b, rows in contrasts(table)}
    for site, path in sorted(paths.items()):
        if site not in tested:
            fig = empty_figure(
                f"{comparison}: {site} vs not {site} was not tested "
                "(too few patients with or without the site; see results/differential/notes.tsv)"
            )
            save_figure(fig, path)
            continue
        a, b, rows = tested[site]
        fig, ax = plt.subplots(figsize=(6, 5))
        _volcano_panel(ax, rows, a, b, q_threshold, label_top, f": {comparison}, {strategy}")
        fig.tight_layout()
        save_figure(fig, path)


def _heatmap_matrices(normalised, samples, genes, sample_subset):
    """(sheet info by sample, row order, −ΔCq centred per gene masked where not
    detected) for the heat map, or None when there is nothing to draw."""
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
        return None
    info = sheet.drop_duplicates("sample").set_index("sample")
    data = data.merge(info[["response", "sites"]].reset_index(), on="sample", how="left")
    order = (
        data[["sample", "response", "sites"]]
        .drop_duplicates("sample")
        .fillna("")
        .astype(str)
        .sort_values(["response", "sites", "sample"])["sample"]
        .tolist()
    )
    expr = -data.pivot_table(index="sample", columns="gene", values="dcq", aggfunc="mean").reindex(
        index=order, columns=genes
    )
    det = (
        data.assign(detected=data["detected"].astype(bool).astype(int))
        .pivot_table(index="sample", columns="gene", values="detected", aggfunc="max")
        .reindex(index=order, columns=genes)
    )
    centred = expr - expr.mean(axis=0)
    masked = np.ma.masked_where(~(det.fillna(0).to_numpy() > 0), centred.to_numpy(float))
    return info, order, masked


def _annotate_rows(ax_ann, info, order, labelled) -> None:
    """The response colour strip beside the heat map (+ response/sites text when labelled)."""
    resp = info.reindex(order)["response"].fillna("").astype(str)
    levels = sorted(resp.unique())
    codes = np.array([levels.index(v) for v in resp])[:, None]
    ax_ann.imshow(
        codes, aspect="auto", cmap="Set2", interpolation="nearest", vmin=0, vmax=max(len(levels) - 1, 1)
    )
    ax_ann.set_xticks([0], ["response"], rotation=90, fontsize=7)
    sites = info.reindex(order)["sites"].fillna("").astype(str)
    if labelled:
        for y, (r, s) in enumerate(zip(resp, sites, strict=True)):
            ax_ann.text(0, y, f"{r[:1].upper()} {s}"[:18], ha="center", va="center", fontsize=4)


def heatmap(
    normalised: pd.DataFrame,
    samples: pd.DataFrame,
    table: pd.DataFrame,
    path: str | os.PathLike,
    *,
    q_threshold: float = 0.1,
    max_genes: int = 40,
    label_rows: int = 150,
    sample_subset: list[str] | None = None,
    title: str | None = None,
) -> None:
    """Samples × significant genes (q < ``q_threshold``, at most ``max_genes`` by p),
    colour = −ΔCq centred per gene (higher = more expression), non-detects hatched
    grey; rows annotated with ``response`` and ``sites`` (named when there are at
    most ``label_rows`` samples; more are drawn unlabelled at a bounded height, so
    the figure stays readable and small at any study size). With no significant gene a
    figure saying so is written (the workflow always has an output file)."""
    sig = table[table["q"].astype(float) < q_threshold].sort_values(["p", "gene"])
    genes = sorted(sig["gene"].drop_duplicates().head(max_genes))
    matrices = _heatmap_matrices(normalised, samples, genes, sample_subset)
    if matrices is None:
        fig, ax = plt.subplots(figsize=(4, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, f"no gene with q < {q_threshold:g}", ha="center", va="center")
        save_figure(fig, path)
        return
    info, order, masked = matrices
    # Sample names and annotations only when they can be read; a large study is
    # drawn at a bounded height (one raster row per sample, no per-sample text).
    labelled = len(order) <= label_rows
    height = min(max(3.0, 0.16 * len(order) + 1.5), 14.0)
    width = max(4.0, 0.28 * len(genes) + 3.0)
    fig, (ax_ann, ax) = plt.subplots(
        1, 2, figsize=(width, height), sharey=True, gridspec_kw={"width_ratios": [1, max(len(genes), 2)]}
    )
    lim = float(np.nanmax(np.abs(masked))) if masked.count() else 1.0
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="0.85")
    im = ax.imshow(masked, aspect="auto", cmap=cmap, vmin=-lim, vmax=lim, interpolation="nearest")
    ax.set_xticks(range(len(genes)), genes, rotation=90, fontsize=7)
    if labelled:
        ax.set_yticks(range(len(order)), order, fontsize=6)
    else:
        ax.set_yticks([])
        ax_ann.set_ylabel(f"{len(order)} samples, sorted by response, sites and name")
    fig.colorbar(im, ax=ax, shrink=0.6, label="−ΔCq, centred (grey = not detected)")
    _annotate_rows(ax_ann, info, order, labelled)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, path)
