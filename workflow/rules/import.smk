# Reading instrument exports: one job per batch of plates (never per well).
# Each job writes the tidy Wells table of every plate in its batch to
# results/cq/{plate}.parquet (+ a .tsv a person can open).
# Rules are generated per batch because their outputs are the batch's plates.
# The reader refuses a file larger than any results export (64 MB) before
# loading it, so mem_mb covers the largest file it accepts.

for batch_id in BATCHES:

    rule:
        name:
            f"read_exports_{batch_id}"
        input:
            exports=list(PLATE_ROWS[batch_id]["path"]),
            samples=config["samples"],
            assays=config["assays"],
        output:
            parquet=expand("results/cq/{plate}.parquet", plate=PLATES_OF[batch_id]),
            tsv=expand("results/cq/{plate}.tsv", plate=PLATES_OF[batch_id]),
        log:
            f"logs/read_exports/{batch_id}.log",
        conda:
            "../envs/python.yaml"
        resources:
            mem_mb=1000,
            runtime=20,
        params:
            batch=batch_id,
            plates=PLATE_ROWS[batch_id].to_dict("records"),
            lod=batch_settings(batch_id)["lod"],
            unknown_names=batch_settings(batch_id)["unknown_names"],
            on_incomplete=config["import"]["on_incomplete"],
        script:
            "../../scripts/read_exports.py"


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
