"""Differential expression between groups of CTC samples (docs/methods.md §6).

Input: the long *normalised* table (data-model §3: ``sample, gene, dcq, detected``
and ``strategy``) joined to the samples sheet on ``sample``. ``dcq`` is the
imputed ΔCq (§3.3: non-detects carry LOD + 1 − normaliser); ``detected`` tells
which values are real.

Comparisons are declared in the config as plain dicts (a *spec*), so a lab can
add its own without code::

    name:   unique name (used for output files)
    type:   two_group | per_site | multi_group | timepoints
    column: samples-sheet column holding the groups (response, sites, timepoint, ...)
    levels: [a, b] -- a vs b; log2fc = −(mean_dcq_a − mean_dcq_b) = a relative to b
            (multi_group: optional subset/order of groups; per_site: optional sites;
            timepoints with ≥ 3 levels [T0, T1, T2]: the ordered time points of the
            mixed model, paired test = second relative to first, i.e. T1 vs T0)
    filter: {column: value or [values]} applied to the samples sheet first
    pool:   none | patient -- average a patient's samples (within time point for
            ``timepoints``) before testing, so each patient counts once
    test:   auto (default) or a named test (see below)
    timepoints: (timepoints only) levels for the mixed model, default all present
    group:  (timepoints only) column for the time × group interaction, default response

Levels only where something is measured (issue 16; docs/methods.md §6)
-----------------------------------------------------------------------
A CTC sample holds a handful of cells: a gene is expressed by the captured cells or
not, the amount of material differs between patients (non-responders carry more CTC)
and falls over time in responders. The imputed ΔCq of a non-detect (LOD + 1 −
normaliser) therefore follows the material, not the gene: tested as a value it makes
never-detected genes "significant". So:

* every level statistic (means, ``log2fc`` and its CI, Welch, Yuen, Brunner–Munzel,
  paired t, Wilcoxon, the mixed model) uses the **detected values only**, and only
  when every group / time point has ≥ ``min_detected`` (default 3) detected units;
  otherwise the row keeps ``p``/``log2fc`` empty and ``reason`` says why;
* detection is always compared separately: ``detection_rate_a/b``,
  ``detection_diff``, ``p_fisher`` (Fisher's exact test), ``p_detection``
  (Mann–Whitney on per-patient detected fractions when pooled);
* "off" values: a captured cell population that does not express a gene can still
  give a late background signal (8-14 cycles later, often under the LOD, so called
  detected). :func:`call_on` calls a detected ΔCq "off" when it lies more than
  ``off_z`` (3.5) robust SDs above the gene's median over all units of the
  comparison, without their labels; off values count as detected for the
  detection rate (``off_a/off_b``) and stay out of every level statistic;
* the **primary two-group test** (``test: auto``) is **Welch's t on the on-level
  detected ΔCq**, chosen by measurement (benchmarks/bench_differential.py, table in
  benchmarks/README.md): type-I 0.045-0.065 at α 0.05 in 18 null scenarios (0, 30,
  60 % non-detects, on/off mixtures, unequal variances; 8 vs 25 and 15 vs 15) with
  the best power among the valid tests; Welch on all detected values loses power on
  on/off data, rank tests are liberal with unequal variances or few detected values;
* ``test:`` can ask for ``welch`` / ``brunner_munzel`` (detected values),
  ``mann_whitney`` (non-detects tied below every detected value, a detection-aware
  rank test) or ``hurdle`` (Fisher's method over Fisher's exact test and Welch on the
  detected), all reported as ``p_*`` columns too;
* multi-group: Kruskal–Wallis (default) or Welch ANOVA on the detected values;
  time points: paired t (default) or Wilcoxon on the patients detected at both time
  points, and the mixed model on the detected draws with an F reference and
  between–within df (:mod:`ctc_qpcr.differential_time`).
* ``pool: patient``: detection = share of the patient's draws detected
  (``detection_rate``), level = mean ΔCq of the detected draws.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from . import stats
from .differential_tables import (  # noqa: F401  (COLUMNS, EXTRA_*, call_on, OFF_*, NEEDED_COLUMNS: public)
    COLUMNS,
    EXTRA_MULTI,
    EXTRA_TIME,
    EXTRA_TWO_GROUP,
    NEEDED_COLUMNS,
    OFF_MIN_SD,
    OFF_Z,
    _empty,
    _finish,
    _join_sheet,
    _pool,
    _Rows,
    call_on,
    gene_rows,
)
from .differential_time import fit_time_lmm, random_intercept_reml  # noqa: F401  (public)
from .differential_time import timepoints as _timepoints
from .differential_two_group import YUEN_TRIM, _codes, _distinct, _RowLabels, two_group_gene  # noqa: F401  (public)
from .differential_workers import each_strategy, strategy_workers, tsv_rows  # noqa: F401  (public)
from .errors import ConfigError
from .study_options import DifferentialOptions, differential_options, with_words

TYPES = ("two_group", "per_site", "multi_group", "timepoints")
TESTS = {
    "two_group": ("auto", "yuen", "welch", "brunner_munzel", "mann_whitney", "hurdle"),
    "per_site": ("auto", "yuen", "welch", "brunner_munzel", "mann_whitney", "hurdle"),
    "multi_group": ("auto", "welch_anova", "kruskal"),
    "timepoints": ("auto", "paired_t", "wilcoxon"),
}


# --------------------------------------------------------------------------------------------
# Specs


def default_comparisons() -> list[dict]:
    """The three default comparisons of the study design (§6)."""
    return [
        {
            "name": "response_T0",
            "type": "two_group",
            "column": "response",
            "levels": ["responder", "non-responder"],
            "filter": {"kind": "patient", "timepoint": "T0"},
            "pool": "patient",
            "test": "auto",
        },
        {
            "name": "sites_T0",
            "type": "per_site",
            "column": "sites",
            "levels": [],
            "filter": {"kind": "patient", "timepoint": "T0"},
            "pool": "patient",
            "test": "auto",
        },
        {
            "name": "timepoints",
            "type": "timepoints",
            "column": "timepoint",
            # a relative to b: positive log2fc = higher expression at T1 than at T0
            "levels": ["T1", "T0"],
            "timepoints": ["T0", "T1", "T2"],
            "group": "response",
            "filter": {"kind": "patient"},
            "pool": "patient",
            "test": "auto",
        },
    ]


def validate_spec(spec: dict) -> dict:
    """Check a comparison spec and fill defaults; raise :class:`ConfigError`."""
    if not isinstance(spec, dict):
        raise ConfigError(f"comparison spec must be a mapping, got {type(spec).__name__}")
    out = dict(spec)
    name = out.get("name")
    if not name:
        raise ConfigError("comparison spec without a 'name'")
    kind = out.get("type")
    if kind not in TYPES:
        raise ConfigError(f"comparison {name!r}: type must be one of {', '.join(TYPES)}, got {kind!r}")
    out.setdefault("column", {"per_site": "sites", "timepoints": "timepoint"}.get(kind))
    if not out["column"]:
        raise ConfigError(f"comparison {name!r}: 'column' is required for type {kind}")
    out["levels"] = [str(v) for v in (out.get("levels") or [])]
    if kind == "timepoints" and len(out["levels"]) >= 3 and not out.get("timepoints"):
        # levels = the ordered time points (e.g. [T0, T1, T2]): mixed model on all of
        # them, paired test of the second relative to the first (change from baseline)
        out["timepoints"] = list(out["levels"])
        out["levels"] = [out["levels"][1], out["levels"][0]]
    if kind in ("two_group", "timepoints") and len(out["levels"]) != 2:
        raise ConfigError(f"comparison {name!r}: 'levels' must list exactly two values [a, b] (a vs b)")
    out["filter"] = dict(out.get("filter") or {})
    out["pool"] = out.get("pool") or "none"
    if out["pool"] not in ("none", "patient"):
        raise ConfigError(f"comparison {name!r}: pool must be 'none' or 'patient', got {out['pool']!r}")
    out["test"] = out.get("test") or "auto"
    if out["test"] not in TESTS[kind]:
        raise ConfigError(f"comparison {name!r}: test for {kind} must be one of {', '.join(TESTS[kind])}")
    if kind == "timepoints":
        out["timepoints"] = [str(v) for v in (out.get("timepoints") or [])]
        out.setdefault("group", "response")
    return out


# --------------------------------------------------------------------------------------------
# Data preparation


def _as_list(value: Any) -> list[str]:
    if isinstance(value, (list, tuple, set)):
        return [str(v) for v in value]
    return [str(value)]


def _prepare(
    normalised: pd.DataFrame | _Rows,
    samples: pd.DataFrame,
    spec: dict,
    notes: list[str],
    off_z: float | None = OFF_Z,
) -> pd.DataFrame:
    """Join, filter, call "off" values and (optionally) pool; one row per unit × gene × strategy."""
    rows = normalised if isinstance(normalised, _Rows) else _Rows(normalised)
    sheet = samples.copy()
    sheet["sample"] = sheet["sample"].astype(str)
    for col, wanted in spec["filter"].items():
        if col not in sheet.columns:
            raise ConfigError(f"comparison {spec['name']!r}: filter column {col!r} not in the samples sheet")
        sheet = sheet[sheet[col].astype(str).str.strip().isin(_as_list(wanted))]
    if spec["column"] not in sheet.columns:
        raise ConfigError(f"comparison {spec['name']!r}: column {spec['column']!r} not in the samples sheet")
    keep = ["sample", spec["column"]]
    for extra in ("patient", "timepoint", spec.get("group")):
        if extra and extra in sheet.columns and extra not in keep:
            keep.append(extra)
    # per-sample derived columns are computed on the sheet (one row per sample), not on
    # the merged sample × gene rows: same values, a fraction of the string work
    sheet = sheet[keep].copy()
    patient = (sheet["patient"] if "patient" in sheet.columns else sheet["sample"]).astype(object)
    missing = patient.isna() | (patient.astype(str).str.strip() == "")
    sheet["unit"] = np.where(missing, sheet["sample"], patient.astype(str))
    sheet[spec["column"]] = sheet[spec["column"]].astype(object).where(sheet[spec["column"]].notna(), "")
    sheet[spec["column"]] = sheet[spec["column"]].astype(str).str.strip()
    data, kept = _join_sheet(rows, sheet)
    if "patient" not in data.columns:
        data["patient"] = data["sample"]
    data["on"] = _calls_on(rows, data, kept, off_z)
    if spec["pool"] == "patient":
        return _pool(data, spec, notes)
    data["detected_fraction"] = data["detected"].astype(float)
    return data


def _calls_on(rows: _Rows, data: pd.DataFrame, kept: bytes | None, off_z: float | None) -> np.ndarray:
    """:func:`call_on` of the joined rows, once per set of kept samples of a strategy (comparisons
    with the same filter share it: the calls depend on the rows alone)."""
    if kept is None:
        return call_on(data, off_z).to_numpy()
    key = (kept, off_z)
    if key not in rows.on_calls:
        rows.on_calls[key] = call_on(data, off_z).to_numpy()
    return rows.on_calls[key]


def _binary(
    data: pd.DataFrame,
    in_a: pd.Series,
    in_b: pd.Series,
    labels: tuple[str, str],
    spec: dict,
    notes: list[str],
    *,
    min_per_group: int,
    site: str = "",
    groups: dict | None = None,
    **opts,
) -> list[dict]:
    """One row per strategy × gene: A (``in_a``) vs B (``in_b``). ``groups``: the row positions of
    each (strategy, gene), sorted (``data.groupby([...], sort=True).indices``; computed if None)."""
    if groups is None:
        groups = gene_rows(data)
    rows = []
    short_genes = []
    dcq = data["dcq"].to_numpy(float)
    det = data["detected"].to_numpy(bool)
    frac = data["detected_fraction"].to_numpy(float) if "detected_fraction" in data else det.astype(float)
    on = data["on"].to_numpy(bool) if "on" in data else det
    mask_a = in_a.reindex(data.index).to_numpy(bool)
    mask_b = in_b.reindex(data.index).to_numpy(bool)
    for (strategy, gene), idx in groups.items():
        ia, ib = idx[mask_a[idx]], idx[mask_b[idx]]
        row = {
            "gene": gene,
            "strategy": strategy,
            "comparison": spec["name"],
            "level_a": labels[0],
            "level_b": labels[1],
            "site": site,
        }
        if ia.size < min_per_group or ib.size < min_per_group:
            short_genes.append(f"{gene} ({strategy})" if strategy else gene)
            row.update(
                {
                    "n_a": ia.size,
                    "n_b": ib.size,
                    "p": math.nan,
                    "test": "none",
                    "detected_a": int(det[ia].sum()),
                    "detected_b": int(det[ib].sum()),
                }
            )
        else:
            row.update(
                two_group_gene(
                    dcq[ia],
                    det[ia],
                    dcq[ib],
                    det[ib],
                    test=spec["test"],
                    frac_a=frac[ia],
                    frac_b=frac[ib],
                    on_a=on[ia],
                    on_b=on[ib],
                    min_detected=opts["min_detected"],
                    trim=opts["trim"],
                )
            )
        rows.append(row)
    if short_genes:
        where = f" site {site}" if site else ""
        notes.append(
            f"{spec['name']}{where}: {len(short_genes)} gene(s) with < {min_per_group} values in a group "
            f"not tested: {', '.join(short_genes[:20])}{' ...' if len(short_genes) > 20 else ''}"
        )
    return rows


def _count_units(data: pd.DataFrame, mask: pd.Series) -> int:
    return int(data.loc[mask, "unit"].nunique())


def _two_group(data, spec, notes, *, min_per_group, **opts):
    col = spec["column"]
    a_lvl, b_lvl = spec["levels"]
    label = _RowLabels(data[col])
    in_a, in_b, unlabelled = (
        label.rows(label.values == a_lvl),
        label.rows(label.values == b_lvl),
        label.missing,
    )
    units, n_units = _codes(data["unit"])  # each unit hashed once: the counts below by code
    if n_unlabelled := _distinct(units[label.rows(unlabelled)], n_units):
        notes.append(f"{spec['name']}: {n_unlabelled} patient(s)/sample(s) without {col!r} excluded")
    other = ~((label.values == a_lvl) | (label.values == b_lvl) | unlabelled)
    if other.any():
        n_other, others = (
            _distinct(units[label.rows(other)], n_units),
            sorted({str(v) for v in label.values[other]}),
        )
        notes.append(
            f"{spec['name']}: {n_other} patient(s)/sample(s) with {col} not "
            f"in {[a_lvl, b_lvl]} excluded ({', '.join(others)})"
        )
    na, nb = _distinct(units[in_a], n_units), _distinct(units[in_b], n_units)
    if na < min_per_group or nb < min_per_group:
        notes.append(
            f"{spec['name']}: skipped — {col}={a_lvl!r} has {na} and {col}={b_lvl!r} has {nb} "
            f"{'patients' if spec['pool'] == 'patient' else 'samples'} (need ≥ {min_per_group} each)"
        )
        return _empty(EXTRA_TWO_GROUP)
    in_a, in_b = pd.Series(in_a, index=data.index), pd.Series(in_b, index=data.index)
    rows = _binary(data, in_a, in_b, (a_lvl, b_lvl), spec, notes, min_per_group=min_per_group, **opts)
    return _finish(rows, EXTRA_TWO_GROUP, ["strategy"])


def parse_sites(value: Any) -> frozenset[str] | None:
    """``liver;bone`` → {"liver", "bone"}; empty/NaN → None (unknown)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    parts = [p.strip().lower() for p in str(value).split(";")]
    parts = [p for p in parts if p and p not in ("nan", "na")]
    return frozenset(parts) if parts else None


def _per_site(data, spec, notes, *, min_per_group, min_site_patients, **opts):
    col = spec["column"]
    label = _RowLabels(data[col])  # each distinct text hashed and parsed once (issue 17)
    site_sets = [parse_sites(v) for v in label.values]
    known_value = np.array([sites is not None for sites in site_sets], dtype=bool)
    known, codes = label.rows(known_value), label.codes
    units, n_units = _codes(data["unit"])
    if unknown := _distinct(units[~known], n_units):
        notes.append(
            f"{spec['name']}: {unknown} patient(s)/sample(s) without {col!r} excluded (unknown sites)"
        )
    if not known.all():  # (a filter of every row copies the frame: 1.2 M rows at 1,000 chips)
        data, codes, units = data[known], codes[known], units[known]
    all_sites = sorted(set().union(*(sites for sites in site_sets if sites is not None))) if len(data) else []
    wanted = spec["levels"] or all_sites
    need = max(min_site_patients, min_per_group)
    rows: list[dict] = []
    skipped = []
    groups = None  # the rows of each strategy × gene: the same for every site
    for site in wanted:
        has_site = np.array([sites is not None and site in sites for sites in site_sets], dtype=bool)[codes]
        present = pd.Series(has_site, index=data.index)
        n_yes, n_no = _distinct(units[has_site], n_units), _distinct(units[~has_site], n_units)
        if n_yes < need or n_no < need:
            skipped.append(f"{site} ({n_yes} with / {n_no} without)")
            continue
        if groups is None:
            groups = gene_rows(data)
        rows += _binary(
            data,
            present,
            ~present,
            (site, f"not {site}"),
            spec,
            notes,
            min_per_group=min_per_group,
            site=site,
            groups=groups,
            **opts,
        )
    if skipped:
        notes.append(f"{spec['name']}: sites skipped, fewer than {need} in a group: {', '.join(skipped)}")
    if not rows:
        notes.append(f"{spec['name']}: skipped — no site has ≥ {need} patients with and without it")
    return _finish(rows, EXTRA_TWO_GROUP, ["strategy", "site"])


# --------------------------------------------------------------------------------------------
# Multi-group


def _multi_group(data, spec, notes, *, min_per_group, **opts):
    """Kruskal–Wallis (default) or Welch ANOVA on the detected ΔCq; every group needs ≥ min_detected."""
    col = spec["column"]
    present = sorted(v for v in data[col].unique() if v != "")
    levels = spec["levels"] or present
    counts = {lvl: _count_units(data, data[col] == lvl) for lvl in levels}
    used = [lvl for lvl in levels if counts[lvl] >= min_per_group]
    dropped = [f"{lvl} ({counts[lvl]})" for lvl in levels if counts[lvl] < min_per_group]
    if dropped:
        notes.append(f"{spec['name']}: groups with < {min_per_group} dropped: {', '.join(dropped)}")
    if len(used) < 2:
        notes.append(f"{spec['name']}: skipped — fewer than two groups with ≥ {min_per_group}")
        return _empty(EXTRA_MULTI)
    rows = []
    min_det = opts["min_detected"]
    for (strategy, gene), sub in data.groupby(["strategy", "gene"], sort=True):
        parts = [sub[sub[col] == lvl] for lvl in used]
        levels_det = [p.loc[p["on"].astype(bool), "dcq"].to_numpy(float) for p in parts]
        k = [v.size for v in levels_det]
        row = {
            "gene": gene,
            "strategy": strategy,
            "comparison": spec["name"],
            "level_a": ";".join(used),
            "level_b": "",
            "n_a": sum(len(p) for p in parts),
            "n_b": math.nan,
            "mean_a": math.nan,
            "mean_b": math.nan,
            "log2fc": math.nan,
            "ci_low": math.nan,
            "ci_high": math.nan,
            "statistic": math.nan,
            "p": math.nan,
            "test": "none",
            "detected_a": int(sum(k)),
            "detected_b": math.nan,
            "groups": ";".join(
                f"{lvl}:n={len(p)},detected={kk},mean={v.mean() if kk else math.nan:.4g}"
                for lvl, p, kk, v in zip(used, parts, k, levels_det, strict=True)
            ),
            "reason": "",
        }
        if min(k) < min_det:
            short = [
                f"{lvl} {kk} of {len(p)}" for lvl, p, kk in zip(used, parts, k, strict=True) if kk < min_det
            ]
            row["reason"] = (
                "not detected in any sample"
                if sum(k) == 0
                else f"fewer than {min_det} detected: " + ", ".join(short)
            )
            rows.append(row)
            continue
        kw = stats.kruskal_wallis(levels_det)
        wa = stats.welch_anova(levels_det)
        av = stats.anova_oneway_classic(levels_det)
        test = {"auto": "kruskal"}.get(spec["test"], spec["test"])
        res = wa if test == "welch_anova" else kw
        row.update(
            {
                "statistic": res.statistic,
                "p": res.p,
                "test": test,
                "p_anova": av.p,
                "p_welch_anova": wa.p,
                "p_kruskal": kw.p,
            }
        )
        rows.append(row)
    return _finish(rows, EXTRA_MULTI, ["strategy"])


_RUNNERS = {
    "two_group": _two_group,
    "per_site": _per_site,
    "multi_group": _multi_group,
    "timepoints": _timepoints,
}


def _extra_for(kind: str) -> list[str]:
    return {"multi_group": EXTRA_MULTI, "timepoints": EXTRA_TIME}.get(kind, EXTRA_TWO_GROUP)


# --------------------------------------------------------------------------------------------
# Public entry points


def run_comparison(
    normalised: pd.DataFrame | _Rows,
    samples: pd.DataFrame,
    spec: dict,
    options: DifferentialOptions | None = None,
    *,
    alpha: float = 0.05,
    lmm_engine: str = "profile",
    nondetect_fisher_threshold: float | None = None,
    **words: Any,
) -> tuple[pd.DataFrame, list[str]]:
    """Run one comparison spec on a normalised table (one or several strategies).

    Returns ``(table, notes)``: ``table`` has :data:`COLUMNS` first, then the
    type's extra columns; BH q-values are computed within each strategy (and
    site). ``notes`` lists every skipped comparison/gene/site and why.
    ``options``: the ``differential:`` settings (:func:`differential_options`; None = the
    schema's defaults), or their words as keywords (checked the same way, over ``options``):
    ``min_per_group``; ``min_detected`` (levels — fold changes, CIs, level tests, mixed
    model — need this many detected units in every group / time point; else the row's
    ``reason`` says why); ``trim`` (Yuen test, ``test: yuen``); ``off_z`` (robust z above
    which a detected ΔCq is "off", :func:`call_on`; None/0 = no calls);
    ``min_site_patients`` (per_site needs this many patients with and without a site).
    ``alpha`` only sets the reported count of significant genes in the notes.
    ``nondetect_fisher_threshold``: no longer used (accepted for old configs).
    ``lmm_engine``: "profile" (fast closed-form REML) or "statsmodels" (MixedLM).
    """
    o = with_words(options, differential_options, _no_calls_as_zero(words))
    spec = validate_spec(spec)
    notes: list[str] = []
    data = _prepare(normalised, samples, spec, notes, o.off_z or None)
    if data.empty:
        notes.append(f"{spec['name']}: skipped — no samples left after the filter {spec['filter']}")
        return _empty(_extra_for(spec["type"])), notes
    table = _RUNNERS[spec["type"]](
        data,
        spec,
        notes,
        min_per_group=o.min_per_group,
        min_detected=o.min_detected,
        trim=o.trim,
        min_site_patients=o.min_site_patients,
        lmm_engine=lmm_engine,
    )
    if len(table):
        n_sig = int((table["q"] < alpha).sum())
        notes.append(f"{spec['name']}: {len(table)} tests, {n_sig} with q < {alpha}")
    return table, notes


def _no_calls_as_zero(words: dict[str, Any]) -> dict[str, Any]:
    """``off_z=None`` (a library caller's "no off calls") is the config's 0."""
    return {**words, "off_z": 0.0} if "off_z" in words and words["off_z"] is None else words


def run_differential(
    normalised_by_strategy: Mapping[str, pd.DataFrame],
    samples: pd.DataFrame,
    comparisons: list[dict] | tuple[dict, ...],
    default_strategy: str,
    options: DifferentialOptions | None = None,
    *,
    workers: int = 1,
    **params: Any,
) -> dict[str, tuple[pd.DataFrame, list[str]]]:
    """Every comparison on every strategy; default strategy rows first, then the
    others in name order, genes sorted within each (and sites, for per_site).
    ``normalised_by_strategy``: any mapping strategy -> normalised table; each table is taken
    once (a mapping that reads on access keeps one strategy in memory at a time per worker).
    ``workers`` > 1: the strategies are run by that many forked processes (each its own strategies,
    independent of the others: the same tables and notes as one process; issue 17).
    ``options`` and ``params``: as in :func:`run_comparison`."""
    present = list(normalised_by_strategy)  # the keys only: a mapping that reads on access reads nothing here
    order = [default_strategy] + sorted(s for s in present if s != default_strategy)
    order = [s for s in order if s in present]
    names = [c.get("name") for c in comparisons]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"comparison names must be unique: {', '.join(map(str, dupes))}")
    job = (run_comparison, normalised_by_strategy, samples, comparisons, options, params)
    per_strategy = each_strategy(job, order, workers)
    out = {}
    for i, spec in enumerate(comparisons):
        tables = [results[i][0] for results in per_strategy]
        notes = [note for results in per_strategy for note in results[i][1]]
        nonempty = [t for t in tables if len(t)]
        out[spec["name"]] = (pd.concat(nonempty, ignore_index=True) if nonempty else tables[0], notes)
    return out


run_all = run_differential  # the name before issue 14 (rule, script and function now share one)
