"""Per-batch preprocessing: Wells → Cells (docs/methods.md §0.1 steps 2–7).

:func:`preprocess_batch` is a short pipeline of named steps, each below with the
formula it applies:

1. :func:`annotate_wells` — sample kind, assay gene/role and LOD from the sheets;
   :func:`replicate_design_rule` — more wells per cell than the plate's design: stop or flag (§12).
2. :func:`well_states` — CALC / EXPFAIL / LOWSIGNAL / NOAMP (§3.1).
3. :func:`ntc_margin_rule` — Cq ≤ min NTC Cq − margin (§3.3 rule 3, optional).
4. :func:`calibration.chip_offsets` — IPC offsets per chip (§2.1) or per chip × assay (§2.2).
5. :func:`calibration.ipc_policy` — a chip without usable IPC: stop, exclude or run uncalibrated.
6. :func:`validprime_setup` / :func:`validprime_replicates` — ValidPrime per replicate (§1).
7. :func:`calibration.apply_chip_offsets` — Cq' = Cq − o_p (eq. 6; after ValidPrime, §1.6).
8. :func:`replicate_cells` — replicate mean and QC (§3.2).
9. :func:`validprime_cells` — ValidPrime on averaged cells (mode ``averaged``).
10. :func:`detection.call_cells` — detection call and LOD + 1 imputation (§3.3).
11. :func:`efficiency_step` — efficiencies and optional Cq·log2(E) (§3.4).

Working vocabulary per well: ``use`` = "value" (a usable, corrected Cq),
"nondetect" (NOAMP / LOWSIGNAL / above the NTC margin) or "excluded" (EXPFAIL, or
removed by ValidPrime or the IPC rule). A cell without any answering replicate is
*missing* (``cq_imputed`` NaN), not a non-detect.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import calibration
from . import detection as det
from . import efficiency as eff
from . import replicates as reps
from . import validprime as vp
from .audit import EXCLUDING_FLAGS
from .calibration import ipc_reference_from  # noqa: F401  (re-exported for the workflow)
from .chip_options import (
    ChipOptions,
    DetectionOptions,
    EfficiencyOptions,
    ReplicateOptions,
    ValidPrimeOptions,
    chip_options,
)
from .rowkeys import as_text, distinct, joined_texts, joint_codes, own_frame, set_at, sorted_rows, text_is
from .wells import CALC, assign_states, states_current

CELL_COLUMNS = [
    "batch",
    "plate",
    "sample",
    "kind",
    "assay",
    "gene",
    "role",
    "cq",
    "cq_imputed",
    "detected",
    "n_replicates",
    "n_detected",
    "replicate_delta",
    "replicate_sd",
    "gdna_fraction",
    "vp_grade",
    "plate_offset",
    "flags",
]
STUDY_KINDS = ("patient", "healthy", "other")
WELL_FLAG_COLUMNS = ["plate", "well", "sample", "assay", "flag", "reason"]
_VP_FLAGGED = [*WELL_FLAG_COLUMNS[:4], "vp_flag", "vp_grade", "gdna_fraction", "vpa_state"]
KEYS = ["plate", "sample", "assay"]
VP_COLUMNS = [
    "plate",
    "assay",
    "gene",
    "dcq_gdna",
    "sd",
    "n",
    "confidence",
    "score",
    "score_grade",
    "n_gdna",
    "loo_outlier",
    "sd_loo",
    "dcq_gdna_all",
]
GRUBBS_ALPHA = 0.05
MIN_STANDARD_POINTS = 3


@dataclass(frozen=True)
class Design:
    """What the sheets say about the batch's names."""

    gene_of: dict
    assay_lod: dict
    sample_qty: dict
    ipc_assays: tuple


def preprocess_batch(
    wells: pd.DataFrame,
    samples: pd.DataFrame,
    assays: pd.DataFrame,
    options: ChipOptions | None = None,
    *,
    batch: str = "",
    exports: dict | None = None,
    keep_wells: bool = True,
    states_of: tuple[float, dict] | None = None,
    state_flags: bool = True,
) -> dict:
    """Preprocess one batch of plates (steps in the module docstring).

    ``wells``: data-model §1 rows of every plate of the batch (``state`` is
    recomputed). ``options``: :func:`~ctc_qpcr.chip_options.chip_options` (the
    schema's defaults when None); ``options.ipc.reference`` carries the first
    batch's IPC level for later batches. ``batch`` fills the ``batch`` column
    unless ``wells`` has one. ``exports`` (plate → export path, as in plates.tsv)
    lets messages name the file. ``keep_wells=False`` leaves out ``wells`` (the
    working table, sorted: a copy of every well the chip-level job does not write).
    ``states_of``: the (LOD, assay LODs) the wells' states were assigned with (the reader's): kept
    where the limits are the same. ``state_flags=False`` leaves the flags that only restate a
    well's state (EXPFAIL, NOAMP, LOWSIGNAL) out of ``well_flags`` (the audit drops them).

    Returns ``cells`` (data-model §2), ``validprime_assays``, ``plate_calibration``,
    ``assay_calibration``, ``well_flags``, ``efficiency``, ``wells`` (working
    table) and ``notes``. Raises :class:`~ctc_qpcr.errors.ConfigError` for a chip
    without usable IPC when ``ipc.on_missing`` is ``stop``.
    """
    o = options if options is not None else chip_options()
    notes: list[str] = []
    w, design = annotate_wells(wells, samples, assays, batch, notes)
    extra_flags, extra = replicate_design_rule(w, o.replicates, exports or {}, notes)
    w = well_states(w, o.lod, design.assay_lod, notes, states_of=states_of)
    flags = [_state_flags(w) if state_flags else None, extra_flags]
    flags.append(ntc_margin_rule(w, o.detection, notes))
    w, plate_cal, assay_cal = calibration.chip_offsets(w, o.ipc, design.ipc_assays, notes)
    w, plate_cal, ipc_flags, uncalibrated = calibration.ipc_policy(
        w, plate_cal, assay_cal, o.ipc, batch=_batch_name(w, batch)
    )
    flags.append(ipc_flags)
    ctx = validprime_setup(w, o.validprime, o.lod, design, notes)
    flags.append(validprime_replicates(w, ctx))
    w = calibration.apply_chip_offsets(w, plate_cal, o.ipc)
    cells, rep_flags = replicate_cells(w, o.replicates)
    flags.append(rep_flags)
    cells = reps.flag_extra_cells(cells, extra)
    cells = calibration.flag_uncalibrated(cells, uncalibrated)
    cells = validprime_cells(cells, w, ctx)
    cells = det.call_cells(
        cells, lod=o.lod, assay_lod=design.assay_lod, min_detected=o.detection.min_detected
    )
    cells, eff_table = efficiency_step(cells, w, assays, design, o.efficiency, notes)
    out = _result(cells, w if keep_wells else None, batch, ctx, plate_cal, assay_cal, flags, eff_table, notes)
    return out if keep_wells else {k: v for k, v in out.items() if k != "wells"}


def _batch_name(w: pd.DataFrame, batch: str) -> str:
    names = sorted(distinct(w["batch"].astype(str))) if "batch" in w.columns and len(w) else []
    return ", ".join(n for n in names if n) or batch


def annotate_wells(
    wells: pd.DataFrame, samples: pd.DataFrame, assays: pd.DataFrame, batch: str, notes: list
) -> tuple[pd.DataFrame, Design]:
    """Join sample kind and assay gene/role by name.

    An unknown sample is kind ``other``, an unknown assay role ``target`` (both noted).
    """
    s_names = samples["sample"].astype(str).str.strip()
    a_names = assays["assay"].astype(str).str.strip()
    kind_of = dict(zip(s_names, samples["kind"].astype(str).str.strip(), strict=True))
    gene_of = dict(zip(a_names, assays["gene"].astype(str).str.strip(), strict=True))
    role_of = calibration.assay_roles(assays)
    assay_lod = {}
    if "lod" in assays.columns:
        lods = pd.to_numeric(assays["lod"], errors="coerce")
        assay_lod = {k: float(v) for k, v in zip(a_names, lods, strict=True) if np.isfinite(v)}
    sample_qty = (
        dict(zip(s_names, pd.to_numeric(samples["quantity"], errors="coerce"), strict=True))
        if "quantity" in samples.columns
        else {}
    )

    w = own_frame(wells)
    for col in ("plate", "well", "sample", "assay"):
        w[col] = as_text(w[col])
    if "batch" not in w.columns:
        w["batch"] = batch
    samples_on, assays_on = pd.factorize(w["sample"]), pd.factorize(w["assay"])  # each name looked at once
    unknown_s = sorted(set(samples_on[1]) - set(kind_of))
    unknown_a = sorted(set(assays_on[1]) - set(role_of))
    if unknown_s:
        notes.append(
            f"{len(unknown_s)} sample name(s) on the plates are not in the samples sheet "
            f"(treated as kind 'other'): {', '.join(unknown_s[:10])}"
        )
    if unknown_a:
        notes.append(
            f"{len(unknown_a)} assay name(s) on the plates are not in the assays sheet "
            f"(treated as role 'target'): {', '.join(unknown_a[:10])}"
        )
    (w["kind"],) = _by_name(samples_on, w.index, (kind_of, "other"))
    w["role"], w["gene"] = _by_name(assays_on, w.index, (role_of, "target"), (gene_of, None))  # gene or assay
    ipc_assays = calibration.ipc_assays_of(role_of)
    return w, Design(gene_of=gene_of, assay_lod=assay_lod, sample_qty=sample_qty, ipc_assays=ipc_assays)


def _by_name(factorised: tuple, index: pd.Index, *lookups: tuple[dict, object]) -> list[pd.Series]:
    """Each ``(mapping, default)`` looked up once per distinct name (not per well); default None:
    the name itself. ``factorised``: ``pd.factorize`` of the wells' names (``index``)."""
    codes, uniques = factorised
    distinct_names = pd.Series(uniques, dtype=object)
    found = []
    for mapping, default in lookups:
        values = distinct_names.map(mapping)
        values = values.where(values.notna(), distinct_names if default is None else default)
        found.append(pd.Series(values.to_numpy(dtype=object)[codes], index=index))
    return found


def well_states(w: pd.DataFrame, lod: float, assay_lod: dict, notes: list, *, states_of=None) -> pd.DataFrame:
    """Well states (§3.1: NOAMP no Cq; EXPFAIL failed; LOWSIGNAL Cq > LOD; else CALC) and the working columns.

    ``states_of`` (LOD, assay LODs) of ``w``'s states: kept where the limits are the same.
    A chip where no well gave a usable signal is said out loud (a note).
    """
    if not states_current(w, states_of, (lod, assay_lod)):
        w = assign_states(w, lod=lod, assay_lod=assay_lod, copy=False)
    w["cq_measured"] = pd.to_numeric(w["cq"], errors="coerce").astype(float)
    w["cq"] = w["cq_measured"]
    w["use"] = reps.use_from_state(w["state"])
    calc_any = pd.Series(text_is(w["state"], CALC), index=w.index).groupby(w["plate"], sort=True).any()
    for plate in calc_any.index[~calc_any.to_numpy()]:
        states = w.loc[w["plate"] == plate, "state"]
        counts = ", ".join(f"{k} {v}" for k, v in states.value_counts().sort_index().items())
        notes.append(
            f"chip {plate}: no usable well (no CALC well among {len(states)}: {counts}) "
            "— check the run and the export"
        )
    w["vp_grade"] = ""
    w["gdna_fraction"] = np.nan
    w["vp_flag"] = ""
    w["plate_offset"] = 0.0
    w["global_offset"] = 0.0
    return w


def replicate_design_rule(
    w: pd.DataFrame, o: ReplicateOptions, exports: dict, notes: list
) -> tuple[pd.DataFrame | None, pd.DataFrame]:
    """§3.2/§12: a patient or healthy cell with more wells than its plate's replicate design.

    The design is ``replicates.expected`` or, when null, the plate's most common
    count among patient and healthy cells. More wells = two samples under one
    name (averaged into one): ``replicates.on_extra: stop`` raises InputError
    naming plate, sample and inlets/wells; ``flag`` returns ``EXTRA_REPLICATES``
    well flags (kept, listed in the audit) and the cells to flag ``extra_replicates``.
    """
    over = reps.extra_replicates(w, o.expected)
    if over.empty:
        return None, over
    key = f"replicates.expected: {o.expected}" if o.expected is not None else "the most common count"
    if o.on_extra == "stop":
        raise reps.extra_replicates_error(w, over, exports, key)
    hit = reps.extra_wells_mask(w, over)
    per_cell = over.set_index(KEYS)
    at = per_cell.reindex(pd.MultiIndex.from_frame(w.loc[hit, KEYS]))
    reason = at["n_wells"].astype(str).to_numpy() + " wells, design " + at["expected"].astype(str).to_numpy()
    pairs = over[["plate", "sample"]].drop_duplicates()
    notes.append(
        f"{len(pairs)} sample(s) with more replicate wells than the plate's design ({key}), kept and "
        "flagged extra_replicates (replicates.on_extra: flag): "
        + ", ".join(f"{p}/{s}" for p, s in pairs.head(10).itertuples(index=False))
    )
    flagged = w.loc[hit, ["plate", "well", "sample", "assay"]].assign(flag="EXTRA_REPLICATES", reason=reason)
    return flagged, over


def _state_flags(w: pd.DataFrame) -> pd.DataFrame:
    bad = w["state"] != CALC
    return w.loc[bad, ["plate", "well", "sample", "assay"]].assign(
        flag=w.loc[bad, "state"], reason=w.loc[bad, "state_reason"]
    )


def ntc_margin_rule(w: pd.DataFrame, o: DetectionOptions, notes: list) -> pd.DataFrame | None:
    """§3.3 rule 3 on the measured Cq: a study well is detected only if Cq ≤ min NTC Cq − ``ntc_margin``.

    Wells above that line become non-detects (in place) and are returned as
    ``NTC_MARGIN`` well flags. gDNA references, calibrators and standards are not
    judged against the NTC.
    """
    if o.ntc_margin is None:
        return None
    ntc_samples = sorted(set(w.loc[w["kind"] == "ntc", "sample"]))
    if not ntc_samples:
        notes.append(
            "detection.ntc_margin is set but the batch has no sample of kind 'ntc': no NTC rule applied"
        )
        return None
    thr = det.ntc_thresholds(w, ntc_samples, float(o.ntc_margin))
    hit = (
        det.above_ntc(w, thr, "cq_measured")
        & (w["use"] == "value").to_numpy()
        & w["kind"].isin(STUDY_KINDS).to_numpy()
    )
    if not hit.any():
        return None
    t = thr.set_index(["plate", "assay"]).reindex(pd.MultiIndex.from_frame(w.loc[hit, ["plate", "assay"]]))
    reason = (
        "cq>"
        + t["ntc_threshold"].round(2).astype(str).to_numpy()
        + " (min NTC cq "
        + t["ntc_min_cq"].round(2).astype(str).to_numpy()
        + f" - {float(o.ntc_margin):g})"
    )
    w.loc[hit, "use"] = "nondetect"
    return w.loc[hit, ["plate", "well", "sample", "assay"]].assign(flag="NTC_MARGIN", reason=reason)


@dataclass(frozen=True)
class ValidPrimeContext:
    """The validated assays of the batch and how to correct (None when ValidPrime does not run)."""

    options: ValidPrimeOptions
    table: pd.DataFrame
    kwargs: dict
    gdna_plates: frozenset
    goi_mask: pd.Series


def validprime_setup(
    w: pd.DataFrame, o: ValidPrimeOptions, lod: float, design: Design, notes: list
) -> ValidPrimeContext | None:
    """Validate every GOI on each chip's gDNA series (§1.3: mean and SD of ΔCq_gDNA, A+ score).

    ValidPrime runs when ``validprime.activate`` is true, an assay has role
    ``validprime`` and the batch has gDNA references (kind ``gdna``); otherwise a
    note says why not. GOI cells of chips without gDNA references are flagged
    ``VP_NO_GDNA_ON_PLATE`` (in place).
    """
    vp_assays = sorted(distinct(w.loc[text_is(w["role"], "validprime"), "assay"]))
    gdna_samples = sorted(distinct(w.loc[text_is(w["kind"], "gdna"), "sample"]))
    if not o.activate:
        notes.append("ValidPrime switched off (validprime.activate: false)")
        return None
    if not vp_assays:
        notes.append("no assay with role 'validprime' in the batch: ValidPrime skipped")
        return None
    if not gdna_samples:
        notes.append("no gDNA reference sample (kind 'gdna') in the batch: ValidPrime skipped")
        return None
    vpa = vp_assays[0]
    if len(vp_assays) > 1:
        notes.append(f"several validprime assays ({', '.join(vp_assays)}): using {vpa}")
    vpa_lod = design.assay_lod.get(vpa, lod)
    goi_assays = sorted(distinct(w.loc[w["role"].isin(["target", "reference"]).to_numpy(), "assay"]))
    copies = {s: design.sample_qty.get(s, np.nan) for s in gdna_samples}
    table = vp.validate_assays(
        w,
        vpa_assay=vpa,
        gdna_samples=gdna_samples,
        goi_assays=goi_assays,
        lod=vpa_lod,
        options=o,
        gdna_unit="sample",
        gdna_copies=copies,
    )
    gdna_plates = frozenset(distinct(w.loc[text_is(w["kind"], "gdna"), "plate"]))
    table = table[table["plate"].isin(gdna_plates)]
    table.insert(2, "gene", table["assay"].map(design.gene_of).fillna(table["assay"]))
    goi_mask = w["kind"].isin(STUDY_KINDS) & w["role"].isin(["target", "reference"])
    no_gdna = sorted(distinct(w["plate"]) - gdna_plates)
    if no_gdna:
        notes.append(
            f"no gDNA reference on chip(s) {', '.join(no_gdna)}: ValidPrime not applied there "
            "(cells flagged VP_NO_GDNA_ON_PLATE)"
        )
        hit = (goi_mask & w["plate"].isin(no_gdna)).to_numpy()
        w.loc[hit, "vp_flag"] = np.where(
            w.loc[hit, "vp_flag"] == "", "VP_NO_GDNA_ON_PLATE", w.loc[hit, "vp_flag"] + ";VP_NO_GDNA_ON_PLATE"
        )
    kwargs = {"vpa_assay": vpa, "assay_table": table, "vpa_lod": vpa_lod, "options": o}
    return ValidPrimeContext(
        options=o,
        table=table[VP_COLUMNS].reset_index(drop=True),
        kwargs=kwargs,
        gdna_plates=gdna_plates,
        goi_mask=goi_mask,
    )


def validprime_replicates(w: pd.DataFrame, ctx: ValidPrimeContext | None) -> pd.DataFrame | None:
    """Mode ``per_replicate``: each GOI well corrected with its own VPA well (§1.2 eqs. 2–4, §1.4; in place).

    A well moved to non-detect by the NTC rule counts as LOWSIGNAL for ValidPrime.
    Returns the well flags of wells ValidPrime excluded or flagged.
    """
    if ctx is None or ctx.options.mode != "per_replicate":
        return None
    sel = ctx.goi_mask & w["plate"].isin(ctx.gdna_plates)
    if not sel.any():
        return None
    at = sel.to_numpy()  # res rows are the selected wells, in order
    sub = pd.DataFrame(
        {c: w[c].to_numpy()[at] for c in ("plate", "well", "sample", "assay", "cq", "state", "use")},
        index=w.index[at],
        copy=False,  # the selected cells are new arrays already: not copied again into blocks
    )
    nondetect = text_is(sub["use"], "nondetect")
    sub["state"] = np.where(nondetect & text_is(sub["state"], CALC), "LOWSIGNAL", sub["state"])
    res = vp.apply_validprime(sub, w, mode="replicate", **ctx.kwargs)
    value = text_is(res["use"], "value")
    set_at(w, "cq", at, np.where(value, res["cq_rna"].to_numpy(), np.nan))
    for col in ("use", "vp_grade", "gdna_fraction"):
        set_at(w, col, at, res[col].to_numpy())
    cur, new = w["vp_flag"].to_numpy(dtype=object)[at], res["vp_flag"].to_numpy(dtype=object)
    set_at(w, "vp_flag", at, joined_texts(cur, new))
    hit = ~text_is(new, "")  # the flagged wells: their columns taken, not all of res
    f = pd.DataFrame({c: res[c].to_numpy()[hit] for c in _VP_FLAGGED}, index=res.index[hit], copy=False)
    pct = (100 * f["gdna_fraction"]).round(2).to_numpy(dtype=float).view(np.int64)  # bits: -0.0 kept apart
    parts = [
        f["vp_grade"].astype(str).to_numpy(dtype=object),
        pct,
        f["vpa_state"].astype(str).to_numpy(dtype=object),
    ]
    codes, _ = joint_codes(parts, [p[:0] for p in parts])  # 0 … k−1: each distinct triple written once
    grade, value, state = (p[np.unique(codes, return_index=True)[1]] for p in parts)
    text = pd.Series(value.view(np.float64)).astype(str).to_numpy(dtype=object)
    reason = (
        ("grade " + grade + ", %DNA " + text + ", VPA " + state)[codes]
        if len(codes)
        else np.array([], object)
    )
    columns = {c: f[c].to_numpy() for c in WELL_FLAG_COLUMNS[:4]}  # plate, well, sample, assay
    return pd.DataFrame(
        {**columns, "flag": f["vp_flag"].to_numpy(), "reason": reason}, index=f.index, copy=False
    )


def replicate_cells(w: pd.DataFrame, o: ReplicateOptions) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """One cell per chip × sample × assay (§3.2): mean (or median) Cq of the used replicates, Δ/SD flags.

    ``replicates.outliers``: ``grubbs`` removes Grubbs outliers (α 0.05; their
    wells are excluded in the audit), ``median`` takes the median of ≥ 3 values.
    Each cell carries its wells' batch, kind, gene, role, mean offsets, mean
    %gDNA, worst ValidPrime grade and distinct ValidPrime flags.
    """
    w.loc[~text_is(w["use"], "value"), "cq"] = np.nan
    cid = w.groupby(KEYS, sort=False).ngroup().to_numpy()  # cell ids, in order of first appearance
    cells, outliers = reps.summarise_replicates(w, o, grubbs_alpha=GRUBBS_ALPHA, cell_ids=cid)
    flags = None
    if len(outliers):
        ow = w.loc[outliers]
        flags = ow[["plate", "well", "sample", "assay"]].assign(
            flag="GRUBBS_OUTLIER", reason="cq=" + ow["cq"].round(3).astype(str)
        )
        w.loc[outliers, "use"] = "excluded"
    return _cell_attributes(cells, w, cid), flags


def _cell_attributes(cells: pd.DataFrame, w: pd.DataFrame, cid: np.ndarray) -> pd.DataFrame:
    """Per cell: its wells' batch/kind/gene/role, mean offsets and %gDNA, worst grade, distinct VP flags.

    ``cid``: the wells' integer cell ids in order of first appearance (the order
    :func:`replicates.summarise_replicates` gives the cells).
    """
    first = np.zeros(len(w), dtype=bool)
    first[np.unique(cid, return_index=True)[1]] = True
    attrs = {c: w[c].to_numpy()[first] for c in [*KEYS, "batch", "kind", "gene", "role"]}
    same = all((attrs[k] == cells[k].to_numpy()).all() for k in KEYS) if len(cells) == first.sum() else False
    if not same:
        raise AssertionError("cells and wells disagree on the cell order")  # a programming error, not input
    by_cell = w[["plate_offset", "global_offset", "gdna_fraction"]].groupby(cid).mean()
    for col in by_cell.columns:
        attrs[col] = by_cell[col].to_numpy()
    attrs["vp_grade"] = reps.worst_per_cell(w["vp_grade"], cid, len(cells), vp.GRADE_SEVERITY)
    # Cell flags = replicate flags + the distinct ValidPrime flags of its wells (no per-group loop).
    parts = {"r": cells["flags"].to_numpy(), **reps.distinct_flag_columns(w["vp_flag"], cid, len(cells))}
    out = {c: cells[c].to_numpy() for c in cells.columns if c != "flags"}
    out.update((c, attrs[c]) for c in attrs if c not in KEYS)
    out["flags"] = reps.join_flag_columns(pd.DataFrame(parts, copy=False)).to_numpy()
    return pd.DataFrame(out, copy=False)


def validprime_cells(cells: pd.DataFrame, w: pd.DataFrame, ctx: ValidPrimeContext | None) -> pd.DataFrame:
    """Mode ``averaged``: ValidPrime (§1.2 eqs. 2–4) on replicate-averaged cells with the sample's mean VPA.

    Works on the scale before the global IPC offset (GOI cell and VPA wells alike;
    per-assay IRC offsets, applied before ValidPrime, stay in both), then puts
    the offset back.
    """
    if ctx is None or ctx.options.mode != "averaged":
        return cells
    sel = (
        cells["kind"].isin(STUDY_KINDS)
        & cells["role"].isin(["target", "reference"])
        & cells["plate"].isin(ctx.gdna_plates)
    )
    if not sel.any():
        return cells
    cells = cells.copy()
    sub = cells.loc[sel].copy()
    goff = sub["global_offset"].to_numpy()
    sub["cq"] = sub["cq"] + goff
    sub["state"] = np.where(
        sub["n_detected"] > 0, CALC, np.where(sub["n_replicates"] > 0, "NOAMP", "EXPFAIL")
    )
    res = vp.apply_validprime(sub, w.assign(cq=w["cq"] + w["global_offset"]), mode="averaged", **ctx.kwargs)
    value = res["use"] == "value"
    cells.loc[sel, "cq"] = np.where(value, res["cq_rna"] - goff, np.nan)
    idx = res.index[((res["use"] == "excluded") & (sub["n_detected"] > 0)).to_numpy()]
    cells.loc[idx, "n_detected"] = 0
    cells.loc[idx, "n_replicates"] = 0
    cells.loc[sel, "vp_grade"] = res["vp_grade"]
    cells.loc[sel, "gdna_fraction"] = res["gdna_fraction"]
    cells.loc[sel, "flags"] = reps.join_flag_columns(
        pd.DataFrame({"r": cells.loc[sel, "flags"], "v": res["vp_flag"]})
    )
    return cells


def efficiency_step(
    cells, w, assays, design: Design, o: EfficiencyOptions, notes: list
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Amplification efficiency per assay (§3.4): the assays sheet's ``efficiency``, else a standard curve
    E = 10^(−1/slope) from ``standard`` samples (``efficiency.from_standards``); with ``efficiency.apply``
    Cq* = Cq·log2(E) on ``cq`` and ``cq_imputed`` (E = 2 where unknown)."""
    std = w[text_is(w["kind"], "standard") & bool(o.from_standards)]
    qty = std["sample"].map(design.sample_qty) if design.sample_qty else pd.Series(np.nan, index=std.index)
    if "quantity" in std.columns:
        qty = qty.where(qty.notna(), pd.to_numeric(std["quantity"], errors="coerce"))
    table = eff.standard_curves(std.assign(cq=std["cq_measured"]), qty, min_points=MIN_STANDARD_POINTS)
    if "efficiency" in assays.columns:
        given = pd.DataFrame(
            {
                "assay": assays["assay"].astype(str).str.strip(),
                "E": pd.to_numeric(assays["efficiency"], errors="coerce"),
            }
        )
        given = given[given["E"].notna()]
        if len(given):
            given = given.assign(
                slope=np.nan,
                intercept=np.nan,
                efficiency_pct=(given["E"] - 1) * 100,
                r2=np.nan,
                n=0,
                source="assays_sheet",
            )
            parts = [
                p
                for p in (given[eff.EFFICIENCY_COLUMNS], table[~table["assay"].isin(set(given["assay"]))])
                if len(p)
            ]
            table = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
    table = table.sort_values("assay").reset_index(drop=True)
    if o.apply:
        e_of = dict(zip(table["assay"], table["E"], strict=True))
        e = cells["assay"].map(e_of).fillna(2.0).to_numpy(dtype=float)
        cells = cells.assign(cq=eff.scale_cq(cells["cq"], e), cq_imputed=eff.scale_cq(cells["cq_imputed"], e))
        if not e_of:
            notes.append(
                "efficiency.apply is on but no efficiency is known (standards or assays sheet): E = 2 used"
            )
    return cells, table


def _result(cells, w, batch, ctx, plate_cal, assay_cal, flags, eff_table, notes) -> dict:
    columns = {c: cells[c] for c in CELL_COLUMNS}  # not copied: sorted_rows takes each column once
    columns["batch"] = cells["batch"].fillna(batch).astype(str)
    cells = sorted_rows(pd.DataFrame(columns, copy=False), KEYS)
    cells["detected"] = cells["detected"].astype(bool)
    for col in ("n_replicates", "n_detected"):
        cells[col] = cells[col].astype(int)
    frames = [f for f in flags if f is not None and len(f)]
    well_flags = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=WELL_FLAG_COLUMNS)
    extra = [c for c in well_flags.columns if c not in WELL_FLAG_COLUMNS]
    if "excluded" in extra:  # explicit only for the IPC rule's exclusions
        well_flags["excluded"] = (
            well_flags["excluded"]
            .where(well_flags["excluded"].notna(), well_flags["flag"].isin(EXCLUDING_FLAGS))
            .astype(bool)
        )
    well_flags = sorted_rows(well_flags[WELL_FLAG_COLUMNS + extra], ["plate", "well", "flag"])
    table = ctx.table if ctx is not None else pd.DataFrame(columns=VP_COLUMNS)
    return {
        "cells": cells,
        "validprime_assays": table.sort_values(["plate", "assay"]).reset_index(drop=True),
        "plate_calibration": plate_cal.sort_values("plate").reset_index(drop=True),
        "assay_calibration": assay_cal.reset_index(drop=True),
        "well_flags": well_flags,
        "efficiency": eff_table,
        "wells": None if w is None else w.sort_values(["plate", "well"]).reset_index(drop=True),
        "notes": notes,
    }
