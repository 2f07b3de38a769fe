"""Snakemake adapter: forest plot of the main hazard ratio per subgroup (one endpoint)."""

from ctc_qpcr.adapter import run
from ctc_qpcr.plots_outcome import plot_forest
from ctc_qpcr.tables import read_tsv


def main(smk, log):
    plot_forest(read_tsv(smk.input.subgroups), smk.wildcards.endpoint, smk.output[0])


run(main, snakemake)  # noqa: F821
