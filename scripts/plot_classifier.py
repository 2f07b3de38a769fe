"""Snakemake adapter: out-of-fold ROC curves (legend = metrics.tsv) and calibration plot."""

from ctc_qpcr.adapter import run
from ctc_qpcr.plots_classifier import plot_calibration, plot_roc
from ctc_qpcr.tables import read_tsv


def main(smk, log):
    predictions = read_tsv(smk.input.predictions)
    plot_roc(predictions, smk.output.roc, read_tsv(smk.input.metrics))
    plot_calibration(predictions, smk.output.calibration)


run(main, snakemake)  # noqa: F821
