"""Snakemake adapter: CTC counts against outcome (KM, log-rank, Cox, dynamics, associations)."""

from ctc_qpcr import sheets
from ctc_qpcr.adapter import run
from ctc_qpcr.outcome import run_outcome
from ctc_qpcr.tables import read_tsv, write_tsv
import pandas as pd


def _read(path):
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, comment="#")


def main(smk, log):
    s = smk.params.settings
    expression = read_tsv(smk.input.normalised) if s["expression_timepoint"] else None
    result = run_outcome(
        _read(smk.input.counts),
        _read(smk.input.clinical),
        counts_path=smk.input.counts,
        clinical_path=smk.input.clinical,
        thresholds=tuple(s["thresholds"]),
        main_threshold=s["main_threshold"],
        baseline=s["baseline"],
        followups=tuple(s["followups"]),
        covariates=tuple(s["covariates"]),
        categorical=tuple(s["categorical"]),
        arm_column=s["arm_column"],
        landmark=s["landmark"],
        on_unmatched=s["on_unmatched"],
        expression=expression,
        samples=sheets.load_samples(smk.input.samples),
        expression_timepoint=s["expression_timepoint"] or None,
        positivity=read_tsv(smk.input.positivity),
    )
    for key in ("km", "logrank", "cox", "dynamics", "associations", "medians", "cox_models", "expression_cox"):
        write_tsv(result[key], getattr(smk.output, key))
    notes = result.get("notes")
    write_tsv(notes if isinstance(notes, pd.DataFrame) else pd.DataFrame({"note": notes or []}), smk.output.notes)


run(main, snakemake)  # noqa: F821
