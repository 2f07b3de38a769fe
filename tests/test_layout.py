"""Layout heat maps: well fates in the lab's words, deterministic SVG per chip/plate."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ctc_qpcr.layout import grid, positions
from ctc_qpcr.plots_layout import plot_layout, well_fate_labels


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


def _boxes(fig):
    return [ax.get_position().bounds for ax in fig.axes]


def test_cq_and_fate_panels_align():
    """Same heat-map size; stacked panels share x (same left edge), the colour
    bar sits right of the Cq panel, not inside its width."""
    from ctc_qpcr.plots_layout import layout_figure
    from ctc_qpcr.plotting import plt

    chip = _chip()
    fig = layout_figure(chip, "chip01", 35)
    (x0, y0, w0, h0), (x1, y1, w1, h1), (xc, _, _, _) = _boxes(fig)
    assert (x0, w0, h0) == (x1, w1, h1) and y0 > y1 + h1
    assert fig.axes[0].get_shared_x_axes().joined(fig.axes[0], fig.axes[1])
    assert xc >= x0 + w0
    plt.close(fig)
    # 8 × 12 plate: wider than tall too; a list of wells (no geometry): side by side
    tall = chip.head(10).assign(well=[f"rotor{i}" for i in range(10)])
    fig = layout_figure(tall, "run1", 35)
    (x0, y0, w0, h0), (x1, y1, w1, h1), (xc, _, _, _) = _boxes(fig)
    assert (y0, w0, h0) == (y1, w1, h1) and x1 > xc > x0 + w0 - 1e-9
    plt.close(fig)


def test_positions_fall_back_when_one_well_id_does_not_match():
    """A chip (or plate) layout only when every id matches; else the wells in sorted order."""
    where, geometry = positions(pd.Series(["S01-A01", "S02-A03", "A1"]))
    assert (geometry.kind, geometry.rows, geometry.columns) == ("list", 3, 1)
    assert where["row"].tolist() == [2, 3, 1]
    where, geometry = positions(pd.Series(["aa1", "B2", "A01 "]))  # trailing blank: no plate
    assert geometry.kind == "list"
    where, geometry = positions(pd.Series(["aa1", "B2"]))
    assert (geometry.kind, geometry.rows, geometry.columns) == ("plate", 32, 48)
    assert where["row"].tolist() == [27, 2] and where["position"].tolist() == [27 * 48 - 47, 50]
    assert positions(pd.Series([], dtype=object))[1].kind == "list"


def _variants() -> list[tuple[str, pd.DataFrame]]:
    """Chips that differ in what the reused figure must redraw: Cq range, fates and their
    colours (one more, one fewer reason), title length, a plate between the chips, a chip
    without any detected well, one without any Cq."""
    chip = _chip()
    more = chip.copy()
    more.loc[::97, ["fate", "reason"]] = ["excluded", "EXPFAIL (no amplification)"]
    fewer = chip.assign(fate="kept", reason="", cq=chip["cq"] - 10)
    plate = chip.head(96).assign(well=[f"{r}{c}" for r in "ABCDEFGH" for c in range(1, 13)])
    silent = chip.assign(state="NOAMP", cq=np.nan)
    no_cq = chip.assign(state="CALC", cq=np.nan)  # no Cq at all: nothing to scale
    return [
        ("chip01 (batch B1)", chip),
        ("chip02 (batch B1)", more),
        ("plate1 (batch B1)", plate),
        ("a-longer-chip-name-03 (batch B2)", fewer),
        ("chip04 (batch B2)", silent),
        ("chip05 (batch B2)", no_cq),
        ("chip06 (batch B2)", chip.sample(frac=1, random_state=3)),
    ]


def test_layout_board_draws_the_same_bytes_as_a_figure_per_chip(tmp_path):
    from ctc_qpcr.plots_layout import LayoutBoard

    with LayoutBoard(35) as board:
        for i, (title, wells) in enumerate(_variants()):
            board.save(wells, tmp_path / f"board{i}.svg", title)
            plot_layout(wells, tmp_path / f"alone{i}.svg", title, 35)
            same = (tmp_path / f"board{i}.svg").read_bytes() == (tmp_path / f"alone{i}.svg").read_bytes()
            assert same, title
    assert b"EXPFAIL" in (tmp_path / "board1.svg").read_bytes()
    assert b"EXPFAIL" not in (tmp_path / "board3.svg").read_bytes()


def test_forked_workers_draw_the_same_files_as_one_process(tmp_path):
    """threads: 2 = two processes, one batch at a time each: same SVGs, summaries, log lines."""
    from ctc_qpcr.plots_layout import draw_batches

    paths = []
    for batch, (title, wells) in zip(["B1", "B2", "B3"], _variants()[:3], strict=True):
        table = wells.assign(batch=batch, plate=title.split()[0])
        table = pd.concat([table, table.assign(plate=table["plate"] + "b")], ignore_index=True)
        paths.append(tmp_path / f"{batch}.parquet")
        table.to_parquet(paths[-1])
    runs = {}
    for workers in (1, 2):
        out = tmp_path / f"workers{workers}"
        out.mkdir()
        runs[workers] = list(draw_batches(paths, out, 35.0, workers))
    for (one, lines_one), (two, lines_two) in zip(runs[1], runs[2], strict=True):
        pd.testing.assert_frame_equal(one, two)
        assert lines_one == lines_two
    assert [line for _, lines in runs[1] for line in lines][:2] == [
        "layout of chip01: 2304 wells",
        "layout of chip01b: 2304 wells",
    ]
    names = sorted(p.name for p in (tmp_path / "workers1").iterdir())
    assert len(names) == 6 and names == sorted(p.name for p in (tmp_path / "workers2").iterdir())
    for name in names:
        assert (tmp_path / "workers1" / name).read_bytes() == (tmp_path / "workers2" / name).read_bytes()
