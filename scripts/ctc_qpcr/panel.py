"""Assay panels across batches, checked when the batches are merged (docs/methods.md §0.1).

Every batch of a study is expected to measure the same assays. An assay missing from
some batches would enter the study tables for part of the samples only, so the merge
either stops (``merge.on_panel_mismatch: stop``, the default) with a message naming
the assays and the batches that lack them, or keeps each such assay for the batches
that measured it (``restrict``), flags its cells ``panel_partial`` and says so in a note.
"""

from __future__ import annotations

import pandas as pd

from .errors import ConfigError

FLAG = "panel_partial"


def panel_gaps(cells: pd.DataFrame) -> pd.DataFrame:
    """Assays not measured in every batch: one row per assay with ``measured_in`` and ``missing_from``."""
    batches = sorted(set(cells["batch"].astype(str)))
    seen = cells[["batch", "assay"]].astype(str).drop_duplicates()
    per_assay = seen.groupby("assay", sort=True)["batch"].agg(lambda b: sorted(set(b)))  # one row per assay
    gaps = [
        {
            "assay": a,
            "measured_in": ", ".join(got),
            "missing_from": ", ".join(b for b in batches if b not in got),
        }
        for a, got in per_assay.items()
        if len(got) < len(batches)
    ]
    return pd.DataFrame(gaps, columns=["assay", "measured_in", "missing_from"])


def check_panel(cells: pd.DataFrame, on_panel_mismatch: str = "stop") -> tuple[pd.DataFrame, list[str]]:
    """Apply ``merge.on_panel_mismatch`` to the merged cells; returns ``(cells, notes)``."""
    if on_panel_mismatch not in ("stop", "restrict"):
        raise ConfigError(
            f"config merge.on_panel_mismatch: {on_panel_mismatch!r} is not one of stop, restrict"
        )
    gaps = panel_gaps(cells)
    if gaps.empty:
        return cells, []
    lines = [
        f"{r.assay} (missing from batch {r.missing_from}; measured in {r.measured_in})"
        for r in gaps.itertuples()
    ]
    if on_panel_mismatch == "stop":
        raise ConfigError(
            f"{len(gaps)} assay(s) not measured in every batch: {'; '.join(lines)} — add them to the "
            "chips of those batches (or fix a misspelt assay name in the export or assays.tsv), or set "
            "merge.on_panel_mismatch: restrict in config/config.yaml to keep each assay for the batches "
            f"that have it (its cells flagged {FLAG})"
        )
    hit = cells["assay"].astype(str).isin(set(gaps["assay"])).to_numpy()
    # imported here: replicates pulls in scipy (~1 s), which a merge without panel gaps never needs
    from .replicates import join_flag_columns

    cells = cells.copy()
    cells.loc[hit, "flags"] = join_flag_columns(pd.DataFrame({"f": cells.loc[hit, "flags"], "p": FLAG}))
    notes = [
        f"assay kept only in the batches that measured it (cells flagged {FLAG}): {line}" for line in lines
    ]
    return cells, notes
