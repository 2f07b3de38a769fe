"""Reference-gene stability: geNorm (docs/methods.md §4.1) and NormFinder (§4.2).

Both methods take a samples × genes matrix of **log2-scale** values (§4 preamble):
Cq used as is (E = 2; the sign does not matter because only differences and SDs
enter), efficiency-scaled Cq (``Cq·log2 E``, §3.4), or ``log2`` of linear relative
quantities. Never feed linear quantities directly.

Both methods need complete data: samples with a missing value in any candidate
gene are dropped and returned in ``dropped_samples`` so the caller can report them.

Formulas are restated from docs/methods.md; no code was copied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd

V_CUTOFF = 0.15  # §4.1, Vandesompele 2002: "below which the inclusion of an additional gene is not required"
PAIR_STABILITY_LIMIT = 0.25  # §4.2, pStabLim of the original NormFinder script
ONE_GROUP_PAIR_MARGIN = 0.1  # §4.2, no-group pair candidates: sigma_i < min sigma + 0.1


# ---------------------------------------------------------------------------------------------
# shared helpers


def _as_matrix(matrix) -> pd.DataFrame:
    """Return a float DataFrame (samples × genes) with string labels."""
    df = pd.DataFrame(matrix).copy()
    df.columns = [str(c) for c in df.columns]
    df.index = [str(i) for i in df.index]
    if df.columns.duplicated().any():
        dup = sorted(set(df.columns[df.columns.duplicated()]))
        raise ValueError(f"duplicated gene columns: {dup}")
    return df.apply(pd.to_numeric, errors="coerce").astype(float)


def complete_samples(matrix: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Drop samples (rows) with any missing/non-finite value; return (complete, dropped)."""
    values = matrix.to_numpy(dtype=float)
    ok = np.isfinite(values).all(axis=1)
    dropped = [str(s) for s in matrix.index[~ok]]
    return matrix.loc[ok], dropped


# ---------------------------------------------------------------------------------------------
# geNorm (§4.1)


def genorm_m(matrix) -> pd.Series:
    """geNorm stability M for every gene of a complete log2-scale matrix (§4.1).

    ``V_jk = SD_i(y_ij − y_ik)`` (sample SD, n − 1); ``M_j = mean_{k≠j} V_jk``.
    """
    df = _as_matrix(matrix)
    y = df.to_numpy(dtype=float)
    k = y.shape[1]
    if k < 2:
        raise ValueError("geNorm needs at least 2 genes")
    if y.shape[0] < 2:
        raise ValueError("geNorm needs at least 2 complete samples")
    if not np.isfinite(y).all():
        raise ValueError("geNorm needs complete data (no missing values)")
    v = np.zeros((k, k))
    for j, l in combinations(range(k), 2):
        v[j, l] = v[l, j] = np.std(y[:, j] - y[:, l], ddof=1)
    m = v.sum(axis=1) / (k - 1)
    return pd.Series(m, index=df.columns, name="M")


@dataclass
class GenormResult:
    """Result of :func:`genorm` (§4.1).

    steps:        ``step, n_genes, gene, M`` — every gene at every exclusion step
                  (step 1 = all genes; the last step holds the final pair, both with the final M).
    mean_m:       ``step, n_genes, mean_M, excluded`` (gene dropped after that step; "" at the end).
    pairwise_v:   ``n, V`` with ``V = V_{n/n+1}``, n = 2 … k − 1.
    final_pair:   the two genes that cannot be ranked against each other.
    final_m:      their common M.
    ranking:      genes best first (the final pair first, in column order, then in reverse exclusion order).
    optimal_n:    number of reference genes recommended (see :func:`genorm`).
    optimal_genes: ``ranking[:optimal_n]``.
    optimal_reason: why ``optimal_n`` was chosen (text for reports).
    dropped_samples: samples removed because a candidate gene was missing.
    """

    steps: pd.DataFrame
    mean_m: pd.DataFrame
    pairwise_v: pd.DataFrame
    final_pair: tuple[str, str]
    final_m: float
    ranking: list[str]
    optimal_n: int
    optimal_genes: list[str]
    optimal_reason: str
    v_cutoff: float
    dropped_samples: list[str] = field(default_factory=list)
    n_samples: int = 0


def genorm(matrix, *, v_cutoff: float = V_CUTOFF) -> GenormResult:
    """Stepwise geNorm ranking and pairwise variation (docs/methods.md §4.1).

    Parameters
    ----------
    matrix:
        samples × genes, log2 scale (Cq is fine). Samples with a missing value in any
        gene are dropped (geNorm needs complete data) and listed in ``dropped_samples``.
    v_cutoff:
        pairwise-variation cut-off (0.15, Vandesompele 2002).

    Stepwise exclusion: compute M on the current set, drop the gene with the largest M
    (ties: the first in column order), repeat until two genes remain.
    ``NF_n`` = mean of the log2 values of the n best genes (log2 of the geometric mean);
    ``V_{n/n+1} = SD_i(NF_n − NF_{n+1})``.

    ``optimal_n`` = smallest n ≥ 2 with ``V_{n/n+1} < v_cutoff``. If no V is below the
    cut-off, **all candidate genes** are recommended (decision for this project: the
    data then say that every additional gene still changes the normaliser, so the most
    complete normaliser is the safest; the reason is reported in ``optimal_reason``).
    With exactly two genes there is no V and both are used.
    """
    df = _as_matrix(matrix)
    complete, dropped = complete_samples(df)
    if complete.shape[1] < 2:
        raise ValueError("geNorm needs at least 2 candidate genes")
    if complete.shape[0] < 2:
        raise ValueError(
            f"geNorm needs at least 2 samples with all candidate genes; {len(dropped)} dropped for missing "
            f"values"
        )

    step_rows, mean_rows, ranking = _genorm_exclusion(complete)
    final_pair = (ranking[0], ranking[1])
    final_m = float(genorm_m(complete[list(final_pair)]).iloc[0])
    pairwise_v = _pairwise_variation(complete, ranking)
    optimal_n, reason = _optimal_number(pairwise_v, ranking, v_cutoff)
    return GenormResult(
        steps=pd.DataFrame(step_rows, columns=["step", "n_genes", "gene", "M"]),
        mean_m=pd.DataFrame(mean_rows, columns=["step", "n_genes", "mean_M", "excluded"]),
        pairwise_v=pairwise_v,
        final_pair=final_pair,
        final_m=final_m,
        ranking=ranking,
        optimal_n=optimal_n,
        optimal_genes=ranking[:optimal_n],
        optimal_reason=reason,
        v_cutoff=v_cutoff,
        dropped_samples=dropped,
        n_samples=int(complete.shape[0]),
    )


def _genorm_exclusion(complete: pd.DataFrame) -> tuple[list[dict], list[dict], list[str]]:
    """Stepwise exclusion (docs/methods.md §4.1): M on the current set, drop the gene with the
    largest M (ties: the first in column order), until two genes remain.

    Returns the per-step M rows, the per-step mean M rows and the ranking (final pair first,
    then the excluded genes, last excluded first).
    """
    current = list(complete.columns)
    step_rows: list[dict] = []
    mean_rows: list[dict] = []
    excluded: list[str] = []
    step = 0
    while True:
        step += 1
        m = genorm_m(complete[current])
        for gene in current:
            step_rows.append({"step": step, "n_genes": len(current), "gene": gene, "M": float(m[gene])})
        if len(current) == 2:
            mean_rows.append({"step": step, "n_genes": 2, "mean_M": float(m.mean()), "excluded": ""})
            break
        worst = current[int(np.argmax(m.to_numpy()))]
        mean_rows.append(
            {"step": step, "n_genes": len(current), "mean_M": float(m.mean()), "excluded": worst}
        )
        excluded.append(worst)
        current = [g for g in current if g != worst]
    return step_rows, mean_rows, current + excluded[::-1]


def _pairwise_variation(complete: pd.DataFrame, ranking: list[str]) -> pd.DataFrame:
    """``V_{n/n+1} = SD_i(NF_n − NF_{n+1})`` with ``NF_n`` the mean log2 value of the n best
    genes (docs/methods.md §4.1); from the ranking, identical to computing it at each step."""
    y = complete[ranking].to_numpy(dtype=float)
    v_rows = []
    for n in range(2, len(ranking)):
        nf_n = y[:, :n].mean(axis=1)
        nf_n1 = y[:, : n + 1].mean(axis=1)
        v_rows.append({"n": n, "V": float(np.std(nf_n - nf_n1, ddof=1))})
    return pd.DataFrame(v_rows, columns=["n", "V"])


def _optimal_number(pairwise_v: pd.DataFrame, ranking: list[str], v_cutoff: float) -> tuple[int, str]:
    """Smallest n ≥ 2 with ``V_{n/n+1} < v_cutoff``, else all candidate genes
    (docs/methods.md §4.1); returns (n, the reason in words)."""
    below = pairwise_v.loc[pairwise_v["V"] < v_cutoff, "n"]
    if len(ranking) == 2:
        return 2, "only two candidate genes: both used (no pairwise variation)"
    if len(below):
        optimal_n = int(below.min())
        v = float(pairwise_v.loc[pairwise_v["n"] == optimal_n, "V"].iloc[0])
        return optimal_n, f"geNorm: V{optimal_n}/{optimal_n + 1} = {v:.4f} < {v_cutoff}"
    n = len(ranking)
    return n, f"geNorm: no V_n/n+1 below {v_cutoff}; all {n} candidate genes used"


# ---------------------------------------------------------------------------------------------
# NormFinder (§4.2)


def _intragroup_variance(y: np.ndarray, negative_variance: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eq. (9) for one group: returns (s², raw σ̂², σ̂² after the negative-variance rule).

    ``y`` is n_g samples × k genes.
    """
    n, k = y.shape
    gene_mean = y.mean(axis=0)  # ȳ_ig
    sample_mean = y.mean(axis=1)  # ȳ_·j over all k genes
    grand = y.mean()  # ȳ_·g
    r = y - gene_mean[None, :] - sample_mean[:, None] + grand
    s2 = (r**2).sum(axis=0) / (n - 1)
    raw = (s2 - s2.sum() / (k * (k - 1))) / (1.0 - 2.0 / k)
    sigma2 = raw.copy()
    negative = raw < 0
    if negative.any():
        if negative_variance == "zero":
            sigma2[negative] = 0.0
        else:  # "original": min over the other genes of Var(y_i − y_l) / 4
            for i in np.flatnonzero(negative):
                others = [np.var(y[:, i] - y[:, l], ddof=1) for l in range(k) if l != i]
                sigma2[i] = min(others) / 4.0
    return s2, raw, sigma2


@dataclass
class NormfinderResult:
    """Result of :func:`normfinder` (§4.2).

    table:  ``gene, stability, rank, group_dif, group_sd`` (stability = ρ with groups,
            σ̂ without; rank 1 = most stable; group_dif/group_sd NaN without groups).
    terms:  long per gene × group: ``gene, group, n, s2, sigma2_raw, sigma2, d, v, d_hat, w_hat, rho``
            (without groups d, v, d_hat, w_hat are NaN and rho = σ̂).
    gamma2: γ² (NaN without groups).
    pairs:  ``gene_a, gene_b, stability`` for all candidate pairs, best first.
    best_pair, best_pair_stability: the recommended pair.
    candidates: genes considered for the pair.
    """

    table: pd.DataFrame
    terms: pd.DataFrame
    gamma2: float
    pairs: pd.DataFrame
    best_pair: tuple[str, str]
    best_pair_stability: float
    candidates: list[str]
    groups: list[str]
    negative_variance: str
    dropped_samples: list[str] = field(default_factory=list)
    n_samples: int = 0


def normfinder(
    matrix,
    groups=None,
    *,
    negative_variance: str = "original",
    pair_limit: float = PAIR_STABILITY_LIMIT,
) -> NormfinderResult:
    """NormFinder stability (Andersen et al. 2004), docs/methods.md §4.2.

    Parameters
    ----------
    matrix:
        samples × genes, log2 scale (Cq as is, or log2 of linear quantities). Needs
        k ≥ 3 genes. Samples with a missing value (or missing group) are dropped and
        listed in ``dropped_samples``.
    groups:
        one label per sample (sequence aligned with the rows, or a Series indexed by
        sample), or None for the one-group model. Every group needs ≥ 2 samples.
    negative_variance:
        ``"original"`` (default, canonical per §9): a negative σ̂²_ig from eq. (9) is
        replaced by ``min_{l≠i} Var_{j∈g}(y_ij − y_lj) / 4`` as in the authors' R script
        (version 23/08-2014). ``"zero"``: NormqPCR ``stabMeasureRho`` rule, σ̂² = 0.
        The two rules give different ρ when negatives occur.
    pair_limit:
        pair candidates are genes with ρ < ``pair_limit`` (0.25), or the 4 best genes
        if fewer than 4 qualify (original rule; all genes when k ≤ 4).

    With groups: ``d_ig``, ``v_ig = σ̂²_ig/n_g``, γ² (eq. 10), shrunken ``d̂``, ``ŵ`` and
    ``ρ_i = mean_g(|d̂_ig| + sqrt(ŵ_ig))`` (eq. 11); ``GroupDif = 2·max_g|d_ig|``,
    ``GroupSD = sqrt(Σ_g (n_g−1)σ̂²_ig/(N−G))``. Best pair:
    ``mean_g(|d̂_ig + d̂_lg|/2·sqrt(k/(k−2)) + sqrt(ŵ_ig + ŵ_lg)/2)``.

    Without groups: stability = σ̂_i from eq. (9) over all samples. Pair candidates:
    σ_i < min σ + 0.1; pair value = σ̂ of the averaged pair after replacing the two
    genes by their mean (k − 1 genes). Deviation from the original script: its
    one-group helper sums over the global data matrix instead of its argument, so its
    one-group *pair* values are unreliable; here the pair value is computed as the
    method describes (single-gene σ are identical to the original).
    """
    if negative_variance not in ("original", "zero"):
        raise ValueError("negative_variance must be 'original' or 'zero'")
    df = _as_matrix(matrix)
    labels = _group_labels(df, groups)
    complete, dropped = complete_samples(df)
    if labels is not None:
        # labels are None exactly where missing (_group_labels): no lookup per sample
        missing_group = list(complete.index[labels.loc[complete.index].isna().to_numpy()])
        dropped = dropped + missing_group
        complete = complete.drop(index=missing_group)
    if complete.shape[1] < 3:
        raise ValueError("NormFinder needs at least 3 candidate genes")
    if labels is None:
        return _normfinder_one_group(complete, negative_variance, dropped)
    lab = labels.loc[complete.index].astype(str)
    group_names = _checked_groups(lab)
    if len(group_names) < 2:
        return _normfinder_one_group(complete, negative_variance, dropped)

    terms = _grouped_terms(complete, lab, group_names, negative_variance)
    genes = list(complete.columns)
    stability = terms["rho"].mean(axis=1)
    table = pd.DataFrame({"gene": genes, "stability": stability, "group_dif": terms["group_dif"]})
    table = _rank(table.assign(group_sd=terms["group_sd"]))
    candidates = _pair_candidates(table, pair_limit)
    pairs = _grouped_pairs(candidates, genes, terms["d_hat"], terms["w_hat"])
    best = pairs.iloc[0]
    return NormfinderResult(
        table=table,
        terms=_terms_frame(genes, group_names, terms),
        gamma2=terms["gamma2"],
        pairs=pairs,
        best_pair=(str(best["gene_a"]), str(best["gene_b"])),
        best_pair_stability=float(best["stability"]),
        candidates=candidates,
        groups=group_names,
        negative_variance=negative_variance,
        dropped_samples=dropped,
        n_samples=complete.shape[0],
    )


def _group_labels(df: pd.DataFrame, groups) -> pd.Series | None:
    """One group label per sample of ``df`` (None where missing), or None for the one-group
    model (docs/methods.md §4.2)."""
    if groups is None:
        return None
    if isinstance(groups, pd.Series):
        g = groups.copy()
        g.index = [str(i) for i in g.index]
        g = g.reindex(df.index)
    else:
        g = pd.Series(list(groups), index=df.index)
        if len(g) != len(df):
            raise ValueError("groups must have one label per sample")
    return g.astype(object).where(g.notna(), None)


def _checked_groups(lab: pd.Series) -> list[str]:
    """The sorted group names; every group needs ≥ 2 complete samples (docs/methods.md §4.2)."""
    group_names = sorted(lab.unique())
    for name in group_names:
        if (lab == name).sum() < 2:
            raise ValueError(f"NormFinder group {name!r} has fewer than 2 complete samples")
    return group_names


def _grouped_terms(
    complete: pd.DataFrame, lab: pd.Series, group_names: list[str], negative_variance: str
) -> dict:
    """Genes × groups arrays of the grouped model (docs/methods.md §4.2): intragroup variance
    (eq. 9), ``d_ig``, ``v_ig = σ̂²_ig/n_g``, γ² (eq. 10), shrunken ``d̂`` and ``ŵ``, and
    ``ρ_ig = |d̂_ig| + sqrt(ŵ_ig)`` (eq. 11); plus GroupDif and GroupSD per gene."""
    k, G, N = complete.shape[1], len(group_names), complete.shape[0]
    y_all = complete.to_numpy(dtype=float)
    n_g = np.array([(lab == name).sum() for name in group_names], dtype=float)
    s2, raw, sigma2, means = (np.zeros((k, G)) for _ in range(4))  # means: ȳ_ig
    for gi, name in enumerate(group_names):
        y = y_all[(lab == name).to_numpy()]
        s2[:, gi], raw[:, gi], sigma2[:, gi] = _intragroup_variance(y, negative_variance)
        means[:, gi] = y.mean(axis=0)
    d = means - means.mean(axis=1, keepdims=True) - means.mean(axis=0, keepdims=True) + means.mean()
    v = sigma2 / n_g[None, :]
    gamma2 = max(0.0, float((d**2).sum() / ((G - 1) * (k - 1)) - v.mean()))
    denom = gamma2 + v
    with np.errstate(invalid="ignore", divide="ignore"):
        shrink = np.where(denom > 0, gamma2 / denom, 0.0)
        d_hat = d * shrink
        w_hat = v + np.where(denom > 0, gamma2 * v / denom, 0.0)
    return {
        "n": np.broadcast_to(n_g.astype(int)[None, :], (k, G)),
        "s2": s2,
        "sigma2_raw": raw,
        "sigma2": sigma2,
        "d": d,
        "v": v,
        "d_hat": d_hat,
        "w_hat": w_hat,
        "rho": np.abs(d_hat) + np.sqrt(w_hat),
        "gamma2": gamma2,
        "group_dif": 2.0 * np.abs(d).max(axis=1),
        "group_sd": np.sqrt((sigma2 * (n_g - 1)[None, :]).sum(axis=1) / (N - G)),
    }


TERM_COLUMNS = ["n", "s2", "sigma2_raw", "sigma2", "d", "v", "d_hat", "w_hat", "rho"]


def _terms_frame(genes: list[str], group_names: list[str], terms: dict) -> pd.DataFrame:
    """The long gene × group table of the grouped terms, genes in column order, groups sorted."""
    frame = pd.DataFrame(
        {"gene": np.repeat(genes, len(group_names)), "group": np.tile(group_names, len(genes))}
    ).astype(object)
    for column in TERM_COLUMNS:
        frame[column] = np.asarray(terms[column]).ravel()
    return frame


def _grouped_pairs(
    candidates: list[str], genes: list[str], d_hat: np.ndarray, w_hat: np.ndarray
) -> pd.DataFrame:
    """Stability of the average of each candidate pair (docs/methods.md §4.2):
    ``mean_g(|d̂_ig + d̂_lg|/2·sqrt(k/(k−2)) + sqrt(ŵ_ig + ŵ_lg)/2)``, best first."""
    k = len(genes)
    idx = {g: i for i, g in enumerate(genes)}
    pair_rows = []
    for a, b in combinations(candidates, 2):
        i, l = idx[a], idx[b]
        val = (
            np.abs(d_hat[i] + d_hat[l]) / 2.0 * np.sqrt(k / (k - 2.0)) + np.sqrt(w_hat[i] + w_hat[l]) / 2.0
        ).mean()
        pair_rows.append({"gene_a": a, "gene_b": b, "stability": float(val)})
    return _sort_pairs(pd.DataFrame(pair_rows, columns=["gene_a", "gene_b", "stability"]))


def _rank(table: pd.DataFrame) -> pd.DataFrame:
    order = np.argsort(table["stability"].to_numpy(), kind="stable")
    table = table.iloc[order].reset_index(drop=True)
    table.insert(2, "rank", np.arange(1, len(table) + 1))
    return table


def _sort_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    order = np.argsort(pairs["stability"].to_numpy(), kind="stable")
    return pairs.iloc[order].reset_index(drop=True)


def _pair_candidates(table: pd.DataFrame, limit: float) -> list[str]:
    """Original rule: ρ < limit, or the 4 best genes if fewer than 4 qualify (table is ranked)."""
    below = table.loc[table["stability"] < limit, "gene"].tolist()
    if len(below) < 4:
        below = table["gene"].head(4).tolist()
    return below


def _normfinder_one_group(
    complete: pd.DataFrame, negative_variance: str, dropped: list[str]
) -> NormfinderResult:
    genes = list(complete.columns)
    y = complete.to_numpy(dtype=float)
    N = y.shape[0]
    s2, raw, sigma2 = _intragroup_variance(y, negative_variance)
    sigma = np.sqrt(sigma2)
    table = pd.DataFrame({"gene": genes, "stability": sigma, "group_dif": np.nan, "group_sd": np.nan})
    table = _rank(table)
    terms = pd.DataFrame(
        {
            "gene": genes,
            "group": "all",
            "n": N,
            "s2": s2,
            "sigma2_raw": raw,
            "sigma2": sigma2,
            "d": np.nan,
            "v": np.nan,
            "d_hat": np.nan,
            "w_hat": np.nan,
            "rho": sigma,
        }
    )
    # pair candidates: sigma_i < min sigma + 0.1 (at least the two best)
    candidates = table.loc[
        table["stability"] < table["stability"].min() + ONE_GROUP_PAIR_MARGIN, "gene"
    ].tolist()
    if len(candidates) < 2:
        candidates = table["gene"].head(2).tolist()
    pair_rows = []
    k = len(genes)
    for a, b in combinations(candidates, 2):
        if k - 1 < 3:
            # eq. (9) needs ≥ 3 columns; with k = 3 the averaged pair leaves 2 genes
            val = np.nan
        else:
            rest = [g for g in genes if g not in (a, b)]
            merged = np.column_stack(
                [complete[rest].to_numpy(dtype=float), complete[[a, b]].to_numpy().mean(axis=1)]
            )
            _, _, s2m = _intragroup_variance(merged, negative_variance)
            val = float(np.sqrt(s2m[-1]))
        pair_rows.append({"gene_a": a, "gene_b": b, "stability": val})
    pairs = _sort_pairs(pd.DataFrame(pair_rows, columns=["gene_a", "gene_b", "stability"]))
    best = pairs.iloc[0]
    return NormfinderResult(
        table=table,
        terms=terms,
        gamma2=float("nan"),
        pairs=pairs,
        best_pair=(str(best["gene_a"]), str(best["gene_b"])),
        best_pair_stability=float(best["stability"]),
        candidates=candidates,
        groups=["all"],
        negative_variance=negative_variance,
        dropped_samples=dropped,
        n_samples=N,
    )


def normfinder_pair_value(result: NormfinderResult, gene_a: str, gene_b: str) -> float:
    """Stability of the average of two genes from a grouped NormFinder result (§4.2).

    ``mean_g(|d̂_ag + d̂_bg|/2·sqrt(k/(k−2)) + sqrt(ŵ_ag + ŵ_bg)/2)`` for any two genes
    (not only the pair candidates); NaN for a one-group result.
    """
    if len(result.groups) < 2:
        return float("nan")
    k = result.table.shape[0]
    t = result.terms.set_index(["gene", "group"])
    vals = []
    for g in result.groups:
        a, b = t.loc[(gene_a, g)], t.loc[(gene_b, g)]
        vals.append(
            abs(a["d_hat"] + b["d_hat"]) / 2.0 * np.sqrt(k / (k - 2.0))
            + np.sqrt(a["w_hat"] + b["w_hat"]) / 2.0
        )
    return float(np.mean(vals))
