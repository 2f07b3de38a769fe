"""Snakemake adapter: the no-template-control page of the report (results/qc/ntc.html)."""

from ctc_qpcr.adapter import run
from ctc_qpcr.ntc import ntc_html
from ctc_qpcr.tables import read_tsv, write_text


def main(smk, log):
    table = read_tsv(smk.input.ntc)
    flagged = int((table["flag"] != "ok").sum()) if len(table) else 0
    log.info("%d of %d plate × assay rows with NTC wells flagged", flagged, len(table))
    write_text(ntc_html(table, smk.params.max_cq, float(smk.params.min_delta_cq)), smk.output.page)


run(main, snakemake)  # noqa: F821
