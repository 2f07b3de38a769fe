"""Loading and checking the three sheets: plates, samples, assays.

Every value that reaches a result comes from the sheets as the user meant it,
or loading stops with :class:`~ctc_qpcr.errors.InputError` naming the sheet,
its line (1-based, header = line 1), the column and what to do. What a JSON
schema cannot check is checked here: unique ids, names that differ only by
case or white space, labels spelt like a known label except for case (did you
mean ...), ``sites`` separated by ``;`` only, labels a sample's kind cannot
have, invisible or look-alike characters, files that exist, two plates on
one export. Every check is vectorised (a 44,000-sample sheet loads in well
under a second); reading the text itself is in :mod:`ctc_qpcr.sheet_text`.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError
from .sheet_text import check_characters, read_table

SAMPLE_KINDS = ("patient", "healthy", "gdna", "ipc", "ntc", "standard", "other")
ASSAY_ROLES = ("target", "reference", "validprime", "ipc")
FORMATS = ("auto", "biomark", "quantstudio", "cfx", "sds", "lc480", "rdml", "table")
RESPONSES = ("responder", "non-responder")
#: plate and batch ids (as in workflow/schemas/plates.schema.yaml): they name output files and jobs
ID_PATTERN = r"^[A-Za-z0-9_.-]+$"

REQUIRED = {
    "plates": ("plate", "batch", "path"),
    "samples": ("sample", "kind"),
    "assays": ("assay", "gene", "role"),
}
#: optional columns the workflow reads: a case/underscore variant is an error, not a covariate
OPTIONAL = {
    "plates": ("format", "assay"),
    "samples": ("patient", "timepoint", "response", "sites", "quantity"),
    "assays": ("efficiency", "lod"),
}
#: columns holding names or labels: look-alike letters are refused there
NAMES = {
    "plates": ("plate", "batch", "format"),
    "samples": ("sample", "kind", "patient", "timepoint", "response", "sites"),
    "assays": ("assay", "gene", "role"),
}


def read_sheet(path: str | Path, kind: str) -> pd.DataFrame:
    """Read a tab-separated sheet as stripped text and check its columns and characters.

    The frame's index holds each row's line number in the file (for messages);
    the ``load_*`` functions return it with a fresh 0..n-1 index.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(
            str(path),
            f"the {kind} sheet does not exist",
            f"check '{kind}:' in config/config.yaml (paths are relative to the working directory)",
        )
    df = read_table(p, kind)
    if len(df.columns) == 1 and "," in df.columns[0]:
        raise InputError(
            str(path),
            f"the {kind} sheet is comma-separated, not tab-separated",
            "save it as TSV (tab-separated)",
            line=1,
        )
    for col in REQUIRED[kind]:
        if col not in df.columns:
            near = [
                c
                for c in df.columns
                if c.lower().replace("_", "") == col.replace("_", "") or _close(c.lower(), col)
            ]
            hint = (
                f"rename column '{near[0]}' to '{col}'"
                if near
                else f"add a column '{col}' (see config/README.md)"
            )
            raise InputError(str(path), f"the {kind} sheet has no column '{col}'", hint, line=1, column=col)
    for col in OPTIONAL[kind]:
        variants = [c for c in df.columns if c != col and _squash(c) == _squash(col)]
        if variants and col not in df.columns:
            raise InputError(
                str(path),
                f"column '{variants[0]}' is spelt like the {kind} column '{col}' except for case or '_'",
                f"rename it to '{col}' (otherwise it is kept as a covariate and '{col}' is empty)",
                line=1,
                column=variants[0],
            )
    check_characters(df, NAMES[kind], kind)
    df.attrs["path"] = str(path)
    return df


def _squash(name: str) -> str:
    return name.lower().replace("_", "").replace(" ", "").replace("-", "")


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


def _stop(df: pd.DataFrame, mask, col: str, problem, hint: str) -> None:
    """Raise for the first row where ``mask`` is true; ``problem(value)`` words the message."""
    mask = np.asarray(mask, dtype=bool)
    if mask.any():
        i = int(np.argmax(mask))
        raise InputError(
            df.attrs.get("path"), problem(df[col].iloc[i]), hint, line=int(df.index[i]), column=col
        )


def did_you_mean(value: str, allowed) -> str:
    """' — did you mean 'x'?' for a case variant or a near miss of an allowed label ('' if none)."""
    allowed = [str(a) for a in allowed]
    same = [a for a in allowed if a.casefold() == value.casefold()]
    close = same or difflib.get_close_matches(value, allowed, n=1, cutoff=0.75)
    return f"did you mean '{close[0]}'?" if close else ""


def _check_unique(df: pd.DataFrame, col: str, kind: str, fold: bool = False) -> None:
    _stop(df, df[col] == "", col, lambda v: f"empty {col}", f"give every row of the {kind} sheet a {col}")
    keys = df[col].str.casefold() if fold else df[col]
    again = keys.duplicated(keep="first").to_numpy()
    if again.any():
        i = int(np.argmax(again))
        first = int(np.argmax((keys == keys.iloc[i]).to_numpy()))
        value, original = df[col].iloc[i], df[col].iloc[first]
        what = "the same name except for upper/lower case" if value != original else "a duplicate"
        raise InputError(
            df.attrs.get("path"),
            f"{col} '{value}' is {what} of line {int(df.index[first])} ('{original}')",
            f"each {col} must appear once; rename or remove one of them",
            line=int(df.index[i]),
            column=col,
        )


def _check_choice(
    df: pd.DataFrame, col: str, allowed: tuple[str, ...], kind: str, empty_ok: bool = False
) -> None:
    ok = df[col].isin(allowed + (("",) if empty_ok else ()))

    def problem(value):
        hint = did_you_mean(value, allowed)
        choices = f"'{allowed[0]}' or '{allowed[1]}'" if len(allowed) == 2 else f"one of {', '.join(allowed)}"
        return f"{col} '{value}' is not {choices}" + (f" — {hint}" if hint else "")

    _stop(
        df,
        ~ok,
        col,
        problem,
        f"fix the {col} of this row in the {kind} sheet"
        + (" (leave it empty when unknown)" if empty_ok else ""),
    )


def check_one_spelling(df: pd.DataFrame, col: str, kind: str) -> None:
    """Refuse two spellings of one label that differ only by case (``T0`` and ``t0``)."""
    values = df[col][df[col] != ""]
    distinct = pd.Series(values.unique())
    folded = distinct.str.casefold()
    clash = folded.duplicated(keep=False)
    if clash.any():
        key = folded[clash].iloc[0]
        spellings = sorted(distinct[folded == key])
        rows = [values.index[values == s][0] for s in spellings]
        raise InputError(
            df.attrs.get("path"),
            f"{col} is spelt both '{spellings[0]}' (line {rows[0]}) and '{spellings[1]}' "
            f"(line {rows[1]}), which differ only by upper/lower case",
            f"use one spelling of each {col} in the {kind} sheet",
            line=int(max(rows)),
            column=col,
        )


def _check_numbers(df: pd.DataFrame, col: str, what: str) -> pd.Series:
    numbers = pd.to_numeric(df[col].where(df[col] != ""), errors="coerce")
    _stop(df, (df[col] != "") & numbers.isna(), col, lambda v: f"{col} '{v}' is not a number", what)
    return numbers


def load_plates(path: str | Path, check_files: bool = True) -> pd.DataFrame:
    df = read_sheet(path, "plates")
    for col, default in (("format", "auto"), ("assay", "")):
        if col not in df.columns:
            df[col] = default
    df.loc[df["format"] == "", "format"] = "auto"
    _check_unique(df, "plate", "plates")
    _stop(df, df["batch"] == "", "batch", lambda v: "empty batch", "give every plate a batch id (e.g. B1)")
    for col in ("plate", "batch"):
        _stop(
            df,
            ~df[col].str.match(ID_PATTERN),
            col,
            lambda v, c=col: (
                f"{c} id '{v}' holds a character other than letters, digits, '_', '.', '-'"
                + (" (a space)" if " " in v else "")
            ),
            f"rename the {col} (ids name output files and jobs)",
        )
    _check_choice(df, "format", FORMATS, "plates")
    if check_files:
        exists = np.array([os.path.isfile(p) for p in df["path"]], dtype=bool)
        _stop(
            df,
            ~exists,
            "path",
            lambda v: (
                f"the export '{v}' of plate '{df.loc[df['path'] == v, 'plate'].iloc[0]}' does not exist"
            ),
            "fix the path (relative to the working directory) or remove the row",
        )
        check_distinct_exports(df)
    return df.reset_index(drop=True)


def check_distinct_exports(df: pd.DataFrame) -> None:
    """Refuse two plates whose ``path`` is one file, or two files with byte-identical content.

    One ``lstat`` per plate (and one ``realpath`` per folder) finds the files and their
    sizes; only files of equal size have their first block compared, and only files
    whose size and first block are shared with another are hashed whole.
    """
    parents: dict[str, str] = {}
    found = [_real_and_size(p, parents) for p in df["path"]]
    real = pd.Series([r for r, _ in found], index=df.index)
    _same_key(df, real, "points at the same file as")
    sizes = pd.Series([n for _, n in found], index=df.index)
    shared = sizes.duplicated(keep=False) & ~real.duplicated(keep=False)
    if shared.any():
        heads = pd.Series("", index=df.index)
        heads[shared] = [f"{n}:{_sha256(p, _HEAD)}" for p, n in zip(real[shared], sizes[shared], strict=True)]
        shared &= heads.duplicated(keep=False)
    if shared.any():
        # byte-identical files share size and first block: hashing only those keeps the same first pair
        digests = pd.Series("", index=df.index)
        digests[shared] = [_sha256(p) for p in real[shared]]
        _same_key(df[shared], digests[shared], "has a byte-identical export to")


#: bytes compared before a whole file is hashed (exports of one instrument share a size often)
_HEAD = 1 << 16


def _real_and_size(path: str, parents: dict[str, str]) -> tuple[str, int]:
    """``(os.path.realpath(path), size)``: the folder resolved once for all its files,
    the file itself by one ``lstat`` (a symbolic link is resolved whole)."""
    head, tail = os.path.split(path)
    info = os.lstat(path)
    if tail in ("", ".", "..") or stat.S_ISLNK(info.st_mode):
        real = os.path.realpath(path)
        return real, os.path.getsize(real)
    if head not in parents:
        parents[head] = os.path.realpath(head or os.curdir)
    return os.path.join(parents[head], tail), info.st_size


def check_new_exports(training: pd.DataFrame, new: pd.DataFrame, new_sheet: str) -> None:
    """Refuse a prediction-batch plate whose export is a training plate's file or a byte-identical copy."""
    train_real = {
        os.path.realpath(p): (plate, p) for p, plate in zip(training["path"], training["plate"], strict=True)
    }
    train_size: dict[int, list[str]] = {}
    for path in train_real:
        train_size.setdefault(os.path.getsize(path), []).append(path)
    for plate, path in zip(new["plate"], new["path"], strict=True):
        real = os.path.realpath(path)
        same = (
            real
            if real in train_real
            else next(
                (p for p in train_size.get(os.path.getsize(real), []) if _sha256(p) == _sha256(real)), None
            )
        )
        if same is not None:
            how = "is the export of" if same == real else "is byte-identical to the export of"
            raise InputError(
                new_sheet,
                f"the new batch's plate '{plate}' ({path}) {how} training plate "
                f"'{train_real[same][0]}' ({train_real[same][1]})",
                "predict on new exports only (a training chip would be predicted on its own data)",
                column="path",
            )


def _same_key(df: pd.DataFrame, key: pd.Series, relation: str) -> None:
    again = key.duplicated(keep="first").to_numpy()
    if again.any():
        i = int(np.argmax(again))
        first = int(np.argmax((key == key.iloc[i]).to_numpy()))
        raise InputError(
            df.attrs.get("path"),
            f"plate '{df['plate'].iloc[i]}' ({df['path'].iloc[i]}) {relation} plate "
            f"'{df['plate'].iloc[first]}' on line {int(df.index[first])} ({df['path'].iloc[first]})",
            "each plate needs its own export: fix the path (one export copied twice?)",
            line=int(df.index[i]),
            column="path",
        )


def _sha256(path: str, limit: int | None = None) -> str:
    """SHA-256 of the file (of its first ``limit`` bytes when given)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        if limit is not None:
            digest.update(handle.read(limit))
        else:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def load_samples(path: str | Path) -> pd.DataFrame:
    df = read_sheet(path, "samples")
    _check_unique(df, "sample", "samples", fold=True)
    _check_choice(df, "kind", SAMPLE_KINDS, "samples")
    for col in ("patient", "timepoint", "response", "sites", "quantity"):
        if col not in df.columns:
            df[col] = ""
    _check_choice(df, "response", RESPONSES, "samples", empty_ok=True)
    _stop(
        df,
        df["sites"].str.contains(",", regex=False),
        "sites",
        lambda v: f"sites '{v}' uses ',' between sites",
        "separate metastatic sites with ';' (e.g. liver;bone)",
    )
    not_patient = df["kind"] != "patient"
    for col in ("response", "sites"):
        _stop(
            df,
            not_patient & (df[col] != ""),
            col,
            lambda v, c=col: (
                f"a {df.loc[(df[c] == v) & not_patient, 'kind'].iloc[0]} sample has {c} '{v}'; "
                "only patients can have one"
            ),
            f"clear the {col} or correct the kind of this sample",
        )
    for col in ("patient", "timepoint"):
        check_one_spelling(df, col, "samples")
    distinct = df["sites"].unique()
    tidy = {s: ";".join(sorted({x.strip().lower() for x in s.split(";") if x.strip()})) for s in distinct}
    df["sites"] = df["sites"].map(tidy)
    _check_numbers(df, "quantity", "give the known input amount as a number or leave it empty")
    return df.reset_index(drop=True)


def load_assays(path: str | Path) -> pd.DataFrame:
    df = read_sheet(path, "assays")
    _check_unique(df, "assay", "assays", fold=True)
    _stop(df, df["gene"] == "", "gene", lambda v: "empty gene", "give every assay its gene symbol")
    check_one_spelling(df, "gene", "assays")
    _check_choice(df, "role", ASSAY_ROLES, "assays")
    for col in ("efficiency", "lod"):
        if col not in df.columns:
            df[col] = ""
        numbers = _check_numbers(df, col, "leave it empty or give a number")
        if col == "efficiency":
            _stop(
                df,
                numbers.notna() & ~numbers.between(1.0, 2.2, inclusive="right"),
                col,
                lambda v: f"efficiency {v} is outside 1.0–2.2",
                "give the amplification factor (2.0 = 100 %), not a percentage",
            )
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


def schema_view(df: pd.DataFrame, schema: dict) -> pd.DataFrame:
    """The distinct rows a JSON schema still has to see once this module has checked every row.

    Columns the schema leaves free (a string with at most ``minLength``) are
    replaced by a placeholder ("" stays ""), and so are the ids this module has
    matched against :data:`ID_PATTERN`; the result is the handful of distinct
    combinations of the constrained columns, so validating it costs
    milliseconds for a sheet of tens of thousands of rows.
    """
    props = schema.get("properties", {})
    columns = {}
    for col in df.columns:
        spec = props.get(col, {})
        free = set(spec) <= {"type", "description", "minLength"} or spec.get("pattern") == ID_PATTERN
        values = df[col].tolist()
        columns[col] = [v if v == "" else "x" for v in values] if free else values
    # the distinct rows in order of first appearance (as drop_duplicates keeps them)
    rows = list(dict.fromkeys(zip(*columns.values(), strict=True)))
    return pd.DataFrame(rows, columns=list(columns), dtype=object)
