# ctc-qpcr: CTC qPCR instrument exports → audited Cq → ValidPrime, IPC,
# replicates → reference genes and ΔCq → positivity, differential expression,
# metastatic-site classifier → CTC counts and outcome.
from snakemake.utils import min_version

min_version("9.0")


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
