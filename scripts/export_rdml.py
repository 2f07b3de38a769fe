"""Snakemake adapter: RDML 1.3 export of the analysed wells (results/rdml/study.rdml).

The document is written piece by piece (head, then one run per plate, reading one
batch's wells at a time), so memory stays bounded by a batch, not by the study.
"""

import ctc_qpcr
from ctc_qpcr import sheets
from ctc_qpcr.adapter import run
from ctc_qpcr.rdml_write import BatchWells, write_study_rdml
from ctc_qpcr.tables import read_tsv

COLUMNS = ["batch", "plate", "well", "sample", "assay", "cq", "state", "fate", "reason"]


def main(smk, log):
    batches = BatchWells(smk.input.wells, COLUMNS)
    write_study_rdml(
        smk.output.rdml,
        batches,
        sheets.load_samples(smk.input.samples),
        sheets.load_assays(smk.input.assays),
        read_tsv(smk.input.efficiency),
        float(smk.params.lod),
        ctc_qpcr.__version__,
    )
    log.info("RDML 1.3: %d wells of %d plates", batches.wells, len(batches.plate_names()))


run(main, snakemake)  # noqa: F821
