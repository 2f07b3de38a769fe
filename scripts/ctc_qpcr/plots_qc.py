"""Quality-control figures: gDNA fraction heatmap, IPC per chip, replicate ΔCq, well fates."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pandas as pd
from matplotlib import _tight_bbox
from matplotlib.cm import ScalarMappable
from matplotlib.colors import NoNorm, Normalize
from matplotlib.image import AxesImage, _resample
from matplotlib.patches import Rectangle
from matplotlib.transforms import Bbox

from .plotting import empty_figure, in_points, plt, save_figure, save_svg, svg_ruler


def save_qc_svg(fig, path) -> None:
    """Save ``fig`` as :func:`save_svg` does, the same bytes, without the draw savefig makes to
    measure its tight box (issue 17: half of the large QC figures' time)."""
    ruler = svg_ruler(fig)
    with in_points(fig):
        box = fig.get_tightbbox(ruler).padded(plt.rcParams["savefig.pad_inches"])
    plt.rcParams["svg.hashsalt"] = "ctc-qpcr"
    with _first_crop_in_points():
        save_figure(fig, path, box=box)


@contextmanager
def _first_crop_in_points():
    """savefig's crop to a given box made at 72 dpi, as after the draw of ``bbox_inches="tight"``
    (at the figure's dpi the crop's transforms differ in the last bits, and so do the SVG's
    clip-path ids); later crops (around a rasterised colour bar) as matplotlib makes them."""
    crop = _tight_bbox.adjust_bbox

    def first_in_points(fig, *args):
        _tight_bbox.adjust_bbox = crop
        with in_points(fig):
            return crop(fig, *args)

    _tight_bbox.adjust_bbox = first_in_points
    try:
        yield
    finally:
        _tight_bbox.adjust_bbox = crop


def gdna_grid(cells: pd.DataFrame) -> pd.DataFrame:
    """ValidPrime gDNA fraction per sample (rows) × assay (columns) of the patient and healthy
    samples, the largest where a pair has more than one cell; empty when there is none."""
    data = cells[cells["kind"].isin(["patient", "healthy"]) & cells["gdna_fraction"].notna()]
    if data.empty:
        return pd.DataFrame()
    data = data.astype({"sample": str, "assay": str})  # names (categories: only those present)
    return (
        data.pivot_table(index="sample", columns="assay", values="gdna_fraction", aggfunc="max")
        .sort_index()
        .sort_index(axis=1)
    )


def plot_gdna_fraction(cells: pd.DataFrame, path, grade_f: float = 60) -> None:
    plot_gdna_grid(gdna_grid(cells), path, grade_f)


def plot_gdna_grid(grid: pd.DataFrame, path, grade_f: float = 60) -> None:
    """The heat map of :func:`gdna_grid`."""
    if grid.empty:
        save_svg(empty_figure("No ValidPrime gDNA fractions (no validprime assay or ValidPrime off)."), path)
        return
    fig, ax = plt.subplots(figsize=(max(6, 0.16 * grid.shape[1] + 2), max(4, 0.05 * grid.shape[0] + 2)))
    scale = _percent_image(ax, 100 * grid.to_numpy())
    ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=90, fontsize=5)
    ax.set_yticks([])
    ax.set_ylabel(f"{grid.shape[0]} samples")
    ax.set_title("gDNA contribution (%), ValidPrime")
    fig.colorbar(scale, ax=ax, label=f"% gDNA (≥ {grade_f:g} % = grade F)")
    save_qc_svg(fig, path)


def _percent_image(ax, percent: np.ndarray) -> ScalarMappable:
    """``percent`` (0 to 100, NaN: none) as a heat map in magma_r, and its colour scale (for the
    colour bar). Drawn from each cell's colour index (:func:`colour_codes`, :class:`CodedImage`):
    the same pixels as the percentages drawn through the scale, without scaling each screen pixel
    (issue 17: a sample a row, the 1,000-chip map is 108 million pixels)."""
    scale = ScalarMappable(Normalize(vmin=0, vmax=100), "magma_r")
    codes = colour_codes(percent, scale.norm, scale.cmap)
    shown, norm = (percent, scale.norm) if codes is None else (codes, NoNorm())
    image = ax.imshow(shown, aspect="auto", cmap=scale.cmap, norm=norm, interpolation="nearest")
    if codes is not None:
        image.__class__ = CodedImage  # drawn by its own make_image, placed as imshow places it
    return scale


class CodedImage(AxesImage):
    """An image of colour codes (NoNorm, nearest) drawn with the pixels matplotlib draws: each
    screen row and column shows the cell row and column matplotlib's resampling picks for it
    (found on a one-pixel strip of each), without its screen-sized arrays of data, mask and
    codes. Other cases (scaled down, alpha, pixels between or outside cells): as matplotlib."""

    def _make_image(self, A, in_bbox, out_bbox, clip_bbox, magnification=1.0, unsampled=False, **kw):
        plain = super()._make_image
        screen = Bbox.intersection(out_bbox, clip_bbox)
        simple = not (unsampled or kw or A.ndim != 2 or self.get_alpha() is not None or screen is None)
        if not simple or self.get_interpolation() != "nearest" or self.get_interpolation_stage() == "rgba":
            return plain(A, in_bbox, out_bbox, clip_bbox, magnification, unsampled, **kw)
        pixels = _pixel_box(screen, magnification)
        if pixels.width < 2 or pixels.height < 2:
            return plain(A, in_bbox, out_bbox, clip_bbox, magnification)
        corner = Bbox.from_bounds(screen.x0, screen.y0, 1 / magnification, 1 / magnification)
        _, x, y, transform = plain(A, in_bbox, out_bbox, corner, magnification)  # same corner, same transform
        picked = _picked_cells(self, A.shape, (int(pixels.height), int(pixels.width)), transform)
        if picked is None:
            return plain(A, in_bbox, out_bbox, clip_bbox, magnification)
        colours = self.to_rgba(A, bytes=True, norm=False)
        return colours[picked[0]][:, picked[1]], x, y, transform


def _pixel_box(screen: Bbox, magnification: float) -> Bbox:
    """``screen`` magnified and rounded to whole pixels, as matplotlib rounds an image's box."""
    x0, y0, x1, y1 = screen.extents * magnification
    return Bbox.from_extents(
        np.floor(x0 + 0.5), np.ceil(y0 - 0.5 - 1e-8), np.floor(x1 + 0.5 + 1e-8), np.ceil(y1 - 0.5)
    )


def _picked_cells(image, shape, out_shape, transform):
    """(cell row of each screen row, cell column of each screen column) of nearest resampling
    with ``transform``, read from one screen column and one screen row; None when a screen
    pixel would fall between cells or outside them, or cells are under 3 pixels a side."""
    n_rows, n_columns = shape
    size = np.abs(np.diff(transform.transform([[0, 0], [n_columns, n_rows]]), axis=0))[0]
    if size[0] / n_columns < 3 or size[1] / n_rows < 3:  # as matplotlib picks scaling data first
        return None
    numbers = np.broadcast_to(np.arange(1.0, n_rows + 1)[:, None], shape)
    rows = _resample(image, np.ascontiguousarray(numbers), (out_shape[0], 1), transform)[:, 0]
    numbers = np.broadcast_to(np.arange(1.0, n_columns + 1), shape)
    columns = _resample(image, np.ascontiguousarray(numbers), (1, out_shape[1]), transform)[0]
    picked = [rows, columns]
    if any((p < 1).any() or (p != np.floor(p)).any() for p in picked):
        return None
    return rows.astype(np.intp) - 1, columns.astype(np.intp) - 1


def colour_codes(values: np.ndarray, norm, cmap) -> np.ma.MaskedArray | None:
    """Index in ``cmap`` of each value's colour, as ``cmap(norm(values))`` picks it (masked where
    NaN: the "bad" colour); None when a value falls under or over the scale."""
    scaled = np.ma.getdata(norm(values)) * cmap.N
    scaled[scaled == cmap.N] = cmap.N - 1
    missing = np.isnan(values)
    shown = scaled[~missing]
    if cmap.N > 256 or (shown < 0).any() or (shown >= cmap.N).any():
        return None
    return np.ma.masked_array(np.where(missing, 0, scaled).astype(np.uint8), mask=missing)


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
    save_qc_svg(fig, path)


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
    save_qc_svg(fig, path)


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
    with _data_limits_at_once(ax):
        for label, values in parts.items():
            ax.bar(summary["plate"], values, bottom=bottom, label=label)
            bottom += values.to_numpy()
    ax.set_ylabel("wells")
    ax.tick_params(axis="x", rotation=90)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1, 1))
    save_qc_svg(fig, path)


@contextmanager
def _data_limits_at_once(ax):
    """Bars added to ``ax`` without measuring each for the data limits as it comes (issue 17:
    0.7 ms a bar, 6,000 bars at 1,000 chips), the limits then grown once by the same points:
    each rectangle's corners in data coordinates, where matplotlib finds its extremes."""
    added = []
    ax._update_patch_limits = added.append
    try:
        yield
    finally:
        del ax._update_patch_limits
    corners = []
    for patch in added:
        if not isinstance(patch, Rectangle):
            ax._update_patch_limits(patch)
        elif patch.get_width() or patch.get_height():  # as matplotlib: an empty bar does not count
            points = (patch.get_transform() - ax.transData).transform(patch.get_path().vertices)
            if np.isfinite(points).any():
                corners.append(points)
    if corners:
        ax.update_datalim(np.concatenate(corners))


# The layout heat maps (plot_layout, well_fate_labels) live in plots_layout.py.
