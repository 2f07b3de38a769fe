"""The outcome stage in order: inputs → status and change → survival → associations
→ expression join (docs/methods.md §8)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from .analyses import Collector, landmark_cohort, status_term, subgroup_analyses, with_status
from .associations import associations_table, finish
from .dynamics import draw_order, dynamics_table, positivity_rates, thr_label
from .expression import EXPR_COLUMNS, expression_cox, positivity_groups, sample_patients
from .inputs import (
    check_draw_dates,
    landmark_times,
    match_patients,
    read_table,
    validate_clinical,
    validate_counts,
)
from .options import OutcomeOptions, Plan, plan


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


def _followups_present(cnt, clin, s: Plan, notes) -> list[str]:
    """The configured follow-up draws found in the counts (a note for each one missing)."""
    baseline = s.baseline
    present = set(cnt["timepoint"])
    if baseline not in present:
        raise InputError(
            s.counts_path,
            f"no draw named {baseline!r} (the baseline)",
            f"timepoints found: {', '.join(sorted(present))}; set baseline to one of them",
            column="timepoint",
        )
    fus = []
    for fu in s.followups:
        if fu not in present:
            notes.append(f"follow-up draw {fu!r} not in the counts; skipped")
            continue
        fus.append(fu)
        if s.landmark and f"landmark_{fu}_months" not in clin.columns:
            raise InputError(
                s.clinical_path,
                f"missing column landmark_{fu}_months for the landmark analysis at {fu}",
                "add the time from baseline to that draw (months), or draw dates (clinical "
                f"date_{baseline} and date_{fu}, or a draw_date column in the counts), or set "
                "landmark: false",
                line=1,
                column=f"landmark_{fu}_months",
            )
    return fus


def _baseline_block(col: Collector, b: pd.DataFrame, ep: str, s: Plan) -> None:
    tcol, ecol = f"{ep}_months", f"{ep}_event"
    bl, main = s.baseline, s.main_threshold
    col.status_analyses(bl + " CTC>={thr}", ep, b, s.thresholds)
    d = b.assign(**{"log(CTC+1)": np.log(b["ctc_per_7_5ml"] + 1)})
    col.cox_model(f"univariate: {bl} log(CTC+1)", ep, d, tcol, ecol, ["log(CTC+1)"])
    _multivariate(col, f"{bl} CTC>={thr_label(main)}", ep, b, s)
    if s.subgroups:
        subgroup_analyses(col, f"{bl} CTC>={thr_label(main)}", ep, b, s.subgroups, main)


def _followup_block(col: Collector, f: pd.DataFrame, ep: str, fu: str, s: Plan) -> None:
    tcol, ecol = f"{ep}_months", f"{ep}_event"
    main, bl = s.main_threshold, s.baseline
    if s.landmark:
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
    col.status_analyses(fu + " CTC>={thr} (" + suffix + ")", ep, f, s.thresholds)
    ch = f[f["change"].notna()]
    name = f"{bl}→{fu} change at {thr_label(main)} ({suffix})"
    col.group_analysis(name, ep, ch[tcol], ch[ecol], ch["change"].to_numpy())
    ref = {"change": "low→low"} if "low→low" in set(ch["change"]) else None
    col.cox_model(f"univariate: {name}", ep, ch, tcol, ecol, ["change"], ["change"], ref)
    col.cox_model(f"univariate: {bl}→{fu} log2((F+1)/(B+1)) ({suffix})", ep, ch, tcol, ecol, ["log2_change"])
    _multivariate(col, f"{fu} CTC>={thr_label(main)} ({suffix})", ep, f, s)


def _multivariate(col: Collector, analysis: str, ep: str, d: pd.DataFrame, s: Plan) -> None:
    """Cox model of CTC status at the main threshold adjusted for the covariates (when there are any)."""
    if s.covariates:
        main = s.main_threshold
        terms = [status_term(main), *s.covariates]
        col.cox_model(
            f"multivariate: {analysis}",
            ep,
            with_status(d, main),
            f"{ep}_months",
            f"{ep}_event",
            terms,
            s.categorical,
        )


def _load(counts, clinical, s: Plan) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    cp, kp = s.counts_path, s.clinical_path
    cnt = validate_counts(counts, cp)
    clin = validate_clinical(clinical, kp, s.endpoints)
    _check_covariates(clin, s.covariates, kp, "covariates")
    _check_covariates(clin, s.variables, kp, "associations")
    _check_covariates(clin, s.subgroups, kp, "subgroups")
    cnt, clin, notes = match_patients(cnt, clin, cp, kp, s.on_unmatched)
    clin, more = landmark_times(cnt, clin, s.baseline, s.followups)
    check_draw_dates(clin, s.followups, kp)
    return cnt, clin, notes + more


def run_outcome(
    counts: pd.DataFrame,
    clinical: pd.DataFrame,
    options: OutcomeOptions,
    *,
    counts_path: str | None = None,
    clinical_path: str | None = None,
    expression: pd.DataFrame | None = None,
    samples: pd.DataFrame | None = None,
    positivity: pd.DataFrame | None = None,
    expression_path: str = "expression",
    samples_path: str = "samples",
) -> dict[str, pd.DataFrame]:
    """Run the CTC counts and outcome stage (§8). Returns a dict of tables.

    ``options``: :func:`~ctc_qpcr.outcome.options.outcome_options`. ``counts_path`` and
    ``clinical_path`` name the tables in messages (default: ``options.ctc_counts`` and
    ``options.clinical``). ``expression`` (Cells ΔCq, long), ``samples`` (the samples sheet)
    and ``positivity`` (sample-level calls) join a qPCR study at
    ``options.expression_timepoint``.

    Keys: ``dynamics``, ``positivity_rates``, ``km``, ``logrank``, ``cox``,
    ``cox_models``, ``medians``, ``subgroups``, ``associations``,
    ``expression_cox``, ``notes`` (one column ``note``).
    """
    s = plan(options, counts_path, clinical_path)
    cnt, clin, notes = _load(counts, clinical, s)
    col = Collector()
    col.notes.extend(notes)
    fus = _followups_present(cnt, clin, s, col.notes)
    dyn = dynamics_table(cnt, s.thresholds, s.main_threshold, s.baseline, fus)
    rates = positivity_rates(dyn, s.thresholds, draw_order(dyn["timepoint"], s.baseline, fus))
    base = dyn[dyn["timepoint"] == s.baseline].merge(clin, on="patient", how="inner")
    _survival_analyses(col, dyn, clin, base, fus, s)
    assoc = _associations(base, dyn, clin, fus, s)
    joined = {"expression": expression, "samples": samples, "positivity": positivity}
    paths = {"expression": expression_path, "samples": samples_path}
    expr_cox, assoc = _join(col, assoc, joined, paths, clin, base, s)
    return _result_tables(col, dyn, rates, assoc, expr_cox)


def _survival_analyses(col, dyn, clin, base, fus, s) -> None:
    """KM, log-rank and Cox per endpoint (docs/methods.md §8): at baseline on the patients with
    a baseline count, then at each follow-up draw (landmark); notes say who was left out."""
    baseline = s.baseline
    no_base = sorted(set(clin["patient"]) - set(base["patient"]))
    if no_base:
        col.notes.append(
            f"patients without a {baseline} count (left out of baseline analyses): {', '.join(no_base)}"
        )
    for ep in s.endpoints:
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
        s.variables,
        s.categorical,
        s.ordinal,
        s.thresholds,
        s.arm_column,
        dyn,
        clin,
        fus,
        s.main_threshold,
    )


def _result_tables(col, dyn, rates, assoc, expr_cox) -> dict[str, pd.DataFrame]:
    """The stage's tables from the collected rows, each with its columns and sort order."""
    return {
        "dynamics": dyn,
        "positivity_rates": rates,
        **col.tables(),
        "associations": assoc,
        "expression_cox": expr_cox,
        "notes": pd.DataFrame({"note": col.notes}),
    }


def _join(col, assoc, joined: dict, paths: dict, clin, base, s: Plan):
    """Expression Cox and qPCR positivity groups when the qPCR study is joined."""
    expression, samples, positivity = joined["expression"], joined["samples"], joined["positivity"]
    timepoint, min_detected = s.expression_timepoint, s.min_detected
    empty = pd.DataFrame(columns=EXPR_COLUMNS)
    if expression is None and positivity is None:
        return empty, assoc
    if samples is None:
        raise InputError(
            paths["samples"],
            "a samples sheet is needed to join expression with patients",
            "give the samples sheet (sample, patient, timepoint)",
        )
    s2p = sample_patients(samples, timepoint, paths["samples"])
    unknown = sorted(set(s2p) - set(clin["patient"]))
    if unknown:
        col.notes.append(
            f"expression at {timepoint}: patients without clinical data left out: {', '.join(unknown)}"
        )
    expr = empty
    if expression is not None:
        expr = expression_cox(
            expression, s2p, clin, s.endpoints, timepoint, paths["expression"], min_detected
        )
        col.notes.append(
            "expression Cox: HR per unit of −ΔCq (per doubling of expression relative to the "
            f"normaliser) at {timepoint}, detected values only, genes detected in ≥ {min_detected} "
            "patients; BH q across tested genes within each endpoint"
        )
    if positivity is not None:
        rows = positivity_groups(col, positivity, s2p, clin, base, s.endpoints, timepoint, s.main_threshold)
        if rows:
            assoc = finish(pd.concat([assoc, pd.DataFrame(rows)], ignore_index=True))
    return expr, assoc


def check_outcome_inputs(options: OutcomeOptions) -> None:
    """Start-up check of the count and clinical tables (dry run included).

    Runs every table check of the stage — columns, values, duplicates, patients
    in both tables, configured columns present, baseline and landmark times —
    so a problem is reported with file, line and column before any job runs.
    """
    if not (options.activate and options.ctc_counts):
        return
    if not options.clinical:
        raise InputError(
            options.ctc_counts,
            "outcome.clinical is empty",
            "give the clinical table (patient, pfs_months, pfs_event, os_months, os_event)",
        )
    s = plan(options)
    cnt, clin, notes = _load(read_table(s.counts_path), read_table(s.clinical_path), s)
    _followups_present(cnt, clin, s, notes)
