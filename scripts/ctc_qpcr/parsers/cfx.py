"""Bio-Rad CFX Manager / CFX Maestro "Quantification Cq Results" export.

Comma-separated (semicolon-separated with decimal commas on European Windows),
often with an empty first column::

    ,Well,Fluor,Target,Content,Sample,Biological Set Name,Cq,Cq Mean,Cq Std. Dev,Starting Quantity (SQ),...
    ,A01,SYBR,GLP1,Unkn-01,1-SI1,,37.42,36.22,1.697,2.183E-03,...
    ,A07,SYBR,GLP1,NTC,,,N/A,0.00,0.000,N/A,...

``Cq`` is ``NaN`` or ``N/A`` when there is no amplification. ``Content`` gives the
sample type (Unkn → Unknown, Std → Standard, NTC, Neg Ctrl, Pos Ctrl, NRT;
anything else is kept as written), ``Starting Quantity (SQ)`` the quantity.
A well read in several fluorophores (multiplex) gets the dye appended to the
well id (``A01-FAM``) so ids stay unique.
"""

from __future__ import annotations

import pandas as pd

from .text import Text, load_text
from .toolkit import Block, cq_and_quantity, find_header, results_block, wells_frame
from .vocabulary import find_column, incomplete_groups, multiplex_wells, sample_type_name

_REQUIRED = (("well",), ("fluor",), ("target",), ("content",), ("sample",), ("cq",))
QUANTITY_NAMES = ("starting quantity (sq)", "sq", "starting quantity")
REEXPORT = "re-export 'Quantification Cq Results' from CFX Manager / CFX Maestro as CSV or text"


def sniff(text: Text) -> bool:
    """True when a header with Well, Fluor, Target, Content, Sample and Cq is found."""
    return find_header(text, _REQUIRED, limit=60) is not None


def read(path) -> pd.DataFrame:
    """Read a CFX Quantification Cq Results export into the Wells columns."""
    return parse(load_text(path))


def parse(text: Text) -> pd.DataFrame:
    """Wells table from a loaded CFX export."""
    found = find_header(text, _REQUIRED, limit=60)
    problem = "no CFX results header found (a line with Well, Fluor, Target, Content, Sample and Cq)"
    return _wells(text, results_block(text, found, problem, REEXPORT))


def _wells(text: Text, block: Block) -> pd.DataFrame:
    names, cells = block.names, block.cells
    col = {
        key: find_column(names, synonyms)
        for key, synonyms in (
            ("well", ("well",)),
            ("fluor", ("fluor",)),
            ("target", ("target",)),
            ("content", ("content",)),
            ("sample", ("sample",)),
            ("cq", ("cq",)),
            ("quantity", QUANTITY_NAMES),
        )
    }
    numbers, decimal = cq_and_quantity(text, block, col["cq"], col["quantity"])
    frame = wells_frame(
        len(cells),
        stripped=True,
        well=multiplex_wells(cells[col["well"]], cells[col["fluor"]]),
        sample=cells[col["sample"]],
        assay=cells[col["target"]],
        sample_type=sample_type_name(cells[col["content"]]),
        line=block.line,
        **numbers,
    )
    frame.attrs["cq_column"] = names[col["cq"]]
    frame.attrs["incomplete_groups"] = incomplete_groups(frame, block, decimal)
    return frame
