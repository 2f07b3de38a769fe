"""Cells table -> wide samples x genes matrices, efficiencies, and agreement between strategies.

Split from :mod:`ctc_qpcr.normalise` (docs/methods.md §4).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd


def _stripped_str(values: pd.Series) -> pd.Series:
    """``values.astype(str).str.strip()``, stripping each distinct string once (linear, cheap)."""
    text = values.astype(str)
    codes, uniques = pd.factorize(text)
    stripped = np.array([u.strip() for u in uniques], dtype=object)
    return pd.Series(
        stripped[codes] if len(codes) else np.array([], dtype=object), index=values.index, dtype=object
    )


# ---------------------------------------------------------------------------------------------
# Cells → wide matrices


def _prepare_cells(
    cells: pd.DataFrame, samples: pd.DataFrame | None, assays: pd.DataFrame | None, kinds, notes
):
    """Select target/reference rows of the wanted kinds and average samples on several plates."""
    df = cells.copy()
    if "sample" not in df.columns or "cq" not in df.columns:
        raise ValueError("cells table needs at least the columns 'sample' and 'cq'")
    df["sample"] = _stripped_str(df["sample"])
    if "gene" not in df.columns:
        if "assay" not in df.columns:
            raise ValueError("cells table needs a 'gene' or 'assay' column")
        df["gene"] = df["assay"]
    df["gene"] = _stripped_str(df["gene"])
    if "role" not in df.columns:
        if assays is None or "role" not in assays.columns:
            raise ValueError("no 'role' column in cells or assays")
        key = "assay" if "assay" in df.columns and "assay" in assays.columns else "gene"
        roles = assays.drop_duplicates(key).set_index(key)["role"]
        df["role"] = df[key].map(roles)
    if "kind" not in df.columns:
        if samples is None or "kind" not in samples.columns:
            raise ValueError("no 'kind' column in cells or samples")
        kmap = samples.assign(sample=samples["sample"].astype(str).str.strip()).drop_duplicates("sample")
        df["kind"] = df["sample"].map(kmap.set_index("sample")["kind"])
    df["cq"] = pd.to_numeric(df["cq"], errors="coerce")
    if "detected" not in df.columns:
        df["detected"] = np.isfinite(df["cq"])
    df["detected"] = df["detected"].fillna(False).astype(bool)
    if "cq_imputed" not in df.columns:
        df["cq_imputed"] = df["cq"]
    df["cq_imputed"] = pd.to_numeric(df["cq_imputed"], errors="coerce")
    if "plate" not in df.columns:
        df["plate"] = ""

    df = df[df["role"].isin(["target", "reference"]) & df["kind"].isin(list(kinds))]
    if df.empty:
        raise ValueError(f"no target/reference cells for samples of kind {list(kinds)}")

    # a patient/healthy sample on several plates: average its Cq (mean over the plates where
    # it was detected if any, else over all) and note it. One groupby over sample × gene
    # (linear in cells): per pair, sums and counts of the finite Cq among the detected rows
    # and among all rows; the mean uses the detected rows when there is one.
    grouped = df.groupby(["sample", "gene"], sort=True)
    gid = grouped.ngroup().to_numpy()
    n_groups = int(grouped.ngroups)
    keys = grouped.size().index  # (sample, gene) in group order
    det = df["detected"].to_numpy(bool)
    any_det = np.bincount(gid, weights=det, minlength=n_groups) > 0
    first = np.unique(gid, return_index=True)[1]  # first row of every group (groups 0..n-1 all present)
    out = pd.DataFrame(
        {
            "sample": keys.get_level_values(0).to_numpy(object),
            "gene": keys.get_level_values(1).to_numpy(object),
            "kind": df["kind"].to_numpy(object)[first],
            "role": df["role"].to_numpy(object)[first],
        }
    )
    use_row = np.where(any_det[gid], det, True)  # detected rows if the pair has one, else all rows
    for col in ("cq", "cq_imputed"):
        v = df[col].to_numpy(float)
        ok = use_row & np.isfinite(v)
        total = np.bincount(gid, weights=np.where(ok, v, 0.0), minlength=n_groups)
        count = np.bincount(gid, weights=ok, minlength=n_groups)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[col] = np.where(count > 0, total / np.maximum(count, 1.0), np.nan)
    out["detected"] = any_det
    plates = pd.DataFrame({"g": gid, "p": df["plate"].to_numpy(object)}).dropna().drop_duplicates()
    out["multi_plate"] = np.bincount(plates["g"].to_numpy(), minlength=n_groups) > 1
    multi_samples = sorted(set(out.loc[out["multi_plate"].to_numpy(bool), "sample"]))
    if multi_samples:
        notes.append(
            f"{len(multi_samples)} sample(s) measured on several plates; Cq averaged over plates: "
            + ", ".join(multi_samples)
        )
    return out


def _gene_efficiency(assays: pd.DataFrame | None, genes: list[str], notes: list[str]) -> pd.Series:
    eff = pd.Series(2.0, index=genes, dtype=float)
    if assays is None or "efficiency" not in assays.columns:
        return eff
    a = assays.copy()
    a["gene"] = (a["gene"] if "gene" in a.columns else a["assay"]).astype(str).str.strip()
    a["efficiency"] = pd.to_numeric(a["efficiency"], errors="coerce")
    a = a[a["gene"].isin(genes) & np.isfinite(a["efficiency"])]
    for g, grp in a.groupby("gene", sort=True):
        vals = grp["efficiency"].unique()
        if len(vals) > 1:
            notes.append(f"gene {g}: several assay efficiencies {sorted(vals)}; their mean is used")
        eff[g] = float(np.mean(vals))
    return eff


def _pearson(a: np.ndarray, b: np.ndarray) -> tuple[int, float]:
    ok = np.isfinite(a) & np.isfinite(b)
    n = int(ok.sum())
    if n < 3:
        return n, float("nan")
    x, y = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    den = np.sqrt((x**2).sum() * (y**2).sum())
    if den <= 1e-12 * max(1.0, np.abs(a[ok]).max(), np.abs(b[ok]).max()):
        return n, float("nan")  # constant dcq (e.g. a gene in its own normaliser pair)
    return n, float((x * y).sum() / den)


def strategy_agreement(matrices: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Pearson r of dcq across samples for every pair of strategies and every gene.

    Columns ``strategy_a, strategy_b, gene, n, r``. The overall row (gene ``ALL``) pools
    all sample × gene values after centring each gene on its mean in each strategy, so it
    measures agreement of the within-gene (between-sample) pattern, not of gene levels.
    r is NaN with fewer than 3 paired values or a constant dcq.
    """
    rows = []
    names = list(matrices)
    for a, b in combinations(names, 2):
        ma, mb = matrices[a], matrices[b]
        idx = ma.index.intersection(mb.index)
        cols = [c for c in ma.columns if c in mb.columns]
        A = ma.loc[idx, cols].astype(float)
        B = mb.loc[idx, cols].astype(float)
        for g in cols:
            n, r = _pearson(A[g].to_numpy(), B[g].to_numpy())
            rows.append({"strategy_a": a, "strategy_b": b, "gene": g, "n": n, "r": r})
        ok = np.isfinite(A) & np.isfinite(B)
        Ac = A.where(ok) - A.where(ok).mean()
        Bc = B.where(ok) - B.where(ok).mean()
        n, r = _pearson(Ac.to_numpy().ravel(), Bc.to_numpy().ravel())
        rows.append({"strategy_a": a, "strategy_b": b, "gene": "ALL", "n": n, "r": r})
    return pd.DataFrame(rows, columns=["strategy_a", "strategy_b", "gene", "n", "r"])
