# CTC counts (CellSearch) against outcome: Kaplan-Meier, log-rank, Cox, dynamics.


rule outcome:
    input:
        counts=config["outcome"]["ctc_counts"] or [],
        clinical=config["outcome"]["clinical"] or [],
        normalised=f"results/normalised/{config['normalisation']['default']}.tsv",
        positivity="results/positivity/sample_calls.tsv",
        samples=config["samples"],
    output:
        km=report(
            "results/outcome/km.tsv",
            caption="../report/km.rst",
            category="6. CTC counts and outcome",
        ),
        logrank=report(
            "results/outcome/logrank.tsv",
            caption="../report/logrank.rst",
            category="6. CTC counts and outcome",
        ),
        cox=report(
            "results/outcome/cox.tsv",
            caption="../report/cox.rst",
            category="6. CTC counts and outcome",
        ),
        dynamics=report(
            "results/outcome/dynamics.tsv",
            caption="../report/dynamics.rst",
            category="6. CTC counts and outcome",
        ),
        associations=report(
            "results/outcome/associations.tsv",
            caption="../report/associations.rst",
            category="6. CTC counts and outcome",
        ),
        medians="results/outcome/medians.tsv",
        cox_models="results/outcome/cox_models.tsv",
        expression_cox=report(
            "results/outcome/expression_cox.tsv",
            caption="../report/expression_cox.rst",
            category="6. CTC counts and outcome",
        ),
        notes="results/outcome/notes.tsv",
    log:
        "logs/outcome.log",
    conda:
        "../envs/python.yaml"
    params:
        settings=config["outcome"],
    script:
        "../../scripts/analyse_outcome.py"


rule plot_outcome:
    input:
        km="results/outcome/km.tsv",
        logrank="results/outcome/logrank.tsv",
    output:
        km=report(
            "results/outcome/plots/km.svg",
            caption="../report/km_plot.rst",
            category="6. CTC counts and outcome",
        ),
        km_os=report(
            "results/outcome/plots/km_os.svg",
            caption="../report/km_plot.rst",
            category="6. CTC counts and outcome",
        ),
    log:
        "logs/plot_outcome.log",
    conda:
        "../envs/python.yaml"
    params:
        baseline=config["outcome"]["baseline"],
    script:
        "../../scripts/plot_outcome.py"
