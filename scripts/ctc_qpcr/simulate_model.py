"""Signal model of the simulated CTC study: panel, cohort, planted RNA Cq per sample.

Split from :mod:`ctc_qpcr.simulate` (which writes the chips, sheets and truth and
re-exports these names). See that module's docstring for the Cq model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import portable_math as pmath

# --------------------------------------------------------------------------- panel

#: The 46 target genes of the study (16 named in the study, 30 EMT/stem/breast markers).
TARGET_GENES: tuple[str, ...] = (
    "ABCC1",
    "FLT1",
    "KRT19",
    "EGFR",
    "MET",
    "ALDH1A1",
    "PGR",
    "PLAU",
    "CTSD",
    "KIT",
    "MKI67",
    "ESR1",
    "ERBB2",
    "SCGB2A2",
    "EPCAM",
    "MUC1",
    "VIM",
    "CDH1",
    "CDH2",
    "TWIST1",
    "SNAI1",
    "SNAI2",
    "ZEB1",
    "ZEB2",
    "CD44",
    "CD24",
    "PROM1",
    "ALDH1A3",
    "KRT8",
    "KRT18",
    "KRT5",
    "KRT17",
    "TOP2A",
    "CCND1",
    "BCL2",
    "AKT2",
    "PIK3CA",
    "MYC",
    "TFF1",
    "TFF3",
    "FOXC1",
    "FN1",
    "NANOG",
    "POU5F1",
    "SOX2",
    "GATA3",
)
#: Reference genes: base Cq and biological SD (log2) -> ACTB most stable, B2M least.
REFERENCE_GENES: dict[str, tuple[float, float]] = {
    "ACTB": (15.0, 0.15),
    "GAPDH": (16.0, 0.25),
    "B2M": (14.5, 0.35),
    "PPIA": (17.0, 0.20),
}
VPA_ASSAY = "ValidPrime"
IPC_ASSAY = "IPC"
#: Epithelial / breast markers: mostly absent in healthy donors' enriched blood.
EPITHELIAL_GENES = (
    "KRT19",
    "EPCAM",
    "SCGB2A2",
    "KRT8",
    "KRT18",
    "KRT5",
    "KRT17",
    "MUC1",
    "CDH1",
    "ESR1",
    "PGR",
    "ERBB2",
    "TFF1",
    "TFF3",
    "GATA3",
)

#: Planted effects, log2 fold change (case vs control) of the RNA quantity. Sized so that the
#: example's design (45 patients, T0) finds each of them at q < 0.1 with power >= 0.95
#: (docs/methods.md §15; ``bench_differential.py --example-power``): 2 log2 units (2.5 for
#: BCL2, whose non-responders also express it less often). Larger effects do not help the
#: primary test: the label-blind "off" call (robust SD over both groups) then misses more
#: "off" values of the case group. The liver genes carry no other effect (PGR, with its HR+
#: effect of 2.5 as extra variance, had power 0.53 with a liver effect of 1.5).
LIVER_EFFECTS = {
    "FLT1": 2.0,
    "KRT19": 2.0,
    "EGFR": 2.0,
    "MET": 2.0,
    "ALDH1A1": 2.0,
    "CD44": 2.0,
    "PLAU": 2.0,
    "CTSD": 2.0,
    "KIT": 2.0,
    "MKI67": 2.0,
}
NONRESPONDER_EFFECTS = {"ABCC1": 2.0, "TWIST1": 2.0, "ALDH1A3": 2.0, "BCL2": -2.5}
HR_EFFECTS = {"ESR1": 3.0, "PGR": 2.5}
HER2_EFFECTS = {"ERBB2": 3.0}
#: Patient-sample probability that the captured cells express a gene: U(lo, hi); genes that
#: carry a planted effect are among the commonly expressed ones (PLANTED_P_DETECT).
P_DETECT = (0.30, 0.90)
PLANTED_P_DETECT = (0.60, 0.90)

#: Real CTC data (issue 16): genes the captured cells never / rarely express.
NEVER_EXPRESSED = ("NANOG", "POU5F1")
RARELY_EXPRESSED = ("SOX2", "FOXC1")
RARE_P_DETECT = 0.06
#: Per target gene, a share U(0, OFF_RATE_MAX) of patient samples is "off": background
#: only, OFF_DELAY cycles later than the sample's "on" level (often still under the LOD).
OFF_RATE_MAX = 0.15
OFF_DELAY = (8.0, 14.0)
#: One reference gene fails (no RNA signal) in FAILED_REFERENCE_RATE of the patient/healthy samples.
FAILED_REFERENCE = "PPIA"
FAILED_REFERENCE_RATE = 0.10
#: Captured material (log2 units, shifts every gene of a sample incl. the references):
#: non-responders carry more CTC; responders lose MATERIAL_DECLINE per time point.
MATERIAL_NONRESPONDER = 0.8
MATERIAL_DECLINE = 0.6
DETECT_PER_MATERIAL = 0.5  # logit of "gene present" per log2 unit of material

GDNA_COPIES = (10, 50, 250, 1000, 5000)
IPC_CQ = 23.0
LOD = 35.0
MAX_CYCLES = 40.0  # observed Cq above this -> 999 (no amplification)
REPLICATE_SD = 0.10
IPC_SD = 0.05
FAILED_WELL_RATE = 0.01
BAD_PAIR_RATE = 0.005
QUALITY_THRESHOLD = 0.65

_HEADER_LINES = (
    "Application Version,2.1.1",
    "Application Build,20090521.1135",
    "Export Type,Table Results",
    f"Quality Threshold,{QUALITY_THRESHOLD}",
    "Baseline Correction Method,Linear",
    "Ct Threshold Method,Auto (Global)",
    "",
    "",
    ",".join(["Experiment Information"] * 6 + ["FAM-MGB"] * 4),
    "Chamber,Sample,Sample,Sample,FAM-MGB,FAM-MGB,Ct,Ct,Ct,Ct",
    "ID,Name,Type,rConc,Name,Type,Value,Quality,Call,Threshold",
)
NEWLINE = "\r\n"  # the real BioMark export uses CRLF


def gdna_vpa_cq(copies) -> np.ndarray:
    """True VPA Cq of a pre-amplified gDNA input of ``copies`` haploid genomes."""
    return 34.0 - pmath.log2(np.asarray(copies, dtype=float))


def rna_gdna_mix(rna_cq, gdna_cq) -> tuple[np.ndarray, np.ndarray]:
    """Cq of RNA + gDNA template together, -log2(2^-rna + 2^-gdna), and the gDNA share of the template
    (inf and NaN where neither is there)."""
    with np.errstate(over="ignore", invalid="ignore"):
        lin = np.nan_to_num(pmath.exp2(-rna_cq)) + np.nan_to_num(pmath.exp2(-gdna_cq))
        some = lin > 0
        cq = np.where(some, -pmath.log2(np.where(some, lin, 1.0)), np.inf)
        share = np.where(some, np.nan_to_num(pmath.exp2(-gdna_cq)) / np.where(some, lin, 1.0), np.nan)
    return cq, share


def _logit(p):
    return pmath.log(p / (1 - p))


def _expit(x):
    return 1.0 / (1.0 + pmath.exp(-x))


# --------------------------------------------------------------------------- assays


def make_assays(rng: np.random.Generator, n_targets: int = len(TARGET_GENES)) -> pd.DataFrame:
    """Assay panel with hidden parameters (columns after ``lod`` are truth, not sheet).

    ``n_targets`` > 46 pads the panel with GENE47, GENE48, ...
    """
    genes = list(TARGET_GENES[:n_targets]) + [f"GENE{i}" for i in range(len(TARGET_GENES) + 1, n_targets + 1)]
    nt = len(genes)
    t = pd.DataFrame({"assay": genes, "gene": genes, "role": "target"})
    t["efficiency"] = np.round(rng.uniform(1.90, 2.00, nt), 3)
    t["base_cq"] = np.round(rng.uniform(23.0, 30.0, nt), 2)
    t["bio_sd"] = 0.6
    t["patient_sd"] = 0.7
    planted = t["gene"].isin(set(NONRESPONDER_EFFECTS) | set(LIVER_EFFECTS)).to_numpy()
    lo = np.where(planted, PLANTED_P_DETECT[0], P_DETECT[0])
    hi = np.where(planted, PLANTED_P_DETECT[1], P_DETECT[1])
    t["p_detect"] = np.round(lo + (hi - lo) * rng.uniform(size=nt), 2)
    epi = t["gene"].isin(EPITHELIAL_GENES).to_numpy()
    t.loc[t["gene"].isin(RARELY_EXPRESSED), "p_detect"] = RARE_P_DETECT
    t.loc[t["gene"].isin(NEVER_EXPRESSED), "p_detect"] = 0.0
    t["p_detect_healthy"] = np.where(epi, 0.05, np.round(t["p_detect"] * 0.5, 3))
    t["off_rate"] = np.round(rng.uniform(0.0, OFF_RATE_MAX, nt), 3)
    t["expression"] = np.select(
        [t["gene"].isin(NEVER_EXPRESSED), t["gene"].isin(RARELY_EXPRESSED)], ["never", "rare"], "normal"
    )
    t["dcq_gdna"] = np.round(rng.uniform(0.0, 3.0, nt), 2)
    t["gdna_sd"] = np.round(rng.uniform(0.12, 0.18, nt), 3)
    protected = set(NONRESPONDER_EFFECTS) | set(LIVER_EFFECTS)
    candidates = np.flatnonzero(~t["gene"].isin(protected).to_numpy())
    pick = rng.choice(candidates, size=min(8, candidates.size), replace=False)
    no_gdna, high_sd = pick[:4], pick[4:]
    t.loc[no_gdna, "dcq_gdna"] = np.nan  # intron-spanning: gDNA never amplifies
    t.loc[no_gdna, "gdna_sd"] = np.nan
    t.loc[high_sd, "gdna_sd"] = np.round(rng.uniform(0.6, 0.9, high_sd.size), 3)

    r = pd.DataFrame({"assay": list(REFERENCE_GENES), "gene": list(REFERENCE_GENES), "role": "reference"})
    r["efficiency"] = np.round(rng.uniform(1.95, 2.00, len(r)), 3)
    r["base_cq"] = [v[0] for v in REFERENCE_GENES.values()]
    r["bio_sd"] = [v[1] for v in REFERENCE_GENES.values()]
    r["patient_sd"] = 0.0
    r["p_detect"] = 1.0
    r["p_detect_healthy"] = 1.0
    r["off_rate"] = 0.0
    r["expression"] = "reference"
    r["dcq_gdna"] = np.round(rng.uniform(0.5, 2.0, len(r)), 2)
    r["gdna_sd"] = np.round(rng.uniform(0.12, 0.18, len(r)), 3)

    c = pd.DataFrame(
        {
            "assay": [VPA_ASSAY, IPC_ASSAY],
            "gene": [VPA_ASSAY, IPC_ASSAY],
            "role": ["validprime", "ipc"],
            "efficiency": [2.0, 2.0],
            "base_cq": [np.nan, IPC_CQ],
            "bio_sd": 0.0,
            "patient_sd": 0.0,
            "p_detect": 0.0,
            "p_detect_healthy": 0.0,
            "dcq_gdna": [0.0, np.nan],
            "gdna_sd": [0.0, np.nan],
            "off_rate": 0.0,
            "expression": "control",
        }
    )
    out = pd.concat([t, r, c], ignore_index=True)
    out.insert(4, "lod", np.nan)
    return out


ASSAY_SHEET_COLUMNS = ["assay", "gene", "role", "efficiency", "lod"]

# --------------------------------------------------------------------------- samples

SAMPLE_SHEET_COLUMNS = [
    "sample",
    "kind",
    "patient",
    "timepoint",
    "response",
    "sites",
    "quantity",
    "subtype",
    "age",
    "ecog",
    "line_of_therapy",
]


def make_cohort(
    rng: np.random.Generator,
    n_patients: int,
    first_patient: int = 1,
    timepoints: tuple[str, ...] = ("T0", "T1", "T2"),
    missing_fraction: float = 0.05,
    n_healthy: int = 0,
    first_healthy: int = 1,
    n_liver: int | None = None,
    id_width: int = 2,
    n_baseline_only: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Patients (one row each, with hidden labels) and their samples (+ healthy donors).

    Baseline (first time point) draws are never missing; ``missing_fraction`` of all
    patient x time point draws are missing (rounded), all of them follow-up draws:
    every follow-up of ``n_baseline_only`` patients, the rest at random.
    """
    pid = [f"P{i:0{id_width}d}" for i in range(first_patient, first_patient + n_patients)]
    n = n_patients
    u = rng.uniform(size=n)
    subtype = np.where(u < 0.55, "HR+/HER2-", np.where(u < 0.80, "HER2+", "TNBC"))
    hr = subtype == "HR+/HER2-"
    her2 = subtype == "HER2+"
    if n_liver is None:
        liver = rng.uniform(size=n) < 20 / 45
    else:
        liver = np.zeros(n, bool)
        liver[rng.choice(n, size=n_liver, replace=False)] = True
    bone = rng.uniform(size=n) < np.where(hr, 0.25, 0.65)  # ER/PR+ : fewer bone metastases
    lung = rng.uniform(size=n) < 0.30
    brain = rng.uniform(size=n) < 0.12
    none = ~(liver | bone | lung | brain)
    bone = bone | none
    sites = [
        ";".join(s for s, f in zip(("liver", "bone", "lung", "brain"), flags, strict=True) if f)
        for flags in zip(liver, bone, lung, brain, strict=True)
    ]
    nonresp = np.zeros(n, bool)
    nonresp[rng.permutation(n)[: (n + 1) // 2]] = True
    patients = pd.DataFrame(
        {
            "patient": pid,
            "response": np.where(nonresp, "non-responder", "responder"),
            "sites": sites,
            "subtype": subtype,
            "age": rng.integers(35, 81, n),
            "ecog": rng.choice([0, 1, 2], n, p=[0.45, 0.4, 0.15]),
            "line_of_therapy": rng.choice([1, 2, 3], n, p=[0.5, 0.3, 0.2]),
            "liver": liver,
            "bone": bone,
            "hr_pos": hr,
            "her2_pos": her2,
            "nonresponder": nonresp,
            "ctc_load": rng.normal(0.0, 1.0, n),
        }
    )
    rows = [(p, t) for p in pid for t in timepoints]
    missing = _missing_draws(rng, rows, pid, timepoints, missing_fraction, n_baseline_only)
    kept = [r for i, r in enumerate(rows) if i not in missing]
    s = pd.DataFrame(kept, columns=["patient", "timepoint"])
    s.insert(0, "sample", s["patient"] + "_" + s["timepoint"])
    s.insert(1, "kind", "patient")
    s = s.merge(patients, on="patient", how="left")
    if n_healthy:
        h = pd.DataFrame(
            {
                "sample": [f"HD{i:0{id_width}d}" for i in range(first_healthy, first_healthy + n_healthy)],
                "kind": "healthy",
                "age": rng.integers(25, 66, n_healthy),
            }
        )
        s = pd.concat([s, h], ignore_index=True)
    for col in ("liver", "bone", "hr_pos", "her2_pos", "nonresponder"):
        s[col] = s[col].astype("boolean").fillna(False).astype(bool)
    return patients, s


def _missing_draws(rng, rows, pid, timepoints, missing_fraction, n_baseline_only) -> set[int]:
    """Indices of the missing patient x time point draws: every follow-up of ``n_baseline_only``
    patients, then follow-up draws at random up to ``missing_fraction`` of all draws."""
    follow = [i for i, (_, t) in enumerate(rows) if t != timepoints[0]]
    n_missing = int(round(missing_fraction * len(rows)))
    only = set(rng.choice(pid, size=n_baseline_only, replace=False).tolist()) if n_baseline_only else set()
    missing = {i for i in follow if rows[i][0] in only}
    rest = [i for i in follow if i not in missing]
    n_rest = min(max(n_missing - len(missing), 0), len(rest))
    missing |= set(rng.choice(rest, size=n_rest, replace=False).tolist()) if rest else set()
    return missing


def control_samples(gdna_copies=GDNA_COPIES) -> pd.DataFrame:
    """The control samples, named identically on every chip."""
    rows = [{"sample": f"gDNA_{q}", "kind": "gdna", "quantity": float(q)} for q in gdna_copies]
    rows += [{"sample": "IPC", "kind": "ipc"}, {"sample": "NTC", "kind": "ntc"}]
    return pd.DataFrame(rows)


def sample_material(samples: pd.DataFrame) -> np.ndarray:
    """Planted group/time part of the captured material per sample (log2 units).

    Non-responders +MATERIAL_NONRESPONDER; responders -MATERIAL_DECLINE per time point
    (T0, T1, T2 -> 0, 1, 2); healthy donors and controls 0.
    """
    patient = (samples["kind"] == "patient").to_numpy()
    nonresp = (
        samples["nonresponder"].astype("boolean").fillna(False).to_numpy(bool)
        if "nonresponder" in samples
        else np.zeros(len(samples), bool)
    )
    tp = samples["timepoint"].astype("string").str.extract(r"(\d+)$")[0].astype(float).fillna(0.0).to_numpy()
    return np.where(patient, np.where(nonresp, MATERIAL_NONRESPONDER, -MATERIAL_DECLINE * tp), 0.0)


def _planted_effects(samples: pd.DataFrame, genes: np.ndarray) -> np.ndarray:
    ns = len(samples)
    effect = np.zeros((ns, genes.size))
    for table, flag in (
        (LIVER_EFFECTS, "liver"),
        (NONRESPONDER_EFFECTS, "nonresponder"),
        (HR_EFFECTS, "hr_pos"),
        (HER2_EFFECTS, "her2_pos"),
    ):
        f = (
            samples[flag].astype("boolean").fillna(False).to_numpy(bool)
            if flag in samples
            else np.zeros(ns, bool)
        )
        for g, v in table.items():
            effect[np.ix_(f, genes == g)] += v
    return effect


def _presence(rng, samples, assays, effect, material) -> np.ndarray:
    """Gene present in the captured cells: per-gene probability, shifted by CTC load, material, effect."""
    ns = len(samples)
    kind = samples["kind"].to_numpy()
    healthy = kind == "healthy"
    role = assays["role"].to_numpy()
    load = samples["ctc_load"].fillna(0.0).to_numpy(float)
    load = 0.6 * load + 0.8 * rng.normal(size=ns) + DETECT_PER_MATERIAL * material
    p_pat = np.clip(assays["p_detect"].to_numpy(float), 1e-6, 1 - 1e-6)
    p_hd = np.clip(assays["p_detect_healthy"].to_numpy(float), 1e-6, 1 - 1e-6)
    logit = np.where(healthy[:, None], _logit(p_hd)[None, :], _logit(p_pat)[None, :] + load[:, None])
    logit = logit + 0.5 * effect
    present = rng.uniform(size=(ns, len(assays))) < _expit(logit)
    present[:, role == "reference"] = True
    present[:, assays["gene"].isin(NEVER_EXPRESSED).to_numpy()] = False
    bio = np.isin(kind, ["patient", "healthy"])
    return present & bio[:, None] & np.isin(role, ["target", "reference"])[None, :]


def sample_truth(
    rng: np.random.Generator,
    samples: pd.DataFrame,
    assays: pd.DataFrame,
    heavy_fraction: float = 0.10,
    clean_fraction: float = 0.30,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """RNA-only Cq matrix (samples x assays, NaN = RNA absent), true VPA Cq per sample, planted states.

    The dict holds ``state`` (on / off / absent / failed per cell, "" for controls and
    non-expressed assays), ``planned_cq`` (the RNA Cq a failed reference gene would have had,
    otherwise = rna) and ``material`` (sample's total log2 input shift). Vectorised.
    """
    ns, na = len(samples), len(assays)
    kind = samples["kind"].to_numpy()
    bio = np.isin(kind, ["patient", "healthy"])
    healthy = kind == "healthy"
    role = assays["role"].to_numpy()
    log2e = pmath.log2(assays["efficiency"].to_numpy(float))

    # patient-level random effect (shared by a patient's time points)
    pat = samples["patient"].fillna("").to_numpy()
    upat, pat_idx = np.unique(pat, return_inverse=True)
    pat_eff = rng.normal(size=(upat.size, na)) * assays["patient_sd"].to_numpy(float)
    pat_eff = pat_eff[pat_idx]
    pat_eff[pat == ""] = rng.normal(size=((pat == "").sum(), na)) * assays["patient_sd"].to_numpy(float)
    planted_material = sample_material(samples)
    material = rng.normal(0.0, 0.8, ns) + planted_material
    noise = rng.normal(size=(ns, na)) * assays["bio_sd"].to_numpy(float)

    genes = assays["gene"].to_numpy()
    effect = _planted_effects(samples, genes)
    x = material[:, None] + pat_eff + noise + effect
    epi = np.isin(genes, EPITHELIAL_GENES)
    x[np.ix_(healthy, epi)] -= 2.5  # when a healthy donor shows an epithelial transcript, it is low
    rna = assays["base_cq"].to_numpy(float)[None, :] - x / log2e[None, :]
    present = _presence(rng, samples, assays, effect, planted_material)
    rna = np.where(present, rna, np.nan)

    # "off": background only in a share of the patient samples of each target gene
    patient = kind == "patient"
    off = (
        present
        & patient[:, None]
        & (rng.uniform(size=(ns, na)) < assays["off_rate"].to_numpy(float)[None, :])
    )
    off &= (role == "target")[None, :]
    rna = rna + np.where(off, rng.uniform(*OFF_DELAY, (ns, na)), 0.0)
    # one reference gene fails in a share of the samples
    planned = rna.copy()
    failed = np.zeros((ns, na), bool)
    fail_rows = rng.choice(
        np.flatnonzero(bio), size=int(round(FAILED_REFERENCE_RATE * bio.sum())), replace=False
    )
    failed[np.ix_(fail_rows, genes == FAILED_REFERENCE)] = True
    rna = np.where(failed, np.nan, rna)
    state = np.full((ns, na), "", dtype=object)
    expressed = bio[:, None] & np.isin(role, ["target", "reference"])[None, :]
    state[expressed] = "absent"
    state[present] = "on"
    state[off] = "off"
    state[failed] = "failed"

    ipc_rows = kind == "ipc"
    rna[np.ix_(ipc_rows, role == "ipc")] = IPC_CQ

    # gDNA carry-over (VPA Cq): none / moderate / heavy
    u = rng.uniform(size=ns)
    vpa = np.where(
        u < heavy_fraction,
        rng.uniform(26.5, 29.5, ns),
        np.where(u < heavy_fraction + clean_fraction, np.nan, rng.uniform(33.0, 41.0, ns)),
    )
    vpa = np.where(bio, vpa, np.nan)
    gd = kind == "gdna"
    vpa[gd] = gdna_vpa_cq(samples.loc[gd, "quantity"].to_numpy(float))
    return rna, vpa, {"state": state, "planned_cq": planned, "material": material}
