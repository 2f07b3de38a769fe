"""Reading one plate export and matching its names against the sheets.

A sample or assay on a plate but not in the sheets is an error by default that
lists them all (``unknown_names="error"``); with ``"exclude"`` their wells are
kept in the plate table with an ``excluded`` reason so the well audit shows
them. Wells without a sample or assay name (empty chambers) are excluded as
``empty_well``. Nothing is dropped from the plate table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import InputError
from .parsers.registry import read_export
from .rowkeys import text_is
from .wells import assign_states


def _match(names: pd.Series, known: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Return (matched, case_only) boolean Series for ``names`` against ``known``."""
    matched = names.isin(known)
    case_only = pd.Series(False, index=names.index)
    unmatched = ~matched
    if unmatched.any():  # the sheet folded to lower case only when a name is not found as spelled
        case_only[unmatched] = names[unmatched].str.lower().isin(set(known.str.lower()))
    return matched, case_only


def check_names(
    wells: pd.DataFrame,
    samples: pd.DataFrame,
    assays: pd.DataFrame,
    *,
    path: str,
    unknown_names: str = "error",
    copy: bool = True,
) -> pd.DataFrame:
    """Add an ``excluded`` column ("" = kept) after matching names with the sheets
    (``copy=False``: to ``wells`` itself, a caller's own table)."""
    out = wells.copy() if copy else wells
    no_sample, no_assay = text_is(out["sample"], ""), text_is(out["assay"], "")
    empty = no_sample | no_assay
    excluded = np.full(len(out), "", dtype=object)
    excluded[no_sample & ~no_assay] = "no_sample_name"
    excluded[no_assay & ~no_sample] = "no_assay_name"
    excluded[no_sample & no_assay] = "empty_well"
    out["excluded"] = excluded
    problems: list[str] = []
    for col, sheet, sheet_name in (
        ("sample", samples["sample"], "samples.tsv"),
        ("assay", assays["assay"], "assays.tsv"),
    ):
        matched, case_only = _match(out[col], sheet)
        bad = ~matched.to_numpy() & ~empty
        if not bad.any():
            continue
        for name, rows in out[bad].groupby(col, sort=True):
            first_line = int(rows["line"].min())
            if case_only[rows.index].any():
                spelled = [k for k in sheet if k.lower() == name.lower()][0]
                problems.append(
                    f"{col} '{name}' (first at line {first_line}, {len(rows)} wells) matches '{spelled}' "
                    f"in {sheet_name} only when ignoring upper/lower case"
                )
            else:
                problems.append(
                    f"{col} '{name}' (first at line {first_line}, {len(rows)} wells) is not in {sheet_name}"
                )
        out.loc[bad & (out["excluded"] == ""), "excluded"] = f"{col}_not_in_sheet"
    if problems and unknown_names == "error":
        raise InputError(
            path,
            f"{len(problems)} name(s) on this plate are not in the sheets: " + "; ".join(problems),
            "add them to the sheets with the exact spelling used on the plate, or set unknown_names: "
            "exclude in config/config.yaml to exclude their wells (they are then listed in "
            "results/qc/wells.tsv)",
        )
    return out


#: Placeholder Cq text of a missing well between reading and exclusion (never written out).
MISSING = "\x00missing"


def with_missing_wells(wells: pd.DataFrame, missing: list[str], groups: list) -> pd.DataFrame:
    """Append one row per missing well (empty names, no Cq) and flag the wells of incomplete groups.

    Nothing missing and no incomplete group: ``wells`` itself (not a copy).
    """
    if not groups and not missing:
        return wells
    out = wells.copy()
    if groups:
        keys = pd.MultiIndex.from_tuples([(sample, assay) for sample, assay, _ in groups])
        hit = pd.MultiIndex.from_frame(out[["sample", "assay"]]).isin(keys)
        flags = out.loc[hit, "instrument_flags"]
        out.loc[hit, "instrument_flags"] = flags.where(flags == "", flags + ";") + "incomplete_group"
    if not missing:
        return out
    rows = out.iloc[:0].reindex(range(len(missing)))
    for column in out.columns:
        rows[column] = "" if out[column].dtype == object else (0 if column == "line" else float("nan"))
    ids = pd.Series(missing, dtype=object)
    rows["plate"], rows["well"], rows["cq_raw"] = out["plate"].iloc[0] if len(out) else "", ids, MISSING
    rows["run"] = ids.str.extract(r"^([^:]*):", expand=False).fillna("")
    return pd.concat([out, rows.astype(out.dtypes.to_dict())], ignore_index=True)


def read_plate(
    path: str,
    fmt: str,
    plate: str,
    batch: str,
    samples: pd.DataFrame,
    assays: pd.DataFrame,
    *,
    lod: float = 35.0,
    unknown_names: str = "error",
    assay: str = "",
    on_incomplete: str = "stop",
    states: bool = True,
) -> pd.DataFrame:
    """Read one export into the Wells table (data-model.md §1) with states and exclusions.

    ``assay`` (the plates.tsv column of that name) names the assay of every well
    of an export that has no target column (LightCycler 480 Abs Quant exports);
    it never overrides a name the export gives. ``on_incomplete`` (config
    ``import.on_incomplete``): ``stop`` refuses an export whose grid of chambers or
    wells is incomplete; ``flag`` adds each missing well as a row excluded as
    ``missing`` (so the well audit lists it) and flags the wells of replicate
    groups that lack wells with ``incomplete_group`` in ``instrument_flags``.
    ``states=False`` leaves out ``state`` and ``state_reason`` (for a caller that assigns them
    itself, on the wells it keeps).
    """
    wells = read_export(path, fmt=fmt, plate=plate, on_incomplete=on_incomplete)
    missing, groups = wells.attrs.get("missing_wells", []), wells.attrs.get("incomplete_groups", [])
    wells = with_missing_wells(wells, missing, groups)
    if assay:
        wells.loc[(wells["assay"] == "") & (wells["cq_raw"] != MISSING), "assay"] = assay
    wells.insert(0, "batch", batch)
    wells = check_names(wells, samples, assays, path=path, unknown_names=unknown_names, copy=False)
    if missing:
        wells.loc[wells["cq_raw"] == MISSING, ["excluded", "cq_raw"]] = ["missing", ""]
    if not states:
        return wells
    return assign_states(wells, lod=lod, assay_lod=sheet_lods(assays), copy=False)


def sheet_lods(assays: pd.DataFrame) -> dict[str, float]:
    """The assays sheet's ``lod`` per assay where given: the limits of :func:`read_plate`'s states."""
    return {a: float(l) for a, l in zip(assays["assay"], assays["lod"], strict=True) if l == l and l != ""}


def unplated_names(
    wells: pd.DataFrame, samples: pd.DataFrame, assays: pd.DataFrame, *, limit: int = 20
) -> list[str]:
    """Notes for sheet entries that no plate of ``wells`` holds (the reverse of :func:`check_names`).

    Not an error: a study's sheets list every batch's samples, and a batch holds
    only some of them. Each note gives the count and the first ``limit`` names
    (sorted) so the log shows a misspelt or forgotten entry.
    """
    notes = []
    for col, sheet, sheet_name in (
        ("sample", samples["sample"], "samples.tsv"),
        ("assay", assays["assay"], "assays.tsv"),
    ):
        on_plates = set(wells[col].astype(str).str.strip()) if len(wells) else set()
        missing = sorted(set(sheet.astype(str).str.strip()) - on_plates - {""})
        if missing:
            more = f" (and {len(missing) - limit} more)" if len(missing) > limit else ""
            notes.append(
                f"{len(missing)} {col}(s) in {sheet_name} are on no plate of this batch: "
                + ", ".join(missing[:limit])
                + more
                + " — fine if another batch holds them; otherwise check the spelling on the plate"
            )
    return notes
