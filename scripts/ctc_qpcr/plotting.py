"""Deterministic SVG figures: same data, same bytes (no dates, fixed ids)."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .tables import atomic_path  # noqa: E402

plt.rcParams["svg.hashsalt"] = "ctc-qpcr"
plt.rcParams["svg.fonttype"] = "none"


#: Metadata that would change between runs, blanked per output format.
_STABLE_METADATA = {
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None},
    "png": {"Software": None},
}


def save_figure(fig, path: str | os.PathLike, *, tight: bool = False) -> Path:
    """Save ``fig`` atomically with no run-dependent metadata, then close it.

    The format comes from the file suffix (SVG when there is none). Every plot
    module saves through here, so same data gives the same bytes.
    """
    out = Path(path)
    fmt = out.suffix.lstrip(".").lower() or "svg"
    with atomic_path(out) as tmp:
        fig.savefig(
            tmp, format=fmt, metadata=_STABLE_METADATA.get(fmt), **({"bbox_inches": "tight"} if tight else {})
        )
    plt.close(fig)
    return out


def save_svg(fig, path: str | os.PathLike) -> None:
    """Save ``fig`` as SVG, cropped to its content (the QC figures)."""
    plt.rcParams["svg.hashsalt"] = "ctc-qpcr"
    save_figure(fig, path, tight=True)


def empty_figure(message: str):
    """A figure that says why there is nothing to plot (never an empty file)."""
    fig, ax = plt.subplots(figsize=(5, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    return fig
