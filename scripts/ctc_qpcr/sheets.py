"""Loading and checking the three sheets: plates, samples, assays.

The JSON schemas in ``workflow/schemas/`` check each row's types and allowed
values; this module checks what a schema cannot: unique ids, names that differ
only by case or white space, files that exist, and cross-sheet consistency.
Every problem raises :class:`~ctc_qpcr.errors.InputError` naming the sheet,
its line (1-based, header = line 1) and the column.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .errors import InputError

SAMPLE_KINDS = ("patient", "healthy", "gdna", "ipc", "ntc", "standard", "other")
ASSAY_ROLES = ("target", "reference", "validprime", "ipc")
FORMATS = ("auto", "biomark", "quantstudio", "cfx", "sds", "lc480", "rdml", "table")

REQUIRED = {
    "plates": ("plate", "batch", "path"),
    "samples": ("sample", "kind"),
    "assays": ("assay", "gene", "role"),
}


def read_sheet(path: str | Path, kind: str) -> pd.DataFrame:
    """Read a tab-separated sheet as text, strip cells, and check required columns.

    Lines starting with ``#`` are comments. Column names are matched exactly
    (lower case, as documented in config/README.md); a near miss such as
    ``Sample`` or ``smaple`` is reported with the expected name.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(str(path), f"the {kind} sheet does not exist", f"check '{kind}:' in config/config.yaml (paths are relative to the working directory)")
    try:
        df = pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False, comment="#", skip_blank_lines=True)
    except pd.errors.ParserError as exc:
        raise InputError(str(path), f"the {kind} sheet is not a valid tab-separated table ({exc})", "save it as tab-separated text (TSV) with one header line") from None
    except pd.errors.EmptyDataError:
        raise InputError(str(path), f"the {kind} sheet is empty", "add a header line and one row per entry") from None
    df.columns = [str(c).strip() for c in df.columns]
    if len(df.columns) == 1 and "," in df.columns[0]:
        raise InputError(str(path), f"the {kind} sheet is comma-separated, not tab-separated", "save it as TSV (tab-separated)", line=1)
    for col in REQUIRED[kind]:
        if col not in df.columns:
            near = [c for c in df.columns if c.lower().replace("_", "") == col.replace("_", "") or _close(c.lower(), col)]
            hint = f"rename column '{near[0]}' to '{col}'" if near else f"add a column '{col}' (see config/README.md)"
            raise InputError(str(path), f"the {kind} sheet has no column '{col}'", hint, line=1, column=col)
    for col in df.columns:
        df[col] = df[col].astype(str).str.strip()
    df.attrs["path"] = str(path)
    return df


def _close(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` differ by one edit or one swap (a misspelt column)."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return len(diff) == 2 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def _line(df: pd.DataFrame, i: int) -> int:
    return int(df.index[i]) + 2 if isinstance(df.index[i], (int,)) else i + 2


def _check_unique(df: pd.DataFrame, col: str, kind: str, fold: bool = False) -> None:
    path = df.attrs.get("path")
    keys = df[col].str.lower() if fold else df[col]
    seen: dict[str, int] = {}
    for i, key in enumerate(keys):
        if key == "":
            raise InputError(path, f"empty {col}", f"give every row of the {kind} sheet a {col}", line=i + 2, column=col)
        if key in seen:
            first = seen[key]
            what = "the same name except for upper/lower case" if fold and df[col].iloc[first] != df[col].iloc[i] else "a duplicate"
            raise InputError(
                path,
                f"{col} '{df[col].iloc[i]}' is {what} of line {first + 2} ('{df[col].iloc[first]}')",
                f"each {col} must appear once; rename or remove one of them",
                line=i + 2,
                column=col,
            )
        seen[key] = i


def _check_choice(df: pd.DataFrame, col: str, allowed: tuple[str, ...], kind: str) -> None:
    path = df.attrs.get("path")
    for i, value in enumerate(df[col]):
        if value not in allowed:
            raise InputError(path, f"{col} '{value}' is not one of {', '.join(allowed)}", f"fix the {col} of this row in the {kind} sheet", line=i + 2, column=col)


def load_plates(path: str | Path, check_files: bool = True) -> pd.DataFrame:
    df = read_sheet(path, "plates")
    if "format" not in df.columns:
        df["format"] = "auto"
    df.loc[df["format"] == "", "format"] = "auto"
    if "assay" not in df.columns:
        df["assay"] = ""
    _check_unique(df, "plate", "plates")
    _check_choice(df, "format", FORMATS, "plates")
    for i, row in enumerate(df.itertuples(index=False)):
        if row.batch == "":
            raise InputError(str(path), "empty batch", "give every plate a batch id (e.g. B1)", line=i + 2, column="batch")
        if check_files and not Path(row.path).is_file():
            raise InputError(str(path), f"the export '{row.path}' of plate '{row.plate}' does not exist", "fix the path (relative to the working directory) or remove the row", line=i + 2, column="path")
    return df.reset_index(drop=True)


def load_samples(path: str | Path) -> pd.DataFrame:
    df = read_sheet(path, "samples")
    _check_unique(df, "sample", "samples", fold=True)
    _check_choice(df, "kind", SAMPLE_KINDS, "samples")
    for col in ("patient", "timepoint", "response", "sites", "quantity"):
        if col not in df.columns:
            df[col] = ""
    for i, value in enumerate(df["response"]):
        if value not in ("", "responder", "non-responder"):
            raise InputError(str(path), f"response '{value}' is not 'responder' or 'non-responder'", "leave it empty when unknown", line=i + 2, column="response")
    df["sites"] = df["sites"].map(lambda s: ";".join(sorted({x.strip().lower() for x in s.split(";") if x.strip()})))
    for i, value in enumerate(df["quantity"]):
        if value:
            try:
                float(value)
            except ValueError:
                raise InputError(str(path), f"quantity '{value}' is not a number", "give the known input amount as a number or leave it empty", line=i + 2, column="quantity") from None
    return df.reset_index(drop=True)


def load_assays(path: str | Path) -> pd.DataFrame:
    df = read_sheet(path, "assays")
    _check_unique(df, "assay", "assays", fold=True)
    _check_choice(df, "role", ASSAY_ROLES, "assays")
    for col in ("efficiency", "lod"):
        if col not in df.columns:
            df[col] = ""
        for i, value in enumerate(df[col]):
            if value == "":
                continue
            try:
                number = float(value)
            except ValueError:
                raise InputError(str(path), f"{col} '{value}' is not a number", "leave it empty or give a number", line=i + 2, column=col) from None
            if col == "efficiency" and not 1.0 < number <= 2.2:
                raise InputError(str(path), f"efficiency {value} is outside 1.0–2.2", "give the amplification factor (2.0 = 100 %), not a percentage", line=i + 2, column=col)
    return df.reset_index(drop=True)


def samples_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Typed copy of the samples sheet for the library (quantity as float)."""
    out = df.copy()
    out["quantity"] = pd.to_numeric(out["quantity"].replace("", None), errors="coerce")
    return out


def assays_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Typed copy of the assays sheet for the library (efficiency, lod as float)."""
    out = df.copy()
    for col in ("efficiency", "lod"):
        out[col] = pd.to_numeric(out[col].replace("", None), errors="coerce")
    return out
