# Reading instrument exports: one job per batch of plates (never per well).
# Each job writes the tidy Wells table of every plate in its batch to
# results/cq/{plate}.parquet (+ a .tsv a person can open).
# Rules are generated per batch because their outputs are the batch's plates.

for batch_id in BATCHES:

    rule:
        name:
            f"read_exports_{batch_id}"
        input:
            exports=list(plates.loc[plates["batch"] == batch_id, "path"]),
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
            plates=plates.loc[
                plates["batch"] == batch_id, ["plate", "path", "format", "assay"]
            ].to_dict("records"),
            lod=batch_settings(batch_id)["lod"],
            unknown_names=batch_settings(batch_id)["unknown_names"],
        script:
            "../../scripts/read_exports.py"
