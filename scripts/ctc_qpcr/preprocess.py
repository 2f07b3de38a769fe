"""Per-batch preprocessing: wells → cells (algorithms §0.1 steps 2–7).

Order: well states (§3.1) → NTC margin (§3.3, optional, on the raw Cq) → ValidPrime
per chip (§1) → inter-plate calibration (§2: global IPC offset after ValidPrime —
the two commute, §1.6; per-assay IRC offsets *before* ValidPrime, as §1.6 requires)
→ replicate averaging and QC (§3.2) → detection call and LOD + 1 imputation (§3.3)
→ optional efficiency scaling (§3.4).

Working vocabulary per well: ``use`` = "value" (a usable, corrected Cq),
"nondetect" (NOAMP / LOWSIGNAL / below the NTC margin: the replicate answered "not
detected") or "excluded" (EXPFAIL, or removed by ValidPrime: HIGHDNA, HIGHSD, ND —
no information either way). A cell without any answering replicate is *missing*
(``cq_imputed`` NaN), not a non-detect.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import calibration, detection as det, efficiency as eff, replicates as reps, validprime as vp
from .calibration import ipc_reference_from  # noqa: F401  (re-exported for the workflow)
from .errors import ConfigError
from .wells import CALC, assign_states

CELL_COLUMNS = [
    "batch", "plate", "sample", "kind", "assay", "gene", "role", "cq", "cq_imputed", "detected",
    "n_replicates", "n_detected", "replicate_delta", "replicate_sd", "gdna_fraction", "vp_grade",
    "plate_offset", "flags",
]
STUDY_KINDS = ("patient", "healthy", "other")
WELL_FLAG_COLUMNS = ["plate", "well", "sample", "assay", "flag", "reason"]

#: Defaults of the keyword dicts of :func:`preprocess_batch` (algorithms §1–§3 defaults).
DEFAULTS: dict[str, dict] = {
    "validprime": {
        "enabled": True,
        "mode": "replicate",          # "replicate" (each replicate with its own VPA well) | "averaged"
        "sd_max": 0.3,                # §1.3 All-SD cutoff
        "min_gdna": 4,                # §1.3 minSdCount (v1.0.1)
        "loo": False,                 # §1.3 leave-one-out
        "loo_sd": 0.2,
        "gdna_unit": "sample",        # "sample" (mean of a gDNA sample's replicates) | "well"
        "grade_a": 3.0, "grade_b": 25.0, "grade_c": 60.0,   # %DNA, strict <
        "correct_a": False,
        "vpa_noamp_upper_bound": False,  # §1.5 extension: VPA NOAMP → LOD + 1 instead of A*
        "apply_to_kinds": STUDY_KINDS,
    },
    "ipc": {
        "mode": "global",             # "global" (§2.1) | "per_assay" (§2.2) | "off"
        "samples": None,              # default: samples of kind ipc
        "assays": None,               # global: default assays of role ipc; per_assay: all assays
        "max_sd": 0.25,
        "max_offset": 1.0,
        "min_replicates": 3,
    },
    "replicates": {
        "max_delta": 0.5,
        "max_sd": None,               # None → max_delta/√2 (for ≥ 3 replicates)
        "method": "mean",             # "mean" | "median" (median only for ≥ 3 values)
        "grubbs": False,
        "grubbs_alpha": 0.05,
    },
    "detection": {
        "min_detected": "all",        # "all" (strict) | int k (k of n)
        "ntc_margin": None,           # None | cycles (eleven: 3.32)
    },
    "efficiency": {
        "scale": False,               # Cq* = Cq·log2(E) on cq and cq_imputed (config: apply)
        "from_standards": True,       # fit E from `standard` samples with a known quantity
        "min_points": 3,              # distinct standard quantities for a curve
    },
}


def _config_aliases(name: str, given: dict) -> dict:
    """Accept the keys of config/config.yaml (workflow/schemas) beside the library's own names."""
    g = dict(given)
    if name == "validprime":
        if "activate" in g:
            g["enabled"] = bool(g.pop("activate"))
        if g.get("mode") == "per_replicate":
            g["mode"] = "replicate"
    elif name == "ipc":
        active = bool(g.pop("activate", True))
        g.pop("reference", None)  # passed as preprocess_batch(ipc_reference=...)
        calibrators = list(g.pop("calibrators", None) or [])
        if calibrators:
            g["mode"], g["samples"] = "per_assay", calibrators
        if not active:
            g["mode"] = "off"
    elif name == "replicates":
        outliers = g.pop("outliers", None)
        if outliers == "grubbs":
            g["grubbs"] = True
        elif outliers == "median":
            g["method"] = "median"
        elif outliers not in (None, "none"):
            raise ConfigError(f"replicates.outliers must be none, grubbs or median, not {outliers!r}")
    elif name == "efficiency":
        if "apply" in g:
            g["scale"] = bool(g.pop("apply"))
    return g


def _options(name: str, given: dict | None) -> dict:
    allowed = DEFAULTS[name]
    given = _config_aliases(name, given or {})
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ConfigError(f"preprocessing option {name}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    return {**allowed, **given}


def _lookup(series: pd.Series, mapping: dict, default) -> pd.Series:
    return series.map(mapping).fillna(default)


def _append_flag(current: pd.Series, mask, flag: str) -> pd.Series:
    mask = np.asarray(mask, dtype=bool)
    out = current.copy()
    out[mask] = np.where(out[mask] == "", flag, out[mask] + ";" + flag)
    return out


def preprocess_batch(
    wells: pd.DataFrame,
    samples: pd.DataFrame,
    assays: pd.DataFrame,
    *,
    lod: float = 35.0,
    validprime: dict | None = None,
    ipc: dict | None = None,
    replicates: dict | None = None,
    detection: dict | None = None,
    efficiency: dict | None = None,
    ipc_reference: float | None = None,
    batch: str = "",
) -> dict:
    """Preprocess one batch of plates (see module docstring for the order).

    ``wells``: data-model §1 rows of every plate of the batch (``state`` is
    recomputed with ``lod`` and the assays' ``lod``). ``samples``/``assays``: the
    sheets; sample kind and assay gene/role are joined by name (unknown samples →
    kind ``other``, unknown assays → role ``target``, gene = assay; both noted).
    ``batch`` fills the ``batch`` column unless ``wells`` has one.

    Returns ``cells`` (data-model §2), ``validprime_assays``, ``plate_calibration``,
    ``assay_calibration`` (per-assay IRC offsets; empty unless ipc mode per_assay),
    ``well_flags``, ``efficiency``, ``wells`` (per-well working table) and
    ``notes`` (list of str).
    """
    o_vp = _options("validprime", validprime)
    o_ipc = _options("ipc", ipc)
    if ipc_reference is None and ipc and ipc.get("reference") is not None:
        ipc_reference = float(ipc["reference"])
    o_rep = _options("replicates", replicates)
    o_det = _options("detection", detection)
    o_eff = _options("efficiency", efficiency)
    notes: list[str] = []

    # ---- join the sheets -------------------------------------------------------------
    s = samples.copy()
    s["sample"] = s["sample"].astype(str).str.strip()
    a = assays.copy()
    a["assay"] = a["assay"].astype(str).str.strip()
    kind_of = dict(zip(s["sample"], s["kind"].astype(str).str.strip()))
    gene_of = dict(zip(a["assay"], a["gene"].astype(str).str.strip()))
    role_of = dict(zip(a["assay"], a["role"].astype(str).str.strip()))
    assay_lod = {}
    if "lod" in a.columns:
        lods = pd.to_numeric(a["lod"], errors="coerce")
        assay_lod = {k: float(v) for k, v in zip(a["assay"], lods) if np.isfinite(v)}
    sample_qty = dict(zip(s["sample"], pd.to_numeric(s["quantity"], errors="coerce"))) if "quantity" in s.columns else {}

    w = wells.copy().reset_index(drop=True)
    for col in ("plate", "well", "sample", "assay"):  # ids arrive stripped (data-model §1)
        w[col] = w[col].astype(str)
    if "batch" not in w.columns:
        w["batch"] = batch
    unknown_s = sorted(set(w["sample"]) - set(kind_of))
    unknown_a = sorted(set(w["assay"]) - set(role_of))
    if unknown_s:
        notes.append(f"{len(unknown_s)} sample name(s) on the plates are not in the samples sheet (treated as kind 'other'): {', '.join(unknown_s[:10])}")
    if unknown_a:
        notes.append(f"{len(unknown_a)} assay name(s) on the plates are not in the assays sheet (treated as role 'target'): {', '.join(unknown_a[:10])}")
    w["kind"] = _lookup(w["sample"], kind_of, "other")
    w["role"] = _lookup(w["assay"], role_of, "target")
    w["gene"] = w["assay"].map(gene_of)
    w["gene"] = w["gene"].where(w["gene"].notna(), w["assay"])

    # ---- states (§3.1) -----------------------------------------------------------------
    w = assign_states(w, lod=lod, assay_lod=assay_lod)
    w["cq_measured"] = pd.to_numeric(w["cq"], errors="coerce").astype(float)
    w["cq"] = w["cq_measured"]
    w["use"] = reps.use_from_state(w["state"])
    # A chip where no well gave a usable signal (all failed, all non-detected)
    # is said out loud, not left to be discovered through empty results.
    for plate, states in w.groupby("plate", sort=True)["state"]:
        if not (states == "CALC").any():
            counts = ", ".join(f"{k} {v}" for k, v in states.value_counts().sort_index().items())
            notes.append(f"chip {plate}: no usable well (no CALC well among {len(states)}: {counts}) — check the run and the export")
    w["vp_grade"] = ""
    w["gdna_fraction"] = np.nan
    w["vp_flag"] = ""
    w["plate_offset"] = 0.0
    w["global_offset"] = 0.0
    flag_frames: list[pd.DataFrame] = []
    bad = w["state"] != CALC
    flag_frames.append(w.loc[bad, ["plate", "well", "sample", "assay"]].assign(flag=w.loc[bad, "state"], reason=w.loc[bad, "state_reason"]))

    # ---- NTC margin (§3.3 rule 3, on the measured Cq) ------------------------------------
    ntc_samples = sorted(set(w.loc[w["kind"] == "ntc", "sample"]))
    if o_det["ntc_margin"] is not None:
        if not ntc_samples:
            notes.append("detection.ntc_margin is set but the batch has no sample of kind 'ntc': no NTC rule applied")
        else:
            thr = det.ntc_thresholds(w, ntc_samples, float(o_det["ntc_margin"]))
            # Only on study samples: gDNA references, calibrators and standards are not judged against the NTC.
            hit = det.above_ntc(w, thr, "cq_measured") & (w["use"] == "value").to_numpy() & w["kind"].isin(STUDY_KINDS).to_numpy()
            if hit.any():
                key = pd.MultiIndex.from_frame(w.loc[hit, ["plate", "assay"]])
                t = thr.set_index(["plate", "assay"]).reindex(key)
                reason = "cq>" + t["ntc_threshold"].round(2).astype(str).to_numpy() + " (min NTC cq " + t["ntc_min_cq"].round(2).astype(str).to_numpy() + f" - {float(o_det['ntc_margin']):g})"
                flag_frames.append(w.loc[hit, ["plate", "well", "sample", "assay"]].assign(flag="NTC_MARGIN", reason=reason))
                w.loc[hit, "use"] = "nondetect"

    # ---- per-assay IRC (§2.2) comes before ValidPrime (§1.6) ------------------------------
    plates = sorted(set(w["plate"]))
    assay_calibration = pd.DataFrame(columns=calibration.IRC_COLUMNS)
    ipc_mode = o_ipc["mode"]
    if ipc_mode not in ("global", "per_assay", "off"):
        raise ConfigError(f"ipc.mode must be 'global', 'per_assay' or 'off', not {ipc_mode!r}")
    ipc_samples = list(o_ipc["samples"]) if o_ipc["samples"] is not None else sorted(set(w.loc[w["kind"] == "ipc", "sample"]))
    if ipc_mode == "per_assay":
        if not ipc_samples:
            notes.append("ipc.mode per_assay but no calibrator samples (kind 'ipc') in the batch: no inter-run calibration")
        else:
            assay_calibration = calibration.irc_offsets(w, ipc_samples, assays=o_ipc["assays"], plates=plates)
            w = calibration.apply_assay_offsets(w, assay_calibration, cq_cols=("cq",))

    # ---- ValidPrime per chip (§1) ----------------------------------------------------------
    vp_cols = ["plate", "assay", "gene", "dcq_gdna", "sd", "n", "confidence", "score", "score_grade", "n_gdna", "loo_outlier", "sd_loo", "dcq_gdna_all"]
    validprime_assays = pd.DataFrame(columns=vp_cols)
    vp_assays = sorted(set(w.loc[w["role"] == "validprime", "assay"]))
    vp_on = bool(o_vp["enabled"])
    vp_mode = o_vp["mode"]
    if vp_mode not in ("replicate", "averaged"):
        raise ConfigError(f"validprime.mode must be 'replicate' or 'averaged', not {vp_mode!r}")
    goi_mask = w["kind"].isin(set(o_vp["apply_to_kinds"])) & w["role"].isin(["target", "reference"])
    gdna_samples = sorted(set(w.loc[w["kind"] == "gdna", "sample"]))
    vp_kwargs = {}
    if not vp_on:
        notes.append("ValidPrime switched off (validprime.enabled: false)")
    elif not vp_assays:
        notes.append("no assay with role 'validprime' in the batch: ValidPrime skipped")
        vp_on = False
    elif not gdna_samples:
        notes.append("no gDNA reference sample (kind 'gdna') in the batch: ValidPrime skipped")
        vp_on = False
    if vp_on:
        vpa = vp_assays[0]
        if len(vp_assays) > 1:
            notes.append(f"several validprime assays ({', '.join(vp_assays)}): using {vpa}")
        vpa_lod = assay_lod.get(vpa, lod)
        goi_assays = sorted(set(w.loc[w["role"].isin(["target", "reference"]), "assay"]))
        table = vp.validate_assays(
            w, vpa_assay=vpa, gdna_samples=gdna_samples, goi_assays=goi_assays, lod=vpa_lod,
            sd_max=o_vp["sd_max"], min_gdna=int(o_vp["min_gdna"]), loo=bool(o_vp["loo"]),
            loo_sd=o_vp["loo_sd"], gdna_unit=o_vp["gdna_unit"],
        )
        gdna_plates = set(w.loc[w["kind"] == "gdna", "plate"])
        table = table[table["plate"].isin(gdna_plates)]
        table.insert(2, "gene", table["assay"].map(gene_of).fillna(table["assay"]))
        validprime_assays = table[vp_cols].reset_index(drop=True)
        no_gdna_plates = sorted(set(plates) - gdna_plates)
        if no_gdna_plates:
            notes.append(f"no gDNA reference on chip(s) {', '.join(no_gdna_plates)}: ValidPrime not applied there (cells flagged VP_NO_GDNA_ON_PLATE)")
            w["vp_flag"] = _append_flag(w["vp_flag"], goi_mask & w["plate"].isin(no_gdna_plates), "VP_NO_GDNA_ON_PLATE")
        vp_kwargs = dict(
            vpa_assay=vpa, assay_table=table, vpa_lod=vpa_lod, grade_a=o_vp["grade_a"], grade_b=o_vp["grade_b"],
            grade_c=o_vp["grade_c"], correct_a=bool(o_vp["correct_a"]), vpa_noamp_upper_bound=bool(o_vp["vpa_noamp_upper_bound"]),
        )
        if vp_mode == "replicate":
            sel = goi_mask & w["plate"].isin(gdna_plates)
            if sel.any():
                sub = w.loc[sel].copy()
                # ValidPrime looks at the GOI's own state: a well moved to non-detect by the
                # NTC rule is treated as LOWSIGNAL here.
                sub["state"] = np.where((sub["use"] == "nondetect") & (sub["state"] == CALC), "LOWSIGNAL", sub["state"])
                res = vp.apply_validprime(sub, w, mode="replicate", **vp_kwargs)
                _take_vp(w, res)
                flag_frames.append(_vp_well_flags(res))

    # ---- global IPC (§2.1), after ValidPrime (commutes, §1.6) ------------------------------
    plate_calibration = pd.DataFrame({"plate": plates, "ipc_mean": np.nan, "ipc_sd": np.nan, "n": 0, "offset": 0.0, "flags": ""})[calibration.IPC_COLUMNS]
    if ipc_mode == "global":
        ipc_assays = list(o_ipc["assays"]) if o_ipc["assays"] is not None else sorted(set(w.loc[w["role"] == "ipc", "assay"]))
        if not ipc_samples or not ipc_assays:
            notes.append("no inter-plate calibrator (sample kind 'ipc' with an assay of role 'ipc') in the batch: no plate offsets")
        else:
            plate_calibration = calibration.ipc_offsets(
                w.assign(cq=w["cq_measured"]), ipc_samples, ipc_assays, ipc_reference, plates=plates,
                max_sd=o_ipc["max_sd"], max_offset=o_ipc["max_offset"], min_replicates=int(o_ipc["min_replicates"]),
            )
            w = calibration.apply_offsets(w, plate_calibration, cq_cols=("cq",))
            w["global_offset"] = w["plate_offset"]
            for _, row in plate_calibration[plate_calibration["flags"] != ""].iterrows():  # one row per chip
                notes.append(f"chip {row['plate']}: IPC {row['flags']}")
    elif ipc_mode == "per_assay":
        plate_calibration["flags"] = "PER_ASSAY_CALIBRATION"
    else:
        notes.append("inter-plate calibration switched off (ipc.mode: off)")

    # ---- replicates (§3.2) -------------------------------------------------------------------
    w.loc[w["use"] != "value", "cq"] = np.nan
    cells, outliers = reps.summarise_replicates(
        w, max_delta=o_rep["max_delta"], max_sd=o_rep["max_sd"], method=o_rep["method"],
        grubbs=bool(o_rep["grubbs"]), grubbs_alpha=o_rep["grubbs_alpha"],
    )
    if len(outliers):
        ow = w.loc[outliers]
        flag_frames.append(ow[["plate", "well", "sample", "assay"]].assign(flag="GRUBBS_OUTLIER", reason="cq=" + ow["cq"].round(3).astype(str)))
        w.loc[outliers, "use"] = "excluded"

    keys = ["plate", "sample", "assay"]
    first = w.drop_duplicates(keys).set_index(keys)
    cells = cells.set_index(keys)
    for col in ("batch", "kind", "gene", "role"):
        cells[col] = first[col].reindex(cells.index)
    cells["plate_offset"] = w.groupby(keys, sort=False)["plate_offset"].mean().reindex(cells.index)
    cells["global_offset"] = w.groupby(keys, sort=False)["global_offset"].mean().reindex(cells.index)
    cells["gdna_fraction"] = w.groupby(keys, sort=False)["gdna_fraction"].mean().reindex(cells.index)
    sev = w["vp_grade"].map(vp.GRADE_SEVERITY).fillna(0).astype(int)
    worst = sev.groupby([w[k] for k in keys], sort=False).max().reindex(cells.index)
    inv = {v: k for k, v in vp.GRADE_SEVERITY.items()}
    cells["vp_grade"] = worst.map(inv).fillna("")
    # Cell flags = replicate flags + the distinct ValidPrime flags of its wells (pivoted, no per-group Python).
    fl = w.loc[w["vp_flag"] != "", [*keys, "vp_flag"]].drop_duplicates()
    parts = {"r": cells["flags"]}
    if len(fl):
        fl["_k"] = fl.groupby(keys, sort=False).cumcount()
        wide = fl.pivot(index=keys, columns="_k", values="vp_flag").reindex(cells.index).fillna("")
        parts.update({f"v{c}": wide[c] for c in wide.columns})
    cells["flags"] = reps.join_flag_columns(pd.DataFrame(parts))
    cells = cells.reset_index()

    # ---- ValidPrime on replicate-averaged cells (mode "averaged") ------------------------------
    if vp_on and vp_mode == "averaged":
        gdna_plates = set(w.loc[w["kind"] == "gdna", "plate"])
        sel = cells["kind"].isin(set(o_vp["apply_to_kinds"])) & cells["role"].isin(["target", "reference"]) & cells["plate"].isin(gdna_plates)
        if sel.any():
            sub = cells.loc[sel].copy()
            # Work on the scale before the global IPC offset (GOI cell and VPA wells alike;
            # per-assay IRC offsets, applied before ValidPrime, stay in both).
            goff = sub["global_offset"].to_numpy()
            sub["cq"] = sub["cq"] + goff
            sub["state"] = np.where(sub["n_detected"] > 0, CALC, np.where(sub["n_replicates"] > 0, "NOAMP", "EXPFAIL"))
            vw = w.assign(cq=w["cq"] + w["global_offset"])
            res = vp.apply_validprime(sub, vw, mode="averaged", **vp_kwargs)
            value = res["use"] == "value"
            cells.loc[sel, "cq"] = np.where(value, res["cq_rna"] - goff, np.nan)
            lost = (res["use"] == "excluded") & (sub["n_detected"] > 0)
            idx = res.index[lost.to_numpy()]
            cells.loc[idx, "n_detected"] = 0
            cells.loc[idx, "n_replicates"] = 0
            cells.loc[sel, "vp_grade"] = res["vp_grade"]
            cells.loc[sel, "gdna_fraction"] = res["gdna_fraction"]
            cells.loc[sel, "flags"] = reps.join_flag_columns(pd.DataFrame({"r": cells.loc[sel, "flags"], "v": res["vp_flag"]}))

    # ---- detection and imputation (§3.3) ----------------------------------------------------------
    cells = det.call_cells(cells, lod=lod, assay_lod=assay_lod, min_detected=o_det["min_detected"])

    # ---- efficiency (§3.4) -------------------------------------------------------------------------
    std = w[(w["kind"] == "standard") & bool(o_eff["from_standards"])]
    qty = std["sample"].map(sample_qty) if sample_qty else pd.Series(np.nan, index=std.index)
    if "quantity" in std.columns:
        qty = qty.where(qty.notna(), pd.to_numeric(std["quantity"], errors="coerce"))
    eff_table = eff.standard_curves(std.assign(cq=std["cq_measured"]), qty, min_points=int(o_eff["min_points"]))
    if "efficiency" in a.columns:
        sheet_e = pd.to_numeric(a["efficiency"], errors="coerce")
        given = pd.DataFrame({"assay": a["assay"], "E": sheet_e})
        given = given[given["E"].notna()]
        if len(given):
            given = given.assign(slope=np.nan, intercept=np.nan, efficiency_pct=(given["E"] - 1) * 100, r2=np.nan, n=0, source="assays_sheet")
            parts = [given[eff.EFFICIENCY_COLUMNS], eff_table[~eff_table["assay"].isin(set(given["assay"]))]]
            parts = [part for part in parts if len(part)]
            eff_table = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
    eff_table = eff_table.sort_values("assay").reset_index(drop=True)
    if o_eff["scale"]:
        e_of = dict(zip(eff_table["assay"], eff_table["E"]))
        e = cells["assay"].map(e_of).fillna(2.0).to_numpy(dtype=float)
        cells["cq"] = eff.scale_cq(cells["cq"], e)
        cells["cq_imputed"] = eff.scale_cq(cells["cq_imputed"], e)
        if not e_of:
            notes.append("efficiency.scale is on but no efficiency is known (standards or assays sheet): E = 2 used")

    cells["batch"] = cells["batch"].fillna(batch).astype(str)
    cells = cells[CELL_COLUMNS].sort_values(["plate", "sample", "assay"]).reset_index(drop=True)
    cells["detected"] = cells["detected"].astype(bool)
    for col in ("n_replicates", "n_detected"):
        cells[col] = cells[col].astype(int)

    well_flags = pd.concat(flag_frames, ignore_index=True) if flag_frames else pd.DataFrame(columns=WELL_FLAG_COLUMNS)
    well_flags = well_flags[WELL_FLAG_COLUMNS].sort_values(["plate", "well", "flag"]).reset_index(drop=True)

    return {
        "cells": cells,
        "validprime_assays": validprime_assays.sort_values(["plate", "assay"]).reset_index(drop=True),
        "plate_calibration": plate_calibration.sort_values("plate").reset_index(drop=True),
        "assay_calibration": assay_calibration.reset_index(drop=True),
        "well_flags": well_flags,
        "efficiency": eff_table,
        "wells": w.sort_values(["plate", "well"]).reset_index(drop=True),
        "notes": notes,
    }


def _take_vp(w: pd.DataFrame, res: pd.DataFrame) -> None:
    """Write ValidPrime results of the corrected wells back into the working table."""
    idx = res.index
    value = res["use"] == "value"
    w.loc[idx, "cq"] = np.where(value, res["cq_rna"], np.nan)
    w.loc[idx, "use"] = res["use"]
    w.loc[idx, "vp_grade"] = res["vp_grade"]
    w.loc[idx, "gdna_fraction"] = res["gdna_fraction"]
    cur = w.loc[idx, "vp_flag"]
    new = res["vp_flag"]
    w.loc[idx, "vp_flag"] = np.where(cur == "", new, np.where(new == "", cur, cur + ";" + new))


def _vp_well_flags(res: pd.DataFrame) -> pd.DataFrame:
    """Well audit rows for wells that ValidPrime excluded or flagged."""
    f = res[res["vp_flag"] != ""]
    pct = (100 * f["gdna_fraction"]).round(2).astype(str)
    reason = "grade " + f["vp_grade"].astype(str) + ", %DNA " + pct + ", VPA " + f["vpa_state"].astype(str)
    return f[["plate", "well", "sample", "assay"]].assign(flag=f["vp_flag"], reason=reason)
