"""Deterministic SVG figures: same data, same bytes (no dates, fixed ids)."""

from __future__ import annotations

import io
import os
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backends.backend_svg import RendererSVG  # noqa: E402

from .tables import atomic_path  # noqa: E402

plt.rcParams["svg.hashsalt"] = "ctc-qpcr"
plt.rcParams["svg.fonttype"] = "none"


#: Metadata that would change between runs, blanked per output format.
_STABLE_METADATA = {
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None},
    "png": {"Software": None},
}


def save_figure(fig, path: str | os.PathLike, *, tight: bool = False, close: bool = True, box=None) -> Path:
    """Save ``fig`` atomically with no run-dependent metadata, then close it
    (``close=False``: keep it open, to be redrawn with other data); ``box``: the
    area saved (inches), as measured for :func:`save_svg_cropped`.

    The format comes from the file suffix (SVG when there is none). Every plot
    module saves through here, so same data gives the same bytes.
    """
    out = Path(path)
    fmt = out.suffix.lstrip(".").lower() or "svg"
    crop = {"bbox_inches": box} if box is not None else {"bbox_inches": "tight"} if tight else {}
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format=fmt, metadata=_STABLE_METADATA.get(fmt), **crop)
    if close:
        plt.close(fig)
    return out


def save_svg(fig, path: str | os.PathLike) -> None:
    """Save ``fig`` as SVG, cropped to its content (the QC figures)."""
    plt.rcParams["svg.hashsalt"] = "ctc-qpcr"
    save_figure(fig, path, tight=True)


def svg_ruler(fig) -> RendererSVG:
    """What measures ``fig``'s text as its SVG will, for :func:`save_svg_cropped` (one per
    figure: it keeps the sizes of the texts it measured)."""
    width, height = fig.get_size_inches() * 72
    return RendererSVG(width, height, io.StringIO())


@contextmanager
def in_points(fig):
    """``fig`` at 72 dpi while it is measured, as matplotlib's SVG backend measures and draws it."""
    dpi = fig.dpi
    fig.dpi = 72
    try:
        yield fig
    finally:
        fig.dpi = dpi


def save_svg_cropped(fig, path: str | os.PathLike, box) -> None:
    """Save ``fig`` as :func:`save_svg` does and keep it open, cropped to ``box`` (inches): the
    same bytes when ``box`` is the figure's tight box (``fig.get_tightbbox(svg_ruler(fig))``
    :func:`in_points`), without the draw savefig makes to measure it (issue 17: a third of
    each layout figure's time)."""
    plt.rcParams["svg.hashsalt"] = "ctc-qpcr"
    save_figure(fig, path, box=box.padded(plt.rcParams["savefig.pad_inches"]), close=False)


def empty_figure(message: str):
    """A figure that says why there is nothing to plot (never an empty file)."""
    fig, ax = plt.subplots(figsize=(5, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    return fig
