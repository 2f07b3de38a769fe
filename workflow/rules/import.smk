# Reading instrument exports: the chip-level job of each batch (preprocess.smk)
# writes results/cq/{plate}.parquet (+ .tsv) for every plate of the batch.


# No-template controls that amplify: a flag per plate and assay (results/qc/ntc.tsv).
rule check_ntc:
    input:
        cq=expand("results/cq/{plate}.parquet", plate=plates["plate"]),
        samples=config["samples"],
    output:
        ntc="results/qc/ntc.tsv",
        page=report(
            "results/qc/ntc.html",
            caption="../report/ntc.rst",
            category="1. Quality control",
        ),
    log:
        "logs/check_ntc.log",
    conda:
        "../envs/python.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        max_cq={
            b: (
                config["ntc_check"]["max_cq"]
                if config["ntc_check"]["max_cq"] is not None
                else batch_settings(b)["lod"]
            )
            for b in BATCHES
        },
        min_delta_cq=config["ntc_check"]["min_delta_cq"],
        max_cq_text=(
            f"the LOD ({config['lod']:g} cycles, or the batch's own)"
            if config["ntc_check"]["max_cq"] is None
            else f"{config['ntc_check']['max_cq']:g}"
        ),
    script:
        "../../scripts/check_ntc.py"
