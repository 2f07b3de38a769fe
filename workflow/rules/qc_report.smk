# Report pages that read finished tables: the MIQE 2.0 summary, Cq and well
# fate on the chip/plate layout, and the RDML 1.3 export of the analysed wells.


rule miqe:
    input:
        wells=get_batch_tables("wells.parquet"),
        cq="results/preprocessed/cq.parquet",
        samples=config["samples"],
        assays=config["assays"],
        wells_summary="results/qc/wells_summary.tsv",
        calibration="results/qc/plate_calibration.tsv",
        validprime="results/qc/validprime_assays.tsv",
        genorm="results/reference_genes/genorm.tsv",
        genorm_v="results/reference_genes/genorm_v.tsv",
        normfinder="results/reference_genes/normfinder.tsv",
        chosen="results/reference_genes/chosen.tsv",
        record="results/run_record.json",
        ntc="results/qc/ntc.tsv",
    output:
        page=report(
            "results/qc/miqe.html",
            caption="../report/miqe.rst",
            category="0. MIQE 2.0",
        ),
        checklist=report(
            "results/qc/miqe.tsv",
            caption="../report/miqe.rst",
            category="0. MIQE 2.0",
        ),
        assays=report(
            "results/qc/miqe_assays.tsv",
            caption="../report/miqe_assays.rst",
            category="0. MIQE 2.0",
        ),
    log:
        "logs/miqe.log",
    conda:
        "../envs/python.yaml"
    params:
        settings={
            "lod": config["lod"],
            "replicates": config["replicates"],
            "ipc": config["ipc"],
            "normalisation": config["normalisation"],
        },
    script:
        "../../scripts/miqe.py"


# Every chip's layout SVG is written to results/qc/layout; the report shows at
# most report.layout_chips of them (flagged chips first, copies in
# results/qc/layout_report) and lists every chip in layout_index.tsv.
rule plot_layout:
    input:
        wells=get_batch_tables("wells.parquet"),
        calibration="results/qc/plate_calibration.tsv",
    output:
        layout=directory("results/qc/layout"),
        report_layout=report(
            directory("results/qc/layout_report"),
            patterns=["{rank,\\d+}_{plate}.svg"],
            caption="../report/layout.rst",
            category="1. Quality control",
            subcategory="Chip and plate layout",
            labels={"rank": "{rank}", "plate": "{plate}"},
        ),
        index=report(
            "results/qc/layout_index.tsv",
            caption="../report/layout_index.rst",
            category="1. Quality control",
            subcategory="Chip and plate layout",
        ),
    log:
        "logs/plot_layout.log",
    conda:
        "../envs/python.yaml"
    # One forked process per thread, each drawing one batch's chips at a time (same SVGs as
    # one process). --set-threads plot_layout=1: one process.
    threads: 2
    params:
        lod=config["lod"],
        max_chips=config["report"]["layout_chips"],
    script:
        "../../scripts/plot_layout.py"


rule export_rdml:
    input:
        wells=get_batch_tables("wells.parquet"),
        samples=config["samples"],
        assays=config["assays"],
        efficiency="results/qc/efficiency.tsv",
    output:
        rdml="results/rdml/study.rdml",
    log:
        "logs/export_rdml.log",
    conda:
        "../envs/python.yaml"
    params:
        lod=config["lod"],
    script:
        "../../scripts/export_rdml.py"
