"""Snakemake adapter: KM figure of one follow-up draw (CTC status at the main
threshold, or the change groups since baseline), landmark at that draw."""

from ctc_qpcr.adapter import run
from ctc_qpcr.outcome.dynamics import thr_label
from ctc_qpcr.plots_outcome import logrank_p, plot_km
from ctc_qpcr.tables import read_tsv


def main(smk, log):
    w = smk.wildcards
    suffix = "landmark" if smk.params.landmark else "from baseline"
    lbl = thr_label(float(smk.params.main_threshold))
    if w.kind == "km_draws":
        analysis = f"{w.draw} CTC>={lbl} ({suffix})"
    else:
        analysis = f"{smk.params.baseline}→{w.draw} change at {lbl} ({suffix})"
    log.info("plotting analysis %s", analysis)
    logrank = read_tsv(smk.input.logrank)
    plot_km(read_tsv(smk.input.km), analysis, w.endpoint, smk.output[0],
            logrank_p=logrank_p(logrank, analysis, w.endpoint))


run(main, snakemake)  # noqa: F821
