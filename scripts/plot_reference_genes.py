"""Snakemake adapter: geNorm M per step, V bars with the cut-off, NormFinder ρ."""

from ctc_qpcr.adapter import run
from ctc_qpcr.plots_refgenes import plot_genorm_m, plot_genorm_v, plot_normfinder
from ctc_qpcr.tables import read_tsv


def main(smk, log):
    plot_genorm_m(read_tsv(smk.input.genorm), smk.output.m)
    plot_genorm_v(read_tsv(smk.input.genorm_v), smk.output.v, cutoff=smk.params.v_cutoff)
    plot_normfinder(read_tsv(smk.input.normfinder), smk.output.rho)


run(main, snakemake)  # noqa: F821
