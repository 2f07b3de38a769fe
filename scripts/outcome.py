"""Snakemake adapter: CTC counts against outcome (KM, log-rank, Cox, dynamics, associations)."""

from ctc_qpcr import sheets
from ctc_qpcr.adapter import run, write_tables
from ctc_qpcr.outcome import outcome_options, run_outcome
from ctc_qpcr.outcome.inputs import read_table
from ctc_qpcr.tables import read_tsv


def main(smk, log):
    options = outcome_options(smk.params.settings)
    given = set(smk.input.keys())
    joined = {}
    if "samples" in given:  # a qPCR study: join its positivity (and expression) with outcome
        joined["samples"] = sheets.load_samples(smk.input.samples)
        joined["samples_path"] = smk.input.samples
        joined["positivity"] = read_tsv(smk.input.positivity)
    if "normalised" in given:
        joined["expression"] = read_tsv(smk.input.normalised)
        joined["expression_path"] = smk.input.normalised
    log.info(
        "outcome stage: %s and %s; joined with qPCR: %s", smk.input.counts, smk.input.clinical, bool(joined)
    )
    result = run_outcome(read_table(smk.input.counts), read_table(smk.input.clinical), options, **joined)
    write_tables(result, smk.output, smk.output.keys())  # every named output is a table of the stage


run(main, snakemake)  # noqa: F821
