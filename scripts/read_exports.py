"""Snakemake adapter: read every export of one batch into per-plate Wells tables."""

from ctc_qpcr import sheets
from ctc_qpcr.adapter import run
from ctc_qpcr.importing import read_plate
from ctc_qpcr.tables import write_parquet, write_tsv


def main(smk, log):
    samples = sheets.load_samples(smk.input.samples)
    assays = sheets.assays_frame(sheets.load_assays(smk.input.assays))
    for plate, pq, tsv in zip(smk.params.plates, smk.output.parquet, smk.output.tsv, strict=True):
        wells = read_plate(
            plate["path"],
            plate["format"],
            plate["plate"],
            smk.params.batch,
            samples,
            assays,
            lod=smk.params.lod,
            unknown_names=smk.params.unknown_names,
            assay=plate.get("assay", ""),
            on_incomplete=smk.params.on_incomplete,
        )
        log.info(
            "%s: %d wells read from %s (%s excluded by name/emptiness)",
            plate["plate"],
            len(wells),
            plate["path"],
            int((wells["excluded"] != "").sum()),
        )
        n_missing = int((wells["excluded"] == "missing").sum())
        if n_missing:
            log.warning(
                "%s: %d wells missing from the export (listed in the well audit as 'missing')",
                plate["plate"],
                n_missing,
            )
        n_groups = int(wells["instrument_flags"].str.contains("incomplete_group").sum())
        if n_groups:
            log.warning(
                "%s: %d wells in replicate groups that lack wells (flag incomplete_group)",
                plate["plate"],
                n_groups,
            )
        write_parquet(wells, pq)
        write_tsv(wells, tsv)


run(main, snakemake)  # noqa: F821
