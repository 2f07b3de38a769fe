"""Reading a tab-separated sheet as Excel or a text editor writes it.

Encodings: UTF-8 with or without BOM, UTF-16 with BOM ("Unicode text"),
Windows-1252 ("Text (Tab delimited)" on a western Windows); line endings
CRLF, LF or CR. A ``#`` inside a cell is data; only a line whose first
character is ``#`` is a comment. Empty trailing cells (a trailing tab) are
dropped; a non-empty cell without a column name, a duplicate column name,
an invisible character or a look-alike letter in a name is refused, naming
the line, the column and the character (code point).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError

#: characters allowed without a second look: printable ASCII
_PLAIN = r"^[\x20-\x7e]*$"
_ODD = re.compile(r"[^\x20-\x7e\t\n]")
#: spaces around a cell (cells are stripped; other white space is refused as invisible)
_PADDING = re.compile(r" *([\t\n]) *")
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_BINARY = {
    b"PK\x03\x04": "an Excel workbook (.xlsx) or another zip archive",
    b"\xd0\xcf\x11\xe0": "an old Excel workbook (.xls)",
}


def decode(path: str | Path, kind: str) -> str:
    """The text of a sheet, whatever encoding Excel saved it in, with ``\\n`` line ends."""
    raw = Path(path).read_bytes()
    save_as = "save it from Excel as 'Text (Tab delimited)' or 'Unicode Text', or as UTF-8 TSV"
    for magic, what in _BINARY.items():
        if raw.startswith(magic):
            raise InputError(str(path), f"the {kind} sheet is {what}, not tab-separated text", save_as)
    encoding = next((enc for bom, enc in _BOMS if raw.startswith(bom)), None)
    if encoding is None and b"\x00" in raw[:4000]:
        raise InputError(
            str(path),
            f"the {kind} sheet looks like UTF-16 text without a byte-order mark (or a binary file)",
            save_as,
        )
    try:
        text = raw.decode(encoding or "utf-8")
    except UnicodeDecodeError as exc:
        if encoding is not None:
            raise InputError(
                str(path),
                f"the {kind} sheet starts like {encoding} text but is not valid {encoding}",
                save_as,
            ) from None
        text = _windows_1252(raw, str(path), kind, exc)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _windows_1252(raw: bytes, path: str, kind: str, exc: UnicodeDecodeError) -> str:
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(
            path,
            f"the {kind} sheet is neither UTF-8 nor Windows-1252 text (byte 0x{raw[exc.start]:02x})",
            "save it as UTF-8 text",
            line=line,
        ) from None


def read_table(path: str | Path, kind: str) -> pd.DataFrame:
    """The sheet as a frame of stripped text cells, indexed by the line number of each row."""
    text = decode(path, kind)
    if any(pad in text for pad in (" \t", "\t ", " \n", "\n ")) or text.startswith(" ") or text.endswith(" "):
        text = _PADDING.sub(r"\1", text).strip(" ")
    grid, lines = _records(text)
    if len(grid) == 0:
        raise InputError(str(path), f"the {kind} sheet is empty", "add a header line and one row per entry")
    header = [str(c).strip() for c in grid[0]]
    while header and header[-1] == "" and not (grid[:, len(header) - 1] != "").any():
        header.pop()
    df = _frame(header, grid[1:, : max(len(header), _last_filled(grid[1:]))], lines[1:], str(path), kind)
    df.attrs["path"] = str(path)
    df.attrs["plain"] = _ODD.search(text) is None
    return df


def _records(text: str) -> tuple[list[list[str]], np.ndarray]:
    """Non-blank, non-comment records and their 1-based line numbers (C parser when the text allows)."""
    if '"' not in text:
        try:
            grid = pd.read_csv(
                io.StringIO(text),
                sep="\t",
                header=None,
                dtype=str,
                na_filter=False,
                skip_blank_lines=False,
                quoting=csv.QUOTE_NONE,
                engine="c",
            )
        except (pd.errors.ParserError, pd.errors.EmptyDataError):
            grid = None
        if grid is not None:
            cells = grid.to_numpy(dtype=object)
            blank = (cells == "").all(axis=1)
            if text.startswith("#") or "\n#" in text:  # a comment line (one record per line here)
                blank |= grid[0].str.startswith("#").to_numpy(dtype=bool)
            keep = np.flatnonzero(~blank)
            return cells[keep], keep + 1
    records = list(csv.reader(io.StringIO(text), delimiter="\t", quotechar='"', strict=False))
    lines = np.asarray(_line_numbers(text, len(records)), dtype=np.int64)
    keep = [i for i, r in enumerate(records) if r and "".join(r).strip() and not r[0].startswith("#")]
    width = max((len(records[i]) for i in keep), default=0)
    grid = np.array([records[i] + [""] * (width - len(records[i])) for i in keep], dtype=object)
    return grid.reshape(len(keep), width), lines[keep]


def _line_numbers(text: str, n_records: int) -> list[int]:
    """1-based line of each csv record (records span one line unless a quoted cell holds a line break)."""
    if '"' not in text:
        return list(range(1, n_records + 1))
    out, line = [], 1
    for record in csv.reader(io.StringIO(text), delimiter="\t", quotechar='"', strict=False):
        out.append(line)
        line += 1 + sum(cell.count("\n") for cell in record)
    return out


def _last_filled(body: np.ndarray) -> int:
    """Number of columns up to the last one holding a non-empty cell."""
    filled = np.flatnonzero((body != "").any(axis=0)) if body.size else []
    return int(filled[-1]) + 1 if len(filled) else 0


def _frame(header: list[str], body: np.ndarray, lines: np.ndarray, path: str, kind: str) -> pd.DataFrame:
    width = body.shape[1]
    head = header + [""] * (width - len(header))
    cells = pd.DataFrame(body, columns=range(width))
    for j, name in enumerate(head):
        if name == "":
            filled = (cells[j] != "").to_numpy()
            if filled.any():
                i = int(np.argmax(filled))
                raise InputError(
                    path,
                    f"cell {j + 1} ('{cells[j].iloc[i]}') has no column name in the header "
                    f"(the header names {sum(1 for h in head if h)} columns)",
                    "name the column on line 1 or delete the stray cell (a trailing tab?)",
                    line=int(lines[i]),
                    column=j + 1,
                )
    named = [j for j, name in enumerate(head) if name]
    _check_header([head[j] for j in named], path, kind)
    out = cells[named]
    out.columns = [head[j] for j in named]
    out.index = pd.Index(lines, dtype="int64")
    return out


def _check_header(names: list[str], path: str, kind: str) -> None:
    folded = [n.casefold() for n in names]
    for j, name in enumerate(names):
        odd = odd_character(name, name_like=True)
        if odd:
            raise InputError(
                path, f"the column name '{name}' {odd}", "retype the column name", line=1, column=j + 1
            )
        if folded.index(folded[j]) != j:
            first = folded.index(folded[j])
            same = "" if names[first] == name else " (ignoring upper/lower case)"
            raise InputError(
                path,
                f"columns {first + 1} and {j + 1} are both named '{name}'{same} in the {kind} sheet",
                "keep one of them or rename the other",
                line=1,
                column=name,
            )


def odd_character(text: str, name_like: bool) -> str:
    """Describe the first invisible or look-alike character of ``text`` ('' if none).

    Invisible: control, format (zero-width space, BOM, joiners), non-breaking
    and other non-ASCII spaces, combining marks. Look-alike (names only): a
    character whose compatibility form is plain ASCII (full-width letters,
    ligatures), or a Greek/Cyrillic letter in a name that also has Latin letters.
    """
    latin = any("a" <= c.lower() <= "z" for c in text)
    for pos, char in enumerate(text, start=1):
        if " " <= char <= "~":
            continue
        code = f"U+{ord(char):04X} {unicodedata.name(char, 'unnamed character')}"
        category = unicodedata.category(char)
        if category in ("Mn", "Me"):
            return f"holds a combining mark {code} at position {pos} (save the text composed, NFC)"
        if category in ("Cc", "Cf", "Zs", "Zl", "Zp", "Co", "Cn"):
            return f"holds an invisible character {code} at position {pos}"
        if not name_like:
            continue
        compat = unicodedata.normalize("NFKC", char)
        script = unicodedata.name(char, "").split(" ")[0]
        if (compat != char and compat.isascii()) or (latin and script in ("GREEK", "CYRILLIC", "ARMENIAN")):
            return (
                f"holds a look-alike character {code} at position {pos} (not the ASCII letter it resembles)"
            )
    return ""


def check_characters(df: pd.DataFrame, name_columns: tuple[str, ...], kind: str) -> None:
    """Refuse invisible characters in any cell and look-alike letters in the name columns."""
    path = df.attrs.get("path")
    if df.attrs.get("plain"):
        return
    for col in df.columns:
        suspect = ~df[col].str.match(_PLAIN).to_numpy(dtype=bool)
        for value in dict.fromkeys(df[col].to_numpy()[suspect]):
            odd = odd_character(value, name_like=col in name_columns)
            if odd:
                i = int(np.flatnonzero(df[col].to_numpy() == value)[0])
                raise InputError(
                    path,
                    f"{col} '{value}' {odd}",
                    f"retype the {col} in the {kind} sheet (and on the plates) with plain characters",
                    line=int(df.index[i]),
                    column=col,
                )
