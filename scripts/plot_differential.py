"""Snakemake adapter: volcano plot and heatmap per comparison (default strategy)."""

from ctc_qpcr import sheets
from ctc_qpcr.adapter import run
from ctc_qpcr.plots_de import heatmap, volcano
from ctc_qpcr.tables import read_tsv


def main(smk, log):
    samples = sheets.load_samples(smk.input.samples)
    normalised = read_tsv(smk.input.normalised)
    for table_path, volcano_path, heatmap_path in zip(
        smk.input.tables, smk.output.volcano, smk.output.heatmap, strict=True
    ):
        table = read_tsv(table_path)
        table = table[table["strategy"] == smk.params.default]
        volcano(table, volcano_path)
        heatmap(normalised, samples, table, heatmap_path)


run(main, snakemake)  # noqa: F821
