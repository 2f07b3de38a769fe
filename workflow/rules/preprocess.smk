# The chip-level job of each batch: read every export of the batch and
# preprocess it in one process (well states → ValidPrime → IPC → replicates →
# detection); then the study-level merge and QC plots.
# Rules are generated per batch because their outputs include the batch's
# plates: the tidy Wells table of each plate (results/cq/{plate}.parquet + a
# .tsv a person can open) and the batch's tables (results/batches/{batch}/).
# Later batches take the IPC reference from the first batch's IPC anchor
# (its chips' IPC level only), so they need not wait for its whole job.
# The reader refuses a file larger than any results export (64 MB) before
# loading it, so mem_mb covers the largest file it accepts.

if FIRST_BATCH:

    rule ipc_anchor:
        input:
            exports=EXPORTS_OF[FIRST_BATCH],
            samples=config["samples"],
            assays=config["assays"],
        output:
            f"results/batches/{FIRST_BATCH}/ipc_anchor.tsv",
        log:
            "logs/ipc_anchor.log",
        conda:
            "../envs/python.yaml"
        resources:
            mem_mb=2000,
            runtime=20,
        params:
            batch=FIRST_BATCH,
            plates=PLATE_RECORDS[FIRST_BATCH],
            settings=batch_settings(FIRST_BATCH),
            efficiency=config["efficiency"],
            on_incomplete=config["import"]["on_incomplete"],
        script:
            "../../scripts/ipc_anchor.py"


for batch_id in BATCHES:

    rule:
        name:
            f"preprocess_batch_{batch_id}"
        input:
            exports=EXPORTS_OF[batch_id],
            samples=config["samples"],
            assays=config["assays"],
            ipc_anchor=get_ipc_anchor(batch_id),
        output:
            cq_parquet=[f"results/cq/{plate}.parquet" for plate in PLATES_OF[batch_id]],
            cq_tsv=[f"results/cq/{plate}.tsv" for plate in PLATES_OF[batch_id]],
            cells=f"results/batches/{batch_id}/cells.parquet",
            wells=f"results/batches/{batch_id}/wells.parquet",
            audit=f"results/batches/{batch_id}/wells.tsv",
            audit_summary=f"results/batches/{batch_id}/wells_summary.tsv",
            validprime=f"results/batches/{batch_id}/validprime_assays.tsv",
            calibration=f"results/batches/{batch_id}/plate_calibration.tsv",
            efficiency=f"results/batches/{batch_id}/efficiency.tsv",
        log:
            f"logs/preprocess_batch/{batch_id}.log",
        conda:
            "../envs/python.yaml"
        resources:
            mem_mb=2000,
            runtime=50,
        params:
            batch=batch_id,
            # this batch's plates and settings only: adding a batch must not change (and re-run) the others
            plates=PLATE_RECORDS[batch_id],
            settings=batch_settings(batch_id),
            efficiency=config["efficiency"],
            on_incomplete=config["import"]["on_incomplete"],
        script:
            "../../scripts/preprocess_batch.py"


rule merge_batches:
    input:
        cells=get_batch_tables("cells.parquet"),
        wells=get_batch_tables("wells.parquet"),
        audit=get_batch_tables("wells.tsv"),
        audit_summary=get_batch_tables("wells_summary.tsv"),
        validprime=get_batch_tables("validprime_assays.tsv"),
        calibration=get_batch_tables("plate_calibration.tsv"),
        efficiency=get_batch_tables("efficiency.tsv"),
        samples=config["samples"],
        assays=config["assays"],
    output:
        # Full table on disk; the report carries its per-plate summary (report.smk).
        cq="results/preprocessed/cq.tsv",
        cq_parquet="results/preprocessed/cq.parquet",
        # The full audit stays on disk (millions of rows at scale); the report
        # carries its per-plate summary.
        wells="results/qc/wells.tsv",
        wells_summary=report(
            "results/qc/wells_summary.tsv",
            caption="../report/wells_summary.rst",
            category="1. Quality control",
        ),
        validprime=report(
            "results/qc/validprime_assays.tsv",
            caption="../report/validprime.rst",
            category="1. Quality control",
        ),
        calibration=report(
            "results/qc/plate_calibration.tsv",
            caption="../report/calibration.rst",
            category="1. Quality control",
        ),
        efficiency="results/qc/efficiency.tsv",
        unplated="results/qc/unplated_names.tsv",
    log:
        "logs/merge_batches.log",
    conda:
        "../envs/python.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        on_panel_mismatch=config["merge"]["on_panel_mismatch"],
    script:
        "../../scripts/merge_batches.py"


rule plot_qc:
    input:
        cq="results/preprocessed/cq.parquet",
        calibration="results/qc/plate_calibration.tsv",
        wells_summary="results/qc/wells_summary.tsv",
    output:
        gdna=report(
            "results/qc/plots/gdna_fraction.svg",
            caption="../report/gdna_fraction.rst",
            category="1. Quality control",
        ),
        ipc=report(
            "results/qc/plots/ipc_per_chip.svg",
            caption="../report/ipc_per_chip.rst",
            category="1. Quality control",
        ),
        replicates=report(
            "results/qc/plots/replicate_delta.svg",
            caption="../report/replicate_delta.rst",
            category="1. Quality control",
        ),
        fates=report(
            "results/qc/plots/well_fates.svg",
            caption="../report/well_fates.rst",
            category="1. Quality control",
        ),
        # per-plate summary of the Cells table: the report carries it, not cq.tsv
        cq_plates=report(
            "results/preprocessed/cq_plate_summary.tsv",
            caption="../report/preprocessed.rst",
            category="1. Quality control",
        ),
    log:
        "logs/plot_qc.log",
    conda:
        "../envs/python.yaml"
    # peak RSS 1.84 GB at 1,000 chips (the cells and the gDNA heat map), above the cluster's
    # default request (1,000 MB)
    resources:
        mem_mb=2500,
    params:
        max_delta=config["replicates"]["max_delta"],
        grade_f=config["validprime"]["grade_c"],
    script:
        "../../scripts/plot_qc.py"
