"""Deterministic SVG figures: same data, same bytes (no dates, fixed ids)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .tables import atomic_path  # noqa: E402

plt.rcParams["svg.hashsalt"] = "ctc-qpcr"
plt.rcParams["svg.fonttype"] = "none"


def save_svg(fig, path: str | os.PathLike) -> None:
    """Save ``fig`` as SVG atomically with no timestamp, then close it."""
    plt.rcParams["svg.hashsalt"] = "ctc-qpcr"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="svg", metadata={"Date": None, "Creator": "ctc-qpcr"}, bbox_inches="tight")
    plt.close(fig)


def empty_figure(message: str):
    """A figure that says why there is nothing to plot (never an empty file)."""
    fig, ax = plt.subplots(figsize=(5, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    return fig
