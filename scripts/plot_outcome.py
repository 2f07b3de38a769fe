"""Snakemake adapter: the headline KM figures (baseline CTC status at the main
threshold, PFS and OS, numbers at risk) and the positivity rates per draw."""

from ctc_qpcr.adapter import run
from ctc_qpcr.outcome.dynamics import thr_label
from ctc_qpcr.plots_outcome import logrank_p, plot_km, plot_positivity
from ctc_qpcr.tables import read_tsv


def main(smk, log):
    km = read_tsv(smk.input.km)
    logrank = read_tsv(smk.input.logrank)
    analysis = f"{smk.params.baseline} CTC>={thr_label(float(smk.params.main_threshold))}"
    log.info("plotting analysis %s", analysis)
    for endpoint, path in (("pfs", smk.output.km), ("os", smk.output.km_os)):
        plot_km(km, analysis, endpoint, path, logrank_p=logrank_p(logrank, analysis, endpoint))
    plot_positivity(read_tsv(smk.input.positivity_rates), smk.output.positivity)


run(main, snakemake)  # noqa: F821
