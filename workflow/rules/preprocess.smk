# Chip-level preprocessing per batch (well states → ValidPrime → IPC →
# replicates → detection), then the study-level merge and QC plots.


rule preprocess_batch:
    input:
        cq=get_batch_cq,
        samples=config["samples"],
        assays=config["assays"],
        ipc_anchor=get_ipc_anchor,
    output:
        cells="results/batches/{batch}/cells.parquet",
        wells="results/batches/{batch}/wells.parquet",
        audit="results/batches/{batch}/wells.tsv",
        audit_summary="results/batches/{batch}/wells_summary.tsv",
        validprime="results/batches/{batch}/validprime_assays.tsv",
        calibration="results/batches/{batch}/plate_calibration.tsv",
        efficiency="results/batches/{batch}/efficiency.tsv",
    log:
        "logs/preprocess_batch/{batch}.log",
    conda:
        "../envs/python.yaml"
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        settings=lambda wc: batch_settings(wc.batch),
        efficiency=config["efficiency"],
        # this batch's plates only: adding a batch must not change (and re-run) the others
        exports=lambda wc: dict(
            zip(PLATE_ROWS[wc.batch]["plate"], PLATE_ROWS[wc.batch]["path"])
        ),
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
    params:
        max_delta=config["replicates"]["max_delta"],
        grade_f=config["validprime"]["grade_c"],
    script:
        "../../scripts/plot_qc.py"
