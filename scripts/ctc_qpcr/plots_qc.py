"""Quality-control figures: gDNA fraction heatmap, IPC per chip, replicate ΔCq, well fates."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .plotting import empty_figure, plt, save_svg


def plot_gdna_fraction(cells: pd.DataFrame, path, grade_f: float = 60) -> None:
    data = cells[cells["kind"].isin(["patient", "healthy"]) & cells["gdna_fraction"].notna()]
    if data.empty:
        save_svg(empty_figure("No ValidPrime gDNA fractions (no validprime assay or ValidPrime off)."), path)
        return
    grid = (
        data.pivot_table(index="sample", columns="assay", values="gdna_fraction", aggfunc="max")
        .sort_index()
        .sort_index(axis=1)
    )
    fig, ax = plt.subplots(figsize=(max(6, 0.16 * grid.shape[1] + 2), max(4, 0.05 * grid.shape[0] + 2)))
    im = ax.imshow(
        100 * grid.to_numpy(), aspect="auto", cmap="magma_r", vmin=0, vmax=100, interpolation="nearest"
    )
    ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=90, fontsize=5)
    ax.set_yticks([])
    ax.set_ylabel(f"{grid.shape[0]} samples")
    ax.set_title("gDNA contribution (%), ValidPrime")
    fig.colorbar(im, ax=ax, label=f"% gDNA (≥ {grade_f:g} % = grade F)")
    save_svg(fig, path)


def plot_ipc(calibration: pd.DataFrame, path) -> None:
    if calibration.empty or calibration["ipc_mean"].isna().all():
        save_svg(empty_figure("No inter-plate calibrator on these plates."), path)
        return
    cal = calibration.sort_values("plate")
    fig, ax = plt.subplots(figsize=(max(4, 0.4 * len(cal) + 2), 3.5))
    x = np.arange(len(cal))
    ax.errorbar(x, cal["ipc_mean"], yerr=cal.get("ipc_sd", 0).fillna(0), fmt="o", capsize=3)
    reference = (cal["ipc_mean"] - cal["offset"]).dropna()
    if len(reference):
        ax.axhline(float(reference.iloc[0]), ls="--", color="grey", label="reference")
        ax.legend()
    ax.set_xticks(x, cal["plate"], rotation=90)
    ax.set_ylabel("IPC Cq (mean ± SD)")
    ax.set_title("Inter-plate calibrator per chip")
    save_svg(fig, path)


def plot_replicate_delta(cells: pd.DataFrame, path, max_delta: float = 0.5) -> None:
    delta = cells.loc[cells["n_replicates"] >= 2, "replicate_delta"].dropna()
    if delta.empty:
        save_svg(empty_figure("No cells with two or more replicates."), path)
        return
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.hist(delta.clip(upper=3), bins=60, color="steelblue")
    ax.axvline(max_delta, ls="--", color="crimson", label=f"flag > {max_delta}")
    ax.set_xlabel("replicate ΔCq (max − min), clipped at 3")
    ax.set_ylabel("cells")
    ax.legend()
    save_svg(fig, path)


def plot_well_fates(summary: pd.DataFrame, path) -> None:
    if summary.empty:
        save_svg(empty_figure("No wells."), path)
        return
    parts = {
        "kept (detected)": summary["kept"] - summary["non_detected"],
        "kept (not detected)": summary["non_detected"],
    }
    for col in sorted(c for c in summary.columns if c.startswith("excluded_")):
        parts[col.replace("excluded_", "excluded: ")] = summary[col]
    fig, ax = plt.subplots(figsize=(max(5, 0.4 * len(summary) + 3), 4))
    bottom = np.zeros(len(summary))
    for label, values in parts.items():
        ax.bar(summary["plate"], values, bottom=bottom, label=label)
        bottom += values.to_numpy()
    ax.set_ylabel("wells")
    ax.tick_params(axis="x", rotation=90)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1, 1))
    save_svg(fig, path)


#: Well fates on the layout: kept wells by detection, then exclusion reasons.
_KEPT = ("kept, detected", "kept, not detected")


def well_fate_labels(wells: pd.DataFrame) -> pd.Series:
    """'kept, detected', 'kept, not detected' or 'excluded: REASON' per well."""
    detected = wells["state"].eq("CALC")
    label = pd.Series(np.where(detected, _KEPT[0], _KEPT[1]), index=wells.index, dtype=object)
    excluded = wells["fate"].ne("kept")
    # The reason code (EXPFAIL, HIGHDNA ...) without the per-well detail.
    reason = wells["reason"].fillna("").str.extract(r"^\s*([A-Za-z_]+)", expand=False).fillna("unspecified")
    label[excluded] = "excluded: " + reason[excluded]
    return label


def plot_layout(wells: pd.DataFrame, path, title: str, lod: float) -> None:
    """Cq and well fate of one chip/plate on its physical layout (two panels)."""
    from matplotlib.colors import ListedColormap

    from .layout import grid, positions, row_label

    where, geometry = positions(wells["well"])
    fates = well_fate_labels(wells).reset_index(drop=True)
    categories = list(_KEPT) + sorted(set(fates) - set(_KEPT))
    codes = pd.Categorical(fates, categories=categories).codes
    # Not detected = above the colour scale (grey); no well = white.
    cq = wells["cq"].where(wells["state"].eq("CALC"), lod + 1).reset_index(drop=True)
    wide = geometry.columns >= geometry.rows
    fig, axes = plt.subplots(
        1 if not wide else 2, 2 if not wide else 1, figsize=(7.5, 9) if wide else (8, 5.5), squeeze=False
    )
    axes = axes.ravel()
    cmap_cq = plt.get_cmap("viridis_r").with_extremes(bad="white", over="#b0b0b0")
    im = axes[0].imshow(
        grid(cq, where, geometry), cmap=cmap_cq, vmax=lod, aspect="auto", interpolation="nearest"
    )
    fig.colorbar(
        im, ax=axes[0], extend="max", label=f"Cq (grey: not detected, above LOD {lod:g}; white: no well)"
    )
    others = [plt.get_cmap("tab10")(i) for i in (3, 1, 4, 5, 6, 7, 8, 9, 0, 2)]
    palette = ["#2e7d32", "#b7dfa5"] + [others[i % len(others)] for i in range(len(categories) - 2)]
    cmap_fate = ListedColormap(palette).with_extremes(bad="white")
    axes[1].imshow(
        grid(pd.Series(codes), where, geometry),
        cmap=cmap_fate,
        vmin=-0.5,
        vmax=len(categories) - 0.5,
        aspect="auto",
        interpolation="nearest",
    )
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap_fate(i)) for i in range(len(categories))]
    counts = pd.Series(codes).value_counts()
    axes[1].legend(
        handles,
        [f"{c} ({counts.get(i, 0)})" for i, c in enumerate(categories)],
        fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1.01, 1),
    )
    for ax, what in zip(axes, ("Cq", "well fate"), strict=True):
        ax.set_title(f"{title}: {what} ({geometry.name})", fontsize=9)
        ax.set_xlabel(geometry.column_title)
        ax.set_ylabel(geometry.row_title)
        step = max(1, geometry.rows // 12)
        ticks = np.arange(0, geometry.rows, step)
        ax.set_yticks(ticks, [row_label(t + 1, geometry) for t in ticks], fontsize=6)
        cstep = max(1, geometry.columns // 16)
        cticks = np.arange(0, geometry.columns, cstep)
        ax.set_xticks(cticks, [str(t + 1) for t in cticks], fontsize=6)
    save_svg(fig, path)
