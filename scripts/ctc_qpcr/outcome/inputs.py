"""Count and clinical tables: checks with file, line and column (docs/methods.md §8).

``ctc_counts``: patient, timepoint, ctc_count[, blood_volume_ml (default 7.5),
draw_date (YYYY-MM-DD)]. ``clinical``: patient, pfs_months, pfs_event,
os_months, os_event[, best_response (CR/PR/SD/PD; blank or NE = not
evaluable), landmark_<timepoint>_months or date_<timepoint> (YYYY-MM-DD),
covariates]. Every problem raises :class:`~ctc_qpcr.errors.InputError` naming
the file, the line (row index + 2; the header is line 1), the column and what
to do.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import InputError

STANDARD_VOLUME_ML = 7.5
RESPONSES = ("CR", "PR", "SD", "PD")
DAYS_PER_MONTH = 365.25 / 12


def _line(index) -> int:
    """1-based line in the TSV (header is line 1) of a 0-based row index."""
    return int(index) + 2


def read_table(path: str) -> pd.DataFrame:
    """A count or clinical table as text (tab-separated, ``#`` comments)."""
    try:
        return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, comment="#")
    except FileNotFoundError:
        raise InputError(path, "file not found", "check the path in the config's outcome: section") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not a readable tab-separated table ({exc})", "save it as UTF-8 TSV") from None


def _first(mask: pd.Series):
    return mask.idxmax()


def require_columns(df: pd.DataFrame, columns: Sequence[str], path: str, what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(
            path,
            f"missing column(s) {', '.join(missing)} in the {what} table",
            f"the header must contain {', '.join(columns)} (found: {', '.join(map(str, df.columns))})",
            line=1,
        )


def numeric(df: pd.DataFrame, column: str, path: str, *, allow_missing: bool) -> pd.Series:
    raw = df[column]
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
    if bad.any():
        i = _first(bad)
        raise InputError(path, f"{raw[i]!r} is not a number", "enter a number", line=_line(i), column=column)
    if not allow_missing and values.isna().any():
        i = _first(values.isna())
        raise InputError(path, "value is empty", "fill it in or remove the row", line=_line(i), column=column)
    return values.astype(float)


def dates(df: pd.DataFrame, column: str, path: str) -> pd.Series:
    """ISO dates (YYYY-MM-DD); empty cells stay missing, anything else is an error."""
    raw = df[column].astype("string").str.strip()
    values = pd.to_datetime(raw, format="%Y-%m-%d", errors="coerce")
    bad = values.isna() & raw.notna() & (raw != "")
    if bad.any():
        i = _first(bad)
        raise InputError(
            path, f"{raw[i]!r} is not a date", "write dates as YYYY-MM-DD (e.g. 2009-03-17)",
            line=_line(i), column=column,
        )
    return values


def _text_ids(df: pd.DataFrame, column: str, path: str) -> pd.Series:
    empty = df[column].isna() | (df[column].astype(str).str.strip() == "")
    if empty.any():
        i = _first(empty)
        raise InputError(path, f"empty {column}", f"give every row a {column}", line=_line(i), column=column)
    return df[column].astype(str).str.strip()


def _check_count_values(count: pd.Series, path: str) -> None:
    for bad, what, todo in (
        (count < 0, "negative CTC count {:g}", "a CellSearch count is 0 or more cells"),
        (count != np.round(count), "CTC count {:g} is not a whole number",
         "enter the number of cells counted (an integer), not a concentration"),
    ):
        if bad.any():
            i = _first(bad)
            raise InputError(path, what.format(count[i]), todo, line=_line(i), column="ctc_count")


def _blood_volume(df: pd.DataFrame, path: str) -> pd.Series:
    if "blood_volume_ml" not in df.columns:
        return pd.Series(STANDARD_VOLUME_ML, index=df.index)
    vol = numeric(df, "blood_volume_ml", path, allow_missing=True).fillna(STANDARD_VOLUME_ML)
    if (vol <= 0).any():
        i = _first(vol <= 0)
        raise InputError(
            path, f"blood volume {vol[i]:g} ml is not positive",
            "enter the volume analysed in ml, or leave it empty for 7.5 ml",
            line=_line(i), column="blood_volume_ml",
        )
    return vol


def _check_duplicate_draws(df: pd.DataFrame, path: str) -> None:
    dup = df.duplicated(["patient", "timepoint"], keep=False)
    if not dup.any():
        return
    rows = df.index[dup]
    first = rows[0]
    same = rows[
        (df.loc[rows, "patient"] == df.at[first, "patient"])
        & (df.loc[rows, "timepoint"] == df.at[first, "timepoint"])
    ]
    raise InputError(
        path,
        f"patient {df.at[first, 'patient']} has more than one count for timepoint "
        f"{df.at[first, 'timepoint']} (lines {', '.join(str(_line(i)) for i in same)})",
        "keep one row per patient and draw (sum or choose the valid cartridge)",
        line=_line(same[1]),
        column="timepoint",
    )


def validate_counts(counts: pd.DataFrame, path: str) -> pd.DataFrame:
    """Check the ctc_counts table; return a clean copy with ``ctc_per_7_5ml``."""
    df = counts.reset_index(drop=True).copy()
    require_columns(df, ["patient", "timepoint", "ctc_count"], path, "CTC counts")
    for col in ("patient", "timepoint"):
        df[col] = _text_ids(df, col, path)
    count = numeric(df, "ctc_count", path, allow_missing=False)
    _check_count_values(count, path)
    df["ctc_count"] = count.astype(int)
    df["blood_volume_ml"] = _blood_volume(df, path)
    if "draw_date" in df.columns:
        df["draw_date"] = dates(df, "draw_date", path)
    _check_duplicate_draws(df, path)
    df["ctc_per_7_5ml"] = df["ctc_count"] * STANDARD_VOLUME_ML / df["blood_volume_ml"]
    return df


def _check_endpoint(df: pd.DataFrame, ep: str, path: str) -> None:
    tcol, ecol = f"{ep}_months", f"{ep}_event"
    t = numeric(df, tcol, path, allow_missing=True)
    e = numeric(df, ecol, path, allow_missing=True)
    half = t.isna() != e.isna()
    if half.any():
        i = _first(half)
        col = tcol if t.isna()[i] else ecol
        raise InputError(
            path, f"{col} is empty but {ecol if col == tcol else tcol} is given",
            "give both time and event, or leave both empty if the endpoint is unknown",
            line=_line(i), column=col,
        )
    checks = (
        (e.notna() & ~e.isin([0, 1]), ecol, lambda i: f"event {e[i]:g} is not 0 or 1",
         "use 1 = event (progression/death), 0 = censored"),
        (t < 0, tcol, lambda i: f"negative time {t[i]:g} months", "times are counted from the baseline draw"),
        ((t <= 0) & (e == 1), tcol, lambda i: f"event at time {t[i]:g} months (must be after baseline)",
         "check the dates: an event needs a time greater than 0"),
    )
    for bad, col, what, todo in checks:
        if bad.any():
            i = _first(bad)
            raise InputError(path, what(i), todo, line=_line(i), column=col)
    df[tcol] = t
    df[ecol] = e


def _check_landmarks(df: pd.DataFrame, path: str) -> None:
    for col in [c for c in df.columns if re.fullmatch(r"landmark_.+_months", str(c))]:
        lm = numeric(df, col, path, allow_missing=True)
        if (lm < 0).any():
            i = _first(lm < 0)
            raise InputError(
                path, f"negative landmark time {lm[i]:g}", "time from baseline to the draw, in months",
                line=_line(i), column=col,
            )
        df[col] = lm
    for col in [c for c in df.columns if re.fullmatch(r"date_.+", str(c))]:
        df[col] = dates(df, col, path)


def _check_response(df: pd.DataFrame, path: str) -> None:
    if "best_response" not in df.columns:
        return
    resp = df["best_response"].astype("string").str.strip().str.upper()
    resp = resp.mask(resp.isin(["", "NE", "NA"]))
    bad = resp.notna() & ~resp.isin(RESPONSES)
    if bad.any():
        i = _first(bad)
        raise InputError(
            path, f"best response {df.at[i, 'best_response']!r} is not a RECIST category",
            "use CR, PR, SD or PD (leave empty or NE if not evaluable)",
            line=_line(i), column="best_response",
        )
    df["best_response"] = resp.astype(object).where(resp.notna(), None)


def validate_clinical(clinical: pd.DataFrame, path: str, endpoints: Sequence[str] = ("pfs", "os")) -> pd.DataFrame:
    """Check the clinical table; return a clean copy (events 0/1, times float, dates parsed)."""
    df = clinical.reset_index(drop=True).copy()
    need = ["patient"] + [c for ep in endpoints for c in (f"{ep}_months", f"{ep}_event")]
    require_columns(df, need, path, "clinical")
    df["patient"] = _text_ids(df, "patient", path)
    dup = df.duplicated("patient", keep=False)
    if dup.any():
        pid = df.loc[dup, "patient"].iloc[0]
        rows = df.index[df["patient"] == pid]
        raise InputError(
            path, f"patient {pid} appears more than once (lines {', '.join(str(_line(i)) for i in rows)})",
            "keep one row per patient", line=_line(rows[1]), column="patient",
        )
    for ep in endpoints:
        _check_endpoint(df, ep, path)
    _check_landmarks(df, path)
    _check_response(df, path)
    _characteristics(df, [c for c in df.columns if c not in ("patient", "best_response")])
    return df


def _characteristics(df: pd.DataFrame, columns: Sequence[str]) -> None:
    """Empty cells become missing; a column whose every given value is a number
    becomes numeric (a tumour marker, ECOG, number of sites); others stay text."""
    for col in columns:
        if not (pd.api.types.is_object_dtype(df[col]) or pd.api.types.is_string_dtype(df[col])):
            continue
        text = df[col].astype("string").str.strip()
        text = text.mask(text == "")
        values = pd.to_numeric(text, errors="coerce")
        if text.notna().any() and (values.notna() == text.notna()).all():
            whole = (values.dropna() == np.round(values.dropna())).all()
            df[col] = values.astype("Int64") if whole else values.astype(float)
        else:
            df[col] = text.astype(object).where(text.notna(), None)


def match_patients(
    counts: pd.DataFrame,
    clinical: pd.DataFrame,
    counts_path: str,
    clinical_path: str,
    on_unmatched: str = "error",
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Check both tables describe the same patients.

    ``on_unmatched="error"`` raises one InputError listing every unmatched
    patient in both directions; ``"exclude"`` drops them with a note.
    """
    a, b = set(counts["patient"]), set(clinical["patient"])
    only_counts, only_clin = sorted(a - b), sorted(b - a)
    if not only_counts and not only_clin:
        return counts, clinical, []
    parts = []
    if only_counts:
        parts.append(f"in {counts_path} but not in {clinical_path}: {', '.join(only_counts)}")
    if only_clin:
        parts.append(f"in {clinical_path} but not in {counts_path}: {', '.join(only_clin)}")
    text = "; ".join(parts)
    if on_unmatched == "error":
        raise InputError(
            counts_path if only_counts else clinical_path,
            f"patients do not match between CTC counts and clinical data — {text}",
            "fix the patient ids (spelling, leading zeros) or set on_unmatched: exclude",
            column="patient",
        )
    if on_unmatched != "exclude":
        raise ValueError("on_unmatched must be 'error' or 'exclude'")
    keep = a & b
    notes = [f"excluded unmatched patients — {text}"]
    return counts[counts["patient"].isin(keep)], clinical[clinical["patient"].isin(keep)], notes


def landmark_times(counts: pd.DataFrame, clinical: pd.DataFrame, baseline: str, draws: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """Fill ``landmark_<draw>_months`` from draw dates where the clinical table lacks it.

    Sources, in order: the column ``landmark_<draw>_months``; the clinical
    columns ``date_<baseline>`` and ``date_<draw>``; the counts table's
    ``draw_date`` (one row per patient and draw, i.e. a long table of draw
    dates). Months = days / (365.25/12). Returns the clinical table and notes.
    """
    clin = clinical.copy()
    notes = []
    long = None
    if "draw_date" in counts.columns:
        long = counts.pivot(index="patient", columns="timepoint", values="draw_date")
    for draw in draws:
        col = f"landmark_{draw}_months"
        if col in clin.columns:
            continue
        if f"date_{baseline}" in clin.columns and f"date_{draw}" in clin.columns:
            days = (clin[f"date_{draw}"] - clin[f"date_{baseline}"]).dt.days
            source = f"clinical columns date_{baseline} and date_{draw}"
        elif long is not None and draw in long.columns and baseline in long.columns:
            diff = (long[draw] - long[baseline]).dt.days
            days = clin["patient"].map(diff)
            source = "ctc_counts column draw_date"
        else:
            continue
        clin[col] = days.astype(float) / DAYS_PER_MONTH
        notes.append(f"{col} computed from {source} (days / 30.4375)")
    return clin, notes


def check_draw_dates(clinical: pd.DataFrame, draws: Sequence[str], path: str) -> None:
    """A draw cannot precede the baseline draw (landmark < 0)."""
    for draw in draws:
        col = f"landmark_{draw}_months"
        if col in clinical.columns and (clinical[col] < 0).any():
            i = _first(clinical[col] < 0)
            raise InputError(
                path, f"patient {clinical.at[i, 'patient']}: draw {draw} is dated before the baseline draw",
                "check the draw dates", line=_line(i), column=col,
            )
