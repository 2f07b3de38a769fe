"""Snakemake adapter: reference genes (geNorm, NormFinder) and every normalisation strategy."""

import functools

import pandas as pd

from ctc_qpcr import sheets
from ctc_qpcr.adapter import logged_note, run, write_tables
from ctc_qpcr.normalise import normalise_study
from ctc_qpcr.normalise_io import read_study_cells, write_strategy
from ctc_qpcr.study_options import normalisation_options
from ctc_qpcr.tables import write_tsv


def main(smk, log):
    options = normalisation_options(smk.params.settings)
    samples = sheets.samples_frame(sheets.load_samples(smk.input.samples))
    assays = sheets.assays_frame(sheets.load_assays(smk.input.assays))
    paths = zip(smk.output.normalised, smk.output.matrices, strict=True)
    outputs = dict(zip(options.strategies, paths, strict=False))

    shared = {}  # the Cq column's text, the same in every strategy

    def on_strategy(strategy, table, wide):
        # written as soon as the strategy is done: one long table in memory at a time
        write_strategy(table, wide, outputs[strategy], shared)
        log.info("%s: %d rows -> %s", strategy, len(table), outputs[strategy][0])

    result = normalise_study(
        # the cells merge_batches writes, read from the batches (read and freed inside normalise_study)
        functools.partial(read_study_cells, list(smk.input.cells), smk.params.on_panel_mismatch),
        samples,
        assays,
        options,
        efficiency_scaled=smk.params.efficiency_scaled,
        on_strategy=on_strategy,
    )
    notes = result.get("notes", [])
    for note in notes:
        log.info("%s", logged_note(note, smk.output.notes))
    write_tsv(pd.DataFrame({"note": notes}, dtype=object), smk.output.notes)
    write_tables(result, smk.output, ["genorm", "genorm_v", "normfinder", "chosen", "agreement", "excluded"])


run(main, snakemake)  # noqa: F821
