"""Simulated CellSearch count studies with planted truth (docs/methods.md §8).

* :func:`simulate_outcome` — the 267-patient cohort joined to the example qPCR
  study (``resources/example/ctc_counts.tsv``, ``clinical.tsv``).
* :func:`simulate_breast` — the metastatic breast cancer design
  (``resources/breast_cellsearch/``).
* :func:`simulate_gastric` — the advanced gastric cancer design
  (``resources/gastric_cellsearch/``).

Every function is deterministic for a given seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def simulate_outcome(
    n_patients: int = 267,
    seed: int = 20160502,
    patient_ids: Sequence[str] | None = None,
    hr: float = 2.0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulated CellSearch + clinical cohort in the seed design (§8.1).

    * Draws ``baseline``, ``cycle2`` (landmark ≈ 0.75 months) and ``cycle3``
      (≈ 2.5 months); a follow-up draw exists only if the patient is still
      progression-free and followed at that time (≈ 8 % missing at random).
    * Baseline counts: zero-inflated Poisson–log-normal, ≈ 50 % ≥ 5 CTC.
    * PFS exponential, median 7.0 months for < 5 CTC, hazard × ``hr`` for ≥ 5
      (constant in time, so the baseline Cox HR estimates ``hr``); OS = PFS +
      post-progression survival (median 10 months, × 1.5 hazard if ≥ 5).
      Administrative censoring uniform 12–36 months plus 5 %/year dropout.
    * Arms A/B/C; conversion high→low at cycle 2 among baseline-high with
      probability 0.53 / 0.64 / 0.83.
    * Covariates subtype (HR+/HER2-, HER2+, TNBC), ecog (0/1/2), ca15_3 (U/ml),
      best_response (RECIST).
    ``patient_ids`` name the first patients (e.g. the 45 qPCR patients); the
    rest are ``SIM001``… Deterministic for a given seed.
    """
    rng = np.random.default_rng(seed)
    n = int(n_patients)
    ids = _cohort_ids(patient_ids, n)
    arm = rng.choice(["A", "B", "C"], size=n)
    subtype = rng.choice(["HR+/HER2-", "HER2+", "TNBC"], size=n, p=[0.6, 0.2, 0.2])
    ecog = rng.choice([0, 1, 2], size=n, p=[0.5, 0.4, 0.1])
    high0, b, c2, c3 = _breast_counts(rng, n, arm)
    pfs, pfs_event, os_, os_event = _breast_survival(rng, n, high0, hr)
    lm2 = np.round(rng.uniform(0.6, 0.9, size=n), 2)
    lm3 = np.round(rng.uniform(2.2, 2.8, size=n), 2)
    resp = np.where(
        rng.random(n) < np.where(high0, 0.35, 0.55),
        rng.choice(["CR", "PR"], size=n, p=[0.15, 0.85]),
        np.where(rng.random(n) < np.where(high0, 0.45, 0.6), "SD", "PD"),
    )
    ca153 = np.round(np.exp(rng.normal(3.5 + 0.4 * high0, 1.0)), 1)

    counts = _example_draws(rng, ids, (b, c2, c3), pfs, (lm2, lm3))
    landmarks = {"landmark_cycle2_months": lm2, "landmark_cycle3_months": lm3}
    extra = {"arm": arm, "subtype": subtype, "ecog": ecog, "ca15_3": ca153}
    clinical = _clinical_table(ids, (pfs, pfs_event, os_, os_event), best_response=resp, **landmarks, **extra)
    return counts, clinical


def _clinical_table(ids, endpoints: tuple, **columns) -> pd.DataFrame:
    """A simulated cohort's clinical table: patient, pfs_months, pfs_event, os_months,
    os_event (``endpoints`` in that order), then ``columns`` in the order given."""
    names = ("pfs_months", "pfs_event", "os_months", "os_event")
    return pd.DataFrame({"patient": ids, **dict(zip(names, endpoints, strict=True)), **columns})


def _cohort_ids(patient_ids: Sequence[str] | None, n: int) -> list[str]:
    """``patient_ids`` first (at most n), then ``SIM001``… skipping names already given."""
    given = list(patient_ids or [])[:n]
    ids = list(given)
    k = 1
    while len(ids) < n:
        cand = f"SIM{k:03d}"
        if cand not in given:
            ids.append(cand)
        k += 1
    return ids


def _breast_counts(rng, n: int, arm: np.ndarray) -> tuple[np.ndarray, ...]:
    """Baseline, cycle 2 and cycle 3 counts (docs/methods.md §8.1): zero-inflated low counts
    (< 5) or 5 + Poisson–log-normal; half the patients high at baseline; conversion
    high→low at cycle 2 with the arm's probability. Returns (high at baseline, b, c2, c3)."""

    def low_count(size):
        return rng.choice([0, 0, 0, 1, 1, 2, 3, 4], size=size)

    def high_count(size):
        return 5 + rng.poisson(np.exp(rng.normal(2.3, 1.2, size=size)))

    high0 = rng.random(n) < 0.5
    b = np.where(high0, high_count(n), low_count(n))
    conv_p = np.select([arm == "A", arm == "B"], [0.53, 0.64], 0.83)
    high_c2 = np.where(high0, rng.random(n) >= conv_p, rng.random(n) < 0.08)
    c2 = np.where(high_c2, high_count(n), low_count(n))
    high_c3 = np.where(high_c2, rng.random(n) >= 0.3, rng.random(n) < 0.1)
    c3 = np.where(high_c3, high_count(n), low_count(n))
    return high0, b, c2, c3


def _breast_survival(rng, n: int, high0: np.ndarray, hr: float) -> tuple[np.ndarray, ...]:
    """PFS exponential (median 7 months, hazard × ``hr`` if high at baseline), OS = PFS +
    post-progression survival (median 10 months, × 1.5 if high), censored uniformly at
    12–36 months and by 5 %/year dropout (docs/methods.md §8.1).
    Returns (pfs, pfs_event, os, os_event)."""
    lam0 = np.log(2) / 7.0
    pfs_true = rng.exponential(1 / (lam0 * np.where(high0, hr, 1.0)))
    post = rng.exponential(1 / ((np.log(2) / 10.0) * np.where(high0, 1.5, 1.0)))
    os_true = pfs_true + post
    cens = np.minimum(rng.uniform(12, 36, size=n), rng.exponential(1 / (0.05 / 12), size=n))
    pfs = np.maximum(np.round(np.minimum(pfs_true, cens), 2), 0.01)
    pfs_event = (pfs_true <= cens).astype(int)
    os_ = np.maximum(np.round(np.minimum(os_true, cens), 2), pfs)
    os_event = (os_true <= cens).astype(int)
    return pfs, pfs_event, os_, os_event


def _example_draws(rng, ids, counts, pfs, landmarks) -> pd.DataFrame:
    """Rows of the example cohort's counts table: a follow-up draw exists if the
    patient is progression-free at it and the sample is not missing (8 %); the
    random numbers are drawn patient by patient, as the committed files were made."""
    b, c2, c3 = counts
    lm2, lm3 = landmarks
    rows = []
    for i, pid in enumerate(ids):
        rows.append((pid, "baseline", int(b[i]), 7.5))
        if pfs[i] > lm2[i] and rng.random() > 0.08:
            rows.append((pid, "cycle2", int(c2[i]), 7.5))
        if pfs[i] > lm3[i] and rng.random() > 0.08:
            rows.append((pid, "cycle3", int(c3[i]), 7.5))
    return pd.DataFrame(rows, columns=["patient", "timepoint", "ctc_count", "blood_volume_ml"])


# --------------------------------------------------------------------------
# Metastatic breast cancer design (resources/breast_cellsearch/)
# --------------------------------------------------------------------------

#: Planted truth of the breast design. PFS hazard = λ0 · HR[change group at C2]
#: (constant in time), λ0 = ln 2 / 9 months; OS = PFS + post-progression
#: survival (median 12 months, × 1.5 for baseline ≥ 5).
BREAST_TRUTH = {
    "p_baseline_ge1": 0.65,
    "p_baseline_ge5": 0.45,
    "conversion_c2": {"chemo": 0.45, "chemo+bevacizumab": 0.60, "chemo+anti-HER2": 0.75},
    "p_low_to_high_c2": 0.07,
    "p_persist_c34": 0.70,
    "pfs_median_low_months": 9.0,
    "hr_pfs": {"low→low": 1.0, "low→high": 2.0, "high→low": 1.4, "high→high": 3.0},
    "hr_os_postprogression_high": 1.5,
    "os_postprogression_median_months": 12.0,
    "p_bone": {"low": 0.55, "high": 0.75},
    "p_liver": {"low": 0.30, "high": 0.45},
    "ecog_probs": {"low": (0.55, 0.35, 0.10), "high": (0.40, 0.42, 0.18)},
    "log_cea_shift_high": 0.6,
    "log_ca15_3_shift_high": 0.8,
    "p_objective_response": {"low→low": 0.55, "low→high": 0.30, "high→low": 0.50, "high→high": 0.20},
}


def _baseline_breast_counts(rng, n):
    """0 (35 %), 1–4 (20 %), ≥ 5 (45 %): P(≥ 1) = 0.65, P(≥ 5) = 0.45."""
    u = rng.random(n)
    zero, mid = u < 0.35, (u >= 0.35) & (u < 0.55)
    high = rng.integers(5, 6, n) + rng.poisson(np.exp(rng.normal(2.2, 1.1, n)))
    return np.where(zero, 0, np.where(mid, rng.integers(1, 5, n), high))


def _follow_counts(rng, high, n):
    low = rng.choice([0, 0, 0, 1, 1, 2, 3, 4], size=n)
    hi = 5 + rng.poisson(np.exp(rng.normal(2.0, 1.0, n)))
    return np.where(high, hi, low)


def _breast_covariates(rng, n, high0):
    t = BREAST_TRUTH
    subtype = rng.choice(["HR+", "HER2+", "TN"], size=n, p=[0.6, 0.2, 0.2])
    other = rng.choice(["chemo", "chemo+bevacizumab"], size=n)
    arm = np.where(subtype == "HER2+", "chemo+anti-HER2", other)
    u = rng.random(n)
    probs = np.where(high0[:, None], t["ecog_probs"]["high"], t["ecog_probs"]["low"])
    ecog = (u[:, None] > np.cumsum(probs, axis=1)[:, :2]).sum(axis=1)
    bone = rng.random(n) < np.where(high0, t["p_bone"]["high"], t["p_bone"]["low"])
    liver = rng.random(n) < np.where(high0, t["p_liver"]["high"], t["p_liver"]["low"])
    other_sites = rng.poisson(np.where(high0, 1.0, 0.6), n)
    n_sites = np.clip(bone.astype(int) + liver.astype(int) + other_sites, 1, 5)
    cea = np.round(np.exp(rng.normal(1.6 + t["log_cea_shift_high"] * high0, 1.1)), 1)
    ca153 = np.round(np.exp(rng.normal(3.6 + t["log_ca15_3_shift_high"] * high0, 1.1)), 1)
    return {
        "arm": arm,
        "subtype": subtype,
        "ecog": ecog,
        "bone": np.where(bone, "yes", "no"),
        "liver": np.where(liver, "yes", "no"),
        "n_sites": n_sites,
        "cea": cea,
        "ca15_3": ca153,
    }


def _breast_times(rng, n, group, high0):
    t = BREAST_TRUTH
    lam0 = np.log(2) / t["pfs_median_low_months"]
    hr = np.vectorize(t["hr_pfs"].get)(group).astype(float)
    pfs_true = rng.exponential(1 / (lam0 * hr))
    lam_post = np.log(2) / t["os_postprogression_median_months"]
    post = rng.exponential(1 / (lam_post * np.where(high0, t["hr_os_postprogression_high"], 1.0)))
    cens = np.minimum(rng.uniform(12, 36, n), rng.exponential(1 / (0.05 / 12), n))
    pfs = np.maximum(np.round(np.minimum(pfs_true, cens), 2), 0.01)
    os_ = np.maximum(np.round(np.minimum(pfs_true + post, cens), 2), pfs)
    return pfs, (pfs_true <= cens).astype(int), os_, (pfs_true + post <= cens).astype(int)


def simulate_breast(n_patients: int = 267, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The metastatic breast cancer CellSearch design (docs/methods.md §8.1).

    Draws ``baseline``, ``C2`` (before cycle 2, ≈ 0.7 months) and ``C3-4``
    (before cycle 3/4, ≈ 2.1 months); a follow-up draw exists only if the
    patient is progression-free and followed then (and 8 % missing at random).
    Conversion below 5 at C2 among baseline ≥ 5 depends on the arm; PFS hazard
    depends on the change group at C2 (:data:`BREAST_TRUTH`). Returns counts,
    clinical and the per-patient truth (baseline group, C2 group, arm).
    """
    t = BREAST_TRUTH
    rng = np.random.default_rng(seed)
    n = int(n_patients)
    ids = np.array([f"MBC{i:03d}" for i in range(1, n + 1)])
    b = _baseline_breast_counts(rng, n)
    high0 = b >= 5
    cov = _breast_covariates(rng, n, high0)
    conv = np.vectorize(t["conversion_c2"].get)(cov["arm"]).astype(float)
    high_c2 = np.where(high0, rng.random(n) >= conv, rng.random(n) < t["p_low_to_high_c2"])
    c2 = _follow_counts(rng, high_c2, n)
    high_c34 = np.where(high_c2, rng.random(n) < t["p_persist_c34"], rng.random(n) < 0.05)
    c34 = _follow_counts(rng, high_c34, n)
    group = np.char.add(np.char.add(np.where(high0, "high", "low"), "→"), np.where(high_c2, "high", "low"))
    pfs, pfs_event, os_, os_event = _breast_times(rng, n, group, high0)
    lm2 = np.round(rng.uniform(0.6, 0.85, n), 2)
    lm34 = np.round(rng.uniform(1.8, 2.6, n), 2)
    p_or = np.vectorize(t["p_objective_response"].get)(group).astype(float)
    objective = rng.random(n) < p_or
    resp = np.where(
        objective, rng.choice(["CR", "PR"], n, p=[0.15, 0.85]), rng.choice(["SD", "PD"], n, p=[0.6, 0.4])
    )
    has2 = (pfs > lm2) & (rng.random(n) > 0.08)
    has34 = (pfs > lm34) & (rng.random(n) > 0.08)
    counts = pd.concat(
        [
            pd.DataFrame({"patient": ids, "timepoint": "baseline", "ctc_count": b}),
            pd.DataFrame({"patient": ids[has2], "timepoint": "C2", "ctc_count": c2[has2]}),
            pd.DataFrame({"patient": ids[has34], "timepoint": "C3-4", "ctc_count": c34[has34]}),
        ]
    )
    counts["blood_volume_ml"] = 7.5
    order = {"baseline": 0, "C2": 1, "C3-4": 2}
    counts = counts.sort_values(
        ["patient", "timepoint"], key=lambda s: s.map(order) if s.name == "timepoint" else s
    )
    landmarks = {"landmark_C2_months": lm2, "landmark_C3-4_months": lm34}
    clinical = _clinical_table(ids, (pfs, pfs_event, os_, os_event), best_response=resp, **landmarks, **cov)
    truth = pd.DataFrame(
        {
            "patient": ids,
            "baseline_high": high0.astype(int),
            "c2_high": high_c2.astype(int),
            "change_group_c2": group,
            "arm": cov["arm"],
            "pfs_hazard_ratio": np.vectorize(t["hr_pfs"].get)(group),
        }
    )
    return counts.reset_index(drop=True), clinical, truth


# --------------------------------------------------------------------------
# Advanced gastric cancer design (resources/gastric_cellsearch/)
# --------------------------------------------------------------------------

GASTRIC_TRUTH = {
    "threshold": 4,
    "p_baseline_ge4": 0.40,
    "p_persist_week2": 0.55,
    "p_low_to_high_week2": 0.08,
    "p_persist_week4": 0.80,
    "pfs_median_low_months": 5.0,
    "hr_pfs_week2_high": 3.5,
    "os_postprogression_median_months": 6.5,
    "hr_os_postprogression_week2_high": 1.5,
}


def simulate_gastric(
    n_patients: int = 52, seed: int = 20100301
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The advanced gastric cancer design (docs/methods.md §8.1): baseline, week 2
    and week 4 draws with draw dates (landmarks from dates), threshold 4 CTC,
    PFS/OS in months; PFS hazard × 3.5 for CTC ≥ 4 at week 2 (constant in time,
    so the week-2 landmark HR estimates it)."""
    t = GASTRIC_TRUTH
    rng = np.random.default_rng(seed)
    n = int(n_patients)
    ids = np.array([f"AGC{i:02d}" for i in range(1, n + 1)])
    high0, high2, high4, draws = _gastric_counts(rng, n, t)
    pfs_true, post, cens = _gastric_survival(rng, n, t, high2)
    pfs = np.maximum(np.round(np.minimum(pfs_true, cens), 2), 0.03)
    os_ = np.maximum(np.round(np.minimum(pfs_true + post, cens), 2), pfs)
    counts = _gastric_draw_table(rng, ids, draws, pfs)
    endpoints = (pfs, (pfs_true <= cens).astype(int), os_, (pfs_true + post <= cens).astype(int))
    clinical = _clinical_table(
        ids,
        endpoints,
        ecog=rng.choice([0, 1, 2], n, p=[0.5, 0.4, 0.1]),
        histology=rng.choice(["intestinal", "diffuse"], n),
        peritoneal=rng.choice(["yes", "no"], n, p=[0.35, 0.65]),
    )
    truth = pd.DataFrame(
        {
            "patient": ids,
            "baseline_high": high0.astype(int),
            "week2_high": high2.astype(int),
            "week4_high": high4.astype(int),
        }
    )
    return counts.reset_index(drop=True), clinical, truth


def _gastric_counts(rng, n: int, t: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    """High (≥ 4 CTC) at baseline, week 2 and week 4 with the design's persistence
    probabilities, and the counts (4 + Poisson–log-normal when high), docs/methods.md §8.1.
    Returns (high0, high2, high4, [baseline, week2, week4 counts])."""
    high0 = rng.random(n) < t["p_baseline_ge4"]
    b = np.where(
        high0, 4 + rng.poisson(np.exp(rng.normal(1.8, 1.0, n))), rng.choice([0, 0, 0, 1, 1, 2, 3], n)
    )
    high2 = np.where(high0, rng.random(n) < t["p_persist_week2"], rng.random(n) < t["p_low_to_high_week2"])
    high4 = np.where(high2, rng.random(n) < t["p_persist_week4"], rng.random(n) < 0.05)
    low = rng.choice([0, 0, 0, 1, 1, 2, 3], (2, n))
    w2 = np.where(high2, 4 + rng.poisson(np.exp(rng.normal(1.5, 1.0, n))), low[0])
    w4 = np.where(high4, 4 + rng.poisson(np.exp(rng.normal(1.5, 1.0, n))), low[1])
    return high0, high2, high4, [b, w2, w4]


def _gastric_survival(rng, n: int, t: dict, high2: np.ndarray) -> tuple[np.ndarray, ...]:
    """True PFS (hazard × ``hr_pfs_week2_high`` when high at week 2), post-progression
    survival and censoring at 10–24 months (docs/methods.md §8.1)."""
    lam = np.log(2) / t["pfs_median_low_months"] * np.where(high2, t["hr_pfs_week2_high"], 1.0)
    pfs_true = rng.exponential(1 / lam)
    post = rng.exponential(
        t["os_postprogression_median_months"]
        / np.log(2)
        / np.where(high2, t["hr_os_postprogression_week2_high"], 1.0)
    )
    cens = rng.uniform(10, 24, n)
    return pfs_true, post, cens


def _gastric_draw_table(rng, ids: np.ndarray, draws: list[np.ndarray], pfs: np.ndarray) -> pd.DataFrame:
    """The counts table with draw dates: baseline for everyone; week 2 and week 4 (±2–3 days)
    only while progression-free, 5 % missing at random; sorted by patient and time point."""
    n = len(ids)
    start = pd.Timestamp("2008-04-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D")
    d2 = start + pd.to_timedelta(14 + rng.integers(-2, 3, n), unit="D")
    d4 = start + pd.to_timedelta(28 + rng.integers(-3, 4, n), unit="D")
    months = lambda d: (d - start).days.to_numpy() / (365.25 / 12)  # noqa: E731
    has2 = (pfs > months(d2)) & (rng.random(n) > 0.05)
    has4 = (pfs > months(d4)) & (rng.random(n) > 0.05)
    fmt = lambda d: d.strftime("%Y-%m-%d").to_numpy()  # noqa: E731
    frames = [
        pd.DataFrame({"patient": ids[has], "timepoint": name, "ctc_count": x[has], "draw_date": fmt(d)[has]})
        for name, x, d, has in zip(
            ("baseline", "week2", "week4"),
            draws,
            (start, d2, d4),
            (np.ones(n, bool), has2, has4),
            strict=True,
        )
    ]
    order = {"baseline": 0, "week2": 1, "week4": 2}
    return pd.concat(frames).sort_values(
        ["patient", "timepoint"], key=lambda s: s.map(order) if s.name == "timepoint" else s
    )
