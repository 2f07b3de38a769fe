# Reference-gene stability (geNorm, NormFinder) and every normalisation strategy.


# The study's cells are read from the batches (the cells merge_batches writes to
# results/preprocessed/cq.parquet, same panel check): normalise runs beside merge_batches.
rule normalise:
    input:
        cells=get_batch_tables("cells.parquet"),
        samples=config["samples"],
        assays=config["assays"],
    output:
        genorm=report(
            "results/reference_genes/genorm.tsv",
            caption="../report/genorm.rst",
            category="2. Reference genes",
        ),
        genorm_v=report(
            "results/reference_genes/genorm_v.tsv",
            caption="../report/genorm_v.rst",
            category="2. Reference genes",
        ),
        normfinder=report(
            "results/reference_genes/normfinder.tsv",
            caption="../report/normfinder.rst",
            category="2. Reference genes",
        ),
        chosen=report(
            "results/reference_genes/chosen.tsv",
            caption="../report/chosen.rst",
            category="2. Reference genes",
        ),
        normalised=expand("results/normalised/{strategy}.tsv", strategy=STRATEGIES),
        matrices=expand("results/normalised/{strategy}.matrix.tsv", strategy=STRATEGIES),
        agreement=report(
            "results/normalised/strategy_agreement.tsv",
            caption="../report/agreement.rst",
            category="2. Reference genes",
        ),
        excluded=report(
            "results/normalised/excluded_samples.tsv",
            caption="../report/excluded_samples.rst",
            category="2. Reference genes",
        ),
        # every note of the job whole (a log line is cut after 400 characters)
        notes="results/normalised/notes.tsv",
    log:
        "logs/normalise.log",
    # On the study's critical path (differential, classifier wait for it): started first
    # once the batches are done, not behind merge_batches or check_ntc (greedy scheduler).
    priority: 5
    conda:
        "../envs/python.yaml"
    # as merge_batches: it holds the study's cells (1.05 GB at 1,000 chips; ≈ 2.9 GB when the
    # batches cannot be streamed), above the cluster's default request (1,000 MB)
    resources:
        mem_mb=4000,
    params:
        settings=config["normalisation"],
        efficiency_scaled=config["efficiency"]["apply"],
        on_panel_mismatch=config["merge"]["on_panel_mismatch"],
    script:
        "../../scripts/normalise.py"


rule plot_reference_genes:
    input:
        genorm="results/reference_genes/genorm.tsv",
        genorm_v="results/reference_genes/genorm_v.tsv",
        normfinder="results/reference_genes/normfinder.tsv",
    output:
        m=report(
            "results/reference_genes/plots/genorm_m.svg",
            caption="../report/genorm_m.rst",
            category="2. Reference genes",
        ),
        v=report(
            "results/reference_genes/plots/genorm_v.svg",
            caption="../report/genorm_v_plot.rst",
            category="2. Reference genes",
        ),
        rho=report(
            "results/reference_genes/plots/normfinder.svg",
            caption="../report/normfinder_plot.rst",
            category="2. Reference genes",
        ),
    log:
        "logs/plot_reference_genes.log",
    conda:
        "../envs/python.yaml"
    params:
        v_cutoff=config["normalisation"]["v_cutoff"],
    script:
        "../../scripts/plot_reference_genes.py"
