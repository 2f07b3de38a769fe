"""Snakemake adapter: every configured comparison on every normalisation strategy."""

from collections.abc import Mapping

import pandas as pd

from ctc_qpcr import sheets
from ctc_qpcr.adapter import run
from ctc_qpcr.differential import run_differential
from ctc_qpcr.differential_tables import read_normalised
from ctc_qpcr.differential_workers import current_rss, strategy_workers, tsv_rows
from ctc_qpcr.study_options import differential_options
from ctc_qpcr.tables import write_tsv


class NormalisedTables(Mapping):
    """strategy -> its normalised table, read when asked for (one strategy in memory at a time)."""

    def __init__(self, paths: dict):
        self.paths = paths

    def __getitem__(self, strategy):
        return read_normalised(self.paths[strategy])

    def __contains__(self, strategy):  # Mapping's default reads the table to answer (issue 17)
        return strategy in self.paths

    def __iter__(self):
        return iter(self.paths)

    def __len__(self):
        return len(self.paths)


def main(smk, log):
    options = differential_options(smk.params.settings)
    normalised = NormalisedTables(dict(zip(smk.params.strategies, smk.input.normalised, strict=True)))
    samples = sheets.load_samples(smk.input.samples)
    # strategies in forked processes, one per thread, while their memory fits (peak RSS per row)
    rows = [tsv_rows(path) for path in smk.input.normalised]
    workers = strategy_workers(smk.threads, rows, current_rss())
    log.info("%d strategies run by %d process(es)", len(normalised), min(workers, len(normalised)) or 1)
    results = run_differential(
        normalised,
        samples,
        options.comparisons,
        smk.params.default,
        options,
        workers=workers,
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
