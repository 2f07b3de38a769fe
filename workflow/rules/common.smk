# Sheets, config validation, batch layout and input functions.
import copy
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))

import yaml  # noqa: E402

from ctc_qpcr.config_check import check_config  # noqa: E402
from ctc_qpcr.errors import ConfigError, InputError  # noqa: E402
from ctc_qpcr import sheets  # noqa: E402

with open(
    Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"
) as handle:
    try:
        check_config(config, yaml.safe_load(handle))
    except ConfigError as exc:
        raise WorkflowError(str(exc)) from None

validate(config, schema="../schemas/config.schema.yaml")

try:
    plates = sheets.load_plates(config["plates"])
    samples = sheets.load_samples(config["samples"])
    assays = sheets.load_assays(config["assays"])
except InputError as exc:
    raise WorkflowError(str(exc)) from None

# ctc_qpcr.sheets has already checked every row (with its line number); the
# schemas check the distinct value combinations again. Validating the distinct
# combinations (ids replaced by a placeholder) keeps start-up fast for sheets of
# tens of thousands of samples. Plate ids are validated row by row (patterns).
validate(plates, schema="../schemas/plates.schema.yaml")
validate(
    samples.assign(sample="x").drop_duplicates(),
    schema="../schemas/samples.schema.yaml",
)
validate(
    assays.assign(assay="x").drop_duplicates(), schema="../schemas/assays.schema.yaml"
)

# Batches in the order of first appearance in plates.tsv: the first batch
# anchors the IPC reference (config ipc.reference: null).
BATCHES = list(dict.fromkeys(plates["batch"]))
PLATES_OF = {b: list(plates.loc[plates["batch"] == b, "plate"]) for b in BATCHES}
FIRST_BATCH = BATCHES[0]

for unknown in set(config["batches"]) - set(BATCHES):
    raise WorkflowError(
        f"config 'batches' has an override for batch '{unknown}', which is not in "
        f"{config['plates']} (batches: {', '.join(BATCHES)}) — fix the batch id"
    )
if config["only_batch"] and config["only_batch"] not in BATCHES:
    raise WorkflowError(
        f"--config only_batch={config['only_batch']}: no such batch in {config['plates']} "
        f"(batches: {', '.join(BATCHES)})"
    )

STRATEGIES = list(config["normalisation"]["strategies"])
if config["normalisation"]["default"] not in STRATEGIES:
    raise WorkflowError(
        f"normalisation.default '{config['normalisation']['default']}' is not among "
        f"normalisation.strategies {STRATEGIES}"
    )
COMPARISONS = [c["name"] for c in config["differential"].get("comparisons", [])]
HAS_ROLE = set(assays["role"])


wildcard_constraints:
    batch="|".join(BATCHES),
    strategy="|".join(STRATEGIES),


CHIP_KEYS = ("lod", "unknown_names", "validprime", "ipc", "replicates", "detection")


def batch_settings(batch):
    """Chip-level settings of one batch: the global ones with its overrides."""
    merged = {key: copy.deepcopy(config[key]) for key in CHIP_KEYS}
    for key, value in config["batches"].get(batch, {}).items():
        if isinstance(value, dict):
            merged[key].update(value)
        else:
            merged[key] = value
    return merged


def get_batch_cq(wildcards):
    return expand("results/cq/{plate}.parquet", plate=PLATES_OF[wildcards.batch])


def get_ipc_anchor(wildcards):
    """Later batches read the first batch's IPC table (the fixed reference)."""
    if config["ipc"]["reference"] is not None or wildcards.batch == FIRST_BATCH:
        return []
    return f"results/batches/{FIRST_BATCH}/plate_calibration.tsv"


def get_batch_tables(name):
    return expand("results/batches/{batch}/{name}", batch=BATCHES, name=name)


def outcome_active():
    return bool(config["outcome"]["activate"] and config["outcome"]["ctc_counts"])


def predict_active():
    return bool(config["classifier"]["activate"] and config["predict"]["plates"])


def get_final_output():
    if config["only_batch"]:
        batch = config["only_batch"]
        return expand(
            "results/batches/{batch}/{name}",
            batch=batch,
            name=["cells.parquet", "plate_calibration.tsv", "wells.parquet"],
        )
    targets = [
        "results/preprocessed/cq.tsv",
        "results/qc/wells.tsv",
        "results/qc/ntc.tsv",
        "results/qc/plots/gdna_fraction.svg",
        "results/reference_genes/genorm.tsv",
        "results/reference_genes/plots/genorm_m.svg",
        "results/normalised/strategy_agreement.tsv",
        "results/positivity/calls.tsv",
        "results/run_record.json",
    ]
    targets += expand("results/differential/{comparison}.tsv", comparison=COMPARISONS)
    targets += expand(
        "results/differential/plots/{comparison}.volcano.svg", comparison=COMPARISONS
    )
    if config["classifier"]["activate"]:
        targets += [
            "results/classifier/metrics.tsv",
            "results/classifier/plots/roc.svg",
        ]
    if predict_active():
        targets.append("results/predict/probabilities.tsv")
    if outcome_active():
        targets += ["results/outcome/cox.tsv", "results/outcome/plots/km.svg"]
    return targets
