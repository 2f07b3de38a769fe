"""Simulated CTC study on Fluidigm BioMark 96.96 chips, with its planted truth.

Two entry points:

* :func:`simulate_study` writes the documented example study
  (``resources/example``): sheets, BioMark "Table Results" exports in the exact
  layout of a real export (CRLF, 7-line header block, two blank lines, three
  stacked header rows), a new-batch chip for prediction, and ``truth/`` tables
  holding every planted quantity.
* :func:`simulate_chips` writes many full 96 x 96 chips quickly (benchmarks).

Signal model per chamber (docs/methods.md §1, §2.1; Cq on the base-2 scale)::

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

from .simulate_docs import _readme, _readme_truth
from .simulate_model import (  # noqa: F401  (re-exported: the public names of the simulator)
    _HEADER_LINES,
    ASSAY_SHEET_COLUMNS,
    BAD_PAIR_RATE,
    DETECT_PER_MATERIAL,
    EPITHELIAL_GENES,
    FAILED_REFERENCE,
    FAILED_REFERENCE_RATE,
    FAILED_WELL_RATE,
    GDNA_COPIES,
    HER2_EFFECTS,
    HR_EFFECTS,
    IPC_ASSAY,
    IPC_CQ,
    IPC_SD,
    LIVER_EFFECTS,
    LOD,
    MATERIAL_DECLINE,
    MATERIAL_NONRESPONDER,
    MAX_CYCLES,
    NEVER_EXPRESSED,
    NEWLINE,
    NONRESPONDER_EFFECTS,
    OFF_DELAY,
    OFF_RATE_MAX,
    QUALITY_THRESHOLD,
    RARE_P_DETECT,
    RARELY_EXPRESSED,
    REFERENCE_GENES,
    REPLICATE_SD,
    SAMPLE_SHEET_COLUMNS,
    TARGET_GENES,
    VPA_ASSAY,
    _expit,
    _logit,
    _planted_effects,
    _presence,
    control_samples,
    gdna_vpa_cq,
    make_assays,
    make_cohort,
    rna_gdna_mix,
    sample_material,
    sample_truth,
)
from .tables import write_text, write_tsv

# --------------------------------------------------------------------------- chips


def _well_ids(n_in: int, n_as: int) -> np.ndarray:
    s = np.char.add(np.char.add("S", np.char.zfill(np.arange(1, n_in + 1).astype(str), 2)), "-A")
    a = np.char.zfill(np.arange(1, n_as + 1).astype(str), 2)
    return np.char.add(s[:, None], a[None, :])


def simulate_chip_wells(
    rng: np.random.Generator,
    inlet_sample: np.ndarray,
    inlet_rep: np.ndarray,
    samples: pd.DataFrame,
    assays: pd.DataFrame,
    rna: np.ndarray,
    vpa: np.ndarray,
    offset: float,
    *,
    with_truth: bool = True,
) -> dict[str, np.ndarray]:
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
    e_sd = np.sqrt(np.clip(np.nan_to_num(sd) ** 2 - 2 * REPLICATE_SD**2, 0, None))
    e_sd[role == "validprime"] = 0.0
    g = g + np.where(is_gdna, rng.normal(size=(n_in, n_as)) * e_sd[None, :], 0.0)
    true, frac = rna_gdna_mix(r, g)
    noise = rng.normal(size=(n_in, n_as)) * np.where((kind == "ipc")[:, None], IPC_SD, REPLICATE_SD)
    event = np.full((n_in, n_as), "", dtype=object)
    bio = np.isin(kind, ["patient", "healthy"])[:, None]
    bad = (
        bio & (inlet_rep[:, None] == 2) & np.isfinite(true) & (rng.uniform(size=(n_in, n_as)) < BAD_PAIR_RATE)
    )
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

    out = _export_columns(samples, assays, inlet_sample, kind, value, quality, call, threshold)
    if with_truth:
        out.update(
            {
                "rna_cq": r.ravel(),
                "gdna_cq": np.where(np.isfinite(g), g, np.nan).ravel(),
                "gdna_fraction": frac.ravel(),
                "plate_offset": np.full(n_in * n_as, offset),
                "noise": (noise + shift).ravel(),
                "event": event.ravel(),
                "observed_cq": np.where(noamp, np.nan, obs).ravel(),
            }
        )
    return out


def _export_columns(samples, assays, inlet_sample, kind, value, quality, call, threshold) -> dict:
    """The exported columns of every chamber of a chip (row-major: inlet, then assay)."""
    n_in, n_as = inlet_sample.size, len(assays)
    stype = np.select([kind == "gdna", kind == "ntc"], ["Standard", "NTC"], "Unknown")
    qty = samples["quantity"].to_numpy(float)[inlet_sample]
    rconc = np.where(np.isfinite(qty), qty, 1.0)
    out = {
        "well": _well_ids(n_in, n_as).ravel(),
        "sample": np.repeat(samples["sample"].to_numpy()[inlet_sample], n_as),
        "sample_type": np.repeat(stype, n_as),
        "rconc": np.repeat(rconc, n_as),
        "assay": np.tile(assays["assay"].to_numpy(), n_in),
        "value": value.ravel(),
        "quality": quality.ravel(),
        "call": call.ravel(),
        "threshold": np.tile(threshold, n_in),
    }
    return out


def biomark_text(wells: dict[str, np.ndarray], run_name: str) -> str:
    """A BioMark "Table Results" CSV (CRLF) for the chambers in ``wells``."""
    df = pd.DataFrame(
        {
            "ID": wells["well"],
            "Name": wells["sample"],
            "Type": wells["sample_type"],
            "rConc": wells["rconc"],
            "AName": wells["assay"],
            "AType": "Test",
            "Value": wells["value"],
            "Quality": wells["quality"],
            "Call": wells["call"],
            "Threshold": wells["threshold"],
        }
    )
    head = (
        NEWLINE.join((f"Chip Run Filename,C:\\BioMark\\ctc-qpcr\\{run_name}.bml",) + _HEADER_LINES) + NEWLINE
    )
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
    cols = [
        "well",
        "sample",
        "assay",
        "rna_cq",
        "gdna_cq",
        "gdna_fraction",
        "plate_offset",
        "noise",
        "event",
        "observed_cq",
        "call",
    ]
    df = pd.DataFrame({c: wells[c] for c in cols})
    df.insert(0, "plate", plate)
    return df


# --------------------------------------------------------------------------- study


def simulate_study(
    out_dir: str | os.PathLike,
    seed: int = 2016,
    *,
    n_patients: int = 45,
    n_healthy: int = 20,
    missing_fraction: float = 0.15,
    n_baseline_only: int = 3,
    n_liver: int = 20,
    n_new_patients: int = 10,
    gdna_copies: tuple[int, ...] = GDNA_COPIES,
    chips_per_batch: int = 2,
    path_prefix: str | None = None,
    outcome: bool = True,
) -> dict:
    """Write the example study to ``out_dir`` and return a summary dict.

    ``path_prefix`` is what plates.tsv writes before ``chips/...`` (default: ``out_dir``
    as given, e.g. ``resources/example``; paths are relative to the working directory).
    """
    out = Path(out_dir)
    prefix = (str(out_dir) if path_prefix is None else path_prefix).rstrip("/")
    rng = np.random.default_rng(seed)
    assays = make_assays(rng)
    _, study = make_cohort(
        rng,
        n_patients,
        1,
        ("T0", "T1", "T2"),
        missing_fraction,
        n_healthy,
        1,
        n_liver,
        n_baseline_only=n_baseline_only,
    )
    new_pat, new = make_cohort(rng, n_new_patients, n_patients + 1, ("T0",), 0.0, 0, 1, None)
    controls = control_samples(gdna_copies)
    samples = pd.concat([controls, study, new], ignore_index=True)
    rna, vpa, planted = sample_truth(rng, samples, assays)

    ctrl_idx = np.flatnonzero(samples["kind"].isin(["gdna", "ipc", "ntc"]).to_numpy())
    ctrl_idx = np.concatenate(
        [
            ctrl_idx[: len(gdna_copies)],
            np.repeat(ctrl_idx[len(gdna_copies)], 3),
            ctrl_idx[len(gdna_copies) + 1 :],
        ]
    )  # gDNA series, IPC x3, NTC
    pairs_per_chip = (96 - ctrl_idx.size) // 2
    study_idx = np.flatnonzero(samples["sample"].isin(study["sample"]).to_numpy())
    new_idx = np.flatnonzero(samples["sample"].isin(new["sample"]).to_numpy())
    n_chips = math.ceil(study_idx.size / pairs_per_chip)
    layouts = _layout(rng.permutation(study_idx), n_chips, ctrl_idx)
    layouts.append(_layout(new_idx, 1, ctrl_idx)[0])
    offsets = np.round(rng.uniform(-0.4, 0.5, n_chips + 1), 3)

    plates, wt = _write_chips(
        rng, out, prefix, layouts, n_chips, chips_per_batch, samples, assays, rna, vpa, offsets
    )
    _write_sheets(out, controls, study, new, assays, plates)
    _write_truth(out / "truth", plates, wt, assays, samples, new, new_pat, vpa, planted)
    td = out / "truth"
    summary = _summary(samples, study, new, plates, wt, assays)
    summary.update(_real_ctc_summary(study, assays, planted, samples))
    _text(_readme_truth(summary, assays), td / "README.md")
    _text(_readme(summary, seed), out / "README.md")
    if outcome:
        write_outcome_cohort(out, samples, seed)
    return summary


def _write_chips(rng, out, prefix, layouts, n_chips, chips_per_batch, samples, assays, rna, vpa, offsets):
    """Every chip's export (study chips, then the new-batch chip); returns (plates, wells truth)."""
    plates, truth = [], []
    width = max(2, len(str(n_chips + 1)))
    for k, (inl, rep) in enumerate(layouts):
        plate = f"chip{k + 1:0{width}d}"
        is_new = k == n_chips
        batch = "B_new" if is_new else f"B{k // chips_per_batch + 1}"
        sub = "new_batch/chips" if is_new else "chips"
        wells = simulate_chip_wells(rng, inl, rep, samples, assays, rna, vpa, float(offsets[k]))
        _write_bytes(biomark_text(wells, plate), out / sub / f"{plate}.csv")
        plates.append(
            {
                "plate": plate,
                "batch": batch,
                "path": f"{prefix}/{sub}/{plate}.csv",
                "format": "biomark",
                "new": is_new,
                "offset": offsets[k],
                "n_inlets": inl.size,
                "n_chambers": inl.size * len(assays),
            }
        )
        truth.append(_truth_frame(plate, wells))

    return pd.DataFrame(plates), pd.concat(truth, ignore_index=True)


def _write_sheets(out, controls, study, new, assays, plates) -> None:
    ctrl_sheet = _sheet(controls)
    _tsv(pd.concat([ctrl_sheet, _sheet(study)], ignore_index=True), out / "samples.tsv")
    _tsv(assays[ASSAY_SHEET_COLUMNS], out / "assays.tsv")
    pcols = ["plate", "batch", "path", "format"]
    _tsv(plates.loc[~plates["new"], pcols], out / "plates.tsv")
    new_sheet = _sheet(new)
    new_sheet[["response", "sites"]] = np.nan  # hidden: to be predicted (truth/new_batch_labels.tsv)
    _tsv(pd.concat([ctrl_sheet, new_sheet], ignore_index=True), out / "new_batch" / "samples.tsv")
    _tsv(plates.loc[plates["new"], pcols], out / "new_batch" / "plates.tsv")


def _write_truth(td, plates, wt, assays, samples, new, new_pat, vpa, planted) -> None:
    _tsv(wt, td / "wells_truth.tsv")
    co = plates[["plate", "batch", "offset"]].copy()
    co["offset_centered_study"] = np.where(
        plates["new"], np.nan, plates["offset"] - plates.loc[~plates["new"], "offset"].mean()
    )
    _tsv(co, td / "chip_offsets.tsv")
    gd = assays[["assay", "role", "dcq_gdna", "gdna_sd"]].rename(columns={"gdna_sd": "sd"})
    gd["amplifies_gdna"] = gd["dcq_gdna"].notna()
    gd["high_confidence"] = gd["amplifies_gdna"] & (gd["sd"] <= 0.3)
    _tsv(gd[gd["role"] != "ipc"], td / "gdna_dcq.tsv")
    _tsv(_de_truth(assays), td / "de_truth.tsv")
    det = assays.loc[
        assays["role"].isin(["target", "reference"]),
        ["assay", "gene", "role", "base_cq", "p_detect", "p_detect_healthy", "off_rate", "expression"],
    ]
    _tsv(det, td / "expression_truth.tsv")
    _tsv(dcq_truth(samples, assays, planted), td / "dcq_truth.tsv")
    samp_truth = samples[["sample", "kind", "patient", "timepoint"]].copy()
    samp_truth["vpa_cq"] = vpa
    samp_truth["material"] = np.where(
        samples["kind"].isin(["patient", "healthy"]), planted["material"], np.nan
    )
    ref_col = assays["gene"].to_numpy() == FAILED_REFERENCE
    samp_truth["failed_reference"] = np.where(
        planted["state"][:, ref_col][:, 0] == "failed", FAILED_REFERENCE, ""
    )
    samp_truth["in_new_batch"] = samples["sample"].isin(new["sample"])
    _tsv(samp_truth[samples["kind"].isin(["patient", "healthy", "gdna"])], td / "samples_truth.tsv")
    _tsv(new_pat[["patient", "response", "sites", "subtype"]], td / "new_batch_labels.tsv")


def dcq_truth(samples: pd.DataFrame, assays: pd.DataFrame, planted: dict) -> pd.DataFrame:
    """Planted state and ΔCq per patient/healthy sample x target/reference gene.

    ``rna_cq`` is the planted RNA-only Cq (for a failed reference gene: the Cq it would
    have had); ``planted_dcq`` = rna_cq - mean of the sample's planned reference Cq
    (every reference gene, failed or not), empty when the gene is absent.
    """
    bio = samples["kind"].isin(["patient", "healthy"]).to_numpy()
    role = assays["role"].to_numpy()
    cols = np.isin(role, ["target", "reference"])
    planned = planted["planned_cq"][np.ix_(bio, cols)]
    normaliser = planted["planned_cq"][np.ix_(bio, role == "reference")].mean(axis=1)
    ns, ng = planned.shape
    out = pd.DataFrame(
        {
            "sample": np.repeat(samples["sample"].to_numpy()[bio], ng),
            "gene": np.tile(assays["gene"].to_numpy()[cols], ns),
            "role": np.tile(role[cols], ns),
            "state": planted["state"][np.ix_(bio, cols)].ravel(),
            "rna_cq": planned.ravel(),
            "planted_dcq": (planned - normaliser[:, None]).ravel(),
        }
    )
    return out.sort_values(["sample", "gene"], kind="stable").reset_index(drop=True)


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
    for comp, table in (
        ("liver_vs_no_liver", LIVER_EFFECTS),
        ("nonresponder_vs_responder", NONRESPONDER_EFFECTS),
        ("hr_pos_vs_hr_neg", HR_EFFECTS),
        ("her2_pos_vs_her2_neg", HER2_EFFECTS),
    ):
        for g in assays.loc[assays["role"] == "target", "gene"]:
            rows.append({"comparison": comp, "gene": g, "log2fc": table.get(g, 0.0)})
    for g in assays.loc[assays["role"] == "target", "gene"]:
        rows.append({"comparison": "T1_vs_T0", "gene": g, "log2fc": 0.0})
        rows.append({"comparison": "T2_vs_T0", "gene": g, "log2fc": 0.0})
    return pd.DataFrame(rows).sort_values(["comparison", "gene"], kind="stable").reset_index(drop=True)


def _real_ctc_summary(
    study: pd.DataFrame, assays: pd.DataFrame, planted: dict, samples: pd.DataFrame
) -> dict:
    state = planted["state"]
    in_study = samples["sample"].isin(study["sample"]).to_numpy()
    pat = in_study & (samples["kind"] == "patient").to_numpy()
    tgt = (assays["role"] == "target").to_numpy()
    st = state[np.ix_(pat, tgt)]
    off = st == "off"
    draws = study[study["kind"] == "patient"].groupby("patient").size().value_counts().sort_index()
    ref = (assays["gene"] == FAILED_REFERENCE).to_numpy()
    return {
        "never": list(NEVER_EXPRESSED),
        "rare": list(RARELY_EXPRESSED),
        "n_off": int(off.sum()),
        "n_on_off": int(np.isin(st, ["on", "off"]).sum()),
        "n_off_detected": int((off & (planted["planned_cq"][np.ix_(pat, tgt)] <= LOD)).sum()),
        "failed_reference": FAILED_REFERENCE,
        "n_failed_reference": int((state[in_study][:, ref] == "failed").sum()),
        "draws": ", ".join(f"{k}: {v} patients" for k, v in draws.items()),
        "effects": {
            name: ", ".join(f"{g} {v:+g}" for g, v in table.items())
            for name, table in (
                ("response", NONRESPONDER_EFFECTS),
                ("liver", LIVER_EFFECTS),
                ("hr", HR_EFFECTS),
                ("her2", HER2_EFFECTS),
            )
        },
    }


def _summary(samples, study, new, plates, wt, assays) -> dict:
    pats = study[study["kind"] == "patient"]
    tgt = wt["assay"].isin(assays.loc[assays["role"] == "target", "assay"])
    bio = wt[
        wt["sample"].isin(study["sample"])
        & (tgt | wt["assay"].isin(assays.loc[assays.role == "reference", "assay"]))
    ]
    det = bio[bio["observed_cq"] <= LOD]
    pt = wt[tgt & wt["sample"].isin(pats["sample"])]
    ht = wt[tgt & wt["sample"].isin(study.loc[study["kind"] == "healthy", "sample"])]
    pct = lambda x: round(100 * float(np.mean(x)), 1)  # noqa: E731
    return {
        "lod": LOD,
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


# --------------------------------------------------------------------------- bench


def simulate_chips(
    n_chips: int,
    out_dir: str | os.PathLike,
    seed: int = 2016,
    assays_per_chip: int = 96,
    *,
    chips_per_batch: int = 12,
    path_prefix: str | None = None,
    gdna_copies: tuple[int, ...] = (10, 50, 250, 1000),
) -> pd.DataFrame:
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
    rna, vpa, _ = sample_truth(rng, samples, assays)
    ctrl = np.arange(len(controls))
    ctrl = np.concatenate(
        [ctrl[: len(gdna_copies)], np.repeat(ctrl[len(gdna_copies)], 3), ctrl[len(gdna_copies) + 1 :]]
    )
    order = rng.permutation(np.arange(len(controls), len(samples)))
    layouts = _layout(order, n_chips, ctrl)
    offsets = np.round(rng.uniform(-0.4, 0.5, n_chips), 3)
    width = max(2, len(str(n_chips)))
    plates = []
    for k, (inl, rep) in enumerate(layouts):
        plate = f"chip{k + 1:0{width}d}"
        wells = simulate_chip_wells(
            rng, inl, rep, samples, assays, rna, vpa, float(offsets[k]), with_truth=False
        )
        _write_bytes(biomark_text(wells, plate), out / "chips" / f"{plate}.csv")
        plates.append(
            {
                "plate": plate,
                "batch": f"B{k // chips_per_batch + 1}",
                "path": f"{prefix}/chips/{plate}.csv",
                "format": "biomark",
            }
        )
    plates = pd.DataFrame(plates)
    _tsv(plates, out / "plates.tsv")
    _tsv(pd.concat([_sheet(controls), _sheet(cohort)], ignore_index=True), out / "samples.tsv")
    _tsv(assays[ASSAY_SHEET_COLUMNS], out / "assays.tsv")
    _tsv(
        pd.DataFrame({"plate": plates["plate"], "batch": plates["batch"], "offset": offsets}),
        out / "chip_offsets.tsv",
    )
    return plates
