"""Snakemake adapter: Kaplan–Meier curves with numbers at risk."""

from ctc_qpcr.adapter import run
from ctc_qpcr.plots_outcome import plot_km
from ctc_qpcr.tables import read_tsv


def main(smk, log):
    plot_km(read_tsv(smk.input.km), smk.output.km)


run(main, snakemake)  # noqa: F821
