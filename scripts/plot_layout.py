"""Snakemake adapter: Cq and well fate on the physical layout, one SVG per chip/plate."""

from pathlib import Path

import pandas as pd

from ctc_qpcr.adapter import run
from ctc_qpcr.plots_layout import plot_layout

COLUMNS = ["batch", "plate", "well", "cq", "state", "fate", "reason"]


def main(smk, log):
    out = Path(smk.output.layout)
    out.mkdir(parents=True, exist_ok=True)
    lod = float(smk.params.lod)
    for path in smk.input.wells:  # one batch at a time keeps memory bounded
        wells = pd.read_parquet(path, columns=COLUMNS)
        for plate, group in wells.groupby("plate", sort=True):
            plot_layout(group, out / f"{plate}.svg", f"{plate} (batch {group['batch'].iloc[0]})", lod)
            log.info("layout of %s: %d wells", plate, len(group))


run(main, snakemake)  # noqa: F821
