"""The outcome stage in order: inputs → status and change → survival → associations
→ expression join (docs/methods.md §8)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from .analyses import (
    COX_COLUMNS,
    COX_MODEL_COLUMNS,
    KM_COLUMNS,
    LOGRANK_COLUMNS,
    MEDIAN_COLUMNS,
    SUBGROUP_COLUMNS,
    Collector,
    landmark_cohort,
    status_term,
    subgroup_analyses,
    with_status,
)
from .associations import associations_table, finish
from .dynamics import draw_order, dynamics_table, positivity_rates, thr_label
from .expression import DEFAULT_MIN_DETECTED, EXPR_COLUMNS, expression_cox, positivity_groups, sample_patients
from .inputs import (
    check_draw_dates,
    landmark_times,
    match_patients,
    read_table,
    validate_clinical,
    validate_counts,
)


def _check_covariates(clin: pd.DataFrame, names: Sequence[str], path: str, key: str) -> None:
    for var in names:
        if var not in clin.columns:
            raise InputError(
                path,
                f"column {var!r} (outcome.{key}) not found",
                f"add the column or remove it from outcome.{key}",
                line=1,
                column=var,
            )


def _followups_present(
    cnt, clin, baseline, followups, landmark, counts_path, clinical_path, notes
) -> list[str]:
    present = set(cnt["timepoint"])
    if baseline not in present:
        raise InputError(
            counts_path,
            f"no draw named {baseline!r} (the baseline)",
            f"timepoints found: {', '.join(sorted(present))}; set baseline to one of them",
            column="timepoint",
        )
    fus = []
    for fu in followups:
        if fu not in present:
            notes.append(f"follow-up draw {fu!r} not in the counts; skipped")
            continue
        fus.append(fu)
        if landmark and f"landmark_{fu}_months" not in clin.columns:
            raise InputError(
                clinical_path,
                f"missing column landmark_{fu}_months for the landmark analysis at {fu}",
                "add the time from baseline to that draw (months), or draw dates (clinical "
                f"date_{baseline} and date_{fu}, or a draw_date column in the counts), or set "
                "landmark: false",
                line=1,
                column=f"landmark_{fu}_months",
            )
    return fus


def _baseline_block(col: Collector, b: pd.DataFrame, ep: str, s: dict) -> None:
    tcol, ecol = f"{ep}_months", f"{ep}_event"
    bl, main = s["baseline"], s["main_threshold"]
    col.status_analyses(bl + " CTC>={thr}", ep, b, s["thresholds"])
    d = b.assign(**{"log(CTC+1)": np.log(b["ctc_per_7_5ml"] + 1)})
    col.cox_model(f"univariate: {bl} log(CTC+1)", ep, d, tcol, ecol, ["log(CTC+1)"])
    if s["covariates"]:
        col.cox_model(
            f"multivariate: {bl} CTC>={thr_label(main)}",
            ep,
            with_status(b, main),
            tcol,
            ecol,
            [status_term(main), *s["covariates"]],
            s["categorical"],
        )
    if s["subgroups"]:
        subgroup_analyses(col, f"{bl} CTC>={thr_label(main)}", ep, b, s["subgroups"], main)


def _followup_block(col: Collector, f: pd.DataFrame, ep: str, fu: str, s: dict) -> None:
    tcol, ecol = f"{ep}_months", f"{ep}_event"
    main, bl = s["main_threshold"], s["baseline"]
    if s["landmark"]:
        suffix = "landmark"
        f, why = landmark_cohort(f, ep, f"landmark_{fu}_months")
        if why:
            col.notes.append(f"{fu} landmark / {ep}: excluded — " + "; ".join(why))
    else:
        suffix = "from baseline"
        col.notes.append(
            f"{fu} / {ep}: groups defined at {fu} analysed from baseline (landmark: false) — "
            "subject to guarantee-time bias (§8.2)"
        )
    col.status_analyses(fu + " CTC>={thr} (" + suffix + ")", ep, f, s["thresholds"])
    ch = f[f["change"].notna()]
    name = f"{bl}→{fu} change at {thr_label(main)} ({suffix})"
    col.group_analysis(name, ep, ch[tcol], ch[ecol], ch["change"].to_numpy())
    ref = {"change": "low→low"} if "low→low" in set(ch["change"]) else None
    col.cox_model(f"univariate: {name}", ep, ch, tcol, ecol, ["change"], ["change"], ref)
    col.cox_model(f"univariate: {bl}→{fu} log2((F+1)/(B+1)) ({suffix})", ep, ch, tcol, ecol, ["log2_change"])
    if s["covariates"]:
        col.cox_model(
            f"multivariate: {fu} CTC>={thr_label(main)} ({suffix})",
            ep,
            with_status(f, main),
            tcol,
            ecol,
            [status_term(main), *s["covariates"]],
            s["categorical"],
        )


def _frame(rows, columns, sort) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame(columns=columns)
    df = pd.concat(rows, ignore_index=True) if isinstance(rows[0], pd.DataFrame) else pd.DataFrame(rows)
    df = df.reindex(columns=columns)
    # stable sort: within a model, terms keep their model-matrix order
    return df.sort_values(sort, kind="mergesort").reset_index(drop=True)


def _load(counts, clinical, s: dict) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    cp, kp = s["counts_path"], s["clinical_path"]
    cnt = validate_counts(counts, cp)
    clin = validate_clinical(clinical, kp, s["endpoints"])
    _check_covariates(clin, s["covariates"], kp, "covariates")
    _check_covariates(clin, s["variables"], kp, "associations")
    _check_covariates(clin, s["subgroups"], kp, "subgroups")
    cnt, clin, notes = match_patients(cnt, clin, cp, kp, s["on_unmatched"])
    clin, more = landmark_times(cnt, clin, s["baseline"], s["followups"])
    check_draw_dates(clin, s["followups"], kp)
    return cnt, clin, notes + more


def _settings(thresholds, main_threshold, covariates, arm_column, associations, subgroups, **rest) -> dict:
    s = dict(rest)
    s["thresholds"] = sorted({float(t) for t in thresholds} | {float(main_threshold)})
    s["main_threshold"] = float(main_threshold)
    s["covariates"] = tuple(covariates)
    s["arm_column"] = arm_column
    default_vars = [*covariates, *([arm_column] if arm_column else [])]
    s["variables"] = list(dict.fromkeys(associations if associations is not None else default_vars))
    s["subgroups"] = tuple(subgroups)
    return s


def run_outcome(
    counts: pd.DataFrame,
    clinical: pd.DataFrame,
    *,
    counts_path: str = "ctc_counts.tsv",
    clinical_path: str = "clinical.tsv",
    thresholds: Sequence[float] = (1, 5),
    main_threshold: float = 5,
    baseline: str = "baseline",
    followups: Sequence[str] = ("cycle2", "cycle3"),
    covariates: Sequence[str] = (),
    categorical: Sequence[str] = (),
    ordinal: Sequence[str] = (),
    associations: Sequence[str] | None = None,
    subgroups: Sequence[str] = (),
    arm_column: str | None = "arm",
    endpoints: Sequence[str] = ("pfs", "os"),
    landmark: bool = True,
    on_unmatched: str = "error",
    expression: pd.DataFrame | None = None,
    samples: pd.DataFrame | None = None,
    positivity: pd.DataFrame | None = None,
    expression_timepoint: str | None = None,
    expression_path: str = "expression",
    samples_path: str = "samples",
    min_detected: int = DEFAULT_MIN_DETECTED,
) -> dict[str, pd.DataFrame]:
    """Run the CTC counts and outcome stage (§8). Returns a dict of tables.

    Keys: ``dynamics``, ``positivity_rates``, ``km``, ``logrank``, ``cox``,
    ``cox_models``, ``medians``, ``subgroups``, ``associations``,
    ``expression_cox``, ``notes`` (one column ``note``).
    """
    s = _settings(
        thresholds,
        main_threshold,
        covariates,
        arm_column,
        associations,
        subgroups,
        counts_path=counts_path,
        clinical_path=clinical_path,
        baseline=baseline,
        followups=tuple(followups),
        categorical=tuple(categorical),
        ordinal=tuple(ordinal),
        endpoints=tuple(endpoints),
        landmark=landmark,
        on_unmatched=on_unmatched,
    )
    cnt, clin, notes = _load(counts, clinical, s)
    col = Collector()
    col.notes.extend(notes)
    fus = _followups_present(
        cnt, clin, baseline, s["followups"], landmark, counts_path, clinical_path, col.notes
    )
    dyn = dynamics_table(cnt, s["thresholds"], s["main_threshold"], baseline, fus)
    rates = positivity_rates(dyn, s["thresholds"], draw_order(dyn["timepoint"], baseline, fus))
    base = dyn[dyn["timepoint"] == baseline].merge(clin, on="patient", how="inner")
    _survival_analyses(col, dyn, clin, base, fus, s)
    assoc = _associations(base, dyn, clin, fus, s)
    expr_cox, assoc = _join(
        col,
        assoc,
        expression,
        samples,
        positivity,
        clin,
        base,
        s,
        expression_timepoint or baseline,
        expression_path,
        samples_path,
        min_detected,
    )
    return _result_tables(col, dyn, rates, assoc, expr_cox)


def _survival_analyses(col, dyn, clin, base, fus, s) -> None:
    """KM, log-rank and Cox per endpoint (docs/methods.md §8): at baseline on the patients with
    a baseline count, then at each follow-up draw (landmark); notes say who was left out."""
    baseline = s["baseline"]
    no_base = sorted(set(clin["patient"]) - set(base["patient"]))
    if no_base:
        col.notes.append(
            f"patients without a {baseline} count (left out of baseline analyses): {', '.join(no_base)}"
        )
    for ep in s["endpoints"]:
        b = base.dropna(subset=[f"{ep}_months", f"{ep}_event"])
        if len(b) < len(base):
            col.notes.append(f"{ep}: {len(base) - len(b)} patient(s) without {ep} data left out")
        _baseline_block(col, b, ep, s)
        for fu in fus:
            f = dyn[dyn["timepoint"] == fu].merge(clin, on="patient", how="inner")
            _followup_block(col, f.dropna(subset=[f"{ep}_months", f"{ep}_event"]), ep, fu, s)


def _associations(base, dyn, clin, fus, s) -> pd.DataFrame:
    """Baseline counts against the clinical variables, and dynamics against the arm
    (docs/methods.md §8)."""
    return associations_table(
        base,
        s["variables"],
        s["categorical"],
        s["ordinal"],
        s["thresholds"],
        s["arm_column"],
        dyn,
        clin,
        fus,
        s["main_threshold"],
    )


def _result_tables(col, dyn, rates, assoc, expr_cox) -> dict[str, pd.DataFrame]:
    """The stage's tables from the collected rows, each with its columns and sort order."""
    return {
        "dynamics": dyn,
        "positivity_rates": rates,
        "km": _frame(col.km, KM_COLUMNS, ["analysis", "endpoint", "group", "time"]),
        "logrank": _frame(col.logrank, LOGRANK_COLUMNS, ["analysis", "endpoint"]),
        "cox": _frame(col.cox, COX_COLUMNS, ["model", "endpoint"]),
        "cox_models": _frame(col.cox_models, COX_MODEL_COLUMNS, ["model", "endpoint"]),
        "medians": _frame(col.medians, MEDIAN_COLUMNS, ["analysis", "endpoint", "group"]),
        "subgroups": _frame(col.subgroups, SUBGROUP_COLUMNS, ["endpoint", "analysis", "variable"]),
        "associations": assoc,
        "expression_cox": expr_cox,
        "notes": pd.DataFrame({"note": col.notes}),
    }


def _join(
    col,
    assoc,
    expression,
    samples,
    positivity,
    clin,
    base,
    s,
    timepoint,
    expression_path,
    samples_path,
    min_detected,
):
    """Expression Cox and qPCR positivity groups when the qPCR study is joined."""
    empty = pd.DataFrame(columns=EXPR_COLUMNS)
    if expression is None and positivity is None:
        return empty, assoc
    if samples is None:
        raise InputError(
            samples_path,
            "a samples sheet is needed to join expression with patients",
            "give the samples sheet (sample, patient, timepoint)",
        )
    s2p = sample_patients(samples, timepoint, samples_path)
    unknown = sorted(set(s2p) - set(clin["patient"]))
    if unknown:
        col.notes.append(
            f"expression at {timepoint}: patients without clinical data left out: {', '.join(unknown)}"
        )
    expr = empty
    if expression is not None:
        expr = expression_cox(expression, s2p, clin, s["endpoints"], timepoint, expression_path, min_detected)
        col.notes.append(
            "expression Cox: HR per unit of −ΔCq (per doubling of expression relative to the "
            f"normaliser) at {timepoint}, detected values only, genes detected in ≥ {min_detected} "
            "patients; BH q across tested genes within each endpoint"
        )
    if positivity is not None:
        rows = positivity_groups(
            col, positivity, s2p, clin, base, s["endpoints"], timepoint, s["main_threshold"]
        )
        if rows:
            assoc = finish(pd.concat([assoc, pd.DataFrame(rows)], ignore_index=True))
    return expr, assoc


def config_arguments(cfg: dict) -> dict:
    """Keyword arguments of :func:`run_outcome` from the config's ``outcome:`` section."""
    return {
        "counts_path": cfg["ctc_counts"],
        "clinical_path": cfg["clinical"],
        "thresholds": tuple(cfg.get("thresholds", (1, 5))),
        "main_threshold": cfg.get("main_threshold", 5),
        "baseline": cfg.get("baseline", "baseline"),
        "followups": tuple(cfg.get("followups", ())),
        "covariates": tuple(cfg.get("covariates", ())),
        "categorical": tuple(cfg.get("categorical", ())),
        "ordinal": tuple(cfg.get("ordinal", ())),
        "associations": cfg.get("associations"),
        "subgroups": tuple(cfg.get("subgroups", ())),
        "arm_column": cfg.get("arm_column") or None,
        "landmark": cfg.get("landmark", True),
        "on_unmatched": cfg.get("on_unmatched", "error"),
        "min_detected": int(cfg.get("min_detected", DEFAULT_MIN_DETECTED)),
    }


def check_outcome_inputs(cfg: dict) -> None:
    """Start-up check of the count and clinical tables (dry run included).

    Runs every table check of the stage — columns, values, duplicates, patients
    in both tables, configured columns present, baseline and landmark times —
    so a problem is reported with file, line and column before any job runs.
    """
    if not (cfg.get("activate") and cfg.get("ctc_counts")):
        return
    if not cfg.get("clinical"):
        raise InputError(
            cfg["ctc_counts"],
            "outcome.clinical is empty",
            "give the clinical table (patient, pfs_months, pfs_event, os_months, os_event)",
        )
    args = config_arguments(cfg)
    s = _settings(
        args["thresholds"],
        args["main_threshold"],
        args["covariates"],
        args["arm_column"],
        args["associations"],
        args["subgroups"],
        counts_path=args["counts_path"],
        clinical_path=args["clinical_path"],
        baseline=args["baseline"],
        followups=args["followups"],
        categorical=args["categorical"],
        ordinal=args["ordinal"],
        endpoints=("pfs", "os"),
        landmark=args["landmark"],
        on_unmatched=args["on_unmatched"],
    )
    cnt, clin, notes = _load(read_table(args["counts_path"]), read_table(args["clinical_path"]), s)
    _followups_present(
        cnt, clin, s["baseline"], s["followups"], s["landmark"], s["counts_path"], s["clinical_path"], notes
    )
