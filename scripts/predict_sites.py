"""Snakemake adapter: apply the saved site classifier to a new batch.

The new batch goes through exactly the training study's path: the same reader,
well states and chip-level settings (those of the first training batch), the
IPC reference of the training study (so its chips are calibrated onto the same
scale), and the training study's normaliser genes (from
results/reference_genes/chosen.tsv) — nothing is re-estimated from the new
samples.
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


def main(smk, log):
    chip = smk.params.chip
    plates = sheets.load_plates(smk.input.plates)
    samples = sheets.load_samples(smk.input.samples)
    assays = sheets.assays_frame(sheets.load_assays(smk.input.assays))
    wells = pd.concat(
        [
            read_plate(p.path, p.format, p.plate, p.batch, samples, assays, lod=chip["lod"], unknown_names=chip["unknown_names"])
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
    cells = result["cells"]
    write_tsv(cells, smk.output.cq)
    default = smk.params.normalisation["default"]
    chosen = read_tsv(smk.input.chosen)
    row = chosen[chosen["strategy"] == default]
    genes = [g for g in str(row["genes"].iloc[0]).split(";") if g] if len(row) else []
    if default == "none":
        strategy, fixed = "none", None
    else:
        strategy, fixed = "reference", genes
        log.info("normalising the new batch with the training normaliser genes %s (%s strategy)", genes, default)
    normalised = normalise_study(
        cells, sheets.samples_frame(samples), assays, strategies=(strategy,), reference_genes=fixed,
        normfinder_group=None,
    )
    matrix = normalised["matrices"][strategy]
    matrix = matrix.reset_index() if "sample" not in matrix.columns else matrix
    models = load_models(smk.input.model)
    frames = []
    for _, bundle in sorted(models.items()):
        # Samples lacking a ΔCq for a model gene are rejected (predict() refuses
        # them with a message); they are listed with the genes they lack, so no
        # sample disappears from the output.
        features = [g for g in bundle["features"] if g in matrix.columns]
        missing = matrix[features].isna() if features else pd.DataFrame(index=matrix.index)
        complete = ~missing.any(axis=1) if len(features) == len(bundle["features"]) else pd.Series(False, index=matrix.index)
        if complete.any():
            predicted = predict(bundle, matrix[complete])
            predicted["status"] = "predicted"
            frames.append(predicted)
        for i in matrix.index[~complete]:
            lacking = sorted(set(bundle["features"]) - set(features)) + [g for g in features if missing.loc[i, g]]
            reason = "rejected: no ΔCq for model genes " + ", ".join(lacking)
            log.warning("sample %s, site %s: %s", matrix.loc[i, "sample"], bundle["site"], reason)
            frames.append(
                pd.DataFrame(
                    {"sample": [matrix.loc[i, "sample"]], "site": [bundle["site"]], "estimator": [bundle["estimator"]], "probability": [float("nan")], "status": [reason]}
                )
            )
    out = pd.concat(frames, ignore_index=True).sort_values(["sample", "site", "estimator"], kind="stable")
    write_tsv(out, smk.output.probabilities)


run(main, snakemake)  # noqa: F821
