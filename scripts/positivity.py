"""Snakemake adapter: CTC positivity against healthy donors."""

from ctc_qpcr import sheets
from ctc_qpcr.adapter import run
from ctc_qpcr.positivity import call_positivity, positivity_options
from ctc_qpcr.tables import read_tsv, write_tsv


def main(smk, log):
    options = positivity_options(smk.params.settings)
    result = call_positivity(read_tsv(smk.input.normalised), sheets.load_samples(smk.input.samples), options)
    for note in result.get("notes", []):
        log.info("%s", note)
    write_tsv(result["calls"], smk.output.calls)
    write_tsv(result["sample_calls"], smk.output.samples)
    write_tsv(result["summary"], smk.output.summary)
    write_tsv(result["specificity"], smk.output.specificity)


run(main, snakemake)  # noqa: F821
