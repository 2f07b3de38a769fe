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

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from .errors import ConfigError
from .normalise_cells import (  # noqa: F401  (strategy_agreement: public)
    _candidates,
    _choices,
    _gene_efficiency,
    _prepare_cells,
    _run_genorm,
    _run_normfinder,
    _unique_codes,
    strategy_agreement,
)
from .study_options import NormalisationOptions, normalisation_options, with_words

STRATEGIES = ("reference", "normfinder_pair", "global_mean", "none")
LONG_COLUMNS = [
    "sample",
    "gene",
    "dcq",
    "detected",
    "cq",
    "normaliser",
    "ddcq",
    "log2_nrq",
    "strategy",
    "flags",
]


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


def estimate_missing_references(cq: pd.DataFrame, detected: pd.DataFrame, genes: list[str]) -> pd.DataFrame:
    """Reference Cq with each missing (not detected) value estimated, §4.4.

    ``D[r, k]`` = the study's mean of ``Cq_r − Cq_k`` over the samples where both are
    detected; a sample missing ``r`` gets ``mean_{k detected in it} (Cq_k + D[r, k])``.
    Detected values are kept as they are, so a sample with every reference gene is
    unchanged. NaN where a sample has no detected reference (or no pair informs D).
    """
    ref = cq[genes].where(detected[genes].astype(bool) & np.isfinite(cq[genes])).to_numpy(float)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices -> NaN, as intended
        diff = np.nanmean(ref[:, :, None] - ref[:, None, :], axis=0)  # D[r, k]
        est = np.nanmean(ref[:, None, :] + diff[None, :, :], axis=2)  # samples x r
    filled = np.where(np.isfinite(ref), ref, est)
    return pd.DataFrame(filled, index=cq.index, columns=list(genes))


def reference_normaliser(
    cq: pd.DataFrame, detected: pd.DataFrame, genes: list[str], min_genes: int = 1
) -> tuple[pd.Series, pd.Series, dict[str, list[str]]]:
    """Per-sample reference normaliser on one scale for every sample, §4.4.

    A sample with every reference gene detected gets the classic ``R_j = mean_r Cq_rj``
    (arithmetic mean of Cq = log of the geometric mean of linear quantities; NormqPCR /
    HTqPCR ``deltaCt``). A reference gene not detected in a sample is estimated from the
    sample's other reference genes and the study's mean differences between them
    (:func:`estimate_missing_references`), so the normaliser does not depend on which
    reference genes a sample has; the sample is flagged ``reference_missing:GENE``.
    With fewer than ``min_genes`` detected reference genes (capped at the number of
    genes) the normaliser is NaN, flagged ``no_normaliser`` (and
    ``too_few_reference_genes`` when some were detected).

    Returns (normaliser, flags, genes_used_per_sample = the detected reference genes).
    """
    genes = list(genes)
    missing = [g for g in genes if g not in cq.columns]
    if missing:
        raise ConfigError(f"reference genes not in the data: {missing}")
    ok = (detected[genes].astype(bool) & np.isfinite(cq[genes])).to_numpy()
    filled = estimate_missing_references(cq, detected, genes)
    enough = ok.sum(axis=1) >= min(max(int(min_genes), 1), len(genes))
    normaliser = filled.mean(axis=1, skipna=False).where(enough)
    # vectorised over samples: one flag string / gene list per distinct detection pattern
    patterns, inverse = _row_patterns(np.column_stack([ok, enough]))
    pat_used, pat_flags = [], []
    for row in patterns:
        used = [g for g, keep in zip(genes, row[:-1], strict=True) if keep]
        parts = [f"reference_missing:{g}" for g in genes if g not in used]
        if not row[-1]:
            parts.append("no_normaliser")
            if used:
                parts.append("too_few_reference_genes")
        pat_used.append(used)
        pat_flags.append(";".join(sorted(parts)))
    flags = pd.Series(
        np.array(pat_flags, dtype=object)[inverse] if pat_flags else [], index=cq.index, dtype=object
    )
    used_by: dict[str, list[str]] = {s: list(pat_used[i]) for s, i in zip(cq.index, inverse, strict=True)}
    return normaliser, flags, used_by


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
    flags = pd.Series(
        np.where(finite.any(axis=1), "", "no_normaliser").astype(object), index=cq.index, dtype=object
    )
    patterns, inverse = _row_patterns(finite)
    cols = list(values.columns)
    pat_used = [[g for g, keep in zip(cols, row, strict=True) if keep] for row in patterns]
    used = {s: list(pat_used[i]) for s, i in zip(cq.index, inverse, strict=True)}
    return normaliser, flags, used


def delta_cq(cq: pd.DataFrame, normaliser: pd.Series) -> pd.DataFrame:
    """``ΔCq_ij = Cq_ij − R_j`` (§4.4)."""
    return cq.sub(normaliser, axis=0)


def log2_nrq(
    cq: pd.DataFrame,
    efficiency: pd.Series | dict | None,
    used: dict[str, list[str]] | None,
    detected: pd.DataFrame | None = None,
    reference_cq: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Efficiency-aware log2 NRQ (Hellemans 2007, qbase convention), §4.4.

    ``log2 RQ_ij = log2(E_i)(C̄q_i − Cq_ij)`` with ``C̄q_i`` the mean Cq of gene i over
    the samples where it is detected (all samples when ``detected`` is None); imputed
    non-detects never shift a gene's mean. ``log2 NF_j = mean_{r∈used[j]} log2 RQ_rj``;
    ``reference_cq`` (reference genes with missing values estimated, see
    :func:`estimate_missing_references`) replaces the reference Cq in NF, and then every
    reference gene in its columns enters every sample's NF. ``used=None`` → no
    normalisation (NF = 1). Missing efficiencies default to 2.0.
    """
    eff = pd.Series(dict.fromkeys(cq.columns, 2.0), dtype=float)
    if efficiency is not None:
        given = pd.Series(efficiency, dtype=float).reindex(cq.columns)
        eff = given.where(np.isfinite(given) & (given > 0), eff)
    log2e = np.log2(eff)
    base = cq if detected is None else cq.where(detected.reindex_like(cq).fillna(False).astype(bool))
    means = base.mean(axis=0, skipna=True)
    log2_rq = (means - cq) * log2e
    if used is None:
        return log2_rq
    values = log2_rq.copy()
    if reference_cq is not None:
        cols = list(reference_cq.columns)
        values[cols] = (means[cols] - reference_cq[cols]) * log2e[cols]
        used = dict.fromkeys(cq.index, cols)
    # log2 NF per sample, vectorised over the samples sharing the same normaliser genes
    arr = values.to_numpy(dtype=float)
    nf = np.full(len(cq.index), np.nan)
    col_of = {g: j for j, g in enumerate(cq.columns)}
    for genes, rows in _rows_by_genes(cq.index, used):
        if not genes:
            continue
        sub = arr[rows][:, [col_of[g] for g in genes]]
        n_ok = np.isfinite(sub).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            nf[rows] = np.where(n_ok > 0, np.nansum(sub, axis=1) / n_ok, np.nan)
    return log2_rq.sub(pd.Series(nf, index=cq.index), axis=0)


def _rows_by_genes(samples: pd.Index, used: dict[str, list[str]]):
    """(genes, rows): the rows (ascending) of the samples whose normaliser uses those genes."""
    if not len(samples):
        return []
    codes, gene_sets = pd.factorize(pd.Series([tuple(used.get(s, [])) for s in samples], dtype=object))
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    return zip(gene_sets, np.split(order, bounds), strict=True)


def delta_delta_cq(dcq: pd.DataFrame, calibrator_samples: list[str]) -> pd.DataFrame:
    """``ΔΔCq = ΔCq − mean ΔCq of the calibrator samples`` per gene (§4.4; calibrator = HD)."""
    cal = [s for s in calibrator_samples if s in dcq.index]
    if not cal:
        return dcq * np.nan
    return dcq - dcq.loc[cal].mean(axis=0, skipna=True)


def _row_flags(
    sample_flags: np.ndarray, n_genes: int, multi_plate: np.ndarray, cq_missing: np.ndarray, keep: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row flag text: the sample's flags + ``multi_plate_mean`` + ``cq_missing``, sorted, ``;``-joined.

    Returned for the rows in ``keep`` as (codes, texts): row i's text is ``texts[codes[i]]``;
    ``texts`` = the distinct texts of those rows, sorted (the categories ``pd.Categorical`` gives).
    Vectorised: the text is built once per distinct (sample flags, multi_plate, cq_missing)
    combination (found by counting the combination numbers, linear in rows) and the rows get
    its number.
    """
    if len(sample_flags) == 0 or n_genes == 0:
        return np.zeros(0, dtype=np.intp), np.array([], dtype=object)
    codes, uniques = pd.factorize(pd.Series(sample_flags, dtype=object).fillna("").astype(str), sort=False)
    key = np.repeat(codes.astype(np.int32) * 4, n_genes)  # one row per sample × gene, sample-major
    key += np.asarray(multi_plate, bool) * np.int32(2)
    key += np.asarray(cq_missing, bool)
    key = key[np.asarray(keep, bool)]
    seen = np.bincount(key, minlength=4 * len(uniques)) > 0
    combos = np.flatnonzero(seen)
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
    # two combinations may give one text: number the distinct texts, sorted
    texts, text_code = np.unique(np.array(text, dtype=object), return_inverse=True)
    combo_code = np.full(len(seen), -1, dtype=np.intp)
    combo_code[combos] = np.asarray(text_code).reshape(-1)
    return combo_code[key], texts


# ---------------------------------------------------------------------------------------------
# orchestrator


def _check_words(strategies, candidates) -> None:
    if unknown := [s for s in strategies if s not in STRATEGIES]:
        raise ConfigError(f"unknown normalisation strategies {unknown}; choose from {list(STRATEGIES)}")
    if candidates not in ("reference", "reference+target"):
        raise ConfigError("candidates must be 'reference' or 'reference+target'")


def _study_efficiency(assays, genes, efficiency_scaled: bool, notes: list[str]) -> pd.Series:
    """E per gene (§3.4); 2.0 when the Cq were already scaled by log2(E) upstream."""
    if efficiency_scaled:
        notes.append("Cq already efficiency-scaled upstream: E = 2 used for stability and NRQ")
        return pd.Series(2.0, index=genes, dtype=float)
    return _gene_efficiency(assays, genes, notes)


def normalise_study(
    cells: pd.DataFrame | Callable[[], pd.DataFrame],
    samples: pd.DataFrame | None = None,
    assays: pd.DataFrame | None = None,
    options: NormalisationOptions | None = None,
    *,
    kinds=("patient", "healthy"),
    negative_variance: str = "original",
    global_mean_mode: str = "common",
    global_mean_modified: bool = False,
    efficiency_scaled: bool = False,
    on_strategy=None,
    **words,
) -> dict:
    """Choose normalisers, normalise and compare strategies (docs/methods.md §4). Parameters:

    cells:        Cells table (data-model §2), or a function returning it (then freed once the
                  matrices are built: issue 17). Minimum: ``sample, gene`` (or ``assay``), ``cq``;
                  ``role``/``kind`` are taken from ``assays``/``samples`` if absent;
                  ``detected`` defaults to "cq is a number", ``cq_imputed`` to ``cq``.
    samples:      samples sheet (``sample, kind`` and e.g. ``response``).
    assays:       assays sheet (``assay, gene, role``, optional ``efficiency``).
    options:      the ``normalisation:`` settings (:func:`normalisation_options`; None = the
                  schema's defaults), or their words as keywords (``words``, checked the same
                  way, over ``options``):
                  ``strategies`` (subset of ``reference, normfinder_pair, global_mean, none``),
                  ``reference_genes`` (fixed list for ``reference``; empty/None = geNorm optimal
                  set), ``candidates`` (``"reference"``: genes with role reference;
                  ``"reference+target"``: then only genes detected in every sample),
                  ``normfinder_group`` (samples column giving NormFinder groups; empty/None =
                  one group), ``v_cutoff`` (geNorm pairwise-variation cut-off),
                  ``min_reference_genes`` (detected genes a sample needs in a reference
                  normaliser; else its ΔCq is NaN, flag ``no_normaliser``, listed in
                  ``excluded`` with the reason).
    kinds:        sample kinds normalised (patient, healthy); controls are excluded.
    negative_variance: NormFinder rule, ``"original"`` or ``"zero"`` (see refgenes.normfinder).
    global_mean_mode / global_mean_modified: see :func:`global_mean`.
    efficiency_scaled: True when the cells' Cq were already scaled by ``log2(E)`` upstream
                  (config ``efficiency.apply``); E = 2.0 is then used here (not applied twice).
    on_strategy:  None, or ``f(strategy, long_table, wide_matrix)`` called as soon as a strategy
                  is done (e.g. to write it); long tables are then not kept (``normalised`` is
                  empty), ids categorical: one in memory at a time (issue 17: 1,000 chips).

    Stability is computed on ``Cq·log2(E)`` (efficiency-scaled Cq, §3.4; = Cq when E = 2)
    of the detected values only, over the normalised samples; samples missing a
    candidate are left out of geNorm/NormFinder and reported in ``notes``.

    Returns a dict with keys
    ``genorm`` (steps: step, n_genes, gene, M), ``genorm_mean_m``, ``genorm_v`` (n, V),
    ``normfinder`` (gene, stability, rank, group_dif, group_sd), ``normfinder_terms``,
    ``normfinder_pairs``, ``chosen`` (strategy, genes, reason), ``normalised``
    {strategy: long table with columns sample, gene, dcq, detected, cq, normaliser, ddcq,
    log2_nrq, strategy, flags}, ``matrices`` {strategy: wide dcq table, index named ``sample``
    (rows = samples, sorted), one column per gene (sorted); ``.reset_index()`` gives the
    data-model §3 matrix}, ``agreement`` (strategy_a, strategy_b, gene, n, r), ``excluded``
    (strategy, sample, kind, reason: samples without a ΔCq), ``notes`` (list of str). Any of
    genorm/normfinder tables is empty when it could not run.
    """
    o = with_words(options, normalisation_options, words)
    reference_genes = list(o.reference_genes) or None
    _check_words(o.strategies, o.candidates)
    notes: list[str] = []
    m = _study_matrices(cells, samples, assays, kinds, notes)
    genes = list(m["cq"].columns)
    eff = _study_efficiency(assays, genes, efficiency_scaled, notes)
    cand = _candidates(m, o.candidates, notes)
    y = (m["cq"][cand] * np.log2(eff[cand])).where(m["detected"][cand]) if cand else m["cq"].iloc[:, :0]
    gres = _run_genorm(y, cand, o.v_cutoff, notes)
    nres = _run_normfinder(y, cand, samples, o.normfinder_group or None, negative_variance, notes)
    choice = _choices(reference_genes, genes, gres, nres, m["ref_genes"])
    hd = list(m["cq"].index[m["kind"].reindex(m["cq"].index).to_numpy() == "healthy"])
    if not hd:
        notes.append("no healthy-donor samples: ddcq is NaN")
    settings = {
        "global_mean_mode": global_mean_mode,
        "global_mean_modified": global_mean_modified,
        "min_reference_genes": o.min_reference_genes,
    }
    per_strategy = _all_strategies(o.strategies, m, choice, settings, eff, hd, notes, on_strategy)
    return _result(gres, nres, *per_strategy, notes)


def _study_matrices(cells, samples, assays, kinds, notes) -> dict:
    """The wide matrices of the cells; ``cells`` may be a loader, whose table is then referenced
    from this frame alone and freed on return (an argument stays on its caller's stack)."""
    if callable(cells):
        cells = cells()
    return _wide_matrices(_prepare_cells(cells, samples, assays, kinds, notes))


def _all_strategies(strategies, m, choice, settings, eff, hd, notes, on_strategy=None):
    normalised, matrices, chosen_rows, excluded = {}, {}, [], []
    compact = on_strategy is not None
    for strategy in strategies:
        norm, flags, used, filled, row = _strategy_normaliser(strategy, m, choice, settings, notes)
        chosen_rows.append(row)
        table, wide, lost = _strategy_tables(strategy, m, norm, flags, used, filled, eff, hd, notes, compact)
        matrices[strategy] = wide
        if compact:
            on_strategy(strategy, table, wide)
            del table
        else:
            normalised[strategy] = table
        excluded += [
            {"strategy": strategy, "sample": smp, "kind": m["kind"].get(smp, ""), "reason": why}
            for smp, why in lost
        ]
    return chosen_rows, normalised, matrices, excluded


def _wide_matrices(long: pd.DataFrame) -> dict:
    """Wide samples x genes matrices (rows and columns sorted) from the unique sample x gene rows.

    A gene absent from a sample's plate: not detected, Cq NaN, not ``present``.
    """
    s_codes, s_index = pd.factorize(long["sample"], sort=True)  # categorical ids: by their codes
    g_codes, g_index = pd.factorize(long["gene"], sort=True)
    shape = (len(s_index), len(g_index))
    rows = pd.Index(np.asarray(s_index, dtype=object), name="sample")
    cols = pd.Index(np.asarray(g_index, dtype=object), name="gene")

    def wide(values, fill, dtype):
        arr = np.full(shape, fill, dtype=dtype)
        arr[s_codes, g_codes] = values
        return pd.DataFrame(arr, index=rows, columns=cols)

    first_gene = _unique_codes(g_codes, len(cols))[1]  # each gene's and sample's first row
    first_sample = _unique_codes(s_codes, len(rows))[1]
    roles = pd.Series(long["role"].iloc[first_gene].to_numpy(object), index=cols, name="role")
    return {
        "cq": wide(long["cq_imputed"].to_numpy(float), np.nan, float),
        "raw": wide(long["cq"].to_numpy(float), np.nan, float),
        "detected": wide(long["detected"].to_numpy(bool), False, bool),
        "multi_plate": wide(long["multi_plate"].to_numpy(bool), False, bool),
        "present": wide(True, False, bool),
        "roles": roles,
        "kind": pd.Series(long["kind"].iloc[first_sample].to_numpy(object), index=rows, name="kind"),
        "ref_genes": [g for g in cols if roles[g] == "reference"],
    }


def _strategy_normaliser(strategy: str, m: dict, choice: dict, settings: dict, notes: list[str]):
    """(normaliser, flags, used genes per sample, filled reference Cq or None, chosen row) of one strategy."""
    cq, detected, genes = m["cq"], m["detected"], list(m["cq"].columns)
    if strategy in ("reference", "normfinder_pair"):
        chosen, reason = choice[strategy]
        if not chosen:
            notes.append(f"{strategy}: no reference genes; normaliser NaN")
            return (
                pd.Series(np.nan, index=cq.index),
                pd.Series("no_normaliser", index=cq.index, dtype=object),
                {s: [] for s in cq.index},
                None,
                {"strategy": strategy, "genes": "", "reason": reason},
            )
        norm, flags, used = reference_normaliser(cq, detected, chosen, settings["min_reference_genes"])
        filled = estimate_missing_references(cq, detected, chosen)
        return norm, flags, used, filled, {"strategy": strategy, "genes": ";".join(chosen), "reason": reason}
    if strategy == "global_mean":
        mode, modified = settings["global_mean_mode"], settings["global_mean_modified"]
        eligible = [g for g in genes if m["roles"][g] in ("target", "reference")]
        norm, flags, used = global_mean(cq, detected, genes=eligible, mode=mode, modified=modified)
        used_genes = sorted(set().union(*used.values())) if used else []
        reason = f"global mean ({'modified, ' if modified else ''}{mode}): " + (
            f"{len(used_genes)} genes detected in every sample"
            if mode == "common"
            else "genes detected per sample"
        )
        if mode == "common" and len(used_genes) < 10:
            notes.append(
                f"global_mean: only {len(used_genes)} genes detected in every sample; "
                "treat as a sensitivity analysis (§4.3 caveat)"
            )
        return (
            norm,
            flags,
            used,
            None,
            {"strategy": strategy, "genes": ";".join(used_genes), "reason": reason},
        )
    return (
        pd.Series(0.0, index=cq.index),
        pd.Series("", index=cq.index, dtype=object),
        None,
        None,
        {"strategy": "none", "genes": "", "reason": "no normalisation: dcq = cq"},
    )


def _strategy_tables(strategy, m, norm, flags, used, filled, eff, hd, notes, compact=False):
    """Long table (data-model §3) and wide ΔCq matrix of one strategy, and the samples without ΔCq.

    ``compact``: sample, gene, strategy and flags as categorical columns (same values and
    the same TSV bytes, a fraction of the memory of object columns)."""
    cq, genes = m["cq"], list(m["cq"].columns)
    dcq = delta_cq(cq, norm)
    ddcq = delta_delta_cq(dcq, hd)
    nrq = log2_nrq(cq, eff, used, m["detected"], filled)
    nrq = nrq.mul(np.where(np.isfinite(norm.to_numpy(float)), 1.0, np.nan), axis=0)
    flag_text = flags.reindex(cq.index).fillna("").astype(str)
    has_none = flag_text.str.contains("no_normaliser", regex=False).to_numpy()
    lost = [(s, _lost_reason(f)) for s, f in zip(cq.index[has_none], flag_text[has_none], strict=True)]
    if lost:
        notes.append(
            f"{strategy}: no normaliser (dcq NaN) for {len(lost)} sample(s): " + ", ".join(s for s, _ in lost)
        )
    part = list(cq.index[(flag_text != "").to_numpy() & ~has_none])
    if part:
        notes.append(
            f"{strategy}: missing reference gene(s) estimated from the sample's other reference genes "
            "for: " + ", ".join(part)
        )
    n, n_samples = len(genes), len(cq.index)
    # keep every sample × gene present in the cells (also when Cq is missing); rows are
    # sample-major over the sorted samples and genes: already in (sample, gene) order. Each
    # column is cut to those rows as it is built: one long table in memory, never a full copy.
    keep = m["present"].to_numpy().ravel()
    no_cq = ~np.isfinite(cq.to_numpy(dtype=float).ravel())
    flag_codes, flag_texts = _row_flags(
        flags.to_numpy(dtype=object), n, m["multi_plate"].to_numpy().ravel(), no_cq, keep
    )
    table = pd.DataFrame(
        {
            "sample": _id_column(np.repeat(np.arange(n_samples, dtype=np.int32), n)[keep], cq.index, compact),
            "gene": _id_column(
                np.tile(np.arange(n, dtype=np.int32), n_samples)[keep], pd.Index(genes), compact
            ),
            "dcq": dcq.to_numpy().ravel()[keep],
            "detected": m["detected"].to_numpy().ravel()[keep].astype(bool),
            "cq": m["raw"].to_numpy().ravel()[keep],
            "normaliser": np.repeat(norm.to_numpy(dtype=float), n)[keep],
            "ddcq": ddcq.to_numpy().ravel()[keep],
            "log2_nrq": nrq.to_numpy().ravel()[keep],
            "strategy": _id_column(np.zeros(int(keep.sum()), np.int8), pd.Index([strategy]), compact),
            "flags": _id_column(flag_codes, pd.Index(flag_texts, dtype=object), compact),
        },
        columns=LONG_COLUMNS,
        copy=False,  # the column arrays as built: no second copy into 2-D blocks
    )
    wide = dcq.copy()
    wide.index.name = "sample"
    wide.columns.name = None
    return table, wide, lost


def _id_column(codes: np.ndarray, labels: pd.Index, compact: bool):
    """An id column (sample, gene, strategy) from integer codes: categorical or object values."""
    if compact:
        return pd.Categorical.from_codes(codes, categories=pd.Index(labels, dtype=object))
    return np.asarray(labels, dtype=object)[codes]


def _lost_reason(flags: str) -> str:
    if "too_few_reference_genes" in flags:
        return "too few detected reference genes: " + flags
    return (
        "no detected reference gene: " + flags if "reference_missing" in flags else "no normaliser: " + flags
    )


def _result(gres, nres, chosen_rows, normalised, matrices, excluded, notes) -> dict:
    empty_steps = pd.DataFrame(columns=["step", "n_genes", "gene", "M"])
    return {
        "genorm": gres.steps if gres is not None else empty_steps,
        "genorm_mean_m": (
            gres.mean_m
            if gres is not None
            else pd.DataFrame(columns=["step", "n_genes", "mean_M", "excluded"])
        ),
        "genorm_v": gres.pairwise_v if gres is not None else pd.DataFrame(columns=["n", "V"]),
        "normfinder": (
            nres.table
            if nres is not None
            else pd.DataFrame(columns=["gene", "stability", "rank", "group_dif", "group_sd"])
        ),
        "normfinder_terms": nres.terms if nres is not None else pd.DataFrame(),
        "normfinder_pairs": nres.pairs
        if nres is not None
        else pd.DataFrame(columns=["gene_a", "gene_b", "stability"]),
        "chosen": pd.DataFrame(chosen_rows, columns=["strategy", "genes", "reason"]),
        "normalised": normalised,
        "matrices": matrices,
        "agreement": strategy_agreement(matrices),
        "excluded": pd.DataFrame(excluded, columns=["strategy", "sample", "kind", "reason"]),
        "notes": notes,
    }
