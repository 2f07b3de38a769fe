"""Snakemake adapter: volcano plot and heatmap per comparison (default strategy),
and one volcano per site of each per-site comparison."""

from ctc_qpcr import sheets
from ctc_qpcr.adapter import run
from ctc_qpcr.plots_de import heatmap, site_volcanoes, volcano
from ctc_qpcr.tables import read_tsv


def main(smk, log):
    samples = sheets.load_samples(smk.input.samples)
    normalised = read_tsv(smk.input.normalised)
    names = list(smk.params.comparisons)
    for name, table_path, volcano_path, heatmap_path in zip(
        names, smk.input.tables, smk.output.volcano, smk.output.heatmap, strict=True
    ):
        table = read_tsv(table_path)
        table = table[table["strategy"] == smk.params.default]
        volcano(table, volcano_path)
        heatmap(normalised, samples, table, heatmap_path)
        per_site = smk.params.site_volcanoes.get(name)
        if per_site:
            site_volcanoes(table, per_site, comparison=name, strategy=smk.params.default)
            log.info("%s: %d per-site volcanoes", name, len(per_site))


run(main, snakemake)  # noqa: F821
