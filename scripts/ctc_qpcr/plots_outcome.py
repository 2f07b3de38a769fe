"""Outcome figures: Kaplan–Meier with numbers at risk, forest plot, positivity rates (docs/methods.md §8).

KM curves are drawn from the ``km`` table of :func:`ctc_qpcr.outcome.run_outcome` (one row
per distinct observed time; ``n_at_risk`` = patients with time ≥ t), so the
plot shows exactly what the tables report. SVG output is byte-deterministic
(Agg backend, fixed ``svg.hashsalt``, no date metadata).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .plotting import save_figure  # noqa: E402

ENDPOINT_LABELS = {"pfs": "Progression-free survival", "os": "Overall survival"}


def at_risk_from_km(km_group: pd.DataFrame, times: Sequence[float]) -> list[int]:
    """Numbers at risk at ``times`` from one group's KM rows.

    At risk at t = n_at_risk of the first row with time ≥ t (no one leaves
    between rows), 0 after the last row.
    """
    tt = km_group["time"].to_numpy(float)
    nr = km_group["n_at_risk"].to_numpy(int)
    out = []
    for u in times:
        idx = np.searchsorted(tt, u, side="left")
        out.append(int(nr[idx]) if idx < len(tt) else 0)
    return out


def _step(km_group: pd.DataFrame, col: str) -> tuple[np.ndarray, np.ndarray]:
    t = np.concatenate([[0.0], km_group["time"].to_numpy(float)])
    y = np.concatenate([[1.0], km_group[col].to_numpy(float)])
    return t, y


def plot_km(
    km: pd.DataFrame,
    analysis: str,
    endpoint: str,
    path: str | Path,
    *,
    logrank_p: float | None = None,
    risk_times: Sequence[float] | None = None,
    show_ci: bool = True,
    title: str | None = None,
) -> Path:
    """Write one KM figure (SVG or PNG by suffix) with the at-risk table below.

    ``km`` is the ``km`` table (all analyses); rows of ``analysis``/``endpoint``
    are drawn, one step curve per group with censor ticks (+) and the
    log(−log) 95 % band. ``risk_times`` default: 6 equally spaced times.
    """
    plt.rcParams["svg.hashsalt"] = "ctc-qpcr"
    sub = km[(km["analysis"] == analysis) & (km["endpoint"] == endpoint)]
    if sub.empty:
        raise ValueError(f"no KM rows for analysis {analysis!r}, endpoint {endpoint!r}")
    groups = sorted(sub["group"].unique(), key=str)
    tmax = float(sub["time"].max())
    if risk_times is None:
        step = _nice_step(tmax)
        risk_times = list(np.arange(0, tmax + 1e-9, step))
    fig = plt.figure(figsize=(7.0, 5.2))
    ax = fig.add_axes((0.2, 0.36, 0.75, 0.56))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, g in enumerate(groups):
        rows = sub[sub["group"] == g].sort_values("time")
        c = colors[i % len(colors)]
        t, s = _step(rows, "survival")
        ax.step(
            t,
            s,
            where="post",
            color=c,
            label=f"{g} (n={int(rows['n_at_risk'].iloc[0])})",
            lw=1.6,
        )
        if show_ci:
            _, lo = _step(rows, "ci_low")
            _, hi = _step(rows, "ci_high")
            ok = ~(np.isnan(lo) | np.isnan(hi))
            ax.fill_between(
                t[ok], lo[ok], hi[ok], step="post", color=c, alpha=0.12, lw=0
            )
        cens = rows[rows["n_censored"] > 0]
        ax.plot(cens["time"], cens["survival"], ls="none", marker="+", ms=7, color=c)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(0, max(risk_times[-1], tmax) * 1.02)
    ax.set_ylabel(ENDPOINT_LABELS.get(endpoint, endpoint) + " probability")
    ax.set_xlabel("Months" + (" from landmark" if "landmark" in analysis else ""))
    ax.set_xticks(risk_times)
    ax.legend(loc="upper right", frameon=False, fontsize=9)
    head = title or f"{analysis} — {endpoint.upper()}"
    if logrank_p is not None and np.isfinite(logrank_p):
        head += f"\nlog-rank p = {logrank_p:.3g}"
    ax.set_title(head, fontsize=10)
    # numbers-at-risk table, aligned with the x axis
    tab = fig.add_axes((0.2, 0.04, 0.75, 0.18), sharex=ax)
    tab.set_xlim(ax.get_xlim())
    tab.set_ylim(-0.5, len(groups) - 0.5)
    tab.axis("off")
    tab.text(
        0,
        len(groups) - 0.5 + 0.55,
        "Number at risk",
        fontsize=9,
        ha="left",
        va="bottom",
        transform=tab.transData,
    )
    for i, g in enumerate(groups):
        rows = sub[sub["group"] == g].sort_values("time")
        y = len(groups) - 1 - i
        for u, n in zip(risk_times, at_risk_from_km(rows, risk_times)):
            tab.text(
                u,
                y,
                str(n),
                ha="center",
                va="center",
                fontsize=9,
                color=colors[i % len(colors)],
            )
        tab.text(
            -0.05,
            y,
            str(g),
            ha="right",
            va="center",
            fontsize=9,
            color=colors[i % len(colors)],
            transform=tab.get_yaxis_transform(),
        )
    return save_figure(fig, path)


def _nice_step(tmax: float) -> float:
    """Tick step in months giving at most 8 intervals up to ``tmax``."""
    for step in (0.25, 0.5, 1, 2, 3, 6, 12, 24, 60, 120):
        if tmax / step <= 8:
            return float(step)
    return float(np.ceil(tmax / 8))


def plot_all(result: dict, outdir: str | Path) -> list[Path]:
    """One SVG per (analysis, endpoint) of ``result['km']``; returns the paths (sorted)."""
    km = result["km"]
    lr = result.get("logrank")
    paths = []
    for (analysis, endpoint), _ in sorted(
        km.groupby(["analysis", "endpoint"], sort=True), key=lambda x: x[0]
    ):
        p = None
        if lr is not None and len(lr):
            hit = lr[(lr["analysis"] == analysis) & (lr["endpoint"] == endpoint)]
            p = float(hit["p"].iloc[0]) if len(hit) else None
        safe = "".join(ch if ch.isalnum() else "_" for ch in analysis).strip("_")
        paths.append(
            plot_km(
                km,
                analysis,
                endpoint,
                Path(outdir) / f"km_{endpoint}_{safe}.svg",
                logrank_p=p,
            )
        )
    return paths


def logrank_p(logrank: pd.DataFrame, analysis: str, endpoint: str) -> float | None:
    """The log-rank p of one analysis/endpoint from the ``logrank`` table (None if absent)."""
    hit = logrank[(logrank["analysis"] == analysis) & (logrank["endpoint"] == endpoint)]
    return float(hit["p"].iloc[0]) if len(hit) else None


def plot_forest(subgroups: pd.DataFrame, endpoint: str, path: str | Path) -> Path:
    """Forest plot of the CTC-status hazard ratio overall and per subgroup (log axis).

    One block per variable of the ``subgroups`` table: the overall HR, then each
    level with its n/events, and the interaction p in the block title.
    """
    sub = subgroups[subgroups["endpoint"] == endpoint]
    rows, labels, heads = [], [], []
    for var, block in sub.groupby("variable", sort=True):
        p = block["interaction_p"].iloc[0]
        heads.append((len(rows), f"{var} (interaction p = {p:.3g})" if np.isfinite(p) else str(var)))
        rows.append(None)
        labels.append("")
        for r in block.itertuples():
            rows.append(r)
            labels.append(f"{r.subgroup}  (n={r.n}, events={r.events})")
    fig = plt.figure(figsize=(7.5, 0.32 * max(len(rows), 4) + 1.2))
    ax = fig.add_axes((0.42, 0.9 / (len(rows) + 2), 0.53, 1 - 1.6 / (len(rows) + 2)))
    y = np.arange(len(rows))[::-1]
    for yi, r in zip(y, rows):
        if r is None or not np.isfinite(r.hr):
            continue
        style = dict(color="black", marker="D" if r.subgroup == "all" else "s", ms=6 if r.subgroup == "all" else 5)
        ax.plot([r.ci_low, r.ci_high], [yi, yi], color="black", lw=1.2)
        ax.plot([r.hr], [yi], ls="none", **style)
    ax.axvline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    for i, text in heads:
        ax.text(-0.02, y[i], text, transform=ax.get_yaxis_transform(), ha="right", va="center", fontsize=9, weight="bold")
    ax.set_ylim(-0.8, len(rows) - 0.2)
    analysis = sub["analysis"].iloc[0] if len(sub) else ""
    ax.set_xlabel(f"Hazard ratio of {analysis} (95 % CI, log scale)")
    ax.set_title(f"{ENDPOINT_LABELS.get(endpoint, endpoint)}: {analysis} by subgroup", fontsize=10)
    return save_figure(fig, path)


def plot_positivity(rates: pd.DataFrame, path: str | Path) -> Path:
    """Share of CTC-positive patients per draw and threshold with exact 95 % CIs."""
    draws = list(dict.fromkeys(rates["timepoint"]))
    thresholds = sorted(rates["threshold"].unique())
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(draws), 3.8))
    width = 0.8 / max(len(thresholds), 1)
    x = np.arange(len(draws))
    for k, thr in enumerate(thresholds):
        r = rates[rates["threshold"] == thr].set_index("timepoint").reindex(draws)
        pos = x - 0.4 + width * (k + 0.5)
        err = np.vstack([r["rate"] - r["ci_low"], r["ci_high"] - r["rate"]]) * 100
        ax.bar(pos, r["rate"] * 100, width * 0.9, label=f"CTC ≥ {thr:g} per 7.5 ml")
        ax.errorbar(pos, r["rate"] * 100, yerr=err, fmt="none", ecolor="black", capsize=3, lw=1)
        for xi, n in zip(pos, r["n"]):
            ax.text(xi, 1, f"n={int(n)}" if np.isfinite(n) else "", ha="center", va="bottom", fontsize=7, rotation=90)
    ax.set_xticks(x)
    ax.set_xticklabels(draws)
    ax.set_ylim(0, 100)
    ax.set_ylabel("Patients CTC-positive (%)")
    ax.legend(frameon=False, fontsize=8)
    ax.set_title("CTC positivity per draw (Clopper–Pearson 95 % CI)", fontsize=10)
    return save_figure(fig, path, tight=True)
