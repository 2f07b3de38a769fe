"""Snakemake adapter: apply the saved site classifier to a new batch.

The new batch goes through exactly the training study's path: the same reader,
well states and chip-level settings (those of the first training batch), the
IPC reference of the training study (so its chips are calibrated onto the same
scale), and the training study's normaliser genes (from
results/reference_genes/chosen.tsv) — nothing is re-estimated from the new
samples. A sample lacking some genes the model uses is predicted with the
model's own imputation and flagged (column imputed_genes); above
predict.max_missing_fraction it is rejected and the status says why
(docs/methods.md §7).
"""

from dataclasses import replace

import pandas as pd

from ctc_qpcr import sheets
from ctc_qpcr.adapter import run
from ctc_qpcr.chip_options import chip_options
from ctc_qpcr.classifier import load_models, predict
from ctc_qpcr.importing import read_plate
from ctc_qpcr.normalise import normalise_study
from ctc_qpcr.preprocess import ipc_reference_from, preprocess_batch
from ctc_qpcr.tables import read_tsv, write_tsv


def new_batch_cells(smk, samples, assays):
    """Read and preprocess the new batch's exports with the training study's settings."""
    chip = smk.params.chip
    plates = sheets.load_plates(smk.input.plates)
    wells = pd.concat(
        [
            read_plate(
                p.path,
                p.format,
                p.plate,
                p.batch,
                samples,
                assays,
                lod=chip["lod"],
                unknown_names=chip["unknown_names"],
            )
            for p in plates.itertuples(index=False)
        ],
        ignore_index=True,
    )
    reference = smk.params.ipc_reference
    if reference is None:
        reference = ipc_reference_from(read_tsv(smk.input.calibration))
    options = chip_options({**chip, "efficiency": {"apply": False, "from_standards": False}})
    options = replace(options, ipc=replace(options.ipc, reference=reference))
    result = preprocess_batch(wells[wells["excluded"] == ""], sheets.samples_frame(samples), assays, options)
    return result["cells"]


def new_batch_matrix(smk, log, cells, samples, assays):
    """ΔCq matrix of the new batch with the training study's normaliser genes."""
    default = smk.params.normalisation["default"]
    chosen = read_tsv(smk.input.chosen)
    row = chosen[chosen["strategy"] == default]
    genes = [g for g in str(row["genes"].iloc[0]).split(";") if g] if len(row) else []
    if default == "none":
        strategy, fixed = "none", None
    else:
        strategy, fixed = "reference", genes
        log.info(
            "normalising the new batch with the training normaliser genes %s (%s strategy)", genes, default
        )
    normalised = normalise_study(
        cells,
        sheets.samples_frame(samples),
        assays,
        strategies=(strategy,),
        reference_genes=fixed,
        normfinder_group=None,
    )
    matrix = normalised["matrices"][strategy]
    return matrix.reset_index() if "sample" not in matrix.columns else matrix


def main(smk, log):
    samples = sheets.load_samples(smk.input.samples)
    assays = sheets.assays_frame(sheets.load_assays(smk.input.assays))
    cells = new_batch_cells(smk, samples, assays)
    write_tsv(cells, smk.output.cq)
    matrix = new_batch_matrix(smk, log, cells, samples, assays)
    limit = smk.params.max_missing_fraction
    out = predict(load_models(smk.input.model), matrix, max_missing_fraction=limit)
    for r in out[out["status"] != "predicted"].itertuples(index=False):
        log.warning("sample %s, site %s (%s): %s", r.sample, r.site, r.estimator, r.status)
    n_samples = out["sample"].nunique()
    n_with = out.loc[out["probability"].notna(), "sample"].nunique()
    log.info(
        "%d of %d samples got site probabilities (predict.max_missing_fraction %g)", n_with, n_samples, limit
    )
    out = out.sort_values(["sample", "site", "estimator"], kind="stable")
    write_tsv(out, smk.output.probabilities)


run(main, snakemake)  # noqa: F821
