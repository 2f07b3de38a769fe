"""Snakemake adapter: the no-template-control table of every plate (results/qc/ntc.tsv) and its page.

The table is one row per batch, plate and assay, so it is made a few plate files at a time
(the needed columns only): memory stays bounded by a few plates, not by the study.
"""

import pandas as pd

from ctc_qpcr import sheets
from ctc_qpcr.adapter import run
from ctc_qpcr.ntc import ntc_html, study_ntc_table
from ctc_qpcr.tables import write_text, write_tsv


def main(smk, log):
    samples = sheets.load_samples(smk.input.samples)
    table = study_ntc_table(smk.input.cq, samples, smk.params.max_cq, smk.params.min_delta_cq)
    if table.empty:
        log.info("no NTC wells (samples.tsv kind ntc, or NTC in the export) on any plate")
    for row in table[table["flag"] != "ok"].itertuples():
        log.warning(
            "plate %s, assay %s: %s (%d of %d NTC wells amplified, lowest Cq %.2f; samples' median Cq %s)",
            row.plate,
            row.assay,
            row.flag,
            row.ntc_amplified,
            row.ntc_wells,
            row.ntc_min_cq,
            "none" if pd.isna(row.samples_median_cq) else f"{row.samples_median_cq:.2f}",
        )
    write_tsv(table, smk.output.ntc)
    page = ntc_html(table, smk.params.max_cq_text, float(smk.params.min_delta_cq))
    write_text(page, smk.output.page)


run(main, snakemake)  # noqa: F821
