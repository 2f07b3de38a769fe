"""Cq and well fate of a chip/plate on its physical layout (docs/methods.md §11.1).

Two heat maps with the same axes size and the same x axis (stacked for a chip
or plate wider than tall, side by side otherwise), the colour bar and the fate
legend outside the heat maps, so the wells of both panels line up.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap
from matplotlib.transforms import Bbox, TransformedBbox

from .forking import fork_workers, forked_pool
from .layout import Geometry, chip_summary, grid, positions, row_label
from .plotting import in_points, plt, save_svg, save_svg_cropped, svg_ruler

#: Well fates on the layout: kept wells by detection, then exclusion reasons.
KEPT = ("kept, detected", "kept, not detected")

# Panel geometry in inches: heat-map size, gap between the two panels, room
# on the right of each panel for its colour bar or legend.
_PANEL_W, _PANEL_H, _GAP, _SIDE = 6.0, 3.6, 0.9, 2.4


def well_fate_labels(wells: pd.DataFrame) -> pd.Series:
    """'kept, detected', 'kept, not detected' or 'excluded: REASON' per well."""
    kept = np.where(wells["state"].eq("CALC"), KEPT[0], KEPT[1])
    # The reason code (EXPFAIL, HIGHDNA ...) without the per-well detail, once per distinct reason.
    reason = wells["reason"].fillna("")
    distinct = pd.Series(reason.unique())
    code = distinct.str.extract(r"^\s*([A-Za-z_]+)", expand=False).fillna("unspecified")
    excluded = reason.map(dict(zip(distinct, "excluded: " + code, strict=True)))
    return pd.Series(np.where(wells["fate"].ne("kept"), excluded, kept), index=wells.index, dtype=object)


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


def _label_axes(ax, geometry: Geometry) -> None:
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


@dataclass
class _Chip:
    """What one chip/plate's layout figure shows, in the figure's terms."""

    geometry: Geometry
    cq: np.ndarray  # rows × columns: Cq, lod + 1 when not detected, NaN = no well
    fates: np.ndarray  # rows × columns: the fate's index in ``categories``, NaN = no well
    categories: list[str]
    counts: pd.Series  # wells per fate index


def _chip(wells: pd.DataFrame, lod: float) -> _Chip:
    where, geometry = positions(wells["well"])
    fates = well_fate_labels(wells).reset_index(drop=True)
    categories = list(KEPT) + sorted(set(fates) - set(KEPT))
    codes = pd.Series(pd.Categorical(fates, categories=categories).codes)
    # Not detected = above the colour scale (grey); no well = white.
    cq = wells["cq"].where(wells["state"].eq("CALC"), lod + 1).reset_index(drop=True)
    return _Chip(
        geometry, grid(cq, where, geometry), grid(codes, where, geometry), categories, codes.value_counts()
    )


def _fate_colours(categories: list[str]) -> ListedColormap:
    """Dark and light green for the kept wells, then one colour per exclusion reason."""
    others = [plt.get_cmap("tab10")(i) for i in (3, 1, 4, 5, 6, 7, 8, 9, 0, 2)]
    palette = ["#2e7d32", "#b7dfa5"] + [others[i % len(others)] for i in range(len(categories) - 2)]
    return ListedColormap(palette).with_extremes(bad="white")


def _fate_legend(ax, chip: _Chip, cmap: ListedColormap) -> None:
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(i)) for i in range(len(chip.categories))]
    ax.legend(
        handles,
        [f"{c} ({chip.counts.get(i, 0)})" for i, c in enumerate(chip.categories)],
        fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1.02, 1),
        borderaxespad=0,
        frameon=False,
    )


def _titles(axes, geometry: Geometry, title: str) -> None:
    for ax, what in zip(axes, ("Cq", "well fate"), strict=True):
        ax.set_title(f"{title}: {what} ({geometry.name})", fontsize=9)


def layout_figure(wells: pd.DataFrame, title: str, lod: float):
    """The figure of :func:`plot_layout`: axes 0 = Cq, 1 = fate, 2 = colour bar."""
    return _new_figure(_chip(wells, lod), title, lod)


def _new_figure(chip: _Chip, title: str, lod: float):
    geometry = chip.geometry
    fig, ax_cq, ax_fate, cax = _panel_axes(geometry.columns >= geometry.rows)
    cmap_cq = plt.get_cmap("viridis_r").with_extremes(bad="white", over="#b0b0b0")
    im = ax_cq.imshow(chip.cq, cmap=cmap_cq, vmax=lod, aspect="auto", interpolation="nearest")
    fig.colorbar(
        im, cax=cax, extend="max", label=f"Cq (grey: not detected, above LOD {lod:g}; white: no well)"
    )
    cax.yaxis.label.set_size(8)
    cmap_fate = _fate_colours(chip.categories)
    ax_fate.imshow(
        chip.fates,
        cmap=cmap_fate,
        vmin=-0.5,
        vmax=len(chip.categories) - 0.5,
        aspect="auto",
        interpolation="nearest",
    )
    _fate_legend(ax_fate, chip, cmap_fate)
    for ax in (ax_cq, ax_fate):
        _label_axes(ax, geometry)
    _titles((ax_cq, ax_fate), geometry, title)
    return fig


@dataclass
class _Board:
    """One geometry's figure, what measures its text, and the box (inches) of what every chip
    of the geometry shares (axes, ticks, labels: all but the titles, legend and colour bar)."""

    fig: object
    ruler: object
    shared: Bbox


def _shared_box(fig, ruler) -> Bbox:
    """The figure's tight box (inches) without its titles, legend and colour bar."""
    ax_cq, ax_fate, cax = fig.axes
    hidden = [ax_cq.title, ax_fate.title, cax]
    for artist in hidden:
        artist.set_visible(False)
    ax_fate.get_legend().set_in_layout(False)
    try:
        return fig.get_tightbbox(ruler)
    finally:
        for artist in hidden:
            artist.set_visible(True)
        ax_fate.get_legend().set_in_layout(True)


def _crop_box(board: _Board) -> Bbox:
    """The tight box (inches) of the chip on ``board``, as ``fig.get_tightbbox`` finds it (the
    union of its artists' boxes): the shared box joined with this chip's titles, legend and
    colour bar, the only artists whose box changes from chip to chip."""
    fig, ruler = board.fig, board.ruler
    ax_cq, ax_fate, cax = fig.axes
    own = [
        ax_cq.title.get_window_extent(ruler),
        ax_fate.title.get_window_extent(ruler),
        ax_fate.get_legend().get_tightbbox(ruler),
        cax.get_tightbbox(ruler),
    ]
    own = Bbox.union([box for box in own if np.isfinite(box.extents).all() and (box.width or box.height)])
    return Bbox.union([board.shared, TransformedBbox(own, fig.dpi_scale_trans.inverted())])


class LayoutBoard:
    """The layout SVGs of many chips/plates, drawn on one figure per chip geometry (issue 17).

    The first chip of a geometry builds its figure as :func:`layout_figure` does; each next
    chip changes only what differs between chips (the two images and the Cq scale's low end,
    the fate colours and legend, the titles), not the axes, ticks, labels and colour bar, and
    measures only those for the crop box. The same SVG bytes as :func:`plot_layout`, in less
    than half the time.
    """

    def __init__(self, lod: float):
        self.lod = lod
        self._boards: dict[Geometry, _Board] = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for board in self._boards.values():
            plt.close(board.fig)
        self._boards.clear()

    def save(self, wells: pd.DataFrame, path, title: str) -> None:
        """Cq and well fate of one chip/plate, as :func:`plot_layout` draws them, to ``path``."""
        chip = _chip(wells, self.lod)
        if not np.isfinite(chip.cq).any():  # no Cq scale to carry over: a figure of its own
            save_svg(_new_figure(chip, title, self.lod), path)
            return
        board = self._boards.get(chip.geometry)
        if board is None:
            fig = _new_figure(chip, title, self.lod)
            ruler = svg_ruler(fig)
            with in_points(fig):
                board = self._boards[chip.geometry] = _Board(fig, ruler, _shared_box(fig, ruler))
                box = fig.get_tightbbox(ruler)  # the first chip measured whole
        else:
            self._redraw(board.fig, chip, title)
            with in_points(board.fig):
                box = _crop_box(board)
        save_svg_cropped(board.fig, path, box)

    def _redraw(self, fig, chip: _Chip, title: str) -> None:
        ax_cq, ax_fate = fig.axes[:2]
        cq, fate = ax_cq.images[0], ax_fate.images[0]
        cq.set_data(chip.cq)
        cq.set_clim(cq.get_array().min(), self.lod)  # as imshow scales it: vmin from the data
        cmap_fate = _fate_colours(chip.categories)
        fate.set_data(chip.fates)
        fate.set_cmap(cmap_fate)
        fate.set_clim(-0.5, len(chip.categories) - 0.5)
        _fate_legend(ax_fate, chip, cmap_fate)
        _titles((ax_cq, ax_fate), chip.geometry, title)


# --------------------------------------------------------------------------- a study's batches

#: The columns of a batch's wells.parquet that the layout figures and the index need.
WELL_COLUMNS = ["batch", "plate", "well", "cq", "state", "fate", "reason"]


def draw_batch(board: LayoutBoard, path, out: Path) -> tuple[pd.DataFrame, list[str]]:
    """The layout SVG of every chip/plate of one batch's wells table, into ``out``: returns the
    batch's chip summary (:func:`~ctc_qpcr.layout.chip_summary`) and a log line per chip."""
    wells = pd.read_parquet(path, columns=WELL_COLUMNS)
    lines = []
    for plate, group in wells.groupby("plate", sort=True):
        board.save(group, out / f"{plate}.svg", f"{plate} (batch {group['batch'].iloc[0]})")
        lines.append(f"layout of {plate}: {len(group)} wells")
    return chip_summary(wells), lines


#: The figures of a forked worker, kept from one batch to the next.
_WORKER_BOARD: LayoutBoard | None = None


def _start_worker(lod: float) -> None:
    global _WORKER_BOARD
    _WORKER_BOARD = LayoutBoard(lod)


def _worker_batch(path, out: Path) -> tuple[pd.DataFrame, list[str]]:
    return draw_batch(_WORKER_BOARD, path, out)


def draw_batches(paths: list, out: Path, lod: float, workers: int):
    """:func:`draw_batch` of each batch in order, in this process or in ``workers`` forked
    processes, each drawing one batch at a time (memory: one batch's wells a process)."""
    workers = fork_workers(workers, len(paths))
    if workers == 1:
        with LayoutBoard(lod) as board:
            yield from (draw_batch(board, path, out) for path in paths)
        return
    with forked_pool(workers, initializer=_start_worker, initargs=(lod,)) as pool:
        yield from pool.map(_worker_batch, paths, [out] * len(paths))
