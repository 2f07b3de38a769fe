"""Snakemake adapter: MIQE 2.0 summary (results/qc/miqe.html, miqe.tsv, miqe_assays.tsv)."""

import json

from ctc_qpcr import sheets
from ctc_qpcr.adapter import run
from ctc_qpcr.miqe import assay_table, checklist, miqe_html, read_parquet_text, series_wells, standard_curves
from ctc_qpcr.tables import read_tsv, write_text, write_tsv

WELL_COLUMNS = ["sample", "assay", "cq", "state", "fate"]
CELL_COLUMNS = ["sample", "kind", "assay", "detected", "n_replicates", "flags", "vp_grade"]
TABLES = ("wells_summary", "calibration", "validprime", "genorm", "genorm_v", "normfinder", "chosen", "ntc")


def main(smk, log):
    samples = sheets.load_samples(smk.input.samples)
    assays = sheets.load_assays(smk.input.assays)
    wells = series_wells(smk.input.wells, samples, WELL_COLUMNS)
    cells = read_parquet_text([smk.input.cq], CELL_COLUMNS)
    curves = standard_curves(wells, samples)
    log.info(
        "standard curves for %d assays (%s)", len(curves), ", ".join(sorted(set(curves["series"]))) or "none"
    )
    per_assay = assay_table(assays, curves, cells, float(smk.params.settings["lod"]))
    tables = {name: read_tsv(smk.input[name]) for name in TABLES}
    with open(smk.input.record, encoding="utf-8") as handle:
        record = json.load(handle)
    items = checklist(per_assay, cells, tables, record, smk.params.settings)
    write_tsv(per_assay, smk.output.assays)
    write_tsv(items, smk.output.checklist)
    write_text(miqe_html(items, per_assay), smk.output.page)


run(main, snakemake)  # noqa: F821
