"""Snakemake adapter: Cq and well fate on the physical layout, one SVG per chip/plate;
the report shows at most ``report.layout_chips`` of them (flagged chips first), listed
with every chip in results/qc/layout_index.tsv."""

import shutil
from pathlib import Path

import pandas as pd

from ctc_qpcr.adapter import run
from ctc_qpcr.layout import chip_summary, report_name, report_selection
from ctc_qpcr.plots_layout import LayoutBoard
from ctc_qpcr.tables import read_tsv, write_tsv

COLUMNS = ["batch", "plate", "well", "cq", "state", "fate", "reason"]


def main(smk, log):
    out = Path(smk.output.layout)
    out.mkdir(parents=True, exist_ok=True)
    summaries = []
    with LayoutBoard(float(smk.params.lod)) as board:
        for path in smk.input.wells:  # one batch at a time keeps memory bounded
            wells = pd.read_parquet(path, columns=COLUMNS)
            summaries.append(chip_summary(wells))
            for plate, group in wells.groupby("plate", sort=True):
                board.save(group, out / f"{plate}.svg", f"{plate} (batch {group['batch'].iloc[0]})")
                log.info("layout of %s: %d wells", plate, len(group))
    index = report_selection(
        pd.concat(summaries, ignore_index=True), read_tsv(smk.input.calibration), int(smk.params.max_chips)
    )
    shown = Path(smk.output.report_layout)
    shown.mkdir(parents=True, exist_ok=True)
    for rank, plate in zip(index["rank"], index["plate"], strict=True):
        if rank <= int(smk.params.max_chips):
            shutil.copyfile(out / f"{plate}.svg", shown / report_name(int(rank), plate))
    write_tsv(index, smk.output.index)
    log.info(
        "%d chips/plates, %d flagged, %d in the report (report.layout_chips = %s)",
        len(index),
        int((index["flagged"] != "").sum()),
        int(index["in_report"].sum()),
        smk.params.max_chips,
    )


run(main, snakemake)  # noqa: F821
