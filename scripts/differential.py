"""Snakemake adapter: every configured comparison on every normalisation strategy."""

import pandas as pd

from ctc_qpcr import sheets
from ctc_qpcr.adapter import run
from ctc_qpcr.differential import run_differential
from ctc_qpcr.study_options import differential_options
from ctc_qpcr.tables import read_tsv, write_tsv

#: the columns of a normalised table the comparisons read
COLUMNS = ["sample", "gene", "dcq", "detected"]


def main(smk, log):
    options = differential_options(smk.params.settings)
    normalised = {
        strategy: read_tsv(path, usecols=COLUMNS)
        for strategy, path in zip(smk.params.strategies, smk.input.normalised, strict=True)
    }
    results = run_differential(
        normalised,
        sheets.load_samples(smk.input.samples),
        options.comparisons,
        smk.params.default,
        options,
    )
    notes = []
    for spec, path in zip(options.comparisons, smk.output.tables, strict=True):
        table, comparison_notes = results[spec["name"]]
        for note in comparison_notes:
            log.info("%s: %s", spec["name"], note)
            notes.append({"comparison": spec["name"], "note": note})
        write_tsv(table, path)
    write_tsv(pd.DataFrame(notes, columns=["comparison", "note"]), smk.output.notes)


run(main, snakemake)  # noqa: F821
