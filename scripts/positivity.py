"""Snakemake adapter: CTC positivity against healthy donors."""

from ctc_qpcr import sheets
from ctc_qpcr.adapter import run, write_tables
from ctc_qpcr.positivity import NORMALISED_COLUMNS, call_positivity, positivity_options
from ctc_qpcr.tables import read_tsv, tsv_parts

#: Rows of the per-marker calls turned into text at a time (issue 17: peak memory).
CALLS_BLOCK = 1 << 20


def main(smk, log):
    options = positivity_options(smk.params.settings)
    normalised = read_tsv(smk.input.normalised, usecols=NORMALISED_COLUMNS)
    result = call_positivity(normalised, sheets.load_samples(smk.input.samples), options)
    for note in result.get("notes", []):
        log.info("%s", note)
    calls = result.pop("calls")
    with tsv_parts(smk.output.calls) as add:  # the bytes of write_tsv, a block at a time
        for start in range(0, max(len(calls), 1), CALLS_BLOCK):
            add(calls.iloc[start : start + CALLS_BLOCK])
    names = {"sample_calls": "samples", "summary": "summary", "specificity": "specificity"}
    write_tables(result, smk.output, names)


run(main, snakemake)  # noqa: F821
