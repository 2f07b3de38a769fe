"""Many small elastic-net logistic regressions at once (docs/methods.md §7, "solver").

The classifier stage fits the same small model (n ≈ 36 training samples, k ≤ 50 genes)
thousands of times: 3 inner folds × grid per outer fold, and 5 folds per permutation.
Fitted one by one with scikit-learn's ``saga`` most of the time went to input checks and
per-call overhead, not to the optimisation.  Here a batch of problems is solved together
with numpy:

    minimise over (w, b):  C Σ_i s_i log(1 + exp(−t_i (z_i·w + b)))
                           + (1 − ρ)/2 ‖w‖² + ρ ‖w‖₁          (intercept b not penalised)

— exactly scikit-learn's ``LogisticRegression(l1_ratio=ρ, C=C)`` objective with sample
weights s (class-balanced: s_i = n / (2 n_class)); t_i = ±1.  Solver: FISTA (accelerated
proximal gradient) with step 1/L, L = C/4 · λ_max([Z 1]ᵀ S [Z 1]) + (1 − ρ), and
gradient-based adaptive restart, run per problem until the gradient mapping
‖L (x − prox(x − ∇f/L))‖_∞ < ``tol`` (default 1e-7): the optimum to ~1e-7, tighter than
``saga`` at its default tol 1e-4 (tested against saga at tol 1e-12).

Padding: rows with weight 0 and columns of zeros change nothing (their gradient is 0),
so problems of different n and k share one array, padded to the batch's largest n and
k.  Results do not depend on how many problems are batched together except through BLAS
rounding (the width of the padding changes the last bit of a dot product, ≤ 3e-16 in a
probability on the example, never a written digit); callers batch in chunks whose
composition is fixed by the data, not by ``n_jobs``, so outputs are identical for any
number of jobs.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, ndtri

TOL = 1e-7
MAX_ITER = 20000


def lipschitz(Z: np.ndarray, Cs: np.ndarray, l2: np.ndarray) -> np.ndarray:
    """L per problem: C/4 · λ_max of the weighted Gram matrix (intercept column included) + l2."""
    A = np.concatenate([Z, np.ones(Z.shape[:2] + (1,))], axis=2) * np.sqrt(Cs)[:, :, None]
    gram = A @ A.transpose(0, 2, 1) if A.shape[1] <= A.shape[2] else A.transpose(0, 2, 1) @ A
    return 0.25 * np.linalg.eigvalsh(gram)[:, -1] + l2


def fit_enet_logistic(
    Z: np.ndarray,
    t: np.ndarray,
    s: np.ndarray,
    C: np.ndarray,
    l1_ratio: np.ndarray,
    tol: float = TOL,
    max_iter: int = MAX_ITER,
) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients (B, p) and intercepts (B,) of B elastic-net logistic regressions.

    ``Z`` (B, n, p) design, ``t`` (B, n) labels ±1, ``s`` (B, n) sample weights (0 = padding),
    ``C`` and ``l1_ratio`` (B,).  See the module docstring for the objective.
    """
    B, _, p = Z.shape
    Cs = np.asarray(C, float)[:, None] * s
    l1 = np.asarray(l1_ratio, float)
    l2 = 1.0 - l1
    L = lipschitz(Z, Cs, l2)
    w_out, b_out = np.zeros((B, p)), np.zeros(B)
    # working arrays of the problems still running, compacted only when some converge
    # (gathering Z on every iteration cost more than the iteration's arithmetic)
    active = np.arange(B)
    Za, ta, Ca, La, l1a, l2a = Z, t, Cs, L, l1, l2
    w, b = np.zeros((B, p)), np.zeros(B)
    vw, vb, mom = w.copy(), b.copy(), np.ones(B)
    for _ in range(max_iter):
        margin = ta * ((Za @ vw[:, :, None])[:, :, 0] + vb[:, None])
        r = -Ca * ta * expit(-margin)
        gw = (r[:, None, :] @ Za)[:, 0, :] + l2a[:, None] * vw
        gb = r.sum(axis=1)
        step = 1.0 / La
        uw = vw - step[:, None] * gw
        nw = np.sign(uw) * np.maximum(np.abs(uw) - (l1a * step)[:, None], 0.0)
        nb = vb - step * gb
        gap = np.maximum(np.abs(nw - vw).max(axis=1), np.abs(nb - vb)) * La
        # adaptive restart: momentum reset where it points uphill
        restart = ((vw - nw) * (nw - w)).sum(axis=1) + (vb - nb) * (nb - b) > 0
        m_old = np.where(restart, 1.0, mom)
        m_new = (1.0 + np.sqrt(1.0 + 4.0 * m_old**2)) / 2.0
        beta = np.where(restart, 0.0, (m_old - 1.0) / m_new)
        vw = nw + beta[:, None] * (nw - w)
        vb = nb + beta * (nb - b)
        w, b, mom = nw, nb, m_new
        done = gap < tol
        if done.any():
            w_out[active[done]], b_out[active[done]] = nw[done], nb[done]
            keep = ~done
            if not keep.any():
                break
            active = active[keep]
            Za, ta, Ca, La, l1a, l2a = Za[keep], ta[keep], Ca[keep], La[keep], l1a[keep], l2a[keep]
            w, b, vw, vb, mom = w[keep], b[keep], vw[keep], vb[keep], mom[keep]
    else:
        w_out[active], b_out[active] = w, b
    return w_out, b_out


def rank_gauss(Xtr: np.ndarray, Xte: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:class:`~.pipeline.RankGauss` fitted on ``Xtr``, applied to ``Xtr`` and ``Xte`` —
    the same integer mid-rank counts, hence bit-identical values, all genes at once."""
    n = Xtr.shape[0]

    def scaled(X):
        lo = (Xtr[None, :, :] < X[:, None, :]).sum(axis=1)
        hi = (Xtr[None, :, :] <= X[:, None, :]).sum(axis=1)
        p = np.clip((lo + hi) / 2.0 / n, 0.5 / n, 1.0 - 0.5 / n)
        return ndtri(p)

    return scaled(Xtr), scaled(Xte)


def column_medians(X: np.ndarray) -> np.ndarray:
    """Median of each column ignoring NaN (NaN for an all-NaN column) — the values of
    ``np.nanmedian(X, axis=0)`` (tested), without its masked-array path on small arrays."""
    ordered = np.sort(X, axis=0)  # NaN sorts last
    n = (~np.isnan(X)).sum(axis=0)
    cols = np.arange(X.shape[1])
    return (ordered[(n - 1) // 2, cols] + ordered[n // 2, cols]) / 2.0


def f_scores(Z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """ANOVA F of each gene between the two classes — ``f_classif``'s arithmetic in the same
    order (bit-identical values, tested), without its input checks."""
    groups = (Z[y == 0], Z[y == 1])
    counts = np.array([len(g) for g in groups])
    n = counts.sum()
    ss_all = sum((g * g).sum(axis=0) for g in groups)
    sums = [g.sum(axis=0) for g in groups]
    square_of_sums_all = sum(sums) ** 2
    sstot = ss_all - square_of_sums_all / float(n)
    ssbn = 0.0
    for k in range(2):
        ssbn += sums[k] ** 2 / counts[k]
    ssbn -= square_of_sums_all / float(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (ssbn / 1.0) / ((sstot - ssbn) / float(n - 2))


class RankIndex:
    """Each gene's sort order over all samples of ``X``, computed once, so that the rank
    counts of any training fold (and the fold's median imputation) come from a cumulative
    sum instead of comparing every sample with every training sample.

    For a training fold T, value x of gene j has lo = #{t in T: X[t, j] < x} and
    hi = #{t in T: X[t, j] <= x} — the integer counts :func:`rank_gauss` takes from its
    all-pairs comparison, so the transformed values are bit-identical (tested).  Median
    imputation (:class:`FoldDesign`) is folded in: the fold's median of gene j is read from
    the sorted order, and the imputed copies add to the counts of every value above it.
    """

    def __init__(self, X: np.ndarray):
        self.X = np.asarray(X, dtype=float)
        n, p = self.X.shape
        self.nan = np.isnan(self.X)
        self.order = np.argsort(self.X, axis=0, kind="stable")  # NaN last
        self.sorted = np.take_along_axis(self.X, self.order, 0)
        pos = np.arange(n)[:, None]
        first = np.ones((n, p), bool)
        first[1:] = self.sorted[1:] != self.sorted[:-1]  # a new run of equal values starts
        last = np.ones((n, p), bool)
        last[:-1] = first[1:]
        start = np.maximum.accumulate(np.where(first, pos, 0), axis=0)
        end = np.minimum.accumulate(np.where(last, pos + 1, n)[::-1], axis=0)[::-1]
        # per sample: the sorted positions [start, end) of the values equal to its own
        self.start = np.empty((n, p), dtype=np.intp)
        self.end = np.empty((n, p), dtype=np.intp)
        np.put_along_axis(self.start, self.order, start, 0)
        np.put_along_axis(self.end, self.order, end, 0)
        # the same positions in the flattened (row-major) arrays: one fancy index per fold
        # reads them (take_along_axis builds an index grid on every call)
        cols = np.arange(p)
        self.present = ~self.nan
        self.flat_order = self.order * p + cols
        self.flat_start = self.start * p + cols
        self.flat_end = self.end * p + cols
        self._tables: dict[int, np.ndarray] = {}

    def scaled(self, train: np.ndarray, test: np.ndarray):
        """(Ztr, Zte) of :func:`rank_gauss` after the fold's median imputation (as
        :class:`FoldDesign` does it); None when a gene has no value in the training fold."""
        n, p = self.X.shape
        n_tr = len(train)
        in_train = np.zeros((n, 1), bool)
        in_train[train] = True
        member = self.present & in_train
        counts = np.zeros((n + 1, p), dtype=np.int64)
        np.cumsum(member.ravel()[self.flat_order], axis=0, out=counts[1:])
        rows = np.concatenate([train, test])
        lo = counts.ravel()[self.flat_start[rows]]
        hi = counts.ravel()[self.flat_end[rows]]
        present = counts[-1]
        n_nan = n_tr - present
        if n_nan.any() or self.nan[test].any():
            if not present.all():
                return None
            med = self._medians(counts, present)
            below = (np.where(member, self.X, np.inf) < med).sum(axis=0)
            upto = (np.where(member, self.X, np.inf) <= med).sum(axis=0)
            x, missing = self.X[rows], self.nan[rows]
            lo = np.where(missing, below, lo + n_nan * (med < x))
            hi = np.where(missing, upto + n_nan, hi + n_nan * (med <= x))
        z = self._normal_scores(n_tr)[lo + hi]
        return z[:n_tr], z[n_tr:]

    def _normal_scores(self, n_tr: int) -> np.ndarray:
        """:func:`rank_gauss`' value of every possible ``lo + hi`` (0 … 2·n_tr) in a training
        fold of ``n_tr`` samples, the same arithmetic on the same integers: a fold then
        reads its values instead of calling ``ndtri`` on every sample and gene."""
        table = self._tables.get(n_tr)
        if table is None:
            k = np.arange(2 * n_tr + 1, dtype=np.int64)
            table = self._tables[n_tr] = ndtri(np.clip(k / 2.0 / n_tr, 0.5 / n_tr, 1.0 - 0.5 / n_tr))
        return table

    def _medians(self, counts: np.ndarray, present: np.ndarray) -> np.ndarray:
        """:func:`column_medians` of the training fold: its middle values in sorted order."""
        cols = np.arange(self.X.shape[1])

        def kth(r):  # sorted position of the fold's r-th (0-based) value of each gene
            return (counts[1:] > r[None, :]).argmax(axis=0)

        a = self.sorted[kth((present - 1) // 2), cols]
        b = self.sorted[kth(present // 2), cols]
        return (a + b) / 2.0

    def design(self, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> FoldDesign:
        """:class:`FoldDesign` of the fold (rows ``train`` of X with labels ``y[train]``)."""
        scaled = self.scaled(train, test)
        if scaled is None:
            return FoldDesign(self.X[train], y[train], self.X[test])
        return FoldDesign(None, y[train], None, scaled=scaled)


class FoldDesign:
    """Median imputation, rank-to-normal and F-score gene order of one training fold
    (the first three steps of :func:`~.pipeline.make_pipeline`), numpy only.
    ``scaled``: (Ztr, Zte) already computed (:meth:`RankIndex.design`)."""

    def __init__(self, Xtr: np.ndarray | None, ytr: np.ndarray, Xte: np.ndarray | None, scaled=None):
        if scaled is None:
            if np.isnan(Xtr).any() or np.isnan(Xte).any():
                med = column_medians(Xtr)
                Xtr = np.where(np.isnan(Xtr), med, Xtr)
                Xte = np.where(np.isnan(Xte), med, Xte)
            scaled = rank_gauss(Xtr, Xte)
        self.Ztr, self.Zte = scaled
        self.ytr = ytr
        scores = f_scores(self.Ztr, ytr)
        self.order = np.argsort(np.where(np.isnan(scores), np.finfo(float).min, scores), kind="mergesort")

    def columns(self, k) -> np.ndarray:
        """Genes kept by SelectKBest(k) (sorted indices)."""
        return np.arange(self.Ztr.shape[1]) if k == "all" else np.sort(self.order[-k:])


def stack(designs: list[FoldDesign], ks: list, n_rows: int, n_cols: int):
    """Padded arrays (Z, t, s, Zte, cols) of one batch: fold i with its own k."""
    B = len(designs)
    Z = np.zeros((B, n_rows, n_cols))
    t = np.zeros((B, n_rows))
    s = np.zeros((B, n_rows))
    cols = []
    for i, (d, k) in enumerate(zip(designs, ks, strict=True)):
        c = d.columns(k)
        n = len(d.ytr)
        Z[i, :n, : len(c)] = d.Ztr[:, c]
        t[i, :n] = 2.0 * d.ytr - 1.0
        s[i, :n] = (n / (2.0 * np.bincount(d.ytr, minlength=2)))[d.ytr]
        cols.append(c)
    return Z, t, s, cols


def fit_folds(designs: list[FoldDesign], ks: list, C, l1_ratio):
    """Fit one model per (design, k, C, l1_ratio); returns test-fold probabilities and the
    genes with non-zero weight, per problem.  The batch is padded to its largest training
    fold and k only (not to all samples and genes): a permutation batch (k = 10 of 50
    genes, 36 of 45 samples) then does a sixth of the arithmetic."""
    n_rows = max(len(d.ytr) for d in designs)
    n_cols = max(len(d.columns(k)) for d, k in zip(designs, ks, strict=True))
    Z, t, s, cols = stack(designs, ks, n_rows, n_cols)
    w, b = fit_enet_logistic(Z, t, s, np.asarray(C, float), np.asarray(l1_ratio, float))
    probas, used = [], []
    for i, (d, c) in enumerate(zip(designs, cols, strict=True)):
        coef = w[i, : len(c)]
        probas.append(expit(d.Zte[:, c] @ coef + b[i]))
        used.append(c[coef != 0])
    return probas, used
