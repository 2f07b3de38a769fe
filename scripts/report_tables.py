"""Snakemake adapter: per-plate summary of the preprocessed Cq table for the report."""

import pandas as pd

from ctc_qpcr.adapter import run
from ctc_qpcr.report_tables import cq_plate_summary
from ctc_qpcr.tables import write_tsv

COLUMNS = [
    "plate",
    "batch",
    "sample",
    "assay",
    "detected",
    "replicate_delta",
    "gdna_fraction",
    "plate_offset",
    "flags",
]


def main(smk, log):
    cq = pd.read_parquet(smk.input.cq, columns=COLUMNS)
    summary = cq_plate_summary(cq)
    write_tsv(summary, smk.output.cq_plates)
    log.info("%d cells on %d plates summarised", len(cq), len(summary))


run(main, snakemake)  # noqa: F821
