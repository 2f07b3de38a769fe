"""ValidPrime: gDNA background correction per chip (docs/methods.md §1).

Vocabulary (Laurell et al. 2012; reference program gh-validprime v1.0.1): VPA = the
ValidPrime assay on a non-transcribed locus, run in every sample; gDNA references =
samples of kind ``gdna``, run with the VPA and every GOI.

* ΔCq_gDNA(g, r) = Cq(r, g) − Cq(r, VPA)                             (§1.2 eq. 1)
* Cq_DNA(s, g)   = Cq(s, VPA) + mean_r ΔCq_gDNA(g, r)                 (eq. 2)
* f              = 2^(Cq_NA − Cq_DNA), %DNA = 100·f                     (eq. 3)
* Cq_RNA         = Cq_NA − log2(1 − f)                                  (eq. 4)
* grade A (<3 %), B (<25 %), C (<60 %), F (≥60 %), strict bounds as in the code (§1.4, §9).

Steps, all vectorised: :func:`validate_assays` (per chip × GOI: mean ΔCq_gDNA, SD, n,
confidence, A+ score; §1.3), :func:`pair_vpa` (the VPA value of each GOI measurement:
own replicate or sample mean, §1.6), :func:`correct` (grades and eq. 4 with the
missing-VPA rules of §1.5); :func:`rt_minus_correction` is the RT(−) alternative (§1.7).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .chip_options import ValidPrimeOptions
from .parsers.biomark import sample_inlets
from .rowkeys import as_text, distinct, joint_codes, left_lookup, missing_as, pick_text, text_is
from .wells import CALC, EXPFAIL, LOWSIGNAL, NOAMP

# Cell-level outcome labels (vp_grade column of the Cells table and flags).
GRADE_A, GRADE_B, GRADE_C, GRADE_F = "A", "B", "C", "F"
GRADE_ASTAR = "A*"
GRADE_ND = "ND"
HIGHDNA = "HIGHDNA"
HIGHSD = "HIGHSD"
VPA_EXPFAIL = "VPA_EXPFAIL"
VPA_MISSING = "VPA_MISSING"
VPA_LOWSIGNAL = "VPA_LOWSIGNAL"
VPA_NOAMP_UPPER_BOUND = "VPA_NOAMP_UPPER_BOUND"
VPA_UNPAIRED = "VPA_UNPAIRED"
NO_GDNA_REF = "VP_NO_GDNA_REF"
K0 = "K0"

# Worst-first order used when a cell summarises several replicate grades.
GRADE_SEVERITY = {
    "": 0,
    "A+++": 1,
    "A++": 2,
    "A+": 3,
    GRADE_A: 4,
    GRADE_ASTAR: 5,
    GRADE_B: 6,
    GRADE_C: 7,
    GRADE_F: 8,
    GRADE_ND: 9,
}

# A+ score points per gDNA row (vpstore.cpp::check_3): CALC −1, EXPFAIL 0 (1 when its Cq is
# above the cutoff), LOWSIGNAL 1, NOAMP 2; thresholds A+ ≥ 2, A++ ≥ 5, A+++ ≥ 8.
_POINTS = {CALC: -1.0, EXPFAIL: 0.0, LOWSIGNAL: 1.0, NOAMP: 2.0}
_APLUS = ((8.0, "A+++"), (5.0, "A++"), (2.0, "A+"))
#: §1.3: a NOAMP in a gDNA sample with fewer haploid genome copies than this earns only 1 point.
LOW_COPIES = 20.0

# Best-first order to summarise several VPA wells into one state.
_STATE_ORDER = {CALC: 0, LOWSIGNAL: 1, NOAMP: 2, EXPFAIL: 3}
_ORDER_STATE = {v: k for k, v in _STATE_ORDER.items()}

_VALIDATE_COLUMNS = [
    "plate",
    "assay",
    "dcq_gdna",
    "sd",
    "n",
    "n_gdna",
    "confidence",
    "score",
    "score_grade",
    "loo_outlier",
    "sd_loo",
    "dcq_gdna_all",
]


def replicate_key(wells: pd.DataFrame, by: list[str]) -> pd.Series:
    """Key that pairs technical replicates of different assays of one sample.

    BioMark chamber ids ``S05-A12`` name the sample inlet (``S05``): all assays of
    one sample inlet are one technical replicate of the sample, so the key is the
    sample inlet. For other well ids (``A1``) the key is the rank of the well
    within ``by`` (e.g. plate × sample × assay) in well-name order: replicate k of
    the GOI pairs with replicate k of the VPA.
    """
    well = as_text(wells["well"])
    codes, uniques = pd.factorize(well)  # the inlet pattern is read once per distinct well id
    inlet_of = sample_inlets(np.asarray(uniques, dtype=object))
    inlet = pd.Series(inlet_of[codes], index=wells.index, dtype=object)
    if pd.notna(inlet_of).all():  # every well id (text: none missing) names its inlet
        return inlet
    order = wells.assign(_w=well).sort_values([*by, "_w"], kind="stable").groupby(by, sort=False).cumcount()
    rank = "r" + order.reindex(wells.index).astype(str)
    return inlet.where(inlet.notna(), rank)


def aggregate_state(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Summarise several wells into one (cq, state) per group.

    ``cq`` = mean of the CALC wells; ``state`` = best state present in the order
    CALC > LOWSIGNAL > NOAMP > EXPFAIL (one usable well is enough).
    """
    code = frame["state"].map(_STATE_ORDER).fillna(3).astype(int)
    calc_cq = frame["cq"].where(frame["state"] == CALC)
    agg = (
        frame.assign(_code=code, _cq=calc_cq)
        .groupby(by, sort=False)
        .agg(cq=("_cq", "mean"), _code=("_code", "min"), cq_max=("cq", "max"))
        .reset_index()
    )
    agg["state"] = agg["_code"].map(_ORDER_STATE)
    return agg.drop(columns="_code")


def validate_assays(
    wells: pd.DataFrame,
    *,
    vpa_assay: str,
    gdna_samples,
    goi_assays=None,
    lod: float,
    options: ValidPrimeOptions,
    gdna_unit: str = "sample",
    gdna_copies: dict | None = None,
) -> pd.DataFrame:
    """Validate every GOI on the gDNA references of each chip (§1.3).

    ``wells`` needs plate, well, sample, assay, cq, state. ``lod``: the VPA's LOD;
    ``options``: ``sd_max``, ``min_gdna``, ``loo``, ``loo_sd`` are used. ``gdna_unit``:

    ``"sample"`` (default): one gDNA row per gDNA sample = mean Cq of its CALC wells
    (``n`` counts concentrations, as gh-validprime's rows); ``"well"``: one row per
    technical replicate (GOI and VPA wells of one sample inlet, :func:`replicate_key`).

    Returns one row per plate × GOI: ``dcq_gdna`` (mean ΔCq used in eq. 2, after a
    LOO exclusion), ``dcq_gdna_all`` (mean before LOO), ``sd`` (SD, n − 1),
    ``n`` (valid gDNA rows: GOI and VPA both CALC), ``n_gdna`` (all gDNA rows),
    ``confidence`` (High / Low / NotUsed for A+ GOIs), ``score`` and
    ``score_grade`` (A+, A++, A+++ or ""), ``loo_outlier``, ``sd_loo``.

    A+ score (§1.3): per gDNA row NOAMP 2, LOWSIGNAL 1, EXPFAIL 0, CALC −1 points;
    A+ ≥ 2, A++ ≥ 5, A+++ ≥ 8. ``gdna_copies`` (sample → haploid genome copies,
    samples-sheet ``quantity``) adds the two rules that need the amounts: a NOAMP
    in a sample with < 20 copies earns only 1 point, and a GOI that amplifies
    (CALC) the most concentrated gDNA sample of the chip amplifies gDNA, so it is
    never A+ whatever its score ("A+ = never amplifies gDNA"). Without amounts both
    rules are skipped (as gh-validprime, which has no amounts).

    Deviation: the SD is of the signed ΔCq that eq. (2) averages (gh-validprime's ``getSd``
    uses |ΔCq|, which agrees while ΔCq keeps one sign and hides a spread around 0).
    """
    if gdna_unit not in ("sample", "well"):
        raise ValueError(f"gdna_unit must be 'sample' or 'well', not {gdna_unit!r}")
    gdna_samples = set(map(str, gdna_samples))
    all_assays = wells.loc[~text_is(wells["assay"], vpa_assay), ["plate", "assay"]].drop_duplicates()
    if goi_assays is not None:
        all_assays = all_assays[all_assays["assay"].isin(set(goi_assays))]
    g = wells[wells["sample"].isin(gdna_samples)].copy()
    if g.empty or all_assays.empty:
        return _no_gdna_table(all_assays)

    unit = ["plate", "sample"]
    if gdna_unit == "well":
        g["_key"] = replicate_key(g, ["plate", "sample", "assay"])
        unit = ["plate", "sample", "_key"]

    score = _aplus_scores(g, unit, vpa_assay, lod, gdna_copies)
    goi, stats = _gdna_dcq(g, unit, vpa_assay)
    out = _assay_table(all_assays, stats, score)
    enough = out["n"] >= int(options.min_gdna)
    high = enough & (out["sd"] <= options.sd_max)
    if options.loo:
        out, high = _leave_one_out(out, goi, high, enough, int(options.min_gdna), options.loo_sd)
    out["confidence"] = np.where(high, "High", "Low")
    # A+ GOIs are not validated/corrected (confidence NotUsed in the code).
    aplus = out["score_grade"] != ""
    out.loc[aplus, "confidence"] = "NotUsed"
    out.loc[aplus, "dcq_gdna"] = np.nan
    return out[_VALIDATE_COLUMNS].sort_values(["plate", "assay"]).reset_index(drop=True)


def _no_gdna_table(all_assays: pd.DataFrame) -> pd.DataFrame:
    """Validation table when the chip has no gDNA rows: every GOI Low confidence, score 0."""
    out = all_assays.copy()
    for col in _VALIDATE_COLUMNS[2:]:
        out[col] = np.nan
    out = out.assign(n=0, n_gdna=0, confidence="Low", score=0.0, score_grade="", loo_outlier="")
    return out[_VALIDATE_COLUMNS].sort_values(["plate", "assay"]).reset_index(drop=True)


def _assay_table(all_assays: pd.DataFrame, stats: pd.DataFrame, score: pd.DataFrame) -> pd.DataFrame:
    """One row per plate × GOI with ΔCq statistics, the A+ score and its grade (none if it amplifies gDNA)."""
    out = all_assays.merge(stats, on=["plate", "assay"], how="left").merge(
        score, on=["plate", "assay"], how="left"
    )
    out["n"] = out["n"].fillna(0).astype(int)
    out["n_gdna"] = out["n_gdna"].fillna(0).astype(int)
    out["score"] = out["score"].fillna(0.0)
    out["score_grade"] = np.select([out["score"] >= t for t, _ in _APLUS], [lab for _, lab in _APLUS], "")
    out.loc[out["_amplifies"].fillna(False).astype(bool).to_numpy(), "score_grade"] = ""
    out["dcq_gdna"] = out["dcq_gdna_all"]
    out["loo_outlier"] = ""
    out["sd_loo"] = np.nan

    return out


def _aplus_scores(g: pd.DataFrame, unit: list, vpa_assay: str, lod: float, gdna_copies) -> pd.DataFrame:
    """A+ score per plate × GOI over all gDNA rows, whatever the VPA did (§1.3), and ``_amplifies``.

    A row of several wells scores its most-amplifying well (min points): one CALC
    well means the GOI amplifies gDNA.
    """
    pts = g["state"].map(_POINTS).fillna(0.0)
    pts = pts.where(~((g["state"] == EXPFAIL) & (g["cq"] > lod)), 1.0)
    copies = g["sample"].map(gdna_copies or {}).astype(float)
    pts = pts.where(~((g["state"] == NOAMP) & (copies < LOW_COPIES)), 1.0)
    top = copies.notna() & (copies == copies.groupby(g["plate"]).transform("max"))
    goi_rows = g[g["assay"] != vpa_assay].assign(_pts=pts, _top_calc=top & (g["state"] == CALC))
    row_pts = goi_rows.groupby([*unit, "assay"], sort=False)["_pts"].min().reset_index()
    score = row_pts.groupby(["plate", "assay"])["_pts"].agg(score="sum", n_gdna="size").reset_index()
    by = goi_rows.groupby(["plate", "assay"], sort=False)
    top_calc = by["_top_calc"].any().rename("_amplifies").reset_index()
    return score.merge(top_calc, on=["plate", "assay"], how="left")


def _gdna_dcq(g: pd.DataFrame, unit: list, vpa_assay: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ΔCq_gDNA per valid gDNA row (eq. 1) and per plate × GOI its mean, SD (n − 1) and n.

    Centred sums are kept per row so the leave-one-out SD is exact and vectorised:
    leaving row i out, SS_{−i} = SS − d_i²·n/(n−1).
    """
    calc = g[g["state"] == CALC]
    means = calc.groupby([*unit, "assay"], sort=False)["cq"].mean().reset_index()
    vpa = means[means["assay"] == vpa_assay].drop(columns="assay").rename(columns={"cq": "_vpa"})
    goi = means[means["assay"] != vpa_assay].merge(vpa, on=unit, how="inner")
    goi["dcq"] = goi["cq"] - goi["_vpa"]

    # Per plate × GOI: mean, SD, n — centred sums so the LOO step is exact and vectorised.
    grp = goi.groupby(["plate", "assay"], sort=False)["dcq"]
    goi["_n"] = grp.transform("size")
    goi["_mean"] = grp.transform("mean")
    goi["_d"] = goi["dcq"] - goi["_mean"]
    goi["_ss"] = (goi["_d"] ** 2).groupby([goi["plate"], goi["assay"]], sort=False).transform("sum")
    # Leaving row i out: mean shifts by −d_i/(n−1); SS_{−i} = SS − d_i²·n/(n−1).
    with np.errstate(divide="ignore", invalid="ignore"):
        n_ = goi["_n"].to_numpy(dtype=float)
        ss_loo = goi["_ss"].to_numpy() - goi["_d"].to_numpy() ** 2 * n_ / (n_ - 1)
        goi["_sd_loo"] = np.sqrt(np.clip(ss_loo, 0, None) / (n_ - 2))
    stats = (
        goi.groupby(["plate", "assay"], sort=False)
        .agg(dcq_gdna_all=("dcq", "mean"), sd=("dcq", "std"), n=("dcq", "size"))
        .reset_index()
    )

    return goi, stats


def _leave_one_out(out, goi, high, enough, min_gdna: int, loo_sd: float):
    """§1.3 LOO (option, default off): needs ≥ min_gdna + 1 rows; drop the row whose removal gives the
    smallest SD; High also when that SD ≤ loo_sd; the row leaves eq. (2) when it lowers the SD
    (vpstore.cpp::check_3)."""
    cand = goi[goi["_n"] >= min_gdna + 1]
    if not cand.empty:
        best = cand.loc[cand.groupby(["plate", "assay"], sort=False)["_sd_loo"].idxmin()]
        best = best.assign(_loo_mean=(best["_mean"] * best["_n"] - best["dcq"]) / (best["_n"] - 1))
        best = best[
            ["plate", "assay", "sample", "_sd_loo", "_loo_mean"] + (["_key"] if "_key" in best else [])
        ]
        out = out.merge(best, on=["plate", "assay"], how="left")
        has = out["_sd_loo"].notna()
        out.loc[has, "sd_loo"] = out.loc[has, "_sd_loo"]
        high = (high | (has & (out["sd_loo"] <= loo_sd))) & enough
        drop = has & (out["sd_loo"] < out["sd"])
        out.loc[drop, "dcq_gdna"] = out.loc[drop, "_loo_mean"]
        out.loc[drop, "loo_outlier"] = out.loc[drop, "sample"].astype(str)
        out = out.drop(columns=[c for c in ("_sd_loo", "_loo_mean", "sample", "_key") if c in out])

    return out, high


def _state_summary(frame: pd.DataFrame, code: np.ndarray, n_groups: int) -> dict[str, np.ndarray]:
    """:func:`aggregate_state` of ``frame`` grouped by integer ``code``, as arrays indexed by code
    (``state`` "" for a code without rows)."""
    state_code = frame["state"].map(_STATE_ORDER).fillna(3).astype(int).to_numpy()
    calc_cq = frame["cq"].where(frame["state"] == CALC).to_numpy(dtype=float)
    agg = (
        pd.DataFrame({"_cq": calc_cq, "_code": state_code, "cq": frame["cq"].to_numpy(dtype=float)})
        .groupby(code, sort=True)
        .agg(cq=("_cq", "mean"), _code=("_code", "min"), cq_max=("cq", "max"))
        .reindex(range(n_groups))
    )
    state = agg["_code"].map(_ORDER_STATE).fillna("").to_numpy(dtype=object)
    return {
        "cq": agg["cq"].to_numpy(dtype=float),
        "state": state,
        "cq_max": agg["cq_max"].to_numpy(dtype=float),
    }


def pair_vpa(measurements: pd.DataFrame, vpa_wells: pd.DataFrame, *, mode: str) -> pd.DataFrame:
    """VPA Cq and state for every GOI measurement (same index as ``measurements``).

    ``mode="replicate"`` (§1.6 default): each GOI well takes the VPA of its own
    technical replicate (:func:`replicate_key`: same BioMark sample inlet, or the
    k-th VPA well for the k-th GOI well). When the counts differ (a VPA replicate
    missing from the export, or more GOI than VPA replicates) an unpaired GOI
    well takes the summary of all VPA wells of its sample (CALC mean, best state)
    and is flagged ``VPA_UNPAIRED``. Several VPA wells in one replicate (the VPA
    loaded in two assay inlets) are summarised the same way.

    ``mode="averaged"``: every measurement (a replicate-averaged cell) takes the
    sample summary. A sample without any VPA well gets state "" (→ ND, VPA_MISSING).

    Returns columns ``vpa_cq``, ``vpa_state``, ``vpa_cq_max``, ``vpa_paired`` (bool).
    Measurements and VPA wells are paired by integer codes of their keys
    (:func:`joint_codes`), the summaries those of :func:`aggregate_state`.
    """
    if mode not in ("replicate", "averaged"):
        raise ValueError(f"validprime mode must be 'replicate' or 'averaged', not {mode!r}")
    m_cols = [measurements[c].to_numpy(dtype=object) for c in ("plate", "sample")]
    v_cols = [vpa_wells[c].to_numpy(dtype=object) for c in ("plate", "sample")]
    m_code, v_code = joint_codes(m_cols, v_cols)
    per_sample = _state_summary(
        vpa_wells, v_code, int(max(m_code.max(initial=-1), v_code.max(initial=-1))) + 1
    )
    vpa_cq, vpa_state, vpa_cq_max = (per_sample[k][m_code] for k in ("cq", "state", "cq_max"))
    paired = np.zeros(len(measurements), dtype=bool)
    if mode == "replicate" and not measurements.empty:
        m_key = replicate_key(measurements, ["plate", "sample", "assay"]).to_numpy(dtype=object)
        v_key = replicate_key(vpa_wells, ["plate", "sample", "assay"]).to_numpy(dtype=object)
        mk, vk = joint_codes([m_code, m_key], [v_code, v_key])  # (plate, sample) by its codes
        per_key = _state_summary(vpa_wells, vk, int(max(mk.max(initial=-1), vk.max(initial=-1))) + 1)
        paired = per_key["state"][mk] != ""
        vpa_cq = np.where(paired, per_key["cq"][mk], vpa_cq)
        vpa_state = np.where(paired, per_key["state"][mk], vpa_state)
        vpa_cq_max = np.where(paired, per_key["cq_max"][mk], vpa_cq_max)
    return pd.DataFrame(
        {
            "vpa_cq": vpa_cq.astype(float),
            "vpa_state": vpa_state.astype(object),
            "vpa_cq_max": vpa_cq_max.astype(float),
            "vpa_paired": paired,
        },
        index=measurements.index,
        copy=False,  # arrays of its own: not gathered into blocks
    )


def grade_from_percent(pct, grade_a: float, grade_b: float, grade_c: float) -> np.ndarray:
    """A (< grade_a), B (< grade_b), C (< grade_c), else F — strict bounds as in the code (§1.4)."""
    pct = np.asarray(pct, dtype=float)
    return pick_text([pct < grade_a, pct < grade_b, pct < grade_c], [GRADE_A, GRADE_B, GRADE_C], GRADE_F)


def correct(
    cq_na,
    goi_state,
    vpa_cq,
    vpa_state,
    dcq_gdna,
    confidence,
    score_grade=None,
    *,
    vpa_lod: float,
    options: ValidPrimeOptions,
    base: float = 2.0,
) -> pd.DataFrame:
    """Grade and correct GOI measurements (§1.2 eqs. 2–4, §1.4, §1.5); inputs are aligned arrays.

    Precedence as in ``vpstore.cpp::run``/``calc``: A+ GOI → unchanged; VPA EXPFAIL or
    no VPA well → ND; VPA NOAMP → A* unchanged (with ``vpa_noamp_upper_bound``, §1.5
    extension, VPA Cq := LOD + 1 like LOWSIGNAL); VPA LOWSIGNAL → VPA Cq := ``vpa_lod`` + 1;
    ``options``: ``grade_a/b/c``, ``correct_a`` and ``vpa_noamp_upper_bound`` are used;
    GOI not CALC → no correction; then by %DNA: A unchanged (eq. 4 with ``correct_a`` and
    High confidence), B/C eq. (4) if High confidence else HIGHSD, F → HIGHDNA (no value).
    Eq. (4) takes the mean Cq_DNA of eq. (2) as in §1.8 (gh-validprime averages eq. 4 over
    gDNA rows: 25.8438 vs 25.8405 for GOI1 +200). ``base``: general-E form of §1.2.

    Returns ``cq_dna``, ``gdna_fraction`` (f, capped at 1), ``vp_grade``, ``cq_rna`` (NaN
    when no value), ``vp_flag`` and ``use``: "value", "nondetect" (GOI NOAMP/LOWSIGNAL —
    evidence of absence whatever the gDNA) or "excluded" (no information).
    """
    cq_na = np.asarray(cq_na, dtype=float)
    n = len(cq_na)
    goi_state = np.asarray(goi_state, dtype=object)
    vpa_cq = np.asarray(vpa_cq, dtype=float).copy()
    vpa_state = np.asarray(vpa_state, dtype=object)
    dcq = np.asarray(dcq_gdna, dtype=float)
    high = np.asarray(confidence, dtype=object) == "High"
    score_grade = np.full(n, "", dtype=object) if score_grade is None else missing_as(score_grade, "")

    goi_calc = goi_state == CALC
    use = pick_text(
        [goi_calc, (goi_state == NOAMP) | (goi_state == LOWSIGNAL)], ["value", "nondetect"], "excluded"
    )
    grade = np.full(n, "", dtype=object)
    flag = np.full(n, "", dtype=object)
    cq_rna = np.full(n, np.nan)

    aplus, nd, astar, upper = _vpa_rules(
        cq_na, goi_calc, vpa_state, score_grade, bool(options.vpa_noamp_upper_bound), grade, flag, use, cq_rna
    )
    vpa_cq[upper] = float(vpa_lod) + 1.0
    vpa_low, vpa_noamp = ~aplus & (vpa_state == LOWSIGNAL), ~aplus & (vpa_state == NOAMP)
    path = ~aplus & ~nd & ~astar & goi_calc
    flag[path & vpa_low] = VPA_LOWSIGNAL
    flag[path & vpa_noamp] = VPA_NOAMP_UPPER_BOUND
    no_ref = path & ~np.isfinite(dcq)
    grade[no_ref] = GRADE_ND
    flag[no_ref] = NO_GDNA_REF
    use[no_ref] = "excluded"

    arrays = {"grade": grade, "flag": flag, "use": use, "cq_rna": cq_rna}
    bounds = (options.grade_a, options.grade_b, options.grade_c)
    cq_dna, f, ok = _grade_and_correct(
        cq_na, vpa_cq, dcq, high, path, arrays, bounds, bool(options.correct_a), float(base)
    )

    return pd.DataFrame(
        {
            "cq_dna": cq_dna,
            "gdna_fraction": np.where(ok, np.minimum(f, 1.0), np.nan),
            "vp_grade": grade,
            "cq_rna": cq_rna,
            "vp_flag": flag,
            "use": use,
        },
        copy=False,  # arrays of its own: not gathered into blocks
    )


def _vpa_rules(cq_na, goi_calc, vpa_state, score_grade, noamp_upper_bound: bool, grade, flag, use, cq_rna):
    """§1.3–§1.5 cases decided before any %DNA: A+ GOI unchanged, VPA failed or absent → ND, VPA NOAMP → A*.

    Fills ``grade``, ``flag``, ``use`` and ``cq_rna`` in place; returns the masks
    ``aplus``, ``nd``, ``astar`` and ``upper`` (VPA Cq to be set to LOD + 1).
    """
    n = len(cq_na)
    aplus = score_grade != ""
    vpa_missing = ~aplus & ~np.isin(vpa_state, [CALC, LOWSIGNAL, NOAMP, EXPFAIL])
    vpa_fail = ~aplus & (vpa_state == EXPFAIL)
    vpa_noamp = ~aplus & (vpa_state == NOAMP)
    vpa_low = ~aplus & (vpa_state == LOWSIGNAL)
    if noamp_upper_bound:
        upper, astar = vpa_low | vpa_noamp, np.zeros(n, dtype=bool)
    else:
        upper, astar = vpa_low, vpa_noamp

    # A+ / A++ / A+++: GOI never amplifies gDNA → Cq_RNA = Cq_NA.
    grade[aplus] = score_grade[aplus]
    cq_rna[aplus & goi_calc] = cq_na[aplus & goi_calc]
    # VPA failed or absent → ND (a GOI non-detect stays a non-detect: gDNA only adds signal).
    nd = vpa_fail | vpa_missing
    grade[nd] = GRADE_ND
    flag[vpa_fail] = VPA_EXPFAIL
    flag[vpa_missing] = VPA_MISSING
    use[nd & goi_calc] = "excluded"
    # VPA NOAMP → A*, not corrected.
    grade[astar] = GRADE_ASTAR
    cq_rna[astar & goi_calc] = cq_na[astar & goi_calc]

    return aplus, nd, astar, upper


def _grade_and_correct(cq_na, vpa_cq, dcq, high, path, arrays: dict, bounds, correct_a: bool, base: float):
    """Eqs. (2)–(4) and the §1.4 grades for the measurements on ``path``; fills ``arrays`` in place.

    Returns ``(cq_dna, f, ok)``: Cq_DNA (eq. 2), the gDNA fraction f (eq. 3) and
    where both were computable.
    """
    grade, flag, use, cq_rna = arrays["grade"], arrays["flag"], arrays["use"], arrays["cq_rna"]
    ok = path & np.isfinite(dcq) & np.isfinite(vpa_cq)
    cq_dna = np.where(ok, vpa_cq + dcq, np.nan)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        f = np.power(base, cq_na - cq_dna)
        g = grade_from_percent(100.0 * f, *bounds)
        eq4 = cq_na - np.log1p(-f) / np.log(base)
    g[~ok] = ""
    grade[ok] = g[ok]
    is_a = ok & (g == GRADE_A)
    is_bc = ok & ((g == GRADE_B) | (g == GRADE_C))
    is_f = ok & (g == GRADE_F)
    cq_rna[is_a] = np.where(high[is_a], eq4[is_a], cq_na[is_a]) if correct_a else cq_na[is_a]
    corr = is_bc & high
    cq_rna[corr] = eq4[corr]
    lowconf = is_bc & ~high
    flag[lowconf] = np.where(flag[lowconf] == "", HIGHSD, flag[lowconf] + ";" + HIGHSD)
    use[lowconf] = "excluded"
    flag[is_f] = np.where(flag[is_f] == "", HIGHDNA, flag[is_f] + ";" + HIGHDNA)
    use[is_f] = "excluded"
    # eq. (4) undefined (f ≥ 1) can only happen with grade_c > 100: code's K0.
    k0 = (is_a | is_bc) & ~np.isfinite(cq_rna) & (use == "value")
    flag[k0] = K0
    use[k0] = "excluded"

    return cq_dna, f, ok


def apply_validprime(
    measurements: pd.DataFrame,
    wells: pd.DataFrame,
    *,
    vpa_assay: str,
    assay_table: pd.DataFrame,
    mode: str,
    vpa_lod: float,
    options: ValidPrimeOptions,
    base: float = 2.0,
) -> pd.DataFrame:
    """Correct GOI ``measurements`` (wells, or replicate-averaged cells with ``mode="averaged"``).

    ``measurements`` needs plate, sample, assay, cq, state (and ``well`` in
    replicate mode); ``wells`` supplies the VPA wells of the samples; ``assay_table``
    is :func:`validate_assays` output; ``mode``: "replicate" or "averaged"; ``vpa_lod``,
    ``options`` and ``base`` as in :func:`correct`. Returns ``measurements`` with the columns of
    :func:`correct` added, plus ``vpa_cq``, ``vpa_state``; ``VPA_UNPAIRED`` is added
    to ``vp_flag`` where a replicate had no VPA well of its own.
    """
    vpa_wells = wells[text_is(wells["assay"], vpa_assay)]
    vpa_wells = vpa_wells[vpa_wells["sample"].isin(distinct(measurements["sample"]))]
    vp = pair_vpa(measurements, vpa_wells, mode=mode)
    ref = left_lookup(
        measurements,
        assay_table,
        ["plate", "assay"],
        ["dcq_gdna", "confidence", "score_grade"],
        fill={"confidence": "Low", "score_grade": ""},
    )
    res = correct(
        measurements["cq"].to_numpy(dtype=float),
        measurements["state"].to_numpy(dtype=object),
        vp["vpa_cq"].to_numpy(),
        vp["vpa_state"].to_numpy(),
        ref["dcq_gdna"].to_numpy(dtype=float),
        ref["confidence"].to_numpy(dtype=object),
        ref["score_grade"].to_numpy(dtype=object),
        vpa_lod=vpa_lod,
        options=options,
        base=base,
    )
    res.index = measurements.index
    if mode == "replicate":
        graded = ~text_is(res["vp_grade"], "") & ~res["vp_grade"].isin(["A+", "A++", "A+++"]).to_numpy()
        unpaired = ~vp["vpa_paired"].to_numpy() & ~text_is(vp["vpa_state"], "") & graded
        current = res.loc[unpaired, "vp_flag"]
        res.loc[unpaired, "vp_flag"] = np.where(current == "", VPA_UNPAIRED, current + ";" + VPA_UNPAIRED)
    out = measurements.copy(deep=False)  # columns are added, none written into
    out["vpa_cq"] = vp["vpa_cq"]
    out["vpa_state"] = vp["vpa_state"]
    for col in res.columns:
        out[col] = res[col]
    return out


def rt_minus_correction(
    rt_plus: pd.DataFrame,
    rt_minus: pd.DataFrame,
    *,
    lod: float,
    options: ValidPrimeOptions,
    base: float = 2.0,
) -> pd.DataFrame:
    """RT(−) alternative (§1.7): Cq_DNA := Cq of the RT(−) reaction of the same sample × GOI.

    Both tables need sample, assay, cq, state; ``rt_minus.sample`` names the RT(+)
    sample it controls. Several RT(−) wells per sample × assay are summarised
    (CALC mean, best state). The RT(−) well plays the VPA's part in the §1.5
    rules (EXPFAIL → ND, NOAMP → A*, LOWSIGNAL → LOD + 1), with ΔCq_gDNA = 0 and
    every GOI treated as high confidence (there is no gDNA series to validate).
    """
    rm = aggregate_state(rt_minus, ["sample", "assay"])
    m = rt_plus[["sample", "assay"]].merge(rm, on=["sample", "assay"], how="left")
    res = correct(
        rt_plus["cq"].to_numpy(dtype=float),
        rt_plus["state"].to_numpy(dtype=object),
        m["cq"].to_numpy(dtype=float),
        m["state"].fillna("").to_numpy(dtype=object),
        np.zeros(len(rt_plus)),
        np.full(len(rt_plus), "High", dtype=object),
        None,
        vpa_lod=lod,
        options=options,
        base=base,
    )
    res.index = rt_plus.index
    out = rt_plus.copy()
    for col in res.columns:
        out[col] = res[col]
    out["vp_flag"] = out["vp_flag"].str.replace("VPA_", "RTMINUS_", regex=False)
    return out
