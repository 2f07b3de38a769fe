# CTC positivity against healthy donors and differential expression.


rule positivity:
    input:
        normalised=f"results/normalised/{config['normalisation']['default']}.tsv",
        samples=config["samples"],
    output:
        # Per sample × marker on disk; the report carries the per-sample calls.
        calls="results/positivity/calls.tsv",
        samples=report(
            "results/positivity/sample_calls.tsv",
            caption="../report/positivity_calls.rst",
            category="3. CTC positivity",
        ),
        summary=report(
            "results/positivity/summary.tsv",
            caption="../report/positivity_summary.rst",
            category="3. CTC positivity",
        ),
        specificity=report(
            "results/positivity/specificity.tsv",
            caption="../report/positivity_specificity.rst",
            category="3. CTC positivity",
        ),
    log:
        "logs/positivity.log",
    conda:
        "../envs/python.yaml"
    params:
        settings=config["positivity"],
    script:
        "../../scripts/positivity.py"


rule differential:
    input:
        normalised=expand("results/normalised/{strategy}.tsv", strategy=STRATEGIES),
        samples=config["samples"],
    output:
        tables=report(
            expand("results/differential/{comparison}.tsv", comparison=COMPARISONS),
            caption="../report/differential.rst",
            category="4. Differential expression",
        ),
        notes="results/differential/notes.tsv",
    log:
        "logs/differential.log",
    conda:
        "../envs/python.yaml"
    # The strategies are independent: one forked process per thread, each reading and testing
    # its own strategies (same tables as one process), as many as their measured peak RSS fits
    # (ctc_qpcr.differential_workers.strategy_workers: memory). --set-threads differential=1: one process.
    threads: 2
    # peak RSS of its processes: 1.62 GB at 1,000 chips with two workers (the worker model keeps
    # them under 1.8 GB); the cluster's default request (1,000 MB) would be too small
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        strategies=STRATEGIES,
        default=config["normalisation"]["default"],
        settings=config["differential"],
    script:
        "../../scripts/differential.py"


rule plot_differential:
    input:
        tables=expand("results/differential/{comparison}.tsv", comparison=COMPARISONS),
        normalised=f"results/normalised/{config['normalisation']['default']}.tsv",
        samples=config["samples"],
    output:
        volcano=report(
            expand(
                "results/differential/plots/{comparison}.volcano.svg",
                comparison=COMPARISONS,
            ),
            caption="../report/volcano.rst",
            category="4. Differential expression",
        ),
        heatmap=report(
            expand(
                "results/differential/plots/{comparison}.heatmap.svg",
                comparison=COMPARISONS,
            ),
            caption="../report/heatmap.rst",
            category="4. Differential expression",
        ),
        sites=[
            report(
                path,
                caption="../report/volcano_site.rst",
                category="4. Differential expression",
                subcategory=f"{comparison}: one volcano per site",
                labels={"comparison": comparison, "site": site},
            )
            for comparison, files in site_volcano_files().items()
            for site, path in files.items()
        ],
    log:
        "logs/plot_differential.log",
    conda:
        "../envs/python.yaml"
    params:
        default=config["normalisation"]["default"],
        comparisons=COMPARISONS,
        site_volcanoes=site_volcano_files(),
        min_site_patients=config["differential"]["min_site_patients"],
    script:
        "../../scripts/plot_differential.py"
