"""Snakemake adapter: every configured comparison on every normalisation strategy."""

import pandas as pd

from ctc_qpcr import sheets
from ctc_qpcr.adapter import run
from ctc_qpcr.differential import run_differential
from ctc_qpcr.tables import read_tsv, write_tsv


def main(smk, log):
    s = smk.params.settings
    normalised = {
        strategy: read_tsv(path, usecols=["sample", "gene", "dcq", "detected"])
        for strategy, path in zip(smk.params.strategies, smk.input.normalised, strict=True)
    }
    results = run_differential(
        normalised,
        sheets.load_samples(smk.input.samples),
        s["comparisons"],
        smk.params.default,
        min_per_group=s["min_per_group"],
        min_site_patients=s["min_site_patients"],
        min_detected=s.get("min_detected", 3),
        trim=s.get("trim", 0.1),
        off_z=s.get("off_z", 3.5),
    )
    notes = []
    for spec, path in zip(s["comparisons"], smk.output.tables, strict=True):
        table, comparison_notes = results[spec["name"]]
        for note in comparison_notes:
            log.info("%s: %s", spec["name"], note)
            notes.append({"comparison": spec["name"], "note": note})
        write_tsv(table, path)
    write_tsv(pd.DataFrame(notes, columns=["comparison", "note"]), smk.output.notes)


run(main, snakemake)  # noqa: F821
