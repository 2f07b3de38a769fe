# ctc-qpcr: CTC qPCR instrument exports → audited Cq → ValidPrime, IPC,
# replicates → reference genes and ΔCq → positivity, differential expression,
# metastatic-site classifier → CTC counts and outcome.
import gc

from snakemake.utils import min_version

min_version("9.0")

# Start-up leaves ~200,000 container objects (modules, sheets, rules) that live as
# long as the run; the cyclic GC scanned them again and again while parsing and
# while building the DAG. Off while parsing; at the end one collection, then the
# survivors are frozen (never scanned again) and the GC is on for the DAG and the
# jobs.
gc.disable()


include: "workflow/rules/config_file.smk"


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/import.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/normalise.smk"
include: "workflow/rules/differential.smk"
include: "workflow/rules/classifier.smk"
include: "workflow/rules/outcome.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/qc_report.smk"


localrules:
    all,
    run_record,


rule all:
    default_target: True
    input:
        get_final_output(),


gc.collect()
gc.freeze()
gc.enable()
