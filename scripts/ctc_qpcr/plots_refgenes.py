"""Reference-gene stability plots (geNorm M and V, NormFinder), docs/methods.md §4.1–§4.2.

Matplotlib with the Agg backend; output is byte-for-byte deterministic: no dates or
software version in the metadata, a fixed SVG hash salt, fixed fonts/sizes. The file
format follows the suffix of ``path`` (``.svg`` recommended, ``.png`` and ``.pdf`` work).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from .plotting import save_figure  # noqa: E402
from .refgenes import V_CUTOFF  # noqa: E402

_RC = {
    "svg.hashsalt": "ctc-qpcr",
    "svg.fonttype": "path",
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "figure.dpi": 100,
    "savefig.dpi": 100,
}


def plot_genorm_m(steps: pd.DataFrame, path) -> Path:
    """Average geNorm M of the remaining genes against the stepwise exclusion (§4.1).

    ``steps`` is :attr:`GenormResult.steps` (``step, n_genes, gene, M``). The x axis
    runs from the least stable gene (left, excluded first) to the final pair (right),
    as in Vandesompele 2002 Fig. 2.
    """
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(6.0, 3.6))
        if steps is None or len(steps) == 0:
            ax.text(0.5, 0.5, "geNorm not available", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
            return save_figure(fig, path)
        order = sorted(steps["step"].unique())
        means, labels = [], []
        for i, st in enumerate(order):
            cur = steps[steps["step"] == st]
            means.append(cur["M"].mean())
            if i + 1 < len(order):
                nxt = set(steps.loc[steps["step"] == order[i + 1], "gene"])
                gone = [g for g in cur["gene"] if g not in nxt]
                labels.append(gone[0] if gone else "")
            else:
                labels.append(" / ".join(cur["gene"]))
        x = list(range(len(order)))
        ax.plot(x, means, marker="o", color="#1f77b4")
        ax.set_xticks(x)
        ax.set_xticklabels(labels, rotation=45, ha="right")
        ax.set_ylabel("average expression stability M")
        ax.set_xlabel("least stable gene at each step  →  most stable pair")
        ax.set_title("geNorm")
        ax.grid(axis="y", linestyle=":", linewidth=0.6)
        fig.tight_layout()
        return save_figure(fig, path)


def plot_genorm_v(v: pd.DataFrame, path, cutoff: float = V_CUTOFF) -> Path:
    """Bars of the pairwise variation ``V_{n/n+1}`` with the cut-off line (§4.1)."""
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(6.0, 3.6))
        if v is None or len(v) == 0:
            ax.text(
                0.5, 0.5, "pairwise variation not available", ha="center", va="center", transform=ax.transAxes
            )
            ax.set_axis_off()
            return save_figure(fig, path)
        v = v.sort_values("n", ascending=False)
        labels = [f"V{int(n)}/{int(n) + 1}" for n in v["n"]]
        colours = ["#2ca02c" if val < cutoff else "#7f7f7f" for val in v["V"]]
        x = list(range(len(v)))
        ax.bar(x, v["V"], color=colours)
        ax.axhline(cutoff, color="black", linewidth=1.0)
        ax.text(len(v) - 0.5, cutoff, f" {cutoff:g}", va="bottom", ha="right")
        ax.set_xticks(x)
        ax.set_xticklabels(labels, rotation=45, ha="right")
        ax.set_ylabel("pairwise variation V")
        ax.set_title("geNorm pairwise variation")
        fig.tight_layout()
        return save_figure(fig, path)


def plot_normfinder(nf: pd.DataFrame, path) -> Path:
    """Horizontal bars of NormFinder stability, most stable on top (§4.2).

    ``nf`` is :attr:`NormfinderResult.table` (``gene, stability, rank``, ...).
    """
    with plt.rc_context(_RC):
        height = 1.0 + 0.25 * max(len(nf) if nf is not None else 0, 4)
        fig, ax = plt.subplots(figsize=(5.0, height))
        if nf is None or len(nf) == 0:
            ax.text(0.5, 0.5, "NormFinder not available", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
            return save_figure(fig, path)
        t = nf.sort_values(["stability", "gene"], ascending=[False, True])
        ax.barh(list(range(len(t))), t["stability"], color="#1f77b4")
        ax.set_yticks(list(range(len(t))))
        ax.set_yticklabels(t["gene"])
        ax.set_xlabel("NormFinder stability (lower = more stable)")
        ax.set_title("NormFinder")
        fig.tight_layout()
        return save_figure(fig, path)
