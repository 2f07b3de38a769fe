"""Reading instrument exports as text, whatever the instrument or Excel did to them.

Handles: UTF-8 with or without BOM, UTF-16 (LE/BE, with BOM, as Windows
software and Excel "Unicode text" write it), Latin-1/CP1252 fallback, and
CRLF / CR-only (old Mac, ABI SDS) line endings. Every reader in this package
goes through :func:`load_text`, so line numbers in error messages always match
what a text editor shows.
"""

from __future__ import annotations

import codecs
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

#: Largest export we read into memory (a 96.96 BioMark table is ~1.5 MB).
MAX_TEXT_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class Text:
    """Decoded export: the lines (without line endings) and how it was stored."""

    path: str
    lines: list[str]
    encoding: str
    newline: str  # "\n", "\r\n" or "\r"

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


_BINARY_MAGIC = {
    b"\xd0\xcf\x11\xe0": "an Excel 97-2003 workbook (.xls)",
    b"PK\x03\x04": "a zip archive (Excel .xlsx, or a zipped RDML)",
    b"%PDF": "a PDF document",
}


def _decode(raw: bytes, path: str) -> tuple[str, str]:
    for magic, what in _BINARY_MAGIC.items():
        if raw.startswith(magic):
            raise InputError(
                path,
                f"this is {what}, not a text export",
                "export the results table as CSV/TXT from the instrument software "
                "(RDML files: set format rdml)",
            )
    if raw.startswith(codecs.BOM_UTF8):
        return raw[len(codecs.BOM_UTF8) :].decode("utf-8", errors="strict"), "utf-8-sig"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise InputError(
                path,
                "the file starts like UTF-16 text but is not valid UTF-16",
                "re-export it as UTF-8 or UTF-16 text",
            ) from None
    # UTF-16 without BOM: every other byte is NUL in mostly-ASCII text.
    head = raw[:4000]
    if head and head.count(b"\x00") > len(head) // 3:
        enc = "utf-16-le" if head[1:2] == b"\x00" else "utf-16-be"
        try:
            return raw.decode(enc), enc
        except UnicodeDecodeError:
            raise InputError(
                path,
                "this is a binary file, not a text export",
                "export the results as CSV/TXT from the instrument software",
            ) from None
    if b"\x00" in head:
        raise InputError(
            path,
            "this is a binary file, not a text export",
            "export the results as CSV/TXT from the instrument software (or give RDML/zip as format rdml)",
        )
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace"), "cp1252"


def load_text(path: str | os.PathLike, max_bytes: int = MAX_TEXT_BYTES) -> Text:
    """Read ``path`` and return its lines with the encoding and line ending normalised."""
    p = Path(path)
    if not p.exists():
        raise InputError(
            str(path),
            "file not found",
            "check the path column of plates.tsv (paths are relative to the working directory)",
        )
    size = p.stat().st_size
    if size == 0:
        raise InputError(str(path), "the file is empty", "re-export the plate from the instrument software")
    if size > max_bytes:
        raise InputError(
            str(path),
            f"the file is {size} bytes, larger than the {max_bytes}-byte limit",
            "split the export or raise the limit",
        )
    raw = p.read_bytes()
    text, encoding = _decode(raw, str(path))
    if "\r\n" in text:
        newline = "\r\n"
    elif "\r" in text and "\n" not in text:
        newline = "\r"
    else:
        newline = "\n"
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not any(line.strip(' \t,;"') for line in lines):
        raise InputError(
            str(path),
            "the file has no content (only blank lines or empty cells)",
            "re-export the plate from the instrument software",
        )
    return Text(path=str(path), lines=lines, encoding=encoding, newline=newline)
