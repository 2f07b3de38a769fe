"""Order statistics of the n_a·n_b pairwise differences a_i − b_j without materialising them
(split from :mod:`ctc_qpcr.stats`: the Hodges–Lehmann shift and CI of large groups, docs/methods.md §6).

The values are exact, those of sorting all differences; the path (subsample start, band size)
changes the work only. Tests: tests/test_stats.py.
"""

from __future__ import annotations

import numpy as np


def _row_counts(a: np.ndarray, b_asc: np.ndarray, c: np.ndarray, t: float, c_fenced=None) -> np.ndarray:
    """Per ``a_i`` (ascending), how many ``fl(a_i − c_j) ≤ t`` with ``c`` = ``b`` descending.

    Row ``i`` of the difference matrix ``a_i − c_j`` is non-decreasing in ``j`` (floating
    subtraction is monotone), so the count is a prefix length. A ``searchsorted`` guess is
    checked on the floating differences themselves at the prefix boundary, and the rare row
    where rounding put the guess off is recounted exactly: the counts are those of the
    materialised differences, bit for bit. ``c_fenced``: ``c`` between +inf and −inf (computed if
    None), so the checks of the first and last prefix need no cases (``a_i ∓ inf`` decides them).
    """
    nb = c.size
    fenced = np.concatenate(([np.inf], c, [-np.inf])) if c_fenced is None else c_fenced
    g = nb - np.searchsorted(b_asc, a - t, side="left")
    ok = (a - fenced[g] <= t) & (a - fenced[g + 1] > t)  # fenced[g] = c[g - 1], fenced[g + 1] = c[g]
    if ok.all():
        return g
    bad = np.flatnonzero(~ok)
    step = max(1, (1 << 20) // max(nb, 1))  # recount exactly, ≤ 1M differences at a time
    for start in range(0, bad.size, step):
        rows = bad[start : start + step]
        g[rows] = ((a[rows, None] - c[None, :]) <= t).sum(axis=1)
    return g


def _pairwise_order_stats(
    a: np.ndarray, b: np.ndarray, ranks: list[int], cap: int, warm: tuple[int, float] = (128, 0.03)
) -> dict[int, float]:
    """The order statistics ``ranks`` (0-based) of the ``n_a·n_b`` differences ``a_i − b_j``, exactly.

    Deterministic selection in the sorted difference matrix (rows ``a_i − c_j`` with ``c``
    = ``b`` descending are non-decreasing): for each rank keep thresholds ``L < H`` with
    ``count(≤ L) ≤ rank < count(≤ H)`` (counts by :func:`_row_counts`, O(n log n) each),
    start from the quantiles of a fixed strided subsample of the sorted values, narrow by
    interpolation on the counts alternating with bisection until at most ``cap``
    differences lie in ``(L, H]``, then materialise only those and ``np.partition``
    them (``warm``: subsample size per group and the quantile half-width of the start; they
    change the path, not the values). A value tied more than ``cap`` times (e.g. bottom-tied
    non-detects in both groups: difference 0) is detected and returned directly. Memory O(n_a + n_b + cap);
    the values are those of sorting all differences.
    """
    diffs = _SortedDifferences(a, b)
    diffs.warm_start(ranks, *warm)
    together = diffs.common_band(ranks, cap)
    if together is not None:  # one band holds every rank (the shift's two middle ones, mostly)
        return dict(zip(ranks, diffs.kth_in_band(*together, [r + 1 for r in ranks]), strict=True))
    out: dict[int, float] = {}
    for r in ranks:
        k = r + 1
        L, H, result = diffs.narrow(k, cap)
        out[r] = diffs.kth_in_band(L, H, [k])[0] if result is None else result
    return out


def _strided(n: int, m: int) -> np.ndarray:
    """min(m, n) positions spread evenly over 0 … n − 1, first and last included."""
    k = min(m, n)
    return np.arange(k) * (n - 1) // max(k - 1, 1)


def _around(q: float, spread: float) -> list[float]:
    """The quantile levels ``q ± spread`` inside (0, 1)."""
    return [qq for qq in (q - spread, q + spread) if 0.0 < qq < 1.0]


class _SortedDifferences:
    """The ``n_a·n_b`` differences ``a_i − b_j`` as a sorted matrix, never materialised
    (Hodges–Lehmann CI, docs/methods.md §6): counts ``≤ t`` per row, memoised by threshold in ``known``
    (threshold -> (count ≤ threshold, per-row counts))."""

    def __init__(self, a: np.ndarray, b: np.ndarray):
        self.a = np.sort(a)
        self.b_asc = np.sort(b)
        self.c = self.b_asc[::-1].copy()
        self.c_fenced = np.concatenate(([np.inf], self.c, [-np.inf]))  # _row_counts' sentinels
        na, nb = self.a.size, self.c.size
        self.n_pairs = na * nb
        lo0 = float(np.nextafter(self.a[0] - self.c[0], -np.inf))
        self.known: dict[float, tuple[int, np.ndarray]] = {
            lo0: (0, np.zeros(na, dtype=np.intp)),
            float(self.a[-1] - self.c[-1]): (self.n_pairs, np.full(na, nb, dtype=np.intp)),
        }

    def count(self, t: float) -> int:
        """Number of differences ≤ ``t`` (and remember the per-row counts)."""
        if t not in self.known:
            p = _row_counts(self.a, self.b_asc, self.c, t, self.c_fenced)
            self.known[t] = (int(p.sum()), p)
        return self.known[t][0]

    def warm_start(self, ranks: list[int], m: int = 128, spread: float = 0.03) -> None:
        """Count at the quantiles ``q ± spread`` of the differences of a strided subsample (≤ m × m)."""
        na, nb = self.a.size, self.b_asc.size
        sa, sb = self.a[_strided(na, m)], self.b_asc[_strided(nb, m)]
        sub = (sa[:, None] - sb[None, :]).ravel()
        levels = [qq for r in ranks for qq in _around((r + 0.5) / self.n_pairs, spread)]
        at = sorted({int(qq * (sub.size - 1)) for qq in levels})
        if at:
            for t in np.partition(sub, at)[at]:  # the subsample's quantiles, without sorting it
                self.count(float(t))

    def narrow(self, k: int, cap: int) -> tuple[float, float, float | None]:
        """Thresholds ``L < H`` with ``count(≤ L) < k ≤ count(≤ H)`` and at most ``cap``
        differences in ``(L, H]``: interpolation on the counts alternating with bisection.
        The third value is the k-th difference itself when a tie larger than ``cap`` (or
        adjacent doubles) settles it."""
        known = self.known
        ts = sorted(known)
        L = max(t for t in ts if known[t][0] < k)
        H = min(t for t in ts if known[t][0] >= k)
        for step in range(4000):
            cL, cH = known[L][0], known[H][0]
            if cH - cL <= cap:
                break
            if step % 2 == 0:
                frac = min(max((k - cL) / (cH - cL), 0.01), 0.99)
                t = L + frac * (H - L)
            else:
                t = L + (H - L) / 2.0
            if not (L < t < H):
                t = L + (H - L) / 2.0
                if not (L < t < H):  # adjacent doubles: every difference in (L, H] equals H
                    return L, H, H
            before = known[H][0] - known[L][0]
            if self.count(t) >= k:
                p = known[t][1]
                rows = p > 0
                top = float((self.a[rows] - self.c[p[rows] - 1]).max())  # the largest difference ≤ t
                known.setdefault(top, known[t])
                H = top
            else:
                L = t
            if (known[H][0] - known[L][0]) * 2 > before:
                # slow progress: maybe a large tie at H (bottom-tied non-detects); count the
                # differences < H: if fewer than k, the k-th difference is H itself
                below = float(np.nextafter(H, -np.inf))
                if self.count(below) < k:
                    return L, H, H
                H = below if below > L else H
        return L, H, None

    def common_band(self, ranks: list[int], cap: int) -> tuple[float, float] | None:
        """Known thresholds ``L < H`` with ``count(≤ L) ≤`` every rank ``< count(≤ H)`` and at most
        ``cap`` differences in ``(L, H]``, or None (then each rank is narrowed on its own)."""
        counts = [(n, t) for t, (n, _) in self.known.items()]
        L = max((t for n, t in counts if n <= ranks[0]), default=None)
        H = min((t for n, t in counts if n > ranks[-1]), default=None)
        if L is None or H is None or self.known[H][0] - self.known[L][0] > cap:
            return None
        return L, H

    def kth_in_band(self, L: float, H: float, ks: list[int]) -> list[float]:
        """The ``ks``-th differences (1-based, each in ``(count(≤ L), count(≤ H)]``): only the
        differences in ``(L, H]`` are materialised and ``np.partition``-ed."""
        (cL, pL), (_, pH) = self.known[L], self.known[H]
        lengths = pH - pL
        rows = np.repeat(np.arange(self.a.size), lengths)
        starts = np.repeat(pL - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
        band = self.a[rows] - self.c[starts + np.arange(int(lengths.sum()))]
        js = [k - cL - 1 for k in ks]
        return [float(v) for v in np.partition(band, js)[js]]
