"""Simulated CTC study on Fluidigm BioMark 96.96 chips, with its planted truth.

Two entry points:

* :func:`simulate_study` writes the documented example study
  (``resources/example``): sheets, BioMark "Table Results" exports in the exact
  layout of a real export (CRLF, 7-line header block, two blank lines, three
  stacked header rows), a new-batch chip for prediction, and ``truth/`` tables
  holding every planted quantity.
* :func:`simulate_chips` writes many full 96 x 96 chips quickly (benchmarks).

Signal model per chamber (algorithms.md §1, §2.1; Cq on the base-2 scale)::

    Cq_RNA(s, g) = base_g - x(s, g) / log2(E_g)       x = log2 quantity (input + patient + noise + effects)
    Cq_DNA(s, g) = Cq_VPA(s) + dCq_gDNA(g)              gDNA carry-over, same for both replicates
    observed     = -log2(2^-Cq_RNA + 2^-Cq_DNA) + o_p + e      o_p chip offset, e replicate noise
    observed > 40 cycles (or no template)  ->  999, quality 0, Fail

All randomness comes from one ``numpy.random.default_rng(seed)`` used in a fixed
order, and every table is written sorted with fixed float formats, so a rerun
with the same seed gives the same bytes.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .tables import write_text, write_tsv

# --------------------------------------------------------------------------- panel

#: The 46 target genes of the study (16 named in the study, 30 EMT/stem/breast markers).
TARGET_GENES: tuple[str, ...] = (
    "ABCC1", "FLT1", "KRT19", "EGFR", "MET", "ALDH1A1", "PGR", "PLAU", "CTSD", "KIT",
    "MKI67", "ESR1", "ERBB2", "SCGB2A2", "EPCAM", "MUC1",
    "VIM", "CDH1", "CDH2", "TWIST1", "SNAI1", "SNAI2", "ZEB1", "ZEB2", "CD44", "CD24",
    "PROM1", "ALDH1A3", "KRT8", "KRT18", "KRT5", "KRT17", "TOP2A", "CCND1", "BCL2", "AKT2",
    "PIK3CA", "MYC", "TFF1", "TFF3", "FOXC1", "FN1", "NANOG", "POU5F1", "SOX2", "GATA3",
)
#: Reference genes: base Cq and biological SD (log2) -> ACTB most stable, B2M least.
REFERENCE_GENES: dict[str, tuple[float, float]] = {
    "ACTB": (15.0, 0.15), "GAPDH": (16.0, 0.25), "B2M": (14.5, 0.35), "PPIA": (17.0, 0.20),
}
VPA_ASSAY = "ValidPrime"
IPC_ASSAY = "IPC"
#: Epithelial / breast markers: mostly absent in healthy donors' enriched blood.
EPITHELIAL_GENES = ("KRT19", "EPCAM", "SCGB2A2", "KRT8", "KRT18", "KRT5", "KRT17", "MUC1",
                    "CDH1", "ESR1", "PGR", "ERBB2", "TFF1", "TFF3", "GATA3")

#: Planted effects, log2 fold change (case vs control) of the RNA quantity.
LIVER_EFFECTS = {"FLT1": 1.5, "KRT19": 2.0, "EGFR": 1.75, "MET": 1.5, "ALDH1A1": 2.0,
                 "PGR": 1.5, "PLAU": 1.75, "CTSD": 1.5, "KIT": 2.0, "MKI67": 1.75}
NONRESPONDER_EFFECTS = {"ABCC1": 1.5, "TWIST1": 1.5, "ALDH1A3": 1.25, "BCL2": -1.5}
HR_EFFECTS = {"ESR1": 3.0, "PGR": 2.5}
HER2_EFFECTS = {"ERBB2": 3.0}

GDNA_COPIES = (10, 50, 250, 1000, 5000)
IPC_CQ = 23.0
LOD = 35.0
MAX_CYCLES = 40.0           # observed Cq above this -> 999 (no amplification)
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
    return 34.0 - np.log2(np.asarray(copies, dtype=float))


def _logit(p):
    return np.log(p / (1 - p))


def _expit(x):
    return 1.0 / (1.0 + np.exp(-x))


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
    t["p_detect"] = np.round(rng.uniform(0.30, 0.90, nt), 2)
    epi = t["gene"].isin(EPITHELIAL_GENES).to_numpy()
    t["p_detect_healthy"] = np.where(epi, 0.05, np.round(t["p_detect"] * 0.5, 3))
    t["dcq_gdna"] = np.round(rng.uniform(0.0, 3.0, nt), 2)
    t["gdna_sd"] = np.round(rng.uniform(0.12, 0.18, nt), 3)
    protected = set(NONRESPONDER_EFFECTS) | set(LIVER_EFFECTS)
    candidates = np.flatnonzero(~t["gene"].isin(protected).to_numpy())
    pick = rng.choice(candidates, size=min(8, candidates.size), replace=False)
    no_gdna, high_sd = pick[:4], pick[4:]
    t.loc[no_gdna, "dcq_gdna"] = np.nan          # intron-spanning: gDNA never amplifies
    t.loc[no_gdna, "gdna_sd"] = np.nan
    t.loc[high_sd, "gdna_sd"] = np.round(rng.uniform(0.6, 0.9, high_sd.size), 3)

    r = pd.DataFrame({"assay": list(REFERENCE_GENES), "gene": list(REFERENCE_GENES), "role": "reference"})
    r["efficiency"] = np.round(rng.uniform(1.95, 2.00, len(r)), 3)
    r["base_cq"] = [v[0] for v in REFERENCE_GENES.values()]
    r["bio_sd"] = [v[1] for v in REFERENCE_GENES.values()]
    r["patient_sd"] = 0.0
    r["p_detect"] = 1.0
    r["p_detect_healthy"] = 1.0
    r["dcq_gdna"] = np.round(rng.uniform(0.5, 2.0, len(r)), 2)
    r["gdna_sd"] = np.round(rng.uniform(0.12, 0.18, len(r)), 3)

    c = pd.DataFrame({
        "assay": [VPA_ASSAY, IPC_ASSAY], "gene": [VPA_ASSAY, IPC_ASSAY], "role": ["validprime", "ipc"],
        "efficiency": [2.0, 2.0], "base_cq": [np.nan, IPC_CQ], "bio_sd": 0.0, "patient_sd": 0.0,
        "p_detect": 0.0, "p_detect_healthy": 0.0, "dcq_gdna": [0.0, np.nan], "gdna_sd": [0.0, np.nan],
    })
    out = pd.concat([t, r, c], ignore_index=True)
    out.insert(4, "lod", np.nan)
    return out


ASSAY_SHEET_COLUMNS = ["assay", "gene", "role", "efficiency", "lod"]

# --------------------------------------------------------------------------- samples

SAMPLE_SHEET_COLUMNS = ["sample", "kind", "patient", "timepoint", "response", "sites", "quantity",
                        "subtype", "age", "ecog", "line_of_therapy"]


def make_cohort(rng: np.random.Generator, n_patients: int, first_patient: int = 1,
                timepoints: tuple[str, ...] = ("T0", "T1", "T2"), missing_fraction: float = 0.05,
                n_healthy: int = 0, first_healthy: int = 1, n_liver: int | None = None,
                id_width: int = 2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Patients (one row each, with hidden labels) and their samples (+ healthy donors).

    Baseline (first time point) draws are never missing; ``missing_fraction`` of the
    follow-up draws of all patients are missing (rounded).
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
    bone = rng.uniform(size=n) < np.where(hr, 0.25, 0.65)   # ER/PR+ : fewer bone metastases
    lung = rng.uniform(size=n) < 0.30
    brain = rng.uniform(size=n) < 0.12
    none = ~(liver | bone | lung | brain)
    bone = bone | none
    sites = [";".join(s for s, f in zip(("liver", "bone", "lung", "brain"), flags) if f)
             for flags in zip(liver, bone, lung, brain)]
    nonresp = np.zeros(n, bool)
    nonresp[rng.permutation(n)[: (n + 1) // 2]] = True
    patients = pd.DataFrame({
        "patient": pid, "response": np.where(nonresp, "non-responder", "responder"), "sites": sites,
        "subtype": subtype, "age": rng.integers(35, 81, n), "ecog": rng.choice([0, 1, 2], n, p=[0.45, 0.4, 0.15]),
        "line_of_therapy": rng.choice([1, 2, 3], n, p=[0.5, 0.3, 0.2]),
        "liver": liver, "bone": bone, "hr_pos": hr, "her2_pos": her2, "nonresponder": nonresp,
        "ctc_load": rng.normal(0.0, 1.0, n),
    })
    rows = [(p, t) for p in pid for t in timepoints]
    follow = [i for i, (_, t) in enumerate(rows) if t != timepoints[0]]
    n_missing = int(round(missing_fraction * len(rows)))
    missing = set(rng.choice(follow, size=min(n_missing, len(follow)), replace=False).tolist()) if follow else set()
    kept = [r for i, r in enumerate(rows) if i not in missing]
    s = pd.DataFrame(kept, columns=["patient", "timepoint"])
    s.insert(0, "sample", s["patient"] + "_" + s["timepoint"])
    s.insert(1, "kind", "patient")
    s = s.merge(patients, on="patient", how="left")
    if n_healthy:
        h = pd.DataFrame({"sample": [f"HD{i:0{id_width}d}" for i in range(first_healthy, first_healthy + n_healthy)],
                          "kind": "healthy", "age": rng.integers(25, 66, n_healthy)})
        s = pd.concat([s, h], ignore_index=True)
    for col in ("liver", "bone", "hr_pos", "her2_pos", "nonresponder"):
        s[col] = s[col].astype("boolean").fillna(False).astype(bool)
    return patients, s


def control_samples(gdna_copies=GDNA_COPIES) -> pd.DataFrame:
    """The control samples, named identically on every chip."""
    rows = [{"sample": f"gDNA_{q}", "kind": "gdna", "quantity": float(q)} for q in gdna_copies]
    rows += [{"sample": "IPC", "kind": "ipc"}, {"sample": "NTC", "kind": "ntc"}]
    return pd.DataFrame(rows)


def sample_truth(rng: np.random.Generator, samples: pd.DataFrame, assays: pd.DataFrame,
                 heavy_fraction: float = 0.10, clean_fraction: float = 0.30) -> tuple[np.ndarray, np.ndarray]:
    """RNA-only Cq matrix (samples x assays, NaN = RNA absent) and true VPA Cq per sample.

    Vectorised over samples and assays.
    """
    ns, na = len(samples), len(assays)
    kind = samples["kind"].to_numpy()
    bio = np.isin(kind, ["patient", "healthy"])
    healthy = kind == "healthy"
    role = assays["role"].to_numpy()
    expressed = np.isin(role, ["target", "reference"])
    log2e = np.log2(assays["efficiency"].to_numpy(float))

    # patient-level random effect (shared by a patient's time points)
    pat = samples["patient"].fillna("").to_numpy()
    upat, pat_idx = np.unique(pat, return_inverse=True)
    pat_eff = rng.normal(size=(upat.size, na)) * assays["patient_sd"].to_numpy(float)
    pat_eff = pat_eff[pat_idx]
    pat_eff[pat == ""] = rng.normal(size=((pat == "").sum(), na)) * assays["patient_sd"].to_numpy(float)
    input_shift = rng.normal(0.0, 0.8, ns)
    noise = rng.normal(size=(ns, na)) * assays["bio_sd"].to_numpy(float)

    genes = assays["gene"].to_numpy()
    effect = np.zeros((ns, na))
    for table, flag in ((LIVER_EFFECTS, "liver"), (NONRESPONDER_EFFECTS, "nonresponder"),
                        (HR_EFFECTS, "hr_pos"), (HER2_EFFECTS, "her2_pos")):
        f = samples[flag].astype("boolean").fillna(False).to_numpy(bool) if flag in samples else np.zeros(ns, bool)
        for g, v in table.items():
            effect[np.ix_(f, genes == g)] += v
    x = input_shift[:, None] + pat_eff + noise + effect
    epi = np.isin(genes, EPITHELIAL_GENES)
    x[np.ix_(healthy, epi)] -= 2.5          # when a healthy donor shows an epithelial transcript, it is low
    rna = assays["base_cq"].to_numpy(float)[None, :] - x / log2e[None, :]

    # presence: per-gene probability, shifted by the sample's CTC load and by the effect
    load = samples["ctc_load"].fillna(0.0).to_numpy(float)
    load = 0.6 * load + 0.8 * rng.normal(size=ns)
    p_pat = np.clip(assays["p_detect"].to_numpy(float), 1e-6, 1 - 1e-6)
    p_hd = np.clip(assays["p_detect_healthy"].to_numpy(float), 1e-6, 1 - 1e-6)
    logit = np.where(healthy[:, None], _logit(p_hd)[None, :], _logit(p_pat)[None, :] + load[:, None])
    logit = logit + 0.5 * effect
    present = rng.uniform(size=(ns, na)) < _expit(logit)
    present[:, role == "reference"] = True
    present &= bio[:, None] & expressed[None, :]
    rna = np.where(present, rna, np.nan)
    ipc_rows = kind == "ipc"
    rna[np.ix_(ipc_rows, role == "ipc")] = IPC_CQ

    # gDNA carry-over (VPA Cq): none / moderate / heavy
    u = rng.uniform(size=ns)
    vpa = np.where(u < heavy_fraction, rng.uniform(26.5, 29.5, ns),
                   np.where(u < heavy_fraction + clean_fraction, np.nan, rng.uniform(33.0, 41.0, ns)))
    vpa = np.where(bio, vpa, np.nan)
    gd = kind == "gdna"
    vpa[gd] = gdna_vpa_cq(samples.loc[gd, "quantity"].to_numpy(float))
    return rna, vpa


# --------------------------------------------------------------------------- chips

def _well_ids(n_in: int, n_as: int) -> np.ndarray:
    s = np.char.add(np.char.add("S", np.char.zfill(np.arange(1, n_in + 1).astype(str), 2)), "-A")
    a = np.char.zfill(np.arange(1, n_as + 1).astype(str), 2)
    return np.char.add(s[:, None], a[None, :])


def simulate_chip_wells(rng: np.random.Generator, inlet_sample: np.ndarray, inlet_rep: np.ndarray,
                        samples: pd.DataFrame, assays: pd.DataFrame, rna: np.ndarray, vpa: np.ndarray,
                        offset: float, *, with_truth: bool = True) -> dict[str, np.ndarray]:
    """All chambers of one chip (used sample inlets x all assays), row-major, vectorised.

    ``inlet_sample``: sample row index per used inlet (inlets 1..n in order);
    ``inlet_rep``: replicate number (1, 2; 0 for controls).
    """
    n_in, n_as = inlet_sample.size, len(assays)
    kind = samples["kind"].to_numpy()[inlet_sample]
    role = assays["role"].to_numpy()
    r = rna[inlet_sample]
    dcq = assays["dcq_gdna"].to_numpy(float)
    g = vpa[inlet_sample][:, None] + dcq[None, :]
    is_gdna = (kind == "gdna")[:, None]
    sd = assays["gdna_sd"].to_numpy(float)
    e_sd = np.sqrt(np.clip(np.nan_to_num(sd) ** 2 - 2 * REPLICATE_SD ** 2, 0, None))
    e_sd[role == "validprime"] = 0.0
    g = g + np.where(is_gdna, rng.normal(size=(n_in, n_as)) * e_sd[None, :], 0.0)
    with np.errstate(over="ignore", invalid="ignore"):
        lin = np.nan_to_num(np.exp2(-r)) + np.nan_to_num(np.exp2(-g))
        true = np.where(lin > 0, -np.log2(np.where(lin > 0, lin, 1.0)), np.inf)
        frac = np.where(lin > 0, np.nan_to_num(np.exp2(-g)) / np.where(lin > 0, lin, 1.0), np.nan)
    noise = rng.normal(size=(n_in, n_as)) * np.where((kind == "ipc")[:, None], IPC_SD, REPLICATE_SD)
    event = np.full((n_in, n_as), "", dtype=object)
    bio = np.isin(kind, ["patient", "healthy"])[:, None]
    bad = bio & (inlet_rep[:, None] == 2) & np.isfinite(true) & (rng.uniform(size=(n_in, n_as)) < BAD_PAIR_RATE)
    shift = np.where(bad, rng.choice([-1.0, 1.0], (n_in, n_as)) * rng.uniform(1.2, 2.5, (n_in, n_as)), 0.0)
    event[bad] = "bad_replicate"
    obs = true + offset + noise + shift
    fail = (kind != "ipc")[:, None] & np.isfinite(obs) & (rng.uniform(size=(n_in, n_as)) < FAILED_WELL_RATE)
    obs = obs + np.where(fail, rng.normal(0.0, 1.0, (n_in, n_as)), 0.0)
    # NTC: one late primer-dimer/contamination signal in a random target assay
    ntc_rows = np.flatnonzero(kind == "ntc")
    targets = np.flatnonzero(role == "target")
    for i in ntc_rows:
        j = rng.choice(targets)
        obs[i, j] = rng.uniform(37.0, 39.5)
        event[i, j] = "ntc_signal"
    noamp = ~np.isfinite(obs) | (obs > MAX_CYCLES)
    fail &= ~noamp
    event[fail] = np.where(event[fail] == "", "failed_well", event[fail] + ";failed_well")
    quality = np.round(rng.uniform(0.75, 0.98, (n_in, n_as)), 2)
    quality = np.where(fail, np.round(rng.uniform(0.05, 0.60, (n_in, n_as)), 2), quality)
    quality = np.where(noamp, 0.0, quality)
    value = np.where(noamp, 999.0, obs)
    call = np.where(noamp | fail, "Fail", "Pass")
    threshold = rng.uniform(0.02, 0.09, n_as)

    stype = np.select([kind == "gdna", kind == "ntc"], ["Standard", "NTC"], "Unknown")
    qty = samples["quantity"].to_numpy(float)[inlet_sample]
    rconc = np.where(np.isfinite(qty), qty, 1.0)
    out = {
        "well": _well_ids(n_in, n_as).ravel(),
        "sample": np.repeat(samples["sample"].to_numpy()[inlet_sample], n_as),
        "sample_type": np.repeat(stype, n_as),
        "rconc": np.repeat(rconc, n_as),
        "assay": np.tile(assays["assay"].to_numpy(), n_in),
        "value": value.ravel(), "quality": quality.ravel(), "call": call.ravel(),
        "threshold": np.tile(threshold, n_in),
    }
    if with_truth:
        out.update({
            "rna_cq": r.ravel(), "gdna_cq": np.where(np.isfinite(g), g, np.nan).ravel(),
            "gdna_fraction": frac.ravel(), "plate_offset": np.full(n_in * n_as, offset),
            "noise": (noise + shift).ravel(), "event": event.ravel(),
            "observed_cq": np.where(noamp, np.nan, obs).ravel(),
        })
    return out


def biomark_text(wells: dict[str, np.ndarray], run_name: str) -> str:
    """A BioMark "Table Results" CSV (CRLF) for the chambers in ``wells``."""
    df = pd.DataFrame({
        "ID": wells["well"], "Name": wells["sample"], "Type": wells["sample_type"], "rConc": wells["rconc"],
        "AName": wells["assay"], "AType": "Test", "Value": wells["value"], "Quality": wells["quality"],
        "Call": wells["call"], "Threshold": wells["threshold"],
    })
    head = NEWLINE.join((f"Chip Run Filename,C:\\BioMark\\ctc-qpcr\\{run_name}.bml",) + _HEADER_LINES) + NEWLINE
    body = df.to_csv(header=False, index=False, float_format="%.15g", lineterminator=NEWLINE)
    return head + body


def _write_bytes(text: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    with open(tmp, "w", encoding="ascii", newline="") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _tsv(df: pd.DataFrame, path: Path) -> None:
    """``write_tsv`` (sorted by the caller, deterministic) with ordinary file permissions."""
    write_tsv(df, path)
    os.chmod(path, 0o644)


def _text(text: str, path: Path) -> None:
    write_text(text, path)
    os.chmod(path, 0o644)


def _layout(order: np.ndarray, n_chips: int, controls: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per chip: (sample index per inlet, replicate per inlet); controls first, then pairs."""
    chunks = np.array_split(order, n_chips)
    out = []
    for ch in chunks:
        inlet_sample = np.concatenate([controls, np.repeat(ch, 2)])
        inlet_rep = np.concatenate([np.zeros(controls.size, int), np.tile([1, 2], ch.size)])
        out.append((inlet_sample, inlet_rep))
    return out


def _sheet(samples: pd.DataFrame) -> pd.DataFrame:
    s = samples.reindex(columns=SAMPLE_SHEET_COLUMNS).copy()
    for c in ("age", "ecog", "line_of_therapy"):
        s[c] = s[c].astype("Int64")
    return s


def _truth_frame(plate: str, wells: dict[str, np.ndarray]) -> pd.DataFrame:
    cols = ["well", "sample", "assay", "rna_cq", "gdna_cq", "gdna_fraction", "plate_offset", "noise",
            "event", "observed_cq", "call"]
    df = pd.DataFrame({c: wells[c] for c in cols})
    df.insert(0, "plate", plate)
    return df


# --------------------------------------------------------------------------- study

def simulate_study(out_dir: str | os.PathLike, seed: int = 2016, *, n_patients: int = 45, n_healthy: int = 20,
                   missing_fraction: float = 0.05, n_liver: int = 20, n_new_patients: int = 10,
                   gdna_copies: tuple[int, ...] = GDNA_COPIES, chips_per_batch: int = 2,
                   path_prefix: str | None = None, outcome: bool = True) -> dict:
    """Write the example study to ``out_dir`` and return a summary dict.

    ``path_prefix`` is what plates.tsv writes before ``chips/...`` (default: ``out_dir``
    as given, e.g. ``resources/example``; paths are relative to the working directory).
    """
    out = Path(out_dir)
    prefix = (str(out_dir) if path_prefix is None else path_prefix).rstrip("/")
    rng = np.random.default_rng(seed)
    assays = make_assays(rng)
    _, study = make_cohort(rng, n_patients, 1, ("T0", "T1", "T2"), missing_fraction, n_healthy, 1, n_liver)
    new_pat, new = make_cohort(rng, n_new_patients, n_patients + 1, ("T0",), 0.0, 0, 1, None)
    controls = control_samples(gdna_copies)
    samples = pd.concat([controls, study, new], ignore_index=True)
    rna, vpa = sample_truth(rng, samples, assays)

    ctrl_idx = np.flatnonzero(samples["kind"].isin(["gdna", "ipc", "ntc"]).to_numpy())
    ctrl_idx = np.concatenate([ctrl_idx[:len(gdna_copies)], np.repeat(ctrl_idx[len(gdna_copies)], 3),
                               ctrl_idx[len(gdna_copies) + 1:]])       # gDNA series, IPC x3, NTC
    pairs_per_chip = (96 - ctrl_idx.size) // 2
    study_idx = np.flatnonzero(samples["sample"].isin(study["sample"]).to_numpy())
    new_idx = np.flatnonzero(samples["sample"].isin(new["sample"]).to_numpy())
    n_chips = math.ceil(study_idx.size / pairs_per_chip)
    layouts = _layout(rng.permutation(study_idx), n_chips, ctrl_idx)
    layouts.append(_layout(new_idx, 1, ctrl_idx)[0])
    offsets = np.round(rng.uniform(-0.4, 0.5, n_chips + 1), 3)

    plates, truth = [], []
    width = max(2, len(str(n_chips + 1)))
    for k, (inl, rep) in enumerate(layouts):
        plate = f"chip{k + 1:0{width}d}"
        is_new = k == n_chips
        batch = "B_new" if is_new else f"B{k // chips_per_batch + 1}"
        sub = "new_batch/chips" if is_new else "chips"
        wells = simulate_chip_wells(rng, inl, rep, samples, assays, rna, vpa, float(offsets[k]))
        _write_bytes(biomark_text(wells, plate), out / sub / f"{plate}.csv")
        plates.append({"plate": plate, "batch": batch, "path": f"{prefix}/{sub}/{plate}.csv", "format": "biomark",
                       "new": is_new, "offset": offsets[k], "n_inlets": inl.size, "n_chambers": inl.size * len(assays)})
        truth.append(_truth_frame(plate, wells))
    plates = pd.DataFrame(plates)

    # sheets
    ctrl_sheet = _sheet(controls)
    _tsv(pd.concat([ctrl_sheet, _sheet(study)], ignore_index=True), out / "samples.tsv")
    _tsv(assays[ASSAY_SHEET_COLUMNS], out / "assays.tsv")
    pcols = ["plate", "batch", "path", "format"]
    _tsv(plates.loc[~plates["new"], pcols], out / "plates.tsv")
    new_sheet = _sheet(new)
    new_sheet[["response", "sites"]] = np.nan      # hidden: to be predicted (truth/new_batch_labels.tsv)
    _tsv(pd.concat([ctrl_sheet, new_sheet], ignore_index=True), out / "new_batch" / "samples.tsv")
    _tsv(plates.loc[plates["new"], pcols], out / "new_batch" / "plates.tsv")

    # truth
    td = out / "truth"
    wt = pd.concat(truth, ignore_index=True)
    _tsv(wt, td / "wells_truth.tsv")
    co = plates[["plate", "batch", "offset"]].copy()
    co["offset_centered_study"] = np.where(plates["new"], np.nan,
                                           plates["offset"] - plates.loc[~plates["new"], "offset"].mean())
    _tsv(co, td / "chip_offsets.tsv")
    gd = assays[["assay", "role", "dcq_gdna", "gdna_sd"]].rename(columns={"gdna_sd": "sd"})
    gd["amplifies_gdna"] = gd["dcq_gdna"].notna()
    gd["high_confidence"] = gd["amplifies_gdna"] & (gd["sd"] <= 0.3)
    _tsv(gd[gd["role"] != "ipc"], td / "gdna_dcq.tsv")
    _tsv(_de_truth(assays), td / "de_truth.tsv")
    det = assays.loc[assays["role"].isin(["target", "reference"]),
                     ["assay", "gene", "role", "base_cq", "p_detect", "p_detect_healthy"]]
    _tsv(det, td / "expression_truth.tsv")
    samp_truth = samples[["sample", "kind", "patient", "timepoint"]].copy()
    samp_truth["vpa_cq"] = vpa
    samp_truth["in_new_batch"] = samples["sample"].isin(new["sample"])
    _tsv(samp_truth[samples["kind"].isin(["patient", "healthy", "gdna"])], td / "samples_truth.tsv")
    _tsv(new_pat[["patient", "response", "sites", "subtype"]], td / "new_batch_labels.tsv")

    summary = _summary(samples, study, new, plates, wt, assays)
    _text(_readme_truth(summary, assays), td / "README.md")
    _text(_readme(summary, seed), out / "README.md")
    if outcome:
        write_outcome_cohort(out, samples, seed)
    return summary


def write_outcome_cohort(out: Path, samples: pd.DataFrame, seed: int) -> None:
    """CellSearch counts and outcomes in the seed study's design (267 patients,
    baseline / cycle 2 / cycle 3 draws, planted PFS HR 2 for >= 5 CTC/7.5 ml;
    see ctc_qpcr.outcome.simulate_outcome). The first patients are the qPCR
    study's patients, so expression can be joined with outcome."""
    from .outcome import simulate_outcome

    qpcr_patients = sorted(p for p in samples.loc[samples["kind"] == "patient", "patient"].unique() if p)
    counts, clinical = simulate_outcome(n_patients=267, seed=seed, patient_ids=qpcr_patients, hr=2.0)
    _tsv(counts, out / "ctc_counts.tsv")
    _tsv(clinical, out / "clinical.tsv")


def _de_truth(assays: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for comp, table in (("liver_vs_no_liver", LIVER_EFFECTS), ("nonresponder_vs_responder", NONRESPONDER_EFFECTS),
                        ("hr_pos_vs_hr_neg", HR_EFFECTS), ("her2_pos_vs_her2_neg", HER2_EFFECTS)):
        for g in assays.loc[assays["role"] == "target", "gene"]:
            rows.append({"comparison": comp, "gene": g, "log2fc": table.get(g, 0.0)})
    for g in assays.loc[assays["role"] == "target", "gene"]:
        rows.append({"comparison": "T1_vs_T0", "gene": g, "log2fc": 0.0})
        rows.append({"comparison": "T2_vs_T0", "gene": g, "log2fc": 0.0})
    return pd.DataFrame(rows).sort_values(["comparison", "gene"], kind="stable").reset_index(drop=True)


def _summary(samples, study, new, plates, wt, assays) -> dict:
    pats = study[study["kind"] == "patient"]
    tgt = wt["assay"].isin(assays.loc[assays["role"] == "target", "assay"])
    bio = wt[wt["sample"].isin(study["sample"]) & (tgt | wt["assay"].isin(assays.loc[assays.role == "reference", "assay"]))]
    det = bio[bio["observed_cq"] <= LOD]
    pt = wt[tgt & wt["sample"].isin(pats["sample"])]
    ht = wt[tgt & wt["sample"].isin(study.loc[study["kind"] == "healthy", "sample"])]
    pct = lambda x: round(100 * float(np.mean(x)), 1)  # noqa: E731
    return {
        "n_patients": int(pats["patient"].nunique()),
        "n_patient_samples": int(len(pats)),
        "n_incomplete_patients": int((pats.groupby("patient").size() < 3).sum()),
        "n_healthy": int((study["kind"] == "healthy").sum()),
        "n_liver": int(pats.drop_duplicates("patient")["liver"].sum()),
        "n_nonresponders": int(pats.drop_duplicates("patient")["nonresponder"].sum()),
        "n_chips": int((~plates["new"]).sum()),
        "n_new_patients": int(len(new)),
        "chambers": {r.plate: int(r.n_chambers) for r in plates.itertuples()},
        "offsets": {r.plate: float(r.offset) for r in plates.itertuples()},
        "n_assays": int(len(assays)),
        "pct_wells_failed": round(100 * float(wt["event"].str.contains("failed_well").mean()), 2),
        "n_bad_replicate_pairs": int((wt["event"] == "bad_replicate").sum()),
        "pct_detected_grade_f": pct(det["gdna_fraction"] >= 0.6),
        "pct_detected_gdna_only": pct(det["rna_cq"].isna()),
        "pct_patient_target_rna": pct(pt["rna_cq"] <= LOD),
        "pct_patient_target_observed": pct(pt["observed_cq"] <= LOD),
        "pct_healthy_target_rna": pct(ht["rna_cq"] <= LOD),
        "pct_healthy_target_observed": pct(ht["observed_cq"] <= LOD),
    }


def _readme_truth(s: dict, assays: pd.DataFrame) -> str:
    low = assays.loc[(assays["role"] == "target") & (assays["gdna_sd"] > 0.3), "assay"].tolist()
    nog = assays.loc[(assays["role"] == "target") & assays["dcq_gdna"].isna(), "assay"].tolist()
    lines = [
        "# Planted truth of the example study",
        "",
        "Generated by `scripts/ctc_qpcr/simulate.py` (see ../README.md). Cq model per chamber:",
        "",
        "    observed = -log2(2^-rna_cq + 2^-gdna_cq) + plate_offset + noise      (999/Fail if > 40 or no template)",
        "",
        "| file | content |",
        "|---|---|",
        "| wells_truth.tsv | one row per exported chamber: `rna_cq` (RNA-only Cq before gDNA, offset and noise; empty = RNA absent), "
        "`gdna_cq` (Cq_DNA = VPA Cq of the sample + dCq_gDNA of the assay; empty = no gDNA), `gdna_fraction` "
        "(true share of the signal from gDNA), `plate_offset`, `noise` (replicate noise + planted bad-replicate shift), "
        "`event` (bad_replicate, failed_well, ntc_signal), `observed_cq` (value in the export; empty = 999), `call` |",
        "| chip_offsets.tsv | planted additive offset per chip (`offset`) and centred on the study chips |",
        "| gdna_dcq.tsv | per assay: planted mean dCq_gDNA (`dcq_gdna`, empty = assay never amplifies gDNA), `sd` = "
        "expected SD of the observed dCq_gDNA over the gDNA rows, `high_confidence` (sd <= 0.3) |",
        "| de_truth.tsv | planted log2 fold change (case vs control) of RNA quantity per comparison x target; 0 = null |",
        "| expression_truth.tsv | base Cq and per-gene detection probability (patients at mean CTC load; healthy) |",
        "| samples_truth.tsv | true VPA Cq (gDNA carry-over) per sample and gDNA standard; empty = no gDNA |",
        "| new_batch_labels.tsv | true response / sites of the new-batch patients (hidden in new_batch/samples.tsv) |",
        "",
        f"* Low-confidence (gDNA SD > 0.3) target assays: {', '.join(low)}.",
        f"* Targets that never amplify gDNA (intron-spanning): {', '.join(nog)}.",
        f"* Failed wells: {s['pct_wells_failed']} % of exported chambers; bad replicate pairs: {s['n_bad_replicate_pairs']}.",
        f"* Patient/healthy target+reference chambers with Cq <= {LOD:g}: {s['pct_detected_grade_f']} % are >= 60 % gDNA "
        f"(grade F), {s['pct_detected_gdna_only']} % are gDNA only (RNA absent).",
        f"* Target chambers with RNA-only Cq <= {LOD:g} vs observed Cq <= {LOD:g}: patients {s['pct_patient_target_rna']} % vs "
        f"{s['pct_patient_target_observed']} %, healthy donors {s['pct_healthy_target_rna']} % vs "
        f"{s['pct_healthy_target_observed']} % (the difference is gDNA carry-over: ValidPrime must remove it).",
        "",
    ]
    return "\n".join(lines)


def _readme(s: dict, seed: int) -> str:
    offs = ", ".join(f"{k} {v:+.3f}" for k, v in s["offsets"].items())
    return f"""# Example study (simulated)

A simulated AdnaTest-enriched CTC study on Fluidigm BioMark 96.96 chips, with every planted effect
written beside it in `truth/`. It is synthetic: no patient data.

Regenerate (byte-identical):

    .venv/bin/python scripts/simulate_study.py --out resources/example --seed {seed}

Benchmark chips (full 96.96: 96 sample x 96 assay inlets, panel padded with GENE47..GENE90,
batches of 12 chips; ~70 s per 1,000 chips, ~0.6 MB per chip; not committed):

    .venv/bin/python scripts/simulate_study.py --out /tmp/bench --seed {seed} --chips 1000 --bench

Code: `scripts/ctc_qpcr/simulate.py` (`simulate_study`, `simulate_chips`); tests:
`tests/test_simulate.py` (fails if this folder is not what the code writes).

## Layout

* `samples.tsv`, `assays.tsv`, `plates.tsv` — the sheets (docs/data-model.md). Paths in `plates.tsv`
  are relative to the repository root (the working directory of the workflow).
* `chips/chipNN.csv` — BioMark "Table Results" exports, byte layout of a real export (CRLF,
  7-line header block with `Quality Threshold,0.65`, two blank lines, three header rows ending
  with `ID,Name,Type,rConc,Name,Type,Value,Quality,Call,Threshold`). Only used chambers are
  exported (used sample inlets x the {s['n_assays']} assay inlets), in inlet order S01..,A01...
  No amplification = `999`, quality 0, `Fail`. Sample type: `Standard` (gDNA), `NTC`, else `Unknown`;
  rConc = gDNA copies for the gDNA series, 1 otherwise.
* `new_batch/` — one further chip (`chips/chip{s['n_chips'] + 1:02d}.csv`, batch `B_new`) with
  {s['n_new_patients']} new patients at T0 and the same controls, with its own `plates.tsv` and
  `samples.tsv` (response and sites left empty: they are to be predicted; the answers are in
  `truth/new_batch_labels.tsv`). Use the study's `assays.tsv`.
* `truth/` — planted values (see `truth/README.md`).

## Design

* {s['n_patients']} patients x T0/T1/T2 = {s['n_patient_samples']} samples (5 % of follow-up draws
  missing; {s['n_incomplete_patients']} incomplete patients; T0 always present) + {s['n_healthy']}
  healthy donors. Every sample in technical duplicate (two adjacent sample inlets, same name).
* Assays: 46 targets, 4 references (ACTB, GAPDH, B2M, PPIA; ACTB most stable, B2M least),
  1 ValidPrime assay (`ValidPrime`, role validprime), 1 IPC assay (`IPC`, role ipc).
* Each chip: gDNA series `gDNA_10`, `gDNA_50`, `gDNA_250`, `gDNA_1000`, `gDNA_5000` (kind gdna,
  quantity = haploid copies; inlets S01-S05), `IPC` in 3 inlets (S06-S08; only the IPC assay
  amplifies, Cq 23 + offset, SD 0.05), `NTC` (S09), then samples in pairs; controls have the same
  names on every chip. {s['n_chips']} chips = ceil(samples / 43 pairs), samples randomised over chips;
  batches of 2 chips (B1, B2).

## Planted

* Chip offsets (additive on every chamber of the chip): {offs}.
* gDNA carry-over per sample: VPA Cq none (30 %), 33-41 (60 %; > 40 = no amplification), heavy 26.5-29.5 (10 %);
  Cq_DNA = VPA Cq + dCq_gDNA(assay) (0-3 cycles for targets; 4 targets never amplify gDNA;
  4 targets with gDNA SD 0.6-0.9 -> low confidence). gDNA standards: VPA Cq = 34 - log2(copies).
* Replicate noise SD 0.10; ~0.5 % of duplicate cells with one replicate shifted 1.2-2.5 cycles;
  ~1 % failed wells (Fail, quality 0.05-0.60, extra noise SD 1); one late NTC signal (37-39.5) per chip.
* Non-detects: per-gene detection probability 30-90 % in patients (modulated by a per-sample CTC
  load), halved in healthy donors, 5 % for epithelial/breast markers (KRT19, EPCAM, SCGB2A2, ...)
  in healthy donors. Global LOD 35; chambers above 40 cycles are 999.
* Effects (log2 fold change of RNA, all time points; Cq shift = log2fc / log2(efficiency)):
  non-responders vs responders ABCC1 +1.5, TWIST1 +1.5, ALDH1A3 +1.25, BCL2 -1.5;
  liver metastasis ({s['n_liver']} of {s['n_patients']}) FLT1, KRT19, EGFR, MET, ALDH1A1, PGR, PLAU,
  CTSD, KIT, MKI67 +1.5 to +2; HR+ (subtype HR+/HER2-) ESR1 +3, PGR +2.5; HER2+ ERBB2 +3;
  no time effect. HR+ patients have fewer bone metastases (P = 0.25 vs 0.65). Sites: liver,
  bone, lung, brain (multi-label, at least one). {s['n_nonresponders']} non-responders.
* Summary: failed wells {s['pct_wells_failed']} %, bad replicate pairs {s['n_bad_replicate_pairs']};
  of patient/healthy chambers with Cq <= LOD, {s['pct_detected_grade_f']} % are grade F (>= 60 % gDNA).
  Target chambers detected (Cq <= 35) from RNA alone / as observed: patients
  {s['pct_patient_target_rna']} % / {s['pct_patient_target_observed']} %, healthy donors
  {s['pct_healthy_target_rna']} % / {s['pct_healthy_target_observed']} %.
"""


# --------------------------------------------------------------------------- bench

def simulate_chips(n_chips: int, out_dir: str | os.PathLike, seed: int = 2016, assays_per_chip: int = 96,
                   *, chips_per_batch: int = 12, path_prefix: str | None = None,
                   gdna_copies: tuple[int, ...] = (10, 50, 250, 1000)) -> pd.DataFrame:
    """Write ``n_chips`` full 96.96 chips (96 sample x ``assays_per_chip`` assay inlets) + sheets.

    Panel = the study panel padded with GENE47... targets to ``assays_per_chip`` assays;
    inlets = 4 gDNA + 3 IPC + 1 NTC + 44 duplicate pairs. No truth tables (speed). Returns plates.
    """
    out = Path(out_dir)
    prefix = (str(out_dir) if path_prefix is None else path_prefix).rstrip("/")
    rng = np.random.default_rng(seed)
    n_targets = assays_per_chip - len(REFERENCE_GENES) - 2
    if n_targets < 1:
        raise ValueError("assays_per_chip must be at least 7")
    assays = make_assays(rng, n_targets)
    controls = control_samples(gdna_copies)
    n_ctrl = len(gdna_copies) + 3 + 1
    pairs = (96 - n_ctrl) // 2
    n_needed = pairs * n_chips
    n_healthy = n_needed // 10
    n_pat = math.ceil((n_needed - n_healthy) / 3)
    w = len(str(max(n_pat, n_healthy)))
    _, cohort = make_cohort(rng, n_pat, 1, ("T0", "T1", "T2"), 0.0, n_healthy, 1, None, id_width=w)
    cohort = cohort.iloc[rng.permutation(len(cohort))[:n_needed]].sort_index()
    samples = pd.concat([controls, cohort], ignore_index=True)
    rna, vpa = sample_truth(rng, samples, assays)
    ctrl = np.arange(len(controls))
    ctrl = np.concatenate([ctrl[:len(gdna_copies)], np.repeat(ctrl[len(gdna_copies)], 3), ctrl[len(gdna_copies) + 1:]])
    order = rng.permutation(np.arange(len(controls), len(samples)))
    layouts = _layout(order, n_chips, ctrl)
    offsets = np.round(rng.uniform(-0.4, 0.5, n_chips), 3)
    width = max(2, len(str(n_chips)))
    plates = []
    for k, (inl, rep) in enumerate(layouts):
        plate = f"chip{k + 1:0{width}d}"
        wells = simulate_chip_wells(rng, inl, rep, samples, assays, rna, vpa, float(offsets[k]), with_truth=False)
        _write_bytes(biomark_text(wells, plate), out / "chips" / f"{plate}.csv")
        plates.append({"plate": plate, "batch": f"B{k // chips_per_batch + 1}",
                       "path": f"{prefix}/chips/{plate}.csv", "format": "biomark"})
    plates = pd.DataFrame(plates)
    _tsv(plates, out / "plates.tsv")
    _tsv(pd.concat([_sheet(controls), _sheet(cohort)], ignore_index=True), out / "samples.tsv")
    _tsv(assays[ASSAY_SHEET_COLUMNS], out / "assays.tsv")
    _tsv(pd.DataFrame({"plate": plates["plate"], "batch": plates["batch"], "offset": offsets}),
              out / "chip_offsets.tsv")
    return plates
