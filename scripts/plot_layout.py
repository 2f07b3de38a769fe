"""Snakemake adapter: Cq and well fate on the physical layout, one SVG per chip/plate;
the report shows at most ``report.layout_chips`` of them (flagged chips first), listed
with every chip in results/qc/layout_index.tsv."""

import shutil
from pathlib import Path

import pandas as pd

from ctc_qpcr.adapter import run
from ctc_qpcr.layout import report_name, report_selection
from ctc_qpcr.plots_layout import draw_batches
from ctc_qpcr.tables import read_tsv, write_tsv


def main(smk, log):
    out = Path(smk.output.layout)
    out.mkdir(parents=True, exist_ok=True)
    summaries = []
    # one batch at a time a process keeps memory bounded; the job's threads = forked processes
    for summary, lines in draw_batches(list(smk.input.wells), out, float(smk.params.lod), smk.threads):
        summaries.append(summary)
        for line in lines:
            log.info(line)
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
