"""The well audit: every well read, and its fate.

``fate`` is ``kept`` (its value, or its non-detection, enters the cells table)
or ``excluded`` with a ``reason``. Reasons come from reading (empty well, name
not in the sheets), from the well state (EXPFAIL: failed call, quality below
the export's threshold, invalid Cq) and from preprocessing (ValidPrime HIGHDNA,
HIGHSD, ND; replicate outliers). Non-detected wells (NOAMP, LOWSIGNAL) are kept:
they are what makes a cell "not detected". Counts always reconcile:
``read = kept + excluded`` per plate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Preprocessing flags that remove a well's value from the cells table.
EXCLUDING_FLAGS = frozenset(
    {"HIGHDNA", "HIGHSD", "VPA_EXPFAIL", "VPA_MISSING", "VP_NO_GDNA_REF", "GRUBBS_OUTLIER", "ND"}
)

AUDIT_COLUMNS = [
    "batch",
    "plate",
    "well",
    "line",
    "sample",
    "assay",
    "cq",
    "state",
    "state_reason",
    "fate",
    "reason",
    "flags",
]


def _joined_flags(wf: pd.DataFrame) -> pd.Series:
    """Per (plate, well): its distinct flags, sorted and ``;``-joined (one grouped
    string sum in Cython, not a Python function per well)."""
    flags = wf[["plate", "well", "flag"]].drop_duplicates().sort_values(["plate", "well", "flag"])
    joined = (";" + flags["flag"]).groupby([flags["plate"], flags["well"]], sort=True).sum()
    return joined.str[1:] if len(joined) else joined.astype(object)


class _WellRows:
    """Row positions of (plate, well) keys in a table (its plates and wells factorised once).

    :meth:`lookup` gives, for each row of the table, the value a Series indexed by
    (plate, well) holds for it (NaN where none): what a left join on the two text
    columns gives, with integer keys instead of a MultiIndex of text.
    """

    def __init__(self, table: pd.DataFrame):
        plate_codes, self.plates = pd.factorize(table["plate"])
        well_codes, self.wells = pd.factorize(table["well"])
        self.n_wells = max(len(self.wells), 1)
        self.keys = plate_codes.astype(np.int64) * self.n_wells + well_codes

    def lookup(self, values: pd.Series) -> np.ndarray:
        out = np.full(len(self.keys), np.nan, dtype=object)
        if not len(values):
            return out
        plate = pd.Index(self.plates).get_indexer(values.index.get_level_values(0))
        well = pd.Index(self.wells).get_indexer(values.index.get_level_values(1))
        known = (plate >= 0) & (well >= 0)
        index = pd.Index(plate[known].astype(np.int64) * self.n_wells + well[known])
        at = index.get_indexer(self.keys)
        hit = at >= 0
        out[hit] = values.to_numpy(dtype=object)[known][at[hit]]
        return out


def build_audit(wells: pd.DataFrame, well_flags: pd.DataFrame | None = None) -> pd.DataFrame:
    """Return the audit rows for ``wells`` (one per well, same count).

    ``well_flags`` has columns ``plate, well, flag`` and optionally ``reason``
    and ``excluded`` (bool; default: the flag is in :data:`EXCLUDING_FLAGS`).
    Excluding flags set the fate and reason; the others are listed in ``flags``.
    Flags that only restate the well state (EXPFAIL, NOAMP, LOWSIGNAL) are not
    repeated.
    """
    audit = wells.reindex(columns=[c for c in AUDIT_COLUMNS if c in wells.columns] + ["excluded"], copy=True)
    audit["excluded"] = audit["excluded"].fillna("")
    audit["reason"] = audit["excluded"]
    failed = (audit["reason"] == "") & (audit["state"] == "EXPFAIL")
    audit.loc[failed, "reason"] = "EXPFAIL:" + audit.loc[failed, "state_reason"].astype(str)
    audit["flags"] = ""
    if well_flags is not None and len(well_flags):
        wf = well_flags[~well_flags["flag"].isin(["EXPFAIL", "NOAMP", "LOWSIGNAL"])].copy()
        if "excluded" not in wf.columns:
            wf["excluded"] = wf["flag"].isin(EXCLUDING_FLAGS)
        wf["excluded"] = wf["excluded"].astype(bool)
        if "reason" in wf.columns:
            reason = wf["reason"].fillna("").astype(str)
            wf["flag"] = wf["flag"] + (" (" + reason + ")").where(reason != "", "")
        rows = _WellRows(audit)
        exclusions = rows.lookup(_joined_flags(wf[wf["excluded"]]))
        use = ((audit["reason"] == "").to_numpy()) & pd.notna(exclusions)
        audit.loc[use, "reason"] = exclusions[use]
        flags = rows.lookup(_joined_flags(wf[~wf["excluded"]]))
        audit["flags"] = np.where(pd.notna(flags), flags, "").astype(object)
    audit["fate"] = (audit["reason"] == "").map({True: "kept", False: "excluded"})
    return audit[[c for c in AUDIT_COLUMNS if c in audit.columns]]


def summarise_audit(audit: pd.DataFrame) -> pd.DataFrame:
    """Per plate: wells read, kept, excluded, and excluded by reason (reconciles by construction, checked).

    The reason's leading word (``HIGHDNA`` of ``HIGHDNA (grade F, …)``, ``other``
    when it has none) is read once per distinct reason; the counts are one grouping.
    Columns ``excluded_<reason>``: each plate's reasons in sorted order, a reason's
    column first where a plate first has it (plates in batch, plate order).
    """
    if not len(audit):
        return pd.DataFrame()
    keys = ["batch", "plate"]
    kept = (audit["fate"] == "kept").to_numpy()
    excluded = (audit["fate"] == "excluded").to_numpy()
    frame = audit[keys].assign(
        read=1,
        kept=kept.astype(np.int64),
        excluded=excluded.astype(np.int64),
        non_detected=(kept & audit["state"].isin(["NOAMP", "LOWSIGNAL"]).to_numpy()).astype(np.int64),
    )
    out = frame.groupby(keys, sort=True).sum().reset_index()
    bad = out["plate"][out["kept"] + out["excluded"] != out["read"]]
    if len(bad):
        raise AssertionError(f"well audit does not reconcile for plate {bad.iloc[0]}")
    gone = audit.loc[excluded, [*keys, "reason"]]
    codes, uniques = pd.factorize(gone["reason"])
    word = pd.Series(uniques, dtype=object).str.extract(r"^([A-Za-z_*]+)", expand=False).fillna("other")
    gone = gone[keys].assign(word=word.to_numpy(dtype=object)[codes] if len(gone) else [])
    counts = gone.groupby([*keys, "word"], sort=True).size()
    if not len(counts):
        return out
    # sorted by plate then reason: each reason where a plate first has it
    columns = list(dict.fromkeys(counts.index.get_level_values("word")))
    wide = counts.unstack("word", fill_value=0).reindex(pd.MultiIndex.from_frame(out[keys]), fill_value=0)
    for word in columns:
        out[f"excluded_{word}"] = wide[word].to_numpy(dtype=int)
    return out
