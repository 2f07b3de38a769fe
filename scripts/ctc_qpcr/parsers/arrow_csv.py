"""A table body read by Arrow's CSV reader: pandas' C parser's text cells, at about half the CPU.

:func:`ctc_qpcr.parsers.toolkit.read_block` asks it first; it answers only for the plain case
(one-character delimiter, no double quote, every row of the header's width) and says None
for anything else, which pandas reads as before.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv


def unquoted_cells(raw: bytes, sep: str, n: int, usecols: list[int] | None) -> pd.DataFrame | None:
    """The cells of a body without a double quote, every row of ``n`` fields, read by Arrow's CSV
    reader (one thread): what pandas' C parser gives there (text as written), at about half the CPU.
    None when Arrow cannot (quotes, spaces as delimiter, invalid UTF-8): the caller asks pandas."""
    if sep not in (",", ";", "\t") or b'"' in raw:
        return None
    names = [str(k) for k in range(n)]
    wanted = list(range(n)) if usecols is None else list(usecols)
    try:
        table = pcsv.read_csv(
            io.BytesIO(raw),
            read_options=pcsv.ReadOptions(column_names=names, use_threads=False, block_size=max(len(raw), 1)),
            parse_options=pcsv.ParseOptions(delimiter=sep, quote_char=False, ignore_empty_lines=False),
            convert_options=pcsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                include_columns=[names[k] for k in wanted],
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return pd.DataFrame({k: _texts(table.column(i)) for i, k in enumerate(wanted)}, copy=False)  # not stacked


def _texts(column: pa.ChunkedArray) -> np.ndarray:
    """A text column as Python strings, one object per distinct text as pandas' C parser makes
    them: a chip's 9,216 cells of 50 sample names are 50 objects, not 9,216 (memory, and each
    string's hash is computed once for the many look-ups by name that follow)."""
    encoded = column.combine_chunks().dictionary_encode()
    return encoded.dictionary.to_numpy(zero_copy_only=False)[encoded.indices.to_numpy()]
