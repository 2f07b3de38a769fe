"""Snakemake adapter: reference genes (geNorm, NormFinder) and every normalisation strategy."""

import pandas as pd

from ctc_qpcr import sheets
from ctc_qpcr.adapter import run
from ctc_qpcr.normalise import normalise_study
from ctc_qpcr.study_options import normalisation_options
from ctc_qpcr.tables import write_tsv


def main(smk, log):
    options = normalisation_options(smk.params.settings)
    cells = pd.read_parquet(smk.input.cq)
    samples = sheets.samples_frame(sheets.load_samples(smk.input.samples))
    assays = sheets.assays_frame(sheets.load_assays(smk.input.assays))
    paths = zip(smk.output.normalised, smk.output.matrices, strict=True)
    outputs = dict(zip(options.strategies, paths, strict=False))

    def write_strategy(strategy, table, wide):
        # written as soon as the strategy is done: one long table in memory at a time
        path, matrix_path = outputs[strategy]
        write_tsv(table, path)
        write_tsv(wide.reset_index(), matrix_path)
        log.info("%s: %d rows -> %s", strategy, len(table), path)

    result = normalise_study(
        cells,
        samples,
        assays,
        options,
        efficiency_scaled=smk.params.efficiency_scaled,
        on_strategy=write_strategy,
    )
    for note in result.get("notes", []):
        log.info("%s", note)
    write_tsv(result["genorm"], smk.output.genorm)
    write_tsv(result["genorm_v"], smk.output.genorm_v)
    write_tsv(result["normfinder"], smk.output.normfinder)
    write_tsv(result["chosen"], smk.output.chosen)
    write_tsv(result["agreement"], smk.output.agreement)
    write_tsv(result["excluded"], smk.output.excluded)


run(main, snakemake)  # noqa: F821
