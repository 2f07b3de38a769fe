"""Snakemake adapter: Kaplan–Meier curves with numbers at risk (baseline CTC status, PFS and OS)."""

from ctc_qpcr.adapter import run
from ctc_qpcr.plots_outcome import plot_km
from ctc_qpcr.tables import read_tsv


def main(smk, log):
    km = read_tsv(smk.input.km)
    logrank = read_tsv(smk.input.logrank)
    analyses = sorted(km["analysis"].unique())
    baseline = [a for a in analyses if a.startswith(smk.params.baseline)] or analyses
    analysis = baseline[0]
    log.info("plotting analysis %s", analysis)
    for endpoint, path in (("pfs", smk.output.km), ("os", smk.output.km_os)):
        hit = logrank[(logrank["analysis"] == analysis) & (logrank["endpoint"] == endpoint)]
        p = float(hit["p"].iloc[0]) if len(hit) else None
        plot_km(km, analysis, endpoint, path, logrank_p=p)


run(main, snakemake)  # noqa: F821
