# The run record: workflow version, package versions, config, input hashes.


rule run_record:
    input:
        sheets=[config["plates"], config["samples"], config["assays"]],
        exports=list(plates["path"]),
        cq="results/preprocessed/cq.tsv",
    output:
        "results/run_record.json",
    log:
        "logs/run_record.log",
    conda:
        "../envs/python.yaml"
    params:
        config=config,
    script:
        "../../scripts/write_run_record.py"
