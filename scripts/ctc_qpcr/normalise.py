"""Normalisation: normaliser strategies, ΔCq, log2 NRQ, ΔΔCq (docs/methods.md §4.3, §4.4).

Input: the Cells table (docs/data-model.md §2). Output: the Normalised tables
(data-model §3), one per strategy:

* ``reference``       — mean Cq of chosen reference genes (geNorm optimal set by default, §4.1/§4.4)
* ``normfinder_pair`` — mean Cq of NormFinder's best pair (§4.2)
* ``global_mean``     — mean Cq of genes detected in every sample (§4.3, project caveat)
* ``none``            — no normalisation (dcq = cq)

All work is on the Cq (log) scale (§0); sign convention ``ΔCq = Cq − normaliser``.
Formulas are restated from docs/methods.md; no code was copied.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from .errors import ConfigError
from .refgenes import V_CUTOFF, genorm, normfinder

STRATEGIES = ("reference", "normfinder_pair", "global_mean", "none")
LONG_COLUMNS = ["sample", "gene", "dcq", "detected", "cq", "normaliser", "ddcq", "log2_nrq", "strategy", "flags"]


def _stripped_str(values: pd.Series) -> pd.Series:
    """``values.astype(str).str.strip()``, stripping each distinct string once (linear, cheap)."""
    text = values.astype(str)
    codes, uniques = pd.factorize(text)
    stripped = np.array([u.strip() for u in uniques], dtype=object)
    return pd.Series(stripped[codes] if len(codes) else np.array([], dtype=object), index=values.index, dtype=object)



# ---------------------------------------------------------------------------------------------
# building blocks on wide matrices (samples × genes)


def _row_patterns(ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a boolean samples × genes mask and, per sample, its pattern number.

    Per-sample work (gene lists, flags) is then done once per pattern (a handful) instead of
    once per sample, so it stays linear in samples with a tiny constant.
    """
    ok = np.asarray(ok, dtype=bool)
    if ok.shape[0] == 0:
        return np.zeros((0, ok.shape[1]), bool), np.zeros(0, dtype=np.intp)
    patterns, inverse = np.unique(ok, axis=0, return_inverse=True)
    return patterns, np.asarray(inverse).reshape(-1)


def reference_normaliser(
    cq: pd.DataFrame, detected: pd.DataFrame, genes: list[str]
) -> tuple[pd.Series, pd.Series, dict[str, list[str]]]:
    """Per-sample reference normaliser ``R_j = mean_{r∈Ref, detected} Cq_rj`` (§4.4).

    Arithmetic mean of Cq = log of the geometric mean of linear quantities. A reference
    gene that is not detected in a sample is left out of that sample's normaliser (its
    imputed value would bias it) and the sample is flagged ``reference_missing:GENE``;
    with no detected reference the normaliser is NaN and the flag is ``no_normaliser``.

    Returns (normaliser, flags, genes_used_per_sample).
    """
    genes = [g for g in genes]
    missing = [g for g in genes if g not in cq.columns]
    if missing:
        raise ConfigError(f"reference genes not in the data: {missing}")
    ref_cq = cq[genes].where(detected[genes].astype(bool) & np.isfinite(cq[genes]))
    normaliser = ref_cq.mean(axis=1, skipna=True)
    # vectorised over samples: one flag string / gene list per distinct detection pattern
    patterns, inverse = _row_patterns(np.isfinite(ref_cq.to_numpy(dtype=float)))
    pat_used, pat_flags = [], []
    for row in patterns:
        ok = [g for g, keep in zip(genes, row) if keep]
        lost = [g for g in genes if g not in ok]
        parts = [f"reference_missing:{g}" for g in lost]
        if not ok:
            parts.append("no_normaliser")
        pat_used.append(ok)
        pat_flags.append(";".join(sorted(parts)))
    flags = pd.Series(np.array(pat_flags, dtype=object)[inverse] if pat_flags else [], index=cq.index, dtype=object)
    used: dict[str, list[str]] = {s: list(pat_used[i]) for s, i in zip(cq.index, inverse)}
    return normaliser, flags, used


def global_mean(
    cq: pd.DataFrame,
    detected: pd.DataFrame,
    *,
    genes: list[str] | None = None,
    mode: str = "common",
    modified: bool = False,
) -> tuple[pd.Series, pd.Series, dict[str, list[str]]]:
    """Global-mean normaliser (Mestdagh 2009), docs/methods.md §4.3.

    mode:
        ``"common"`` (project default, per the §4.3 caveat for a small, tumour-marker
        dominated panel): mean Cq over the genes detected in **every** sample;
        ``"expressed"`` (the paper's rule): per sample, mean over the genes detected in
        that sample.
    modified:
        D'haene 2012 modified global mean: each gene is first centred on its mean Cq over
        the samples where it is detected (equal weight per gene), then averaged. With
        ``mode="common"`` this shifts every ΔCq by the same constant per gene set.
    genes:
        genes eligible for the global mean (default: all columns).

    Returns (normaliser, flags, genes_used_per_sample). Samples with no eligible gene get
    NaN and the flag ``no_normaliser``.
    """
    if mode not in ("common", "expressed"):
        raise ValueError("global mean mode must be 'common' or 'expressed'")
    genes = list(cq.columns) if genes is None else [g for g in genes if g in cq.columns]
    det = detected[genes].astype(bool) & np.isfinite(cq[genes])
    values = cq[genes].where(det)
    if modified:
        values = values - values.mean(axis=0, skipna=True)
    if mode == "common":
        common = [g for g in genes if det[g].all()]
        values = values[common]
    normaliser = values.mean(axis=1, skipna=True)
    finite = np.isfinite(values.to_numpy(dtype=float))
    flags = pd.Series(np.where(finite.any(axis=1), "", "no_normaliser").astype(object), index=cq.index, dtype=object)
    patterns, inverse = _row_patterns(finite)
    cols = list(values.columns)
    pat_used = [[g for g, keep in zip(cols, row) if keep] for row in patterns]
    used = {s: list(pat_used[i]) for s, i in zip(cq.index, inverse)}
    return normaliser, flags, used


def delta_cq(cq: pd.DataFrame, normaliser: pd.Series) -> pd.DataFrame:
    """``ΔCq_ij = Cq_ij − R_j`` (§4.4)."""
    return cq.sub(normaliser, axis=0)


def log2_nrq(
    cq: pd.DataFrame,
    efficiency: pd.Series | dict | None,
    used: dict[str, list[str]] | None,
) -> pd.DataFrame:
    """Efficiency-aware log2 NRQ (Hellemans 2007, qbase convention), §4.4.

    ``log2 RQ_ij = log2(E_i)(C̄q_i − Cq_ij)`` with ``C̄q_i`` the mean Cq of gene i over
    the samples given; ``log2 NF_j = mean_{r∈used[j]} log2 RQ_rj`` (geometric mean of the
    normaliser genes' RQ); ``log2 NRQ = log2 RQ − log2 NF``. ``used=None`` → no
    normalisation (NF = 1). Missing efficiencies default to 2.0.
    """
    eff = pd.Series({g: 2.0 for g in cq.columns}, dtype=float)
    if efficiency is not None:
        given = pd.Series(efficiency, dtype=float).reindex(cq.columns)
        eff = given.where(np.isfinite(given) & (given > 0), eff)
    log2e = np.log2(eff)
    log2_rq = (cq.mean(axis=0, skipna=True) - cq) * log2e
    if used is None:
        return log2_rq
    # log2 NF per sample, vectorised over the samples sharing the same normaliser genes
    by_genes: dict[tuple, list[int]] = {}
    for row, s in enumerate(cq.index):
        by_genes.setdefault(tuple(used.get(s, [])), []).append(row)
    values = log2_rq.to_numpy(dtype=float)
    nf = np.full(len(cq.index), np.nan)
    col_of = {g: j for j, g in enumerate(cq.columns)}
    for genes, rows in by_genes.items():
        if not genes:
            continue
        sub = values[np.asarray(rows)][:, [col_of[g] for g in genes]]
        n_ok = np.isfinite(sub).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            nf[rows] = np.where(n_ok > 0, np.nansum(sub, axis=1) / n_ok, np.nan)
    return log2_rq.sub(pd.Series(nf, index=cq.index), axis=0)


def delta_delta_cq(dcq: pd.DataFrame, calibrator_samples: list[str]) -> pd.DataFrame:
    """``ΔΔCq = ΔCq − mean ΔCq of the calibrator samples`` per gene (§4.4; calibrator = HD)."""
    cal = [s for s in calibrator_samples if s in dcq.index]
    if not cal:
        return dcq * np.nan
    return dcq - dcq.loc[cal].mean(axis=0, skipna=True)


def _row_flags(sample_flags: np.ndarray, n_genes: int, multi_plate: np.ndarray, cq_missing: np.ndarray) -> np.ndarray:
    """Per-row flag text: the sample's flags + ``multi_plate_mean`` + ``cq_missing``, sorted, ``;``-joined.

    Vectorised: the text is built once per distinct (sample flags, multi_plate, cq_missing)
    combination and broadcast back to the rows.
    """
    if len(sample_flags) == 0 or n_genes == 0:
        return np.array([], dtype=object)
    codes, uniques = pd.factorize(pd.Series(sample_flags, dtype=object).fillna("").astype(str), sort=False)
    codes = np.repeat(codes.astype(np.int64), n_genes)  # one row per sample × gene, sample-major
    key = codes * 4 + np.asarray(multi_plate, bool) * 2 + np.asarray(cq_missing, bool)
    combos, inverse = np.unique(key, return_inverse=True)
    text = []
    for k in combos:
        f, m, missing = uniques[k // 4], bool(k & 2), bool(k & 1)
        text.append(
            ";".join(
                sorted(
                    [p for p in str(f).split(";") if p]
                    + (["multi_plate_mean"] if m else [])
                    + (["cq_missing"] if missing else [])
                )
            )
        )
    return np.array(text, dtype=object)[np.asarray(inverse).reshape(-1)]


# ---------------------------------------------------------------------------------------------
# Cells → wide matrices


def _prepare_cells(cells: pd.DataFrame, samples: pd.DataFrame | None, assays: pd.DataFrame | None, kinds, notes):
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


# ---------------------------------------------------------------------------------------------
# orchestrator


def normalise_study(
    cells: pd.DataFrame,
    samples: pd.DataFrame | None = None,
    assays: pd.DataFrame | None = None,
    *,
    strategies=STRATEGIES,
    reference_genes: list[str] | None = None,
    candidates: str = "reference",
    normfinder_group: str | None = None,
    v_cutoff: float = V_CUTOFF,
    kinds=("patient", "healthy"),
    negative_variance: str = "original",
    global_mean_mode: str = "common",
    global_mean_modified: bool = False,
    efficiency_scaled: bool = False,
) -> dict:
    """Choose normalisers, normalise and compare strategies (docs/methods.md §4).

    Parameters
    ----------
    cells:        Cells table (data-model §2). Minimum: ``sample, gene`` (or ``assay``), ``cq``;
                  ``role``/``kind`` are taken from ``assays``/``samples`` if absent;
                  ``detected`` defaults to "cq is a number", ``cq_imputed`` to ``cq``.
    samples:      samples sheet (``sample, kind`` and e.g. ``response``).
    assays:       assays sheet (``assay, gene, role``, optional ``efficiency``).
    strategies:   subset of ``reference, normfinder_pair, global_mean, none``.
    reference_genes: fixed reference list for ``reference``; None = geNorm optimal set.
    candidates:   ``"reference"`` (genes with role reference) or ``"reference+target"``
                  (then only genes detected in every sample can be candidates).
    normfinder_group: samples column giving NormFinder groups (e.g. ``"response"``); None = one group.
    v_cutoff:     geNorm pairwise-variation cut-off (0.15).
    kinds:        sample kinds normalised (patient, healthy); controls are excluded.
    negative_variance: NormFinder rule, ``"original"`` or ``"zero"`` (see refgenes.normfinder).
    global_mean_mode / global_mean_modified: see :func:`global_mean`.
    efficiency_scaled: True when the cells' Cq were already scaled by ``log2(E)`` upstream
                  (config ``efficiency.apply``); E is then taken as 2.0 here so it is not
                  applied twice.

    Stability is computed on ``Cq·log2(E)`` (efficiency-scaled Cq, §3.4; = Cq when E = 2)
    of the detected values only, over the normalised samples; samples missing a
    candidate are left out of geNorm/NormFinder and reported in ``notes``.

    Returns a dict with keys
    ``genorm`` (steps: step, n_genes, gene, M), ``genorm_mean_m``, ``genorm_v`` (n, V),
    ``normfinder`` (gene, stability, rank, group_dif, group_sd), ``normfinder_terms``,
    ``normfinder_pairs``, ``chosen`` (strategy, genes, reason), ``normalised``
    {strategy: long table with columns sample, gene, dcq, detected, cq, normaliser, ddcq,
    log2_nrq, strategy, flags}, ``matrices`` {strategy: wide dcq table, index named ``sample`` (rows = samples,
    sorted), one column per gene (sorted); ``.reset_index()`` gives the data-model §3 matrix}, ``agreement`` (strategy_a, strategy_b, gene, n, r),
    ``notes`` (list of str). Any of genorm/normfinder tables is empty when it could not run.
    """
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise ConfigError(f"unknown normalisation strategies {unknown}; choose from {list(STRATEGIES)}")
    if candidates not in ("reference", "reference+target"):
        raise ConfigError("candidates must be 'reference' or 'reference+target'")
    notes: list[str] = []
    long = _prepare_cells(cells, samples, assays, kinds, notes)

    # wide samples × genes matrices (rows and columns sorted), filled directly from the codes
    # of the (unique) sample × gene pairs; a gene absent from a sample's plate: not detected,
    # Cq NaN, not present
    s_codes, s_index = pd.factorize(long["sample"], sort=True)
    g_codes, g_index = pd.factorize(long["gene"], sort=True)
    shape = (len(s_index), len(g_index))
    row_index = pd.Index(s_index, name="sample")
    col_index = pd.Index(g_index, name="gene")

    def wide(values, fill, dtype):
        arr = np.full(shape, fill, dtype=dtype)
        arr[s_codes, g_codes] = values
        return pd.DataFrame(arr, index=row_index, columns=col_index)

    cq = wide(long["cq_imputed"].to_numpy(float), np.nan, float)
    raw = wide(long["cq"].to_numpy(float), np.nan, float)
    detected = wide(long["detected"].to_numpy(bool), False, bool)
    multi_plate = wide(long["multi_plate"].to_numpy(bool), False, bool)
    present = wide(True, False, bool)
    roles = long.drop_duplicates("gene").set_index("gene")["role"]
    kind_of = long.drop_duplicates("sample").set_index("sample")["kind"]
    genes = list(cq.columns)
    ref_genes_all = [g for g in genes if roles[g] == "reference"]
    if efficiency_scaled:
        eff = pd.Series(2.0, index=genes, dtype=float)
        notes.append("Cq already efficiency-scaled upstream: E = 2 used for stability and NRQ")
    else:
        eff = _gene_efficiency(assays, genes, notes)

    # ---- candidates for stability analysis
    if candidates == "reference":
        cand = ref_genes_all
    else:
        # targets are often not detected: only genes detected in every sample can be candidates
        cand = [g for g in genes if detected[g].all()]
        if len(cand) < 2:
            notes.append(
                "reference+target: fewer than 2 genes detected in every sample; reference genes used as candidates"
            )
            cand = ref_genes_all
        else:
            left = sorted(set(ref_genes_all) - set(cand))
            if left:
                notes.append(
                    f"reference+target: reference genes not detected in every sample are not candidates: {left}"
                )
    y = (cq[cand] * np.log2(eff[cand])).where(detected[cand]) if cand else cq.iloc[:, :0]

    # ---- geNorm
    empty_steps = pd.DataFrame(columns=["step", "n_genes", "gene", "M"])
    gres = None
    if len(cand) >= 2:
        try:
            gres = genorm(y, v_cutoff=v_cutoff)
            if gres.dropped_samples:
                notes.append(
                    f"geNorm: {len(gres.dropped_samples)} sample(s) left out (a candidate gene not detected): "
                    + ", ".join(gres.dropped_samples)
                )
            notes.append(f"geNorm on {gres.n_samples} samples × {len(cand)} genes; {gres.optimal_reason}")
        except ValueError as exc:
            notes.append(f"geNorm not run: {exc}")
    else:
        notes.append(f"geNorm not run: {len(cand)} candidate gene(s) (needs ≥ 2)")

    # ---- NormFinder
    nres = None
    if len(cand) >= 3:
        groups = None
        if normfinder_group is not None:
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
        try:
            nres = normfinder(y, groups, negative_variance=negative_variance)
            if nres.dropped_samples:
                notes.append(
                    f"NormFinder: {len(nres.dropped_samples)} sample(s) left out (candidate not detected or no group): "
                    + ", ".join(nres.dropped_samples)
                )
            notes.append(
                f"NormFinder on {nres.n_samples} samples, groups {nres.groups}, negative variances: {negative_variance} rule"
            )
        except ValueError as exc:
            notes.append(f"NormFinder not run: {exc}")
    else:
        notes.append(f"NormFinder not run: {len(cand)} candidate gene(s) (needs ≥ 3)")

    # ---- chosen normalisers
    chosen_rows = []
    if reference_genes is not None:
        ref_choice = [str(g).strip() for g in reference_genes]
        absent = [g for g in ref_choice if g not in genes]
        if absent:
            raise ConfigError(f"reference_genes not found among the measured genes: {absent}")
        ref_reason = "fixed list from config"
    elif gres is not None:
        ref_choice = list(gres.optimal_genes)
        ref_reason = gres.optimal_reason
    else:
        ref_choice = ref_genes_all
        ref_reason = "geNorm could not run; all reference genes used"
    if nres is not None:
        nf_choice = list(nres.best_pair)
        nf_reason = f"NormFinder best pair, stability {nres.best_pair_stability:.4f}"
    else:
        nf_choice = ref_genes_all
        nf_reason = "NormFinder could not run; all reference genes used"

    hd = list(cq.index[kind_of.reindex(cq.index).to_numpy() == "healthy"])
    if not hd:
        notes.append("no healthy-donor samples: ddcq is NaN")

    normalised: dict[str, pd.DataFrame] = {}
    matrices: dict[str, pd.DataFrame] = {}
    for strategy in strategies:
        if strategy == "reference" or strategy == "normfinder_pair":
            chosen = ref_choice if strategy == "reference" else nf_choice
            reason = ref_reason if strategy == "reference" else nf_reason
            if not chosen:
                notes.append(f"{strategy}: no reference genes; normaliser NaN")
                norm = pd.Series(np.nan, index=cq.index)
                flags = pd.Series("no_normaliser", index=cq.index, dtype=object)
                used = {s: [] for s in cq.index}
            else:
                norm, flags, used = reference_normaliser(cq, detected, chosen)
            chosen_rows.append({"strategy": strategy, "genes": ";".join(chosen), "reason": reason})
        elif strategy == "global_mean":
            eligible = [g for g in genes if roles[g] in ("target", "reference")]
            norm, flags, used = global_mean(
                cq, detected, genes=eligible, mode=global_mean_mode, modified=global_mean_modified
            )
            used_genes = sorted(set().union(*used.values())) if used else []
            reason = f"global mean ({'modified, ' if global_mean_modified else ''}{global_mean_mode}): " + (
                f"{len(used_genes)} genes detected in every sample"
                if global_mean_mode == "common"
                else "genes detected per sample"
            )
            if global_mean_mode == "common" and len(used_genes) < 10:
                notes.append(
                    f"global_mean: only {len(used_genes)} genes detected in every sample; "
                    "treat as a sensitivity analysis (§4.3 caveat)"
                )
            chosen_rows.append({"strategy": strategy, "genes": ";".join(used_genes), "reason": reason})
        else:  # none
            norm = pd.Series(0.0, index=cq.index)
            flags = pd.Series("", index=cq.index, dtype=object)
            used = None
            chosen_rows.append({"strategy": "none", "genes": "", "reason": "no normalisation: dcq = cq"})

        dcq = delta_cq(cq, norm)
        ddcq = delta_delta_cq(dcq, hd)
        nrq = log2_nrq(cq, eff, used)
        flag_text = flags.reindex(cq.index).fillna("").astype(str)
        has_none = flag_text.str.contains("no_normaliser", regex=False).to_numpy()
        lost = list(cq.index[has_none])
        if lost:
            notes.append(f"{strategy}: no normaliser (dcq NaN) for {len(lost)} sample(s): " + ", ".join(lost))
        part = list(cq.index[(flag_text != "").to_numpy() & ~has_none])
        if part:
            notes.append(f"{strategy}: normaliser from the remaining reference genes for: " + ", ".join(part))

        table = pd.DataFrame(
            {
                "sample": np.repeat(cq.index.to_numpy(), len(genes)),
                "gene": np.tile(np.array(genes, dtype=object), len(cq.index)),
                "dcq": dcq.to_numpy().ravel(),
                "detected": detected.to_numpy().ravel(),
                "cq": raw.to_numpy().ravel(),
                "normaliser": np.repeat(norm.to_numpy(dtype=float), len(genes)),
                "ddcq": ddcq.to_numpy().ravel(),
                "log2_nrq": nrq.to_numpy().ravel(),
                "strategy": strategy,
            }
        )
        mp = multi_plate.to_numpy().ravel()
        no_cq = ~np.isfinite(cq.to_numpy(dtype=float).ravel())
        table["flags"] = _row_flags(flags.to_numpy(dtype=object), len(genes), mp, no_cq)
        # keep every sample × gene present in the cells (also when Cq is missing); a pair absent
        # from the cells altogether (gene not on that sample's plate) has no row
        measured = present.to_numpy().ravel()
        # rows are sample-major over the sorted samples and genes: already in (sample, gene) order
        table = table[measured].reset_index(drop=True)
        table["detected"] = table["detected"].astype(bool)
        normalised[strategy] = table[LONG_COLUMNS]
        wide = dcq.copy()
        wide.index.name = "sample"
        wide.columns.name = None
        matrices[strategy] = wide  # index "sample": the adapter writes wide.reset_index()

    agreement = strategy_agreement(matrices)

    return {
        "genorm": gres.steps if gres is not None else empty_steps,
        "genorm_mean_m": (
            gres.mean_m if gres is not None else pd.DataFrame(columns=["step", "n_genes", "mean_M", "excluded"])
        ),
        "genorm_v": gres.pairwise_v if gres is not None else pd.DataFrame(columns=["n", "V"]),
        "normfinder": (
            nres.table
            if nres is not None
            else pd.DataFrame(columns=["gene", "stability", "rank", "group_dif", "group_sd"])
        ),
        "normfinder_terms": nres.terms if nres is not None else pd.DataFrame(),
        "normfinder_pairs": nres.pairs if nres is not None else pd.DataFrame(columns=["gene_a", "gene_b", "stability"]),
        "chosen": pd.DataFrame(chosen_rows, columns=["strategy", "genes", "reason"]),
        "normalised": normalised,
        "matrices": matrices,
        "agreement": agreement,
        "notes": notes,
    }


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
