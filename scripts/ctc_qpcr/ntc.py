"""No-template controls (NTC) that amplify: a flag on the plate and the assay (docs/methods.md §3.3).

An NTC well is a well whose sample has ``kind`` ``ntc`` in samples.tsv, or whose
export marks it as a no-template control (``sample_type`` NTC: QuantStudio
``Task``, CFX ``Content``, RDML ``ntc``). It *amplifies* when its Cq is at most
``max_cq`` (default: the LOD of the batch) and its curve did not fail (state not
EXPFAIL). Per plate and assay the table gives the NTC wells, how many amplified,
the lowest NTC Cq and the median Cq of the other samples' wells, and a flag:

* ``ok`` — no NTC well amplified;
* ``ntc_amplified`` — an NTC amplified, at least ``min_delta_cq`` cycles after
  the samples' median (the samples' signal is well above the background);
* ``ntc_close_to_samples`` — an NTC amplified less than ``min_delta_cq`` cycles
  after the samples' median (or before it): the samples' signal of that assay on
  that plate may be contamination. Default 3.32 cycles = log2(10), a tenfold
  excess, the margin of the NTC censoring rule in the method reference.

Nothing is removed here: the flags are for the person who reads the QC tables
(``detection.ntc_margin`` is the rule that changes detection calls).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

NTC_COLUMNS = [
    "batch",
    "plate",
    "assay",
    "ntc_wells",
    "ntc_amplified",
    "ntc_min_cq",
    "samples_median_cq",
    "delta_cq",
    "max_cq",
    "flag",
    "plate_flag",
]


# The wells-table columns ntc_table reads (results/cq/<plate>.parquet has more).
WELL_COLUMNS = ["batch", "plate", "well", "sample", "assay", "cq", "sample_type", "excluded", "state"]


def ntc_names(samples: pd.DataFrame) -> set[str]:
    """The samples of kind ntc in samples.tsv."""
    return set(samples.loc[samples["kind"].astype(str).str.lower() == "ntc", "sample"].astype(str))


def ntc_wells(wells: pd.DataFrame, samples: pd.DataFrame) -> pd.Series:
    """True for the wells of no-template controls (samples.tsv kind ntc, or the export's NTC type)."""
    return wells["sample"].isin(ntc_names(samples)) | _says_ntc(wells["sample_type"])


def _says_ntc(sample_type: pd.Series) -> pd.Series:
    """``sample_type.astype(str).str.upper() == "NTC"``, each distinct value tested once (a
    study's 9 M wells have a few sample types; missing values are not NTC)."""
    codes, distinct = pd.factorize(sample_type)
    ntc = np.append(pd.Series(distinct, dtype=object).astype(str).str.upper().eq("NTC").to_numpy(), False)
    return pd.Series(ntc[codes], index=sample_type.index)


def ntc_table(wells: pd.DataFrame, samples: pd.DataFrame, max_cq: dict, min_delta_cq: float) -> pd.DataFrame:
    """One row per batch, plate and assay holding NTC wells; ``max_cq`` maps batch → Cq limit."""
    kept = wells[(wells["excluded"] == "") & (wells["assay"] != "")]
    marked = pd.DataFrame(
        {
            "batch": kept["batch"],
            "plate": kept["plate"],
            "assay": kept["assay"],
            "cq": kept["cq"],
            "is_ntc": ntc_wells(kept, samples),
            "usable": kept["cq"].notna() & kept["state"].ne("EXPFAIL"),
            "limit": kept["batch"].map(max_cq).astype(float),
        }
    )
    return marked_ntc_table(marked, min_delta_cq)


def marked_ntc_table(kept: pd.DataFrame, min_delta_cq: float) -> pd.DataFrame:
    """:func:`ntc_table` of the kept wells (not excluded, with an assay), each marked:
    ``batch, plate, assay, cq, is_ntc, usable`` (a Cq and a curve that did not fail), ``limit``."""
    kept = kept.assign(amplified=kept["is_ntc"] & kept["usable"] & (kept["cq"] <= kept["limit"]))
    keys = ["batch", "plate", "assay"]
    ntc = kept[kept["is_ntc"]]
    if ntc.empty:
        return pd.DataFrame(columns=NTC_COLUMNS)
    table = ntc.groupby(keys, sort=True).agg(
        ntc_wells=("is_ntc", "size"),
        ntc_amplified=("amplified", "sum"),
        max_cq=("limit", "first"),
    )
    amplified_cq = ntc[ntc["amplified"]].groupby(keys, sort=True)["cq"].min().rename("ntc_min_cq")
    others = kept[~kept["is_ntc"] & kept["usable"]]
    samples_cq = others.groupby(keys, sort=True)["cq"].median().rename("samples_median_cq")
    table = table.join(amplified_cq).join(samples_cq).reset_index()
    table["delta_cq"] = table["ntc_min_cq"] - table["samples_median_cq"]
    close = table["ntc_amplified"].gt(0) & ~(table["delta_cq"] >= min_delta_cq)
    table["flag"] = np.select(
        [close, table["ntc_amplified"].gt(0)],
        ["ntc_close_to_samples", "ntc_amplified"],
        "ok",
    )
    worst = table.assign(rank=table["flag"].map({"ok": 0, "ntc_amplified": 1, "ntc_close_to_samples": 2}))
    plate_rank = worst.groupby(["batch", "plate"])["rank"].transform("max")
    table["plate_flag"] = plate_rank.map({0: "ok", 1: "ntc_amplified", 2: "ntc_close_to_samples"})
    table["ntc_amplified"] = table["ntc_amplified"].astype(int)
    return table[NTC_COLUMNS]


PLATES_AT_ONCE = 24  # plate files read together: fewer, larger table operations, memory still bounded


def _by_text(column: pa.ChunkedArray, rule) -> np.ndarray:
    """``rule`` (of a pandas Series) of each row of a text column read as a dictionary (one
    dictionary for all chunks), applied to the distinct texts and None (a missing text) only."""
    if not pa.types.is_dictionary(column.type) or not column.num_chunks:
        return np.asarray(rule(column.to_pandas()))
    words = column.chunk(0).dictionary.to_numpy(zero_copy_only=False).astype(object)
    ruled = np.asarray(rule(pd.Series(np.append(words, None))))
    return ruled[pc.fill_null(pa.chunked_array([c.indices for c in column.chunks]), -1).to_numpy()]


def _text(values: pd.Series) -> np.ndarray:
    return values.to_numpy(dtype=object)


def _kept(path) -> pa.Table:
    """A plate file's wells not excluded and with an assay (``excluded`` "", ``assay`` not "":
    a missing assay is kept, as pandas compares), text read as dictionaries."""
    text = ["batch", "plate", "sample", "assay", "sample_type", "excluded", "state"]
    wells = pq.ParquetFile(path, read_dictionary=text).read(columns=WELL_COLUMNS)
    return wells.filter(
        pc.and_(
            pc.fill_null(pc.equal(wells["excluded"], ""), False),
            pc.fill_null(pc.not_equal(wells["assay"], ""), True),
        )
    )


def marked_wells(paths, names: set[str], max_cq: dict) -> pd.DataFrame:
    """The kept wells of some plate files marked as :func:`ntc_table` marks them, the marks
    made in Arrow once per distinct text, so pandas gets only the keys as text (``names``:
    :func:`ntc_names`)."""
    wells = pa.concat_tables([_kept(p) for p in paths], promote_options="permissive").unify_dictionaries()
    cq = wells["cq"].to_pandas()
    is_ntc = _by_text(wells["sample"], lambda w: w.isin(names)) | _by_text(wells["sample_type"], _says_ntc)
    return pd.DataFrame(
        {
            "batch": _by_text(wells["batch"], _text),
            "plate": _by_text(wells["plate"], _text),
            "assay": _by_text(wells["assay"], _text),
            "cq": cq,
            "is_ntc": is_ntc,
            "usable": cq.notna().to_numpy() & _by_text(wells["state"], lambda w: w.ne("EXPFAIL")),
            "limit": _by_text(wells["batch"], lambda w: w.map(max_cq).astype(float)),
        }
    )


def study_ntc_table(paths, samples: pd.DataFrame, max_cq: dict, min_delta_cq: float) -> pd.DataFrame:
    """:func:`ntc_table` of the wells of all plate files (results/cq/<plate>.parquet), made a few
    files at a time: its rows are per plate, so memory stays bounded by a few plates."""
    tables, names = [], ntc_names(samples)
    for start in range(0, len(paths), PLATES_AT_ONCE):
        marked = marked_wells(paths[start : start + PLATES_AT_ONCE], names, max_cq)
        tables.append(marked_ntc_table(marked, min_delta_cq))
    tables = [t for t in tables if not t.empty]
    if not tables:
        return pd.DataFrame(columns=NTC_COLUMNS)
    return pd.concat(tables, ignore_index=True).sort_values(
        ["batch", "plate", "assay"], kind="stable", ignore_index=True
    )


_CSS = (
    "body{font-family:sans-serif;font-size:13px;margin:1em}table{border-collapse:collapse;margin-bottom:1.5em}"
    "th,td{border:1px solid #ccc;padding:3px 6px;text-align:left}th{background:#eef}h2{font-size:15px}"
)


def plate_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per batch and plate: assays with NTC wells, how many amplified or close to the samples, the verdict."""
    keys = ["batch", "plate"]
    if table.empty:
        return pd.DataFrame(columns=[*keys, "assays", "ntc_amplified", "ntc_close_to_samples", "plate_flag"])
    flags = table.assign(
        amplified=table["flag"].eq("ntc_amplified"), close=table["flag"].eq("ntc_close_to_samples")
    )
    out = flags.groupby(keys, sort=True).agg(
        assays=("assay", "size"),
        ntc_amplified=("amplified", "sum"),
        ntc_close_to_samples=("close", "sum"),
        plate_flag=("plate_flag", "first"),
    )
    return out.reset_index()


def ntc_html(table: pd.DataFrame, max_cq: str, min_delta_cq: float) -> str:
    """The report page of results/qc/ntc.tsv: the verdict per plate, then the flagged assays.

    ``max_cq`` is the amplification limit as the config words it (e.g. "the LOD, 35").
    """
    rule = (
        f"An NTC well amplified when its Cq ≤ {max_cq} and its curve did not fail; "
        f"<b>ntc_close_to_samples</b> when its Cq is less than {min_delta_cq:g} cycles after the samples' "
        "median Cq of that assay on that plate (docs/methods.md §3.3). Nothing is removed: "
        "<code>detection.ntc_margin</code> is the rule that changes detection calls."
    )
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><style>{_CSS}</style></head><body>",
        "<h1>No-template controls</h1>",
        f"<p>{rule}</p>",
    ]
    if table.empty:
        parts.append(
            "<p>No NTC wells on any plate (samples.tsv kind <code>ntc</code>, or NTC in the export).</p>"
        )
    else:
        parts.append("<h2>Per plate</h2>")
        parts.append(plate_summary(table).to_html(index=False, escape=True, border=0))
        flagged = table[table["flag"] != "ok"]
        parts.append(f"<h2>Flagged plate × assay ({len(flagged)} of {len(table)})</h2>")
        if flagged.empty:
            parts.append("<p>No NTC well amplified.</p>")
        else:
            parts.append(
                flagged.to_html(
                    index=False, escape=True, border=0, float_format=lambda v: f"{v:.2f}", na_rep=""
                )
            )
    parts.append("<p>Full table: results/qc/ntc.tsv</p></body></html>\n")
    return "\n".join(parts)
