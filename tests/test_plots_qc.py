"""QC figures drawn faster with the same bytes (issue 17): the tight box measured without a
draw, the gDNA heat map from colour codes, its pixels without screen-sized arrays."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import AxesImage

from ctc_qpcr import plots_qc
from ctc_qpcr.plotting import plt, save_svg


def _grid(rng, n_rows: int, n_columns: int) -> np.ndarray:
    values = 100 * rng.random((n_rows, n_columns))
    values[rng.random(values.shape) < 0.2] = np.nan
    return values


def _heat_map(values: np.ndarray, size):
    fig, ax = plt.subplots(figsize=size)
    scale = plots_qc._percent_image(ax, values)
    fig.colorbar(scale, ax=ax, label="%")
    return fig, ax


def test_colour_codes_give_the_colours_of_the_values():
    rng = np.random.default_rng(5)
    values = _grid(rng, 40, 7)
    values[0, :3] = [0.0, 100.0, 99.99999]
    fig, ax = _heat_map(values, (4, 4))
    image, plain = ax.images[0], plt.imshow(values, cmap="magma_r", vmin=0, vmax=100)
    assert isinstance(image, plots_qc.CodedImage)
    shown = image.to_rgba(image.get_array(), bytes=True, norm=False)
    np.testing.assert_array_equal(shown, plain.to_rgba(plain.get_array(), bytes=True))
    scale = plain.norm, plain.cmap
    assert plots_qc.colour_codes(np.array([[-1.0, 5.0]]), *scale) is None  # under the scale
    assert plots_qc.colour_codes(np.array([[101.0]]), *scale) is None
    plt.close("all")


@pytest.mark.parametrize("seed", range(6))
def test_coded_image_draws_the_pixels_matplotlib_draws(seed):
    rng = np.random.default_rng(seed)
    n_rows, n_columns = int(rng.integers(1, 300)), int(rng.integers(1, 30))
    size = (rng.uniform(1.5, 8), rng.uniform(1.5, 12))
    fig, ax = _heat_map(_grid(rng, n_rows, n_columns), size)
    fig.canvas.draw()
    image, renderer = ax.images[0], fig.canvas.get_renderer()
    for magnification in (1.0, 100 / 72, rng.uniform(0.3, 2.5)):
        fast = image.make_image(renderer, magnification)
        image.__class__ = AxesImage
        plain = image.make_image(renderer, magnification)
        image.__class__ = plots_qc.CodedImage
        np.testing.assert_array_equal(fast[0], plain[0])
        assert fast[1:3] == plain[1:3]
        np.testing.assert_array_equal(fast[3].get_matrix(), plain[3].get_matrix())
    plt.close(fig)


def _figures():
    """A heat map with a rasterised colour bar and a bar chart with a legend outside (sizes
    where cropping at the figure's dpi, not at 72, changes the clip-path ids)."""
    yield _heat_map(_grid(np.random.default_rng(1), 120, 9), (16.4, 6.8))[0]
    fig, ax = plt.subplots(figsize=(17.8, 4))
    ax.bar(["a", "b", "c"], [3, 1, 2], label="kept")
    ax.bar(["a", "b", "c"], [1, 1, 1], bottom=[3, 1, 2], label="excluded")
    ax.tick_params(axis="x", rotation=90)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1, 1))
    yield fig


def test_qc_svg_is_the_bytes_of_save_svg(tmp_path):
    for i, (fig, again) in enumerate(zip(_figures(), _figures(), strict=True)):
        save_svg(fig, tmp_path / f"plain{i}.svg")
        plots_qc.save_qc_svg(again, tmp_path / f"fast{i}.svg")
        assert (tmp_path / f"fast{i}.svg").read_bytes() == (tmp_path / f"plain{i}.svg").read_bytes()
    assert plots_qc._tight_bbox.adjust_bbox.__name__ == "adjust_bbox"  # matplotlib's own again


def test_gdna_grid_keeps_patients_and_healthy_donors_only():
    cells = pd.DataFrame(
        {
            "sample": ["P1", "P1", "HD1", "NTC", "P2"],
            "assay": ["A", "A", "B", "A", "B"],
            "kind": ["patient", "patient", "healthy", "ntc", "patient"],
            "gdna_fraction": [0.1, 0.3, 0.2, 0.9, np.nan],
        }
    ).astype({"sample": "category", "assay": "category", "kind": "category"})
    grid = plots_qc.gdna_grid(cells)
    assert list(grid.index) == ["HD1", "P1"] and list(grid.columns) == ["A", "B"]
    assert grid.loc["P1", "A"] == 0.3 and np.isnan(grid.loc["P1", "B"])
    assert plots_qc.gdna_grid(cells[cells["kind"] == "ntc"].assign(gdna_fraction=np.nan)).empty


def test_bar_limits_at_once_are_matplotlibs():
    rng = np.random.default_rng(2)
    names = [f"plate{i}" for i in range(30)]
    parts = [rng.integers(0, 50, 30).astype(float) for _ in range(3)] + [np.zeros(30), -rng.random(30)]
    parts.append(rng.random(30) + 0.5)  # tops only on the last bars
    limits = []
    for at_once in (False, True):
        fig, ax = plt.subplots()
        with plots_qc._data_limits_at_once(ax) if at_once else nullcontext():
            bottom = np.zeros(30)
            for values in parts:
                ax.bar(names, values, bottom=bottom)
                bottom += values
        limits.append((ax.dataLim.get_points().tobytes(), ax.dataLim.minpos.tobytes()))
        assert "_update_patch_limits" not in vars(ax)
        plt.close(fig)
    assert limits[0] == limits[1]
