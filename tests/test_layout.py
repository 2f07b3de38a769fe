"""Layout heat maps: well fates in the lab's words, deterministic SVG per chip/plate."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ctc_qpcr.layout import grid, positions
from ctc_qpcr.plots_qc import plot_layout, well_fate_labels


def _chip() -> pd.DataFrame:
    wells = [f"S{s:02d}-A{a:02d}" for s in range(1, 49) for a in range(1, 49)]
    n = len(wells)
    rng = np.random.default_rng(1)
    state = np.where(rng.random(n) < 0.3, "NOAMP", "CALC")
    fate = np.where(rng.random(n) < 0.05, "excluded", "kept")
    reason = np.where(fate == "excluded", "HIGHDNA (grade F, %DNA 91.2, VPA CALC)", "")
    cq = np.where(state == "CALC", rng.uniform(15, 34, n), np.nan)
    return pd.DataFrame({"well": wells, "cq": cq, "state": state, "fate": fate, "reason": reason})


def test_fate_labels_use_reason_codes():
    chip = _chip()
    labels = well_fate_labels(chip)
    assert set(labels) == {"kept, detected", "kept, not detected", "excluded: HIGHDNA"}
    assert (labels == "excluded: HIGHDNA").sum() == (chip["fate"] == "excluded").sum()


def test_grid_places_values_at_their_inlets():
    chip = _chip()
    where, geometry = positions(chip["well"])
    values = grid(pd.Series(np.arange(len(chip), dtype=float)), where, geometry)
    assert values.shape == (48, 48)
    assert values[0, 0] == 0 and values[1, 0] == 48 and values[47, 47] == len(chip) - 1


def test_layout_svg_is_deterministic(tmp_path):
    chip = _chip()
    plot_layout(chip, tmp_path / "a.svg", "chip01 (batch B1)", 35)
    plot_layout(chip.sample(frac=1, random_state=2), tmp_path / "b.svg", "chip01 (batch B1)", 35)
    first = (tmp_path / "a.svg").read_bytes()
    assert first == (tmp_path / "b.svg").read_bytes()
    assert b"48.48 dynamic array" in first and b"excluded: HIGHDNA" in first
