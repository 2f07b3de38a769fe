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

from .rowkeys import counts_per_key, missing_as, pick_text, text_is

#: Preprocessing flags that remove a well's value from the cells table.
EXCLUDING_FLAGS = frozenset(
    {"HIGHDNA", "HIGHSD", "VPA_EXPFAIL", "VPA_MISSING", "VP_NO_GDNA_REF", "GRUBBS_OUTLIER", "ND"}
)

#: Flags that only restate a well's state (preprocess._state_flags): not repeated in the audit.
STATE_FLAGS = ("EXPFAIL", "NOAMP", "LOWSIGNAL")

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

#: The audit's own columns; the others are the wells' columns as read (not copied).
MADE_COLUMNS = ("fate", "reason", "flags")


class _WellRows:
    """Row positions of (plate, well) keys in a table (its plates and wells factorised once).

    :meth:`joined_flags` gives, for each row of the table, the flags of its (plate, well):
    what grouping the flags by the two text columns and a left join give, with
    integer keys instead of a MultiIndex of text.
    """

    def __init__(self, table: pd.DataFrame):
        plate_codes, self.plates = pd.factorize(table["plate"])
        well_codes, self.wells = pd.factorize(table["well"])
        self.n_wells = max(len(self.wells), 1)
        self.keys = plate_codes.astype(np.int64) * self.n_wells + well_codes

    def joined_flags(self, wf: pd.DataFrame, none: object = np.nan) -> np.ndarray:
        """For each row of the table: the distinct ``flag`` texts of ``wf`` on its (plate, well),
        sorted and ``;``-joined (``none`` where none), by integer keys: the (well, flag) pairs
        made distinct and ordered by one ``np.unique``, joined by one ``np.add.reduceat``."""
        out = np.full(len(self.keys), none, dtype=object)
        if not len(wf):
            return out
        plate = pd.Index(self.plates).get_indexer(wf["plate"])
        well = pd.Index(self.wells).get_indexer(wf["well"])
        codes, texts = pd.factorize(wf["flag"].to_numpy(dtype=object), sort=True)  # code order = text order
        known = (plate >= 0) & (well >= 0) & (codes >= 0)  # a missing flag adds nothing, as in a grouped sum
        if not known.any():
            return out
        plate, well, codes = plate[known], well[known], codes[known]
        n_flags = len(texts)
        pairs = np.unique((plate.astype(np.int64) * self.n_wells + well) * n_flags + codes)
        key, flag = pairs // n_flags, pairs % n_flags
        first = np.r_[True, key[1:] != key[:-1]]
        starts = np.flatnonzero(first)
        plain = np.asarray(texts, dtype=object)
        parts = np.where(
            first, plain[flag], (";" + pd.Series(plain, dtype=object)).to_numpy(dtype=object)[flag]
        )
        joined = np.add.reduceat(parts, starts)  # each well's flags, the first without a leading ";"
        at = np.full(len(self.plates) * self.n_wells, -1, dtype=np.int64)  # (plate, well) key → its flags
        at[key[starts]] = np.arange(len(starts))
        at = at[self.keys]
        hit = at >= 0
        out[hit] = joined[at[hit]]
        return out


def build_audit(wells: pd.DataFrame, well_flags: pd.DataFrame | None = None) -> pd.DataFrame:
    """Return the audit rows for ``wells`` (one per well, same count).

    ``well_flags`` has columns ``plate, well, flag`` and optionally ``reason``
    and ``excluded`` (bool; default: the flag is in :data:`EXCLUDING_FLAGS`).
    Excluding flags set the fate and reason; the others are listed in ``flags``.
    Flags that only restate the well state (EXPFAIL, NOAMP, LOWSIGNAL) are not
    repeated.
    """
    reason = _read_reasons(wells)
    failed = (reason == "") & (wells["state"].to_numpy(dtype=object) == "EXPFAIL")
    reason[failed] = ("EXPFAIL:" + wells.loc[failed, "state_reason"].astype(str)).to_numpy(dtype=object)
    flags = np.full(len(wells), "", dtype=object)
    if well_flags is not None and len(well_flags):
        flag, excluding = _audit_flags(well_flags)
        rows = _WellRows(wells)
        exclusions = rows.joined_flags(flag[excluding], none="")
        use = (reason == "") & (exclusions != "")
        reason[use] = exclusions[use]
        flags = rows.joined_flags(flag[~excluding], none="")
    made = {
        "reason": reason,
        "flags": flags,
        "fate": pick_text([reason == ""], ["kept"], "excluded"),
    }
    columns = [c for c in AUDIT_COLUMNS if c in made or c in wells.columns]
    # the wells' columns are not copied (copy=False: nor gathered into blocks); nothing writes into them
    return pd.DataFrame(
        {c: made[c] if c in made else wells[c].to_numpy() for c in columns}, index=wells.index, copy=False
    )


def _read_reasons(wells: pd.DataFrame) -> np.ndarray:
    """The reader's reason for each well (``excluded``; "" for a kept well, missing read as ""),
    a new array."""
    if "excluded" not in wells.columns:
        return np.full(len(wells), "", dtype=object)
    return missing_as(wells["excluded"], "")


def _audit_flags(well_flags: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The well flags the audit lists (not those that restate the state), each ``flag (reason)``
    where it has a reason, and which of them exclude the well (``excluded`` where given, else
    the flag is in :data:`EXCLUDING_FLAGS`)."""
    wf = well_flags[~well_flags["flag"].isin(STATE_FLAGS).to_numpy()]
    named = wf["flag"].to_numpy(dtype=object)
    excluding = (
        wf["excluded"].astype(bool).to_numpy()
        if "excluded" in wf.columns
        else wf["flag"].isin(EXCLUDING_FLAGS).to_numpy()
    )
    text = named
    if "reason" in wf.columns:
        why = wf["reason"].fillna("").astype(str).to_numpy(dtype=object)
        given = (why != "") & pd.notna(named)  # a missing flag stays missing
        text = named.copy()
        text[given] = named[given] + " (" + why[given] + ")"
    flag = pd.DataFrame({"plate": wf["plate"].to_numpy(), "well": wf["well"].to_numpy(), "flag": text})
    return flag, excluding


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
    kept = text_is(audit["fate"], "kept")
    excluded = text_is(audit["fate"], "excluded")
    non_detected = kept & audit["state"].isin(["NOAMP", "LOWSIGNAL"]).to_numpy()
    out = counts_per_key(
        audit,
        keys,
        {"read": np.ones(len(audit), bool), "kept": kept, "excluded": excluded, "non_detected": non_detected},
    )
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
