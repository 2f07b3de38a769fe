# CTC counts (CellSearch) against outcome: Kaplan-Meier, log-rank, Cox, dynamics,
# associations, subgroups (docs/methods.md §8). Runs inside a qPCR study (joined)
# or on its own (a count study: no plates, samples or assays in the config).


wildcard_constraints:
    endpoint="pfs|os",


rule outcome:
    input:
        unpack(lambda wildcards: outcome_join_inputs()),
        counts=OUTCOME["ctc_counts"] or [],
        clinical=OUTCOME["clinical"] or [],
    output:
        km=report(
            "results/outcome/km.tsv",
            caption="../report/km.rst",
            category=OUTCOME_CATEGORY,
        ),
        logrank=report(
            "results/outcome/logrank.tsv",
            caption="../report/logrank.rst",
            category=OUTCOME_CATEGORY,
        ),
        cox=report(
            "results/outcome/cox.tsv",
            caption="../report/cox.rst",
            category=OUTCOME_CATEGORY,
        ),
        dynamics=report(
            "results/outcome/dynamics.tsv",
            caption="../report/dynamics.rst",
            category=OUTCOME_CATEGORY,
        ),
        associations=report(
            "results/outcome/associations.tsv",
            caption="../report/associations.rst",
            category=OUTCOME_CATEGORY,
        ),
        positivity_rates=report(
            "results/outcome/positivity_rates.tsv",
            caption="../report/positivity_rates.rst",
            category=OUTCOME_CATEGORY,
        ),
        subgroups=report(
            "results/outcome/subgroups.tsv",
            caption="../report/subgroups.rst",
            category=OUTCOME_CATEGORY,
        ),
        medians="results/outcome/medians.tsv",
        cox_models="results/outcome/cox_models.tsv",
        expression_cox=report(
            "results/outcome/expression_cox.tsv",
            caption="../report/expression_cox.rst",
            category=OUTCOME_CATEGORY,
        ),
        notes="results/outcome/notes.tsv",
    log:
        "logs/outcome.log",
    conda:
        "../envs/python.yaml"
    params:
        settings=OUTCOME,
    script:
        "../../scripts/outcome.py"


# Every outcome figure in ONE job (one Python + matplotlib start-up, not one per
# draw and endpoint): the headline KM figures, positivity rates, the KM figure of
# each follow-up draw (status and change, landmark) and the subgroup forest plots.
OUTCOME_DRAW_PLOTS = [
    (kind, endpoint, draw)
    for kind in ("km_draws", "km_change")
    for endpoint in OUTCOME_ENDPOINTS
    for draw in OUTCOME["followups"]
]
OUTCOME_FOREST_ENDPOINTS = OUTCOME_ENDPOINTS if OUTCOME["subgroups"] else []


rule plot_outcome:
    input:
        km="results/outcome/km.tsv",
        logrank="results/outcome/logrank.tsv",
        positivity_rates="results/outcome/positivity_rates.tsv",
        subgroups="results/outcome/subgroups.tsv" if OUTCOME_FOREST_ENDPOINTS else [],
    output:
        km=report(
            "results/outcome/plots/km.svg",
            caption="../report/km_plot.rst",
            category=OUTCOME_CATEGORY,
        ),
        km_os=report(
            "results/outcome/plots/km_os.svg",
            caption="../report/km_os_plot.rst",
            category=OUTCOME_CATEGORY,
        ),
        positivity=report(
            "results/outcome/plots/positivity.svg",
            caption="../report/positivity_plot.rst",
            category=OUTCOME_CATEGORY,
        ),
        draws=[
            report(
                f"results/outcome/plots/{kind}/{endpoint}_{draw}.svg",
                caption="../report/km_followup_plot.rst",
                category=OUTCOME_CATEGORY,
            )
            for kind, endpoint, draw in OUTCOME_DRAW_PLOTS
        ],
        forest=[
            report(
                f"results/outcome/plots/forest_{endpoint}.svg",
                caption="../report/forest.rst",
                category=OUTCOME_CATEGORY,
            )
            for endpoint in OUTCOME_FOREST_ENDPOINTS
        ],
    log:
        "logs/plot_outcome.log",
    conda:
        "../envs/python.yaml"
    params:
        baseline=OUTCOME["baseline"],
        main_threshold=OUTCOME["main_threshold"],
        landmark=OUTCOME["landmark"],
        draw_plots=OUTCOME_DRAW_PLOTS,
        forest_endpoints=OUTCOME_FOREST_ENDPOINTS,
    script:
        "../../scripts/plot_outcome.py"
