"""One gene, two groups: detection and level statistics and the primary test (docs/methods.md §6).

Split from :mod:`ctc_qpcr.differential` (module docstring there: the design).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from . import stats
from .normalise_cells import stripped_str
from .robust_tests import level_tests

#: Trimming of the Yuen test (``test: yuen``, column p_yuen), 10 % from each end.
YUEN_TRIM = 0.1


def _bottom_tied(dcq: np.ndarray, detected: np.ndarray, floor: float) -> np.ndarray:
    """Non-detects replaced by one common value above every detected ΔCq."""
    return np.where(detected, dcq, floor)


def _floor(*arrays: np.ndarray) -> float:
    values = np.concatenate([a for a in arrays if a.size])
    return float(values.max()) + 1.0 if values.size else 0.0


def _reason(ka: int, na: int, kb: int, nb: int, min_detected: int, labels=("A", "B")) -> str:
    if ka == 0 and kb == 0:
        return "not detected in any sample"
    short = [
        f"{lab} {k} of {n}" for lab, k, n in zip(labels, (ka, kb), (na, nb), strict=True) if k < min_detected
    ]
    return f"fewer than {min_detected} detected: " + ", ".join(short) if short else ""


_LEVEL_KEYS = (
    "mean_a",
    "mean_b",
    "log2fc",
    "ci_low",
    "ci_high",
    "p_welch",
    "p_welch_detected",
    "p_hurdle",
    "hl_shift",
    "p_brunner_munzel",
    "p_yuen",
    "p_mannwhitney_detected",
)


def two_group_gene(
    dcq_a: np.ndarray,
    det_a: np.ndarray,
    dcq_b: np.ndarray,
    det_b: np.ndarray,
    *,
    test: str = "auto",
    min_detected: int = 3,
    trim: float = YUEN_TRIM,
    frac_a: np.ndarray | None = None,
    frac_b: np.ndarray | None = None,
    on_a: np.ndarray | None = None,
    on_b: np.ndarray | None = None,
    nondetect_fisher_threshold: float | None = None,
) -> dict:
    """All statistics of one gene for A vs B; ``p``/``statistic``/``test`` = primary test.

    Levels (means, log2fc, CI, every level test) use the detected values at the gene's
    expressed level only (``on_a/b``, default = detected; "off" values: see
    ``differential.call_on``) and are computed only when both groups have ≥ ``min_detected``
    of them; otherwise they are empty and ``reason`` says why. Primary test (``auto``):
    Welch on those values, its p size-calibrated when a group is small
    (:func:`ctc_qpcr.robust_tests.welch_calibrated`; ``test`` reads ``welch_calibrated``).
    Detection is always compared (:func:`_detection`).
    ``nondetect_fisher_threshold`` is accepted for old configs and not used.
    """
    dcq_a, dcq_b = np.asarray(dcq_a, float), np.asarray(dcq_b, float)
    det_a, det_b = np.asarray(det_a, bool), np.asarray(det_b, bool)
    lev_a = det_a if on_a is None else np.asarray(on_a, bool) & det_a
    lev_b = det_b if on_b is None else np.asarray(on_b, bool) & det_b
    row, fisher_p, mw = _detection(dcq_a, det_a, dcq_b, det_b, frac_a, frac_b)
    la, lb = int(lev_a.sum()), int(lev_b.sum())
    row.update(
        {
            "reason": _reason(la, dcq_a.size, lb, dcq_b.size, min_detected),
            "off_a": row["detected_a"] - la,
            "off_b": row["detected_b"] - lb,
        }
    )
    row.update(dict.fromkeys(_LEVEL_KEYS, math.nan))
    if not row["reason"]:
        row.update(_levels(dcq_a[lev_a], dcq_b[lev_b], test, trim, fisher_p, mw))
    return row


def _zero_one(x: np.ndarray) -> bool:
    """Every value 0 or 1 (``np.isin(x, (0, 1)).all()`` without isin's setup, per gene)."""
    return bool(((x == 0.0) | (x == 1.0)).all())


def _detection(dcq_a, det_a, dcq_b, det_b, frac_a, frac_b) -> tuple[dict, float, object]:
    """Detection statistics: ``detection_rate_a/b`` (mean of the per-unit detected fraction; the
    detected flags when not pooled), ``detection_diff``, ``p_fisher`` (Fisher's exact test on detected
    units), ``p_detection`` (= p_fisher, or Mann–Whitney on the fractions for pooled units) and the
    Mann–Whitney test with non-detects tied below every detected value (``p_mannwhitney``)."""
    fa = det_a.astype(float) if frac_a is None else np.asarray(frac_a, float)
    fb = det_b.astype(float) if frac_b is None else np.asarray(frac_b, float)
    na, nb = dcq_a.size, dcq_b.size
    ka, kb = int(det_a.sum()), int(det_b.sum())
    floor = _floor(dcq_a, dcq_b)
    mw = stats.mann_whitney(_bottom_tied(dcq_a, det_a, floor), _bottom_tied(dcq_b, det_b, floor))
    fi = stats.fisher_detection(ka, na, kb, nb)
    rate_a = float(fa.mean()) if na else math.nan
    rate_b = float(fb.mean()) if nb else math.nan
    pooled = frac_a is not None and not (_zero_one(fa) and _zero_one(fb))
    row = {
        "n_a": na, "n_b": nb, "detected_a": ka, "detected_b": kb,
        "test": "none", "p": math.nan, "statistic": math.nan,
        "p_mannwhitney": mw.p, "p_fisher": fi.p,
        "detection_rate_a": rate_a, "detection_rate_b": rate_b, "detection_diff": rate_a - rate_b,
        "p_detection": stats.mann_whitney(fa, fb).p if pooled else fi.p,
    }  # fmt: skip
    return row, fi.p, mw


def _levels(xa: np.ndarray, xb: np.ndarray, test: str, trim: float, fisher_p: float, mw) -> dict:
    """Level statistics on the on-level detected ΔCq of both groups, and the primary test."""
    w = stats.welch_t(xa, xb)
    fc = stats.fold_change_dcq(w.diff, w.ci_low, w.ci_high)
    hl = stats.hodges_lehmann_shift(xa, xb)
    hurdle_p = stats.fisher_combine([fisher_p, w.p]) if math.isfinite(fisher_p) else math.nan
    choice = {"auto": "welch_calibrated"}.get(test, test)
    # Yuen, Brunner–Munzel, Mann–Whitney and the calibrated Welch p in one pass: robust_tests' numbers
    lt = level_tests(xa, xb, trim, calibrate=choice == "welch_calibrated")
    primary = {
        "welch_calibrated": (w.t, lt.welch_calibrated_p),
        "yuen": (lt.yuen_t, lt.yuen_p),
        "welch": (w.t, w.p),
        "brunner_munzel": (lt.bm_w, lt.bm_p),
        "mann_whitney": (mw.u, mw.p),
        "hurdle": (float(-2.0 * np.log(np.clip([fisher_p, w.p], 1e-300, 1.0)).sum()), hurdle_p),
    }[choice]
    return {
        "mean_a": w.mean_a, "mean_b": w.mean_b,
        "log2fc": fc.log2fc, "ci_low": fc.log2fc_low, "ci_high": fc.log2fc_high,
        "statistic": primary[0], "p": primary[1], "test": choice,
        "p_welch": w.p, "p_welch_detected": w.p, "p_hurdle": hurdle_p,
        # HL on the detected ΔCq; reported as a log2 shift of A relative to B (sign as log2fc)
        "hl_shift": -hl if math.isfinite(hl) else math.nan,
        "p_brunner_munzel": lt.bm_p, "p_yuen": lt.yuen_p,
        "p_mannwhitney_detected": lt.mw_p,
    }  # fmt: skip


# --------------------------------------------------------------------------------------------
# The rows of a comparison's groups: labels and units by their distinct values (issue 17)


def _codes(values: pd.Series) -> tuple[np.ndarray, int]:
    """Integer codes of the values (missing: −1) and how many distinct values there are."""
    codes, uniques = pd.factorize(values)
    return codes, len(uniques)


def _distinct(codes: np.ndarray, n: int) -> int:
    """Number of distinct non-missing codes (= ``nunique()`` of the values they code)."""
    return int(np.count_nonzero(np.bincount(codes[codes >= 0], minlength=n)))


class _RowLabels:
    """The rows' labels of a comparison column by their distinct values (hashed once, issue 17):
    ``values`` the distinct ones (a missing value among them as NaN), ``missing`` which of them count
    as no label (missing, or "" / "nan" as :func:`stripped_str` gives them), ``rows(flags)`` each
    row's flag from per-value ``flags``."""

    def __init__(self, column: pd.Series):
        self.codes, values = pd.factorize(column.to_numpy(object))
        if (self.codes < 0).any():
            self.codes = np.where(self.codes < 0, len(values), self.codes)
            values = np.append(values.astype(object), np.nan)
        self.values = np.asarray(values, dtype=object)
        text = stripped_str(pd.Series(self.values, dtype=object)).to_numpy()
        self.missing = pd.isna(self.values) | np.isin(text, ["", "nan"])

    def rows(self, flags: np.ndarray) -> np.ndarray:
        return flags[self.codes]
