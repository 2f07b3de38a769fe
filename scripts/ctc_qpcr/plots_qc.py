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


# The layout heat maps (plot_layout, well_fate_labels) live in plots_layout.py.
