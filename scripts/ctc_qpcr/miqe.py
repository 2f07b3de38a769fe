"""MIQE 2.0 summary of a finished study: what was measured, how, and with which software.

Reads the tables the workflow has already written (nothing is recomputed except
the standard-curve regressions) and writes

* ``results/qc/miqe_assays.tsv`` — one row per assay: amplification efficiency
  from a dilution series (slope, its 95 % CI, r², E = 10^(−1/slope) with CI),
  the LOD used and the detection rate in patient and healthy-donor samples;
* ``results/qc/miqe.tsv`` — the checklist: section, item, status
  (``provided``, ``flagged`` — provided, with a QC flag to read — or
  ``not applicable``), value, source table;
* ``results/qc/miqe.html`` — both as one page for the report.

Efficiency (docs/methods.md §3.4): Cq of the kept, detected wells against
log10(input quantity) per assay, ordinary least squares over every well. The
series is the samples of kind ``standard`` with a quantity; when an assay has
none, the ValidPrime gDNA dilution series (kind ``gdna`` with a quantity), which
holds every gene. slope CI = slope ± t(0.975, n − 2)·SE; E is monotone in the
slope, so its CI is E at the two slope bounds. At least 3 distinct quantities
are needed, otherwise the assay's E comes from the assays sheet (no CI).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from scipy import stats

from .tables import is_text

SERIES = ("standard", "gdna")
PROVIDED, NOT_APPLICABLE, FLAGGED = "provided", "not applicable", "flagged"


def read_parquet_text(paths, columns: list[str], keep=None) -> pd.DataFrame:
    """``pd.concat([pd.read_parquet(p, columns=columns) for p in paths], ignore_index=True)``
    with the text columns read as Arrow dictionaries, so each distinct text of a file becomes
    one Python string, not one per row (missing text: None, as ``read_parquet`` gives it).
    ``keep``: a function of a file's Arrow table giving the rows to keep, applied before pandas."""
    tables, text = [], set()
    for path in paths:
        schema = pq.read_schema(path)
        words = [c for c in columns if is_text(schema.field(c).type)]
        table = pq.read_table(path, columns=columns, read_dictionary=words or None)
        tables.append(table if keep is None else table.filter(keep(table)))
        text.update(words)
    table = pa.concat_tables(tables, promote_options="permissive")
    coded = [c for c in table.column_names if c in text and pa.types.is_dictionary(table[c].type)]
    rest = table.drop_columns(coded).to_pandas()
    return pd.DataFrame(
        {c: _dictionary_text(table[c]) if c in coded else rest[c] for c in table.column_names},
        index=rest.index,
        copy=False,  # each column its own block: no copy of the text into one 2-D block
    )


def _dictionary_text(column: pa.ChunkedArray) -> np.ndarray:
    """A dictionary column as an object array of text, None where missing (each chunk's
    words made Python strings once)."""
    parts = []
    for chunk in column.chunks:
        words = np.append(chunk.dictionary.to_numpy(zero_copy_only=False).astype(object), None)
        parts.append(words[chunk.indices.fill_null(-1).to_numpy()])
    return np.concatenate(parts) if parts else np.empty(0, dtype=object)


def _series_sheet(samples: pd.DataFrame) -> pd.DataFrame:
    """The samples of a dilution series (kind standard or gdna, quantity > 0)."""
    sheet = samples[["sample", "kind", "quantity"]].copy()
    sheet["quantity"] = pd.to_numeric(sheet["quantity"], errors="coerce")
    return sheet[sheet["kind"].isin(SERIES) & (sheet["quantity"] > 0)]


def series_wells(paths, samples: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The rows of the wells tables (``paths``, parquet) that :func:`standard_curves` uses,
    in table order: kept, CALC, of a dilution-series sample. Chosen in Arrow a batch at a
    time, so pandas never holds the study's wells (9 M at 1,000 chips)."""
    names = _series_sheet(samples)["sample"].tolist()

    def used(wells: pa.Table) -> pa.ChunkedArray:
        chosen = pc.and_(
            pc.fill_null(pc.equal(wells["fate"], "kept"), False),
            pc.fill_null(pc.equal(wells["state"], "CALC"), False),
        )
        if all(isinstance(name, str) for name in names):  # else: as pandas merges them
            chosen = pc.and_(chosen, pc.is_in(wells["sample"], value_set=pa.array(names, pa.string())))
        return chosen

    return read_parquet_text(paths, columns, keep=used)


def standard_curves(wells: pd.DataFrame, samples: pd.DataFrame) -> pd.DataFrame:
    """Per assay OLS of Cq on log10(quantity) from the first series kind present.

    ``wells``: the Wells table (plate, sample, assay, cq, state, fate);
    ``samples``: the samples sheet (sample, kind, quantity).
    """
    sheet = _series_sheet(samples)
    data = wells.loc[wells["fate"].eq("kept") & wells["state"].eq("CALC"), ["sample", "assay", "cq"]]
    data = data.merge(sheet, on="sample", how="inner").dropna(subset=["cq"])
    columns = [
        "assay",
        "series",
        "n_points",
        "n_quantities",
        "slope",
        "slope_ci_low",
        "slope_ci_high",
        "intercept",
        "r2",
        "E",
        "E_ci_low",
        "E_ci_high",
    ]
    if data.empty:
        return pd.DataFrame(columns=columns)
    # The preferred series per assay: standards before the gDNA series.
    data["rank"] = data["kind"].map({k: i for i, k in enumerate(SERIES)})
    data = data[data["rank"].eq(data.groupby("assay")["rank"].transform("min"))]
    data["x"] = np.log10(data["quantity"])
    g = data.assign(xx=data["x"] ** 2, xy=data["x"] * data["cq"], yy=data["cq"] ** 2).groupby("assay")
    s = g.agg(
        series=("kind", "first"),
        n=("x", "size"),
        k=("quantity", "nunique"),
        sx=("x", "sum"),
        sy=("cq", "sum"),
        sxx=("xx", "sum"),
        sxy=("xy", "sum"),
        syy=("yy", "sum"),
    )
    s = s[s["k"] >= 3]
    sxx = s["sxx"] - s["sx"] ** 2 / s["n"]
    sxy = s["sxy"] - s["sx"] * s["sy"] / s["n"]
    syy = s["syy"] - s["sy"] ** 2 / s["n"]
    slope = sxy / sxx
    rss = (syy - slope * sxy).clip(lower=0)
    se = np.sqrt(rss / (s["n"] - 2) / sxx)
    half = stats.t.ppf(0.975, s["n"] - 2) * se
    out = pd.DataFrame(
        {
            "assay": s.index,
            "series": s["series"].to_numpy(),
            "n_points": s["n"].to_numpy(),
            "n_quantities": s["k"].to_numpy(),
            "slope": slope.to_numpy(),
            "slope_ci_low": (slope - half).to_numpy(),
            "slope_ci_high": (slope + half).to_numpy(),
            "intercept": ((s["sy"] - slope * s["sx"]) / s["n"]).to_numpy(),
            "r2": np.where(syy > 0, 1 - rss / syy, np.nan),
        }
    )
    out["E"] = 10 ** (-1 / out["slope"])
    bounds = np.sort(np.vstack([10 ** (-1 / out["slope_ci_low"]), 10 ** (-1 / out["slope_ci_high"])]), axis=0)
    # A CI reaching a non-negative slope has no upper bound for E.
    out["E_ci_low"], out["E_ci_high"] = bounds[0], np.where(out["slope_ci_high"] < 0, bounds[1], np.inf)
    return out[columns].reset_index(drop=True)


def assay_table(assays: pd.DataFrame, curves: pd.DataFrame, cells: pd.DataFrame, lod: float) -> pd.DataFrame:
    """miqe_assays.tsv: efficiency (series or sheet), LOD used, detection rate."""
    table = assays[["assay", "gene", "role"]].copy()
    table["efficiency_sheet"] = pd.to_numeric(assays.get("efficiency"), errors="coerce")
    table["lod_used"] = pd.to_numeric(assays.get("lod"), errors="coerce").fillna(lod)
    table = table.merge(curves, on="assay", how="left")
    table["efficiency_source"] = np.where(
        table["slope"].notna(),
        table["series"].fillna("") + " series",
        np.where(table["efficiency_sheet"].notna(), "assays sheet", "none"),
    )
    table["efficiency_pct"] = 100 * (table["E"].fillna(table["efficiency_sheet"]) - 1)
    clinical = cells.loc[cells["kind"].isin(["patient", "healthy"]), ["assay", "detected"]]
    rate = clinical.groupby("assay")["detected"].agg(n_samples="size", n_detected="sum")
    table = table.merge(rate, left_on="assay", right_index=True, how="left")
    table[["n_samples", "n_detected"]] = table[["n_samples", "n_detected"]].fillna(0).astype(int)
    table["detection_rate"] = table["n_detected"] / table["n_samples"].replace(0, np.nan)
    return table.drop(columns=["series"]).sort_values("assay", kind="stable").reset_index(drop=True)


def _row(section, item, value, source, applicable=True):
    return {
        "section": section,
        "item": item,
        "status": PROVIDED if applicable else NOT_APPLICABLE,
        "value": value if applicable else "",
        "source": source,
    }


def _fmt(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}g}" if pd.notna(x) else "NA"


def _assay_rows(
    per_assay: pd.DataFrame, cells: pd.DataFrame, lod: float, ntc_table: pd.DataFrame | None = None
) -> list[dict]:
    section, src = "Assay validation", "results/qc/miqe_assays.tsv"
    curve = per_assay[per_assay["slope"].notna()]
    sheet = per_assay[per_assay["slope"].isna() & per_assay["efficiency_sheet"].notna()]
    eff = (
        f"{len(curve)} of {len(per_assay)} assays from a dilution series "
        f"({', '.join(sorted(set(curve['efficiency_source'])))}): median E {_fmt(curve['E'].median(), 4)} "
        f"(range {_fmt(curve['E'].min(), 4)}–{_fmt(curve['E'].max(), 4)}), "
        f"median r² {_fmt(curve['r2'].median(), 4)}"
        if len(curve)
        else "no dilution series"
    )
    eff += f"; {len(sheet)} from the assays sheet (no CI)" if len(sheet) else ""
    ntc = cells[cells["kind"].eq("ntc")]
    rate = per_assay["detection_rate"].dropna()
    own = per_assay["lod_used"].ne(lod).sum()
    return [
        _row(
            section,
            "Amplification efficiency: slope, r², E with 95 % CI",
            eff,
            src,
            len(curve) + len(sheet) > 0,
        ),
        _row(
            section,
            "Limit of detection (Cq) used",
            f"{lod:g} for every assay" + (f" except {own} with their own LOD" if own else ""),
            src,
        ),
        _row(
            section,
            "Detection rate per assay (patients and healthy donors)",
            f"median {_fmt(100 * rate.median())} % "
            f"(range {_fmt(100 * rate.min())}–{_fmt(100 * rate.max())} %)",
            src,
            len(rate) > 0,
        ),
        _ntc_row(section, ntc, ntc_table),
    ]


def _ntc_row(section: str, ntc_cells: pd.DataFrame, table: pd.DataFrame | None) -> dict:
    """The NTC verdict: from results/qc/ntc.tsv (flagged when an NTC amplified), else the NTC cells."""
    item = "No-template controls"
    if table is None:
        value = f"{len(ntc_cells)} NTC cells, {int(ntc_cells['detected'].sum())} detected"
        return _row(section, item, value, "results/preprocessed/cq.tsv", len(ntc_cells) > 0)
    source = "results/qc/ntc.tsv"
    if table.empty:
        return _row(section, item, "", source, applicable=False)
    counts = table["flag"].value_counts()
    flagged = table[table["flag"] != "ok"]
    value = f"{len(table)} plate × assay with NTC wells on {table['plate'].nunique()} plate(s): " + ", ".join(
        f"{counts.get(f, 0)} {f}" for f in ("ok", "ntc_amplified", "ntc_close_to_samples")
    )
    if len(flagged):
        shown = [f"{p}/{a} ({f})" for p, a, f in flagged[["plate", "assay", "flag"]].head(8).to_numpy()]
        value += " — " + ", ".join(shown) + (" …" if len(flagged) > 8 else "")
    row = _row(section, item, value, source)
    row["status"] = FLAGGED if len(flagged) else PROVIDED
    return row


def _reference_rows(genorm, genorm_v, normfinder, chosen, v_cutoff: float) -> list[dict]:
    section = "Reference genes"
    rows = []
    if len(genorm):
        last = genorm[genorm["step"].eq(genorm["step"].max())].sort_values("M")
        value = "most stable: " + ", ".join(
            f"{g} (M {_fmt(m)})" for g, m in zip(last["gene"], last["M"], strict=True)
        )
    else:
        value = ""
    rows.append(
        _row(section, "geNorm stability M", value, "results/reference_genes/genorm.tsv", len(genorm) > 0)
    )
    value = (
        "; ".join(f"V{n}/{n + 1} = {_fmt(v)}" for n, v in zip(genorm_v["n"], genorm_v["V"], strict=True))
        + f" (cut-off {v_cutoff:g})"
    )
    rows.append(
        _row(
            section,
            "geNorm pairwise variation V",
            value,
            "results/reference_genes/genorm_v.tsv",
            len(genorm_v) > 0,
        )
    )
    best = normfinder.sort_values("rank").head(3)
    value = ", ".join(f"{g} (ρ {_fmt(s)})" for g, s in zip(best["gene"], best["stability"], strict=True))
    rows.append(
        _row(
            section,
            "NormFinder stability ρ",
            value,
            "results/reference_genes/normfinder.tsv",
            len(normfinder) > 0,
        )
    )
    value = "; ".join(
        f"{s}: {g.replace(';', ', ')} ({r})"
        for s, g, r in zip(
            chosen["strategy"], chosen["genes"].fillna(""), chosen["reason"].fillna(""), strict=True
        )
    )
    rows.append(
        _row(
            section,
            "Normalisers chosen per strategy",
            value,
            "results/reference_genes/chosen.tsv",
            len(chosen) > 0,
        )
    )
    return rows


def _text_counts(values: pd.Series) -> pd.Series:
    """Rows per text of ``values.fillna("").astype(str)``, by text: each distinct value
    converted once (a study's 4.8 M cells have a few dozen flag texts)."""
    counts = values.value_counts(dropna=False)
    text = counts.index.to_series().fillna("").astype(str).to_numpy(dtype=object)
    return pd.Series(counts.to_numpy(), index=text).groupby(level=0).sum().sort_index()


def _data_rows(summary, cells, calibration, validprime, settings: dict) -> list[dict]:
    section = "Data processing"
    reasons = {
        c.removeprefix("excluded_"): int(summary[c].sum())
        for c in summary.columns
        if c.startswith("excluded_")
    }
    wells = (
        f"{int(summary['read'].sum())} wells read on {len(summary)} plates: "
        f"{int(summary['kept'].sum())} kept "
        f"({int(summary['non_detected'].sum())} not detected), {int(summary['excluded'].sum())} excluded"
        + (
            " — " + ", ".join(f"{r} {n}" for r, n in sorted(reasons.items()) if n)
            if any(reasons.values())
            else ""
        )
    )
    reps = cells["n_replicates"].value_counts().sort_index()
    flags = _text_counts(cells["flags"])
    flagged = flags[flags.index.str.contains("replicate_delta>", regex=False)].sum()
    replicates = (
        ", ".join(f"{c} cells with {n} valid replicate(s)" for n, c in reps.items())
        + f"; {flagged} cells with replicate ΔCq > {settings['replicates']['max_delta']:g}"
    )
    ipc_applicable = len(calibration) > 0 and calibration["ipc_mean"].notna().any()
    flagged_plates = calibration["flags"].fillna("").ne("").sum() if ipc_applicable else 0
    ipc = (
        f"{len(calibration)} plates, offsets {_fmt(calibration['offset'].min())} "
        f"to {_fmt(calibration['offset'].max())} cycles; {flagged_plates} flagged "
        f"(IPC SD > {settings['ipc']['max_sd']:g} or |offset| > {settings['ipc']['max_offset']:g})"
        if ipc_applicable
        else ""
    )
    vp_applicable = len(validprime) > 0
    grades = _text_counts(cells["vp_grade"])
    grades = grades[grades.index != ""]
    vp = (
        f"{int(validprime['confidence'].eq('High').sum())} of {len(validprime)} "
        "chip × assay validations High; grades " + ", ".join(f"{g} {n}" for g, n in grades.items())
        if vp_applicable
        else ""
    )
    return [
        _row(
            section,
            "Wells read, kept and excluded by reason",
            wells,
            "results/qc/wells_summary.tsv (full audit: results/qc/wells.tsv)",
        ),
        _row(section, "Technical replicates", replicates, "results/preprocessed/cq.tsv"),
        _row(
            section, "Inter-plate calibration (IPC)", ipc, "results/qc/plate_calibration.tsv", ipc_applicable
        ),
        _row(section, "ValidPrime gDNA correction", vp, "results/qc/validprime_assays.tsv", vp_applicable),
    ]


def _software_rows(record: dict) -> list[dict]:
    section = "Software and data"
    rows = [
        _row(
            section,
            "Workflow version",
            f"{record.get('workflow', 'ctc-qpcr')} {record.get('workflow_version', '')}",
            "results/run_record.json",
        ),
        _row(
            section,
            "Package versions",
            "; ".join(f"{k} {v}" for k, v in sorted(record.get("packages", {}).items())),
            "results/run_record.json",
        ),
        _row(
            section,
            "Raw data and analysed wells (RDML 1.3)",
            "results/rdml/study.rdml",
            "results/rdml/study.rdml",
        ),
    ]
    rows += [
        _row(section, f"SHA-256 of {path}", digest, "results/run_record.json")
        for path, digest in sorted(record.get("inputs", {}).items())
    ]
    return rows


def checklist(per_assay, cells, tables: dict, record: dict, settings: dict) -> pd.DataFrame:
    """miqe.tsv: every item with its status, value and the table it comes from.

    ``tables`` may hold ``ntc`` (results/qc/ntc.tsv) for the no-template-control verdict.
    """
    kinds = cells.drop_duplicates("sample")["kind"].value_counts().sort_index()
    roles = per_assay["role"].value_counts().sort_index()
    rows = [
        _row(
            "Samples and assays",
            "Samples by kind (on the plates)",
            ", ".join(f"{k} {n}" for k, n in kinds.items()),
            "results/preprocessed/cq.tsv",
        ),
        _row(
            "Samples and assays",
            "Assays by role",
            ", ".join(f"{k} {n}" for k, n in roles.items()),
            "assays sheet",
        ),
    ]
    rows += _assay_rows(per_assay, cells, float(settings["lod"]), tables.get("ntc"))
    rows += _reference_rows(
        tables["genorm"],
        tables["genorm_v"],
        tables["normfinder"],
        tables["chosen"],
        float(settings["normalisation"]["v_cutoff"]),
    )
    rows += _data_rows(tables["wells_summary"], cells, tables["calibration"], tables["validprime"], settings)
    rows += _software_rows(record)
    return pd.DataFrame(rows, columns=["section", "item", "status", "value", "source"])


_CSS = (
    "body{font-family:sans-serif;font-size:13px;margin:1em}table{border-collapse:collapse;margin-bottom:1.5em}"
    "th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}th{background:#eef}"
    "h2{font-size:15px;margin-top:1.2em}"
)
ASSAY_COLUMNS = [
    "assay",
    "gene",
    "role",
    "efficiency_source",
    "E",
    "E_ci_low",
    "E_ci_high",
    "slope",
    "r2",
    "n_points",
    "lod_used",
    "detection_rate",
]


def miqe_html(items: pd.DataFrame, per_assay: pd.DataFrame) -> str:
    """One readable page for the report: the checklist by section, then the assay table."""
    shown = items.assign(
        status=items["status"].map(
            {PROVIDED: "✓ provided", FLAGGED: "⚠ flagged", NOT_APPLICABLE: "– not applicable"}
        )
    )
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><style>{_CSS}</style></head><body>",
        "<h1>MIQE 2.0 summary</h1>",
    ]
    for section, rows in shown.groupby("section", sort=False):
        parts.append(f"<h2>{section}</h2>")
        parts.append(rows[["item", "status", "value", "source"]].to_html(index=False, escape=True, border=0))
    parts.append("<h2>Assays: efficiency, LOD, detection (results/qc/miqe_assays.tsv)</h2>")
    table = per_assay[[c for c in ASSAY_COLUMNS if c in per_assay.columns]]
    parts.append(
        table.to_html(index=False, escape=True, border=0, float_format=lambda v: f"{v:.4g}", na_rep="")
    )
    parts.append("</body></html>\n")
    return "\n".join(parts)
