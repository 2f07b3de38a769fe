"""Snakemake adapter: nested-CV metastatic-site classifier, permutation test, final model."""

import pandas as pd

from ctc_qpcr import sheets
from ctc_qpcr.adapter import run, write_tables
from ctc_qpcr.classifier import ClassifierInputError, classifier_options, run_classifier, save_models
from ctc_qpcr.errors import InputError
from ctc_qpcr.tables import read_tsv


def main(smk, log):
    options = classifier_options(smk.params.settings)
    try:
        result = run_classifier(
            read_tsv(smk.input.matrix),
            sheets.load_samples(smk.input.samples),
            options,
            strategy=smk.params.strategy,
            n_jobs=smk.threads,
            cells=pd.read_parquet(smk.input.cells, columns=["batch", "sample", "gene"]),
        )
    except ClassifierInputError as exc:
        raise InputError(exc.path or smk.input.samples, exc.problem, exc.hint) from None
    notes = [{"note": n} for n in result.get("notes", [])]
    notes += [{"note": f"skipped: {s}"} for s in result.get("skipped", [])]
    for n in notes:
        log.info("%s", n["note"])
    result["notes"] = pd.DataFrame(notes, columns=["note"])
    write_tables(result, smk.output, ("metrics", "predictions", "features", "notes"))
    log.warning(
        "the saved model %s is a trusted-source file only: "
        "never load model files from sources you do not trust",
        smk.output.model,
    )
    save_models(result["models"], smk.output.model)


run(main, snakemake)  # noqa: F821
