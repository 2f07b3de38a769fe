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


def build_audit(wells: pd.DataFrame, well_flags: pd.DataFrame | None = None) -> pd.DataFrame:
    """Return the audit rows for ``wells`` (one per well, same count).

    ``well_flags`` has columns ``plate, well, flag`` and optionally ``reason``
    and ``excluded`` (bool; default: the flag is in :data:`EXCLUDING_FLAGS`).
    Excluding flags set the fate and reason; the others are listed in ``flags``.
    Flags that only restate the well state (EXPFAIL, NOAMP, LOWSIGNAL) are not
    repeated.
    """
    audit = wells.reindex(columns=[c for c in AUDIT_COLUMNS if c in wells.columns] + ["excluded"]).copy()
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
        exclusions = _joined_flags(wf[wf["excluded"]]).rename("pre_reason")
        flags = _joined_flags(wf[~wf["excluded"]]).rename("pre_flags")
        audit = audit.join(exclusions, on=["plate", "well"]).join(flags, on=["plate", "well"])
        use = (audit["reason"] == "") & audit["pre_reason"].notna()
        audit.loc[use, "reason"] = audit.loc[use, "pre_reason"]
        audit["flags"] = audit["pre_flags"].fillna("")
        audit = audit.drop(columns=["pre_reason", "pre_flags"])
    audit["fate"] = (audit["reason"] == "").map({True: "kept", False: "excluded"})
    return audit[[c for c in AUDIT_COLUMNS if c in audit.columns]]


def summarise_audit(audit: pd.DataFrame) -> pd.DataFrame:
    """Per plate: wells read, kept, excluded, and excluded by reason (reconciles by construction, checked)."""
    rows = []
    for (batch, plate), grp in audit.groupby(["batch", "plate"], sort=True):
        kept = int((grp["fate"] == "kept").sum())
        excluded = int((grp["fate"] == "excluded").sum())
        if kept + excluded != len(grp):
            raise AssertionError(f"well audit does not reconcile for plate {plate}")
        row = {
            "batch": batch,
            "plate": plate,
            "read": len(grp),
            "kept": kept,
            "excluded": excluded,
            "non_detected": int(((grp["fate"] == "kept") & grp["state"].isin(["NOAMP", "LOWSIGNAL"])).sum()),
        }
        reasons = (
            grp.loc[grp["fate"] == "excluded", "reason"]
            .str.extract(r"^([A-Za-z_*]+)", expand=False)
            .fillna("other")
            .value_counts()
        )
        for reason, n in sorted(reasons.items()):
            row[f"excluded_{reason}"] = int(n)
        rows.append(row)
    out = pd.DataFrame(rows).fillna(0)
    for col in out.columns:
        if col.startswith("excluded_"):
            out[col] = out[col].astype(int)
    return out
