"""Cq and well fate of a chip/plate on its physical layout (docs/methods.md §11.1).

Two heat maps with the same axes size and the same x axis (stacked for a chip
or plate wider than tall, side by side otherwise), the colour bar and the fate
legend outside the heat maps, so the wells of both panels line up.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap

from .layout import Geometry, grid, positions, row_label
from .plotting import plt, save_svg

#: Well fates on the layout: kept wells by detection, then exclusion reasons.
KEPT = ("kept, detected", "kept, not detected")

# Panel geometry in inches: heat-map size, gap between the two panels, room
# on the right of each panel for its colour bar or legend.
_PANEL_W, _PANEL_H, _GAP, _SIDE = 6.0, 3.6, 0.9, 2.4


def well_fate_labels(wells: pd.DataFrame) -> pd.Series:
    """'kept, detected', 'kept, not detected' or 'excluded: REASON' per well."""
    detected = wells["state"].eq("CALC")
    label = pd.Series(np.where(detected, KEPT[0], KEPT[1]), index=wells.index, dtype=object)
    excluded = wells["fate"].ne("kept")
    # The reason code (EXPFAIL, HIGHDNA ...) without the per-well detail.
    reason = wells["reason"].fillna("").str.extract(r"^\s*([A-Za-z_]+)", expand=False).fillna("unspecified")
    label[excluded] = "excluded: " + reason[excluded]
    return label


def _panel_axes(wide: bool):
    """Figure with two heat-map axes of identical size (shared x when stacked,
    shared y side by side) and a colour-bar axes right of the first one."""
    if wide:  # stacked: Cq on top, fate below
        fig_w, fig_h = _PANEL_W + _SIDE + 0.8, 2 * _PANEL_H + _GAP + 0.9
        boxes = [(0.8, _PANEL_H + _GAP + 0.5), (0.8, 0.5)]
        size = (_PANEL_W, _PANEL_H)
    else:  # side by side
        height = _PANEL_H * 1.6
        fig_w, fig_h = 2 * (_PANEL_W * 0.6 + _SIDE) + 1.2, height + 1.0
        size = (_PANEL_W * 0.6, height)
        boxes = [(0.8, 0.5), (0.8 + size[0] + _SIDE, 0.5)]
    fig = plt.figure(figsize=(fig_w, fig_h))

    def frac(x, y, w, h):
        return [x / fig_w, y / fig_h, w / fig_w, h / fig_h]

    ax_cq = fig.add_axes(frac(*boxes[0], *size))
    shared = {"sharex": ax_cq} if wide else {"sharey": ax_cq}
    ax_fate = fig.add_axes(frac(*boxes[1], *size), **shared)
    cax = fig.add_axes(frac(boxes[0][0] + size[0] + 0.15, boxes[0][1], 0.18, size[1]))
    return fig, ax_cq, ax_fate, cax


def _label_axes(ax, geometry: Geometry, title: str) -> None:
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(geometry.column_title)
    ax.set_ylabel(geometry.row_title)
    step = max(1, geometry.rows // 12)
    ticks = np.arange(0, geometry.rows, step)
    ax.set_yticks(ticks, [row_label(t + 1, geometry) for t in ticks], fontsize=6)
    cstep = max(1, geometry.columns // 16)
    cticks = np.arange(0, geometry.columns, cstep)
    ax.set_xticks(cticks, [str(t + 1) for t in cticks], fontsize=6)
    ax.tick_params(labelbottom=True, labelleft=True)


def plot_layout(wells: pd.DataFrame, path, title: str, lod: float) -> None:
    """Cq and well fate of one chip/plate on its physical layout, as SVG."""
    save_svg(layout_figure(wells, title, lod), path)


def layout_figure(wells: pd.DataFrame, title: str, lod: float):
    """The figure of :func:`plot_layout`: axes 0 = Cq, 1 = fate, 2 = colour bar."""
    where, geometry = positions(wells["well"])
    fates = well_fate_labels(wells).reset_index(drop=True)
    categories = list(KEPT) + sorted(set(fates) - set(KEPT))
    codes = pd.Categorical(fates, categories=categories).codes
    # Not detected = above the colour scale (grey); no well = white.
    cq = wells["cq"].where(wells["state"].eq("CALC"), lod + 1).reset_index(drop=True)
    fig, ax_cq, ax_fate, cax = _panel_axes(geometry.columns >= geometry.rows)
    cmap_cq = plt.get_cmap("viridis_r").with_extremes(bad="white", over="#b0b0b0")
    im = ax_cq.imshow(
        grid(cq, where, geometry), cmap=cmap_cq, vmax=lod, aspect="auto", interpolation="nearest"
    )
    fig.colorbar(
        im, cax=cax, extend="max", label=f"Cq (grey: not detected, above LOD {lod:g}; white: no well)"
    )
    cax.yaxis.label.set_size(8)
    others = [plt.get_cmap("tab10")(i) for i in (3, 1, 4, 5, 6, 7, 8, 9, 0, 2)]
    palette = ["#2e7d32", "#b7dfa5"] + [others[i % len(others)] for i in range(len(categories) - 2)]
    cmap_fate = ListedColormap(palette).with_extremes(bad="white")
    ax_fate.imshow(
        grid(pd.Series(codes), where, geometry),
        cmap=cmap_fate,
        vmin=-0.5,
        vmax=len(categories) - 0.5,
        aspect="auto",
        interpolation="nearest",
    )
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap_fate(i)) for i in range(len(categories))]
    counts = pd.Series(codes).value_counts()
    ax_fate.legend(
        handles,
        [f"{c} ({counts.get(i, 0)})" for i, c in enumerate(categories)],
        fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1.02, 1),
        borderaxespad=0,
        frameon=False,
    )
    for ax, what in ((ax_cq, "Cq"), (ax_fate, "well fate")):
        _label_axes(ax, geometry, f"{title}: {what} ({geometry.name})")
    return fig
