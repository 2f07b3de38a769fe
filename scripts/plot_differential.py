"""Snakemake adapter: volcano plot and heatmap per comparison (default strategy)."""

from ctc_qpcr import sheets
from ctc_qpcr.adapter import run
from ctc_qpcr.plots_de import plot_heatmap, plot_volcano
from ctc_qpcr.tables import read_tsv


def main(smk, log):
    samples = sheets.load_samples(smk.input.samples)
    matrix = read_tsv(smk.input.matrix).set_index("sample")
    for table_path, volcano, heatmap in zip(smk.input.tables, smk.output.volcano, smk.output.heatmap):
        table = read_tsv(table_path)
        table = table[table["strategy"] == smk.params.default] if "strategy" in table else table
        plot_volcano(table, volcano)
        plot_heatmap(table, matrix, samples, heatmap)


run(main, snakemake)  # noqa: F821
