"""Snakemake adapter: RDML 1.3 export of the analysed wells (results/rdml/study.rdml)."""

import pandas as pd

import ctc_qpcr
from ctc_qpcr import sheets
from ctc_qpcr.adapter import run
from ctc_qpcr.rdml_write import study_rdml
from ctc_qpcr.tables import read_tsv, write_text

COLUMNS = ["batch", "plate", "well", "sample", "assay", "cq", "state", "fate", "reason"]


def main(smk, log):
    wells = pd.concat([pd.read_parquet(p, columns=COLUMNS) for p in smk.input.wells], ignore_index=True)
    text = study_rdml(
        wells,
        sheets.load_samples(smk.input.samples),
        sheets.load_assays(smk.input.assays),
        read_tsv(smk.input.efficiency),
        float(smk.params.lod),
        ctc_qpcr.__version__,
    )
    write_text(text, smk.output.rdml)
    log.info("RDML 1.3: %d wells of %d plates", len(wells), wells["plate"].nunique())


run(main, snakemake)  # noqa: F821
