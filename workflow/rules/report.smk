# The run record: workflow version, package versions, config, input hashes.
# Each job logs the SHA-256 of its inputs when it starts (ctc_qpcr.provenance);
# the run record collects those lines from the logs of the jobs behind the results,
# with the sheets read at start-up (hashed then, passed as a parameter).


rule run_record:
    input:
        logs=run_record_logs(),
    output:
        "results/run_record.json",
    log:
        "logs/run_record.log",
    conda:
        "../envs/python.yaml"
    params:
        config=config,
        startup=startup_hashes(),
    script:
        "../../scripts/run_record.py"
