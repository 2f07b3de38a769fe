"""Snakemake adapter: the no-template-control table of every plate (results/qc/ntc.tsv) and its page.

The table is one row per batch, plate and assay, so it is made a few plate files at a time
(the needed columns only): memory stays bounded by a few plates, not by the study.
"""

import pandas as pd

from ctc_qpcr import sheets
from ctc_qpcr.adapter import run
from ctc_qpcr.ntc import NTC_COLUMNS, WELL_COLUMNS, ntc_html, ntc_table
from ctc_qpcr.tables import write_text, write_tsv

KEYS = ["batch", "plate", "assay"]


PLATES_AT_ONCE = 24  # plate files read together: fewer, larger table operations, memory still bounded


def study_ntc_table(paths, samples, max_cq, min_delta_cq) -> pd.DataFrame:
    """ntc_table of all plates' wells, made a few plate files at a time (rows by batch, plate, assay)."""
    tables = []
    for start in range(0, len(paths), PLATES_AT_ONCE):
        wells = [pd.read_parquet(p, columns=WELL_COLUMNS) for p in paths[start : start + PLATES_AT_ONCE]]
        tables.append(ntc_table(pd.concat(wells, ignore_index=True), samples, max_cq, min_delta_cq))
    tables = [t for t in tables if not t.empty]
    if not tables:
        return pd.DataFrame(columns=NTC_COLUMNS)
    return pd.concat(tables, ignore_index=True).sort_values(KEYS, kind="stable", ignore_index=True)


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
