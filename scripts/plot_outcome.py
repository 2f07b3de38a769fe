"""Snakemake adapter: every outcome figure in one job — the headline KM figures
(baseline CTC status at the main threshold, PFS and OS, numbers at risk), the
positivity rates per draw, the KM figure of each follow-up draw (CTC status at
the main threshold, or the change groups since baseline; landmark at that draw)
and the forest plot of the main hazard ratio per subgroup (docs/methods.md §8)."""

from ctc_qpcr.adapter import run
from ctc_qpcr.outcome.dynamics import thr_label
from ctc_qpcr.plots_outcome import logrank_p, plot_forest, plot_km, plot_positivity
from ctc_qpcr.tables import read_tsv


def draw_analysis(kind: str, draw: str, baseline: str, main_threshold: float, landmark: bool) -> str:
    """The ``analysis`` label of km.tsv/logrank.tsv for one follow-up figure."""
    suffix = "landmark" if landmark else "from baseline"
    lbl = thr_label(float(main_threshold))
    if kind == "km_draws":
        return f"{draw} CTC>={lbl} ({suffix})"
    return f"{baseline}→{draw} change at {lbl} ({suffix})"


def main(smk, log):
    p = smk.params
    km = read_tsv(smk.input.km)
    logrank = read_tsv(smk.input.logrank)
    analysis = f"{p.baseline} CTC>={thr_label(float(p.main_threshold))}"
    log.info("plotting analysis %s", analysis)
    for endpoint, path in (("pfs", smk.output.km), ("os", smk.output.km_os)):
        plot_km(km, analysis, endpoint, path, logrank_p=logrank_p(logrank, analysis, endpoint))
    plot_positivity(read_tsv(smk.input.positivity_rates), smk.output.positivity)
    for (kind, endpoint, draw), path in zip(p.draw_plots, smk.output.draws, strict=True):
        analysis = draw_analysis(kind, draw, p.baseline, p.main_threshold, p.landmark)
        log.info("plotting analysis %s (%s) -> %s", analysis, endpoint, path)
        plot_km(km, analysis, endpoint, path, logrank_p=logrank_p(logrank, analysis, endpoint))
    if p.forest_endpoints:
        subgroups = read_tsv(smk.input.subgroups)
        for endpoint, path in zip(p.forest_endpoints, smk.output.forest, strict=True):
            plot_forest(subgroups, endpoint, path)


run(main, snakemake)  # noqa: F821
