"""Snakemake adapter: CTC positivity against healthy donors."""

from ctc_qpcr import sheets
from ctc_qpcr.adapter import run, write_tables
from ctc_qpcr.positivity import NORMALISED_COLUMNS, call_positivity, positivity_options, write_calls
from ctc_qpcr.tables import read_tsv


def main(smk, log):
    options = positivity_options(smk.params.settings)
    normalised = read_tsv(smk.input.normalised, usecols=NORMALISED_COLUMNS)
    result = call_positivity(normalised, sheets.load_samples(smk.input.samples), options)
    for note in result.get("notes", []):
        log.info("%s", note)
    write_calls(result.pop("calls"), smk.output.calls)
    names = {"sample_calls": "samples", "summary": "summary", "specificity": "specificity"}
    write_tables(result, smk.output, names)


run(main, snakemake)  # noqa: F821
