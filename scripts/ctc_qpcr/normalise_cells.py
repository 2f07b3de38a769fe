"""Cells table -> wide matrices, efficiencies, reference-gene choice (geNorm, NormFinder), agreement.

Split from :mod:`ctc_qpcr.normalise` (docs/methods.md §4).
"""

from __future__ import annotations

import functools
from itertools import combinations

import numpy as np
import pandas as pd

from .errors import ConfigError
from .refgenes import genorm, normfinder


def stripped_str(values: pd.Series) -> pd.Series:
    """``values.astype(str).str.strip()``, stripping each distinct string once (linear, cheap).
    Text with no value missing is factorised as it is, without a text copy of every row first
    (issue 17: 3.5 M rows in a 1,000-chip time-point comparison)."""
    codes, uniques = pd.factorize(values.to_numpy(dtype=object))
    if (codes < 0).any() or not all(isinstance(u, str) for u in uniques):
        codes, uniques = pd.factorize(values.astype(str))
    stripped = np.array([u.strip() for u in uniques], dtype=object)
    return pd.Series(
        stripped[codes] if len(codes) else np.array([], dtype=object), index=values.index, dtype=object
    )


# ---------------------------------------------------------------------------------------------
# Cells → wide matrices

#: the columns of the Cells table (docs/data-model.md §2) normalisation reads; the others are
#: not read from the Parquet file nor copied (issue 17: memory at 1,000 chips)
CELLS_COLUMNS = ("sample", "gene", "assay", "role", "kind", "cq", "detected", "cq_imputed", "plate")


def _stripped_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``stripped_str(values)`` as (codes, labels): labels sorted as ``groupby(sort=True)`` sorts them.

    A categorical column (the Cells table read with dictionary-encoded ids) is stripped once per
    category, never materialised as one string per row."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        raw = values.cat.codes.to_numpy().astype(np.int64)
        distinct = [str(c) for c in values.cat.categories] + ["nan"]  # code -1 (missing) -> "nan"
        raw = np.where(raw < 0, len(distinct) - 1, raw)
    else:
        raw, uniques = pd.factorize(values.astype(str))
        distinct = list(uniques)
    codes, labels = pd.factorize(np.array([d.strip() for d in distinct], dtype=object), sort=True)
    return codes[raw] if len(raw) else raw, np.asarray(labels, dtype=object)


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)`` of an integer array by one sort (numpy 2's hashing ``unique`` of
    integers takes ~10 s on the 4.6 M cells of 1,000 chips; the sort ~0.2 s)."""
    v = np.sort(values)
    return v[np.concatenate(([True], v[1:] != v[:-1]))] if len(v) else v


def _unique_codes(codes: np.ndarray, bound: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(codes, return_index=True, return_inverse=True)`` of integer codes in
    ``[0, bound)``: by a table of ``bound`` flags when it is not much larger than the codes
    (linear, no sort), else by ``np.unique``."""
    n = len(codes)
    if n == 0 or bound > max(4 * n, 1 << 16):
        uniques, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
        return uniques, first, np.asarray(inverse).reshape(-1)
    seen = np.zeros(bound, dtype=bool)
    seen[codes] = True
    uniques = np.flatnonzero(seen)
    inverse = (np.cumsum(seen) - 1)[codes]
    first = np.full(len(uniques), n, dtype=np.intp)
    np.minimum.at(first, inverse, np.arange(n, dtype=np.intp))  # each code's first row
    return uniques, first, inverse


def _used_categorical(codes: np.ndarray, labels: np.ndarray) -> pd.Categorical:
    """``labels[codes]`` as a categorical whose categories are the labels used, in label order
    (one string per id, not per sample x gene row: 4 M rows at 1,000 chips)."""
    used = np.bincount(codes, minlength=len(labels)) > 0
    renumber = np.cumsum(used) - 1
    return pd.Categorical.from_codes(renumber[codes], categories=pd.Index(labels[used], dtype=object))


def _cells_frame(cells: pd.DataFrame, samples, assays) -> pd.DataFrame:
    """The columns normalisation reads; ``role`` (from assays) and ``kind`` (from samples) when absent."""
    # a new frame of the same column objects (no copy): columns are replaced below, never modified
    df = pd.DataFrame({c: cells[c] for c in CELLS_COLUMNS if c in cells.columns}, copy=False)
    if "sample" not in df.columns or "cq" not in df.columns:
        raise ValueError("cells table needs at least the columns 'sample' and 'cq'")
    if "gene" not in df.columns:
        if "assay" not in df.columns:
            raise ValueError("cells table needs a 'gene' or 'assay' column")
        df["gene"] = df["assay"]
    if "role" not in df.columns:
        if assays is None or "role" not in assays.columns:
            raise ValueError("no 'role' column in cells or assays")
        key = "assay" if "assay" in df.columns and "assay" in assays.columns else "gene"
        keys = df[key] if key == "assay" else pd.Series(stripped_str(df["gene"]), index=df.index)
        df["role"] = keys.map(assays.drop_duplicates(key).set_index(key)["role"])
    if "kind" not in df.columns:
        if samples is None or "kind" not in samples.columns:
            raise ValueError("no 'kind' column in cells or samples")
        kmap = samples.assign(sample=samples["sample"].astype(str).str.strip()).drop_duplicates("sample")
        s_codes, s_labels = _stripped_codes(df["sample"])
        kinds = kmap.set_index("sample")["kind"].reindex(s_labels).to_numpy(object)
        df["kind"] = kinds[s_codes]
    df["cq"] = pd.to_numeric(df["cq"], errors="coerce")
    if "detected" not in df.columns:
        df["detected"] = np.isfinite(df["cq"])
    df["detected"] = df["detected"].fillna(False).astype(bool)
    if "cq_imputed" not in df.columns:
        df["cq_imputed"] = df["cq"]
    df["cq_imputed"] = pd.to_numeric(df["cq_imputed"], errors="coerce")
    if "plate" not in df.columns:
        df["plate"] = ""
    return df


def _prepare_cells(
    cells: pd.DataFrame, samples: pd.DataFrame | None, assays: pd.DataFrame | None, kinds, notes
):
    """Select target/reference rows of the wanted kinds and average samples on several plates.

    A patient/healthy sample on several plates: its Cq is averaged (mean over the plates where
    it was detected if any, else over all) and noted. Sample × gene pairs are integer codes
    (sorted ids, as a sorted groupby numbers them), so the work is linear in cells and no
    string is hashed per row: per pair, sums and counts of the finite Cq among the detected
    rows and among all rows; the mean uses the detected rows when there is one.
    """
    df = _cells_frame(cells, samples, assays)
    keep = (df["role"].isin(["target", "reference"]) & df["kind"].isin(list(kinds))).to_numpy(bool)
    if not keep.any():
        raise ValueError(f"no target/reference cells for samples of kind {list(kinds)}")
    rows = np.flatnonzero(keep)  # the kept rows; every per-row array below is cut to them
    del keep
    s_codes, s_labels = _stripped_codes(df["sample"])
    pair = s_codes[rows].astype(np.int64)
    del s_codes
    g_codes, g_labels = _stripped_codes(df["gene"])
    pair *= len(g_labels)
    pair += g_codes[rows]
    del g_codes
    pairs, first, gid = _unique_codes(pair, len(s_labels) * len(g_labels))
    del pair
    n_groups = len(pairs)
    det = df["detected"].to_numpy(bool)[rows]
    any_det = np.bincount(gid, weights=det, minlength=n_groups) > 0
    columns = {
        "sample": _used_categorical(pairs // len(g_labels), s_labels),
        "gene": _used_categorical(pairs % len(g_labels), g_labels),
        # categorical kinds / roles stay categorical: the first row's value of each pair
        "kind": df["kind"].iloc[rows[first]].array,
        "role": df["role"].iloc[rows[first]].array,
    }
    del pairs, first
    use_row = np.where(any_det[gid], det, True)  # detected rows if the pair has one, else all rows
    del det
    for col in ("cq", "cq_imputed"):
        v = df[col].to_numpy(float)[rows]
        ok = use_row & np.isfinite(v)
        total = np.bincount(gid, weights=np.where(ok, v, 0.0), minlength=n_groups)
        count = np.bincount(gid, weights=ok, minlength=n_groups)
        del v, ok
        with np.errstate(invalid="ignore", divide="ignore"):
            columns[col] = np.where(count > 0, total / np.maximum(count, 1.0), np.nan)
    del use_row
    columns["detected"] = any_det
    plate = pd.factorize(df["plate"])[0][rows]  # -1 = no plate (not counted)
    del df, rows
    n_plates = max(int(plate.max(initial=-1)) + 1, 1)
    on_plate = _sorted_unique(gid[plate >= 0].astype(np.int64) * n_plates + plate[plate >= 0])
    del plate, gid
    columns["multi_plate"] = np.bincount(on_plate // n_plates, minlength=n_groups) > 1
    out = pd.DataFrame(columns, copy=False)  # the arrays as they are (no copy into 2-D blocks)
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
        # one gene = one contiguous column (column-major copies): no pandas lookup per gene
        a_cols, b_cols = np.asfortranarray(A.to_numpy()), np.asfortranarray(B.to_numpy())
        for j, g in enumerate(cols):
            n, r = _pearson(a_cols[:, j], b_cols[:, j])
            rows.append({"strategy_a": a, "strategy_b": b, "gene": g, "n": n, "r": r})
        ok = np.isfinite(A) & np.isfinite(B)
        A, B = A.where(ok), B.where(ok)  # each masked once (the same values as masking it twice)
        Ac, Bc = A - A.mean(), B - B.mean()
        n, r = _pearson(Ac.to_numpy().ravel(), Bc.to_numpy().ravel())
        rows.append({"strategy_a": a, "strategy_b": b, "gene": "ALL", "n": n, "r": r})
    return pd.DataFrame(rows, columns=["strategy_a", "strategy_b", "gene", "n", "r"])


def _candidates(m: dict, candidates: str, notes: list[str]) -> list[str]:
    """Genes ranked by geNorm / NormFinder."""
    if candidates == "reference":
        return list(m["ref_genes"])
    # targets are often not detected: only genes detected in every sample can be candidates
    cand = [g for g in m["cq"].columns if m["detected"][g].all()]
    if len(cand) < 2:
        notes.append(
            "reference+target: fewer than 2 genes detected in every sample; reference genes used as "
            "candidates"
        )
        return list(m["ref_genes"])
    left = sorted(set(m["ref_genes"]) - set(cand))
    if left:
        notes.append(
            f"reference+target: reference genes not detected in every sample are not candidates: {left}"
        )
    return cand


def _run_stability(method: str, needs: int, cand: list[str], fit, left_out: str, notes: list[str]):
    """``fit()`` (geNorm or NormFinder) when there are ≥ ``needs`` candidate genes; a failure and
    the samples the method left out (``left_out``: why) become notes, never an exception."""
    if len(cand) < needs:
        notes.append(f"{method} not run: {len(cand)} candidate gene(s) (needs ≥ {needs})")
        return None
    try:
        res = fit()
    except ValueError as exc:
        notes.append(f"{method} not run: {exc}")
        return None
    if res.dropped_samples:
        notes.append(
            f"{method}: {len(res.dropped_samples)} sample(s) left out ({left_out}): "
            + ", ".join(res.dropped_samples)
        )
    return res


def _run_genorm(y: pd.DataFrame, cand: list[str], v_cutoff: float, notes: list[str]):
    fit = functools.partial(genorm, y, v_cutoff=v_cutoff)
    gres = _run_stability("geNorm", 2, cand, fit, "a candidate gene not detected", notes)
    if gres is not None:
        notes.append(f"geNorm on {gres.n_samples} samples × {len(cand)} genes; {gres.optimal_reason}")
    return gres


def _normfinder_groups(y, samples, normfinder_group, notes):
    if normfinder_group is None:
        return None
    if samples is None or normfinder_group not in samples.columns:
        raise ConfigError(f"NormFinder group column {normfinder_group!r} is not in the samples sheet")
    smap = samples.assign(sample=samples["sample"].astype(str).str.strip()).drop_duplicates("sample")
    groups = smap.set_index("sample")[normfinder_group].reindex(y.index)
    groups = groups.where(groups.astype(str).str.strip().ne("") & groups.notna())
    # groups with < 2 complete samples cannot enter eq. (9): drop their samples
    complete = np.isfinite(y.to_numpy(dtype=float)).all(axis=1)
    counts = groups[complete].value_counts()
    small = sorted(str(g) for g in counts[counts < 2].index)
    if small:
        notes.append(f"NormFinder: group(s) with < 2 complete samples left out: {small}")
        groups = groups.where(~groups.astype(str).isin(small))
    return groups


def _run_normfinder(y, cand, samples, normfinder_group, negative_variance, notes):
    groups = _normfinder_groups(y, samples, normfinder_group, notes) if len(cand) >= 3 else None
    fit = functools.partial(normfinder, y, groups, negative_variance=negative_variance)
    nres = _run_stability("NormFinder", 3, cand, fit, "candidate not detected or no group", notes)
    if nres is not None:
        notes.append(
            f"NormFinder on {nres.n_samples} samples, groups {nres.groups}, negative variances: "
            f"{negative_variance} rule"
        )
    return nres


def _choices(reference_genes, genes, gres, nres, ref_genes_all) -> dict:
    """Genes and reason of the reference and normfinder_pair normalisers."""
    if reference_genes is not None:
        ref_choice = [str(g).strip() for g in reference_genes]
        absent = [g for g in ref_choice if g not in genes]
        if absent:
            raise ConfigError(f"reference_genes not found among the measured genes: {absent}")
        ref = (ref_choice, "fixed list from config")
    elif gres is not None:
        ref = (list(gres.optimal_genes), gres.optimal_reason)
    else:
        ref = (list(ref_genes_all), "geNorm could not run; all reference genes used")
    if nres is not None:
        pair = (list(nres.best_pair), f"NormFinder best pair, stability {nres.best_pair_stability:.4f}")
    else:
        pair = (list(ref_genes_all), "NormFinder could not run; all reference genes used")
    return {"reference": ref, "normfinder_pair": pair}
