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

from typing import Sequence

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
    given = list(patient_ids or [])[:n]
    ids = list(given)
    k = 1
    while len(ids) < n:
        cand = f"SIM{k:03d}"
        if cand not in given:
            ids.append(cand)
        k += 1
    arm = rng.choice(["A", "B", "C"], size=n)
    subtype = rng.choice(["HR+/HER2-", "HER2+", "TNBC"], size=n, p=[0.6, 0.2, 0.2])
    ecog = rng.choice([0, 1, 2], size=n, p=[0.5, 0.4, 0.1])

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

    lam0 = np.log(2) / 7.0
    pfs_true = rng.exponential(1 / (lam0 * np.where(high0, hr, 1.0)))
    post = rng.exponential(1 / ((np.log(2) / 10.0) * np.where(high0, 1.5, 1.0)))
    os_true = pfs_true + post
    cens = np.minimum(
        rng.uniform(12, 36, size=n), rng.exponential(1 / (0.05 / 12), size=n)
    )
    pfs = np.maximum(np.round(np.minimum(pfs_true, cens), 2), 0.01)
    pfs_event = (pfs_true <= cens).astype(int)
    os_ = np.maximum(np.round(np.minimum(os_true, cens), 2), pfs)
    os_event = (os_true <= cens).astype(int)
    lm2 = np.round(rng.uniform(0.6, 0.9, size=n), 2)
    lm3 = np.round(rng.uniform(2.2, 2.8, size=n), 2)
    resp = np.where(
        rng.random(n) < np.where(high0, 0.35, 0.55),
        rng.choice(["CR", "PR"], size=n, p=[0.15, 0.85]),
        np.where(rng.random(n) < np.where(high0, 0.45, 0.6), "SD", "PD"),
    )
    ca153 = np.round(np.exp(rng.normal(3.5 + 0.4 * high0, 1.0)), 1)

    rows = []
    for i, pid in enumerate(ids):
        rows.append((pid, "baseline", int(b[i]), 7.5))
        if pfs[i] > lm2[i] and rng.random() > 0.08:
            rows.append((pid, "cycle2", int(c2[i]), 7.5))
        if pfs[i] > lm3[i] and rng.random() > 0.08:
            rows.append((pid, "cycle3", int(c3[i]), 7.5))
    counts = pd.DataFrame(
        rows, columns=["patient", "timepoint", "ctc_count", "blood_volume_ml"]
    )
    clinical = pd.DataFrame(
        {
            "patient": ids,
            "pfs_months": pfs,
            "pfs_event": pfs_event,
            "os_months": os_,
            "os_event": os_event,
            "best_response": resp,
            "landmark_cycle2_months": lm2,
            "landmark_cycle3_months": lm3,
            "arm": arm,
            "subtype": subtype,
            "ecog": ecog,
            "ca15_3": ca153,
        }
    )
    return counts, clinical
