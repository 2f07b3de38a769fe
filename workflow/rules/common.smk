# Sheets, config validation, batch layout and input functions.
import copy
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# The repository root from this file's place (workflow.basedir is the *using*
# workflow's folder when ctc-qpcr runs as a Snakemake module).
WORKFLOW_ROOT = Path(workflow.current_basedir).parents[1]
sys.path.insert(0, str(WORKFLOW_ROOT / "scripts"))

# With PYTHONDONTWRITEBYTECODE set (many containers) no job keeps the package's bytecode, so
# every job compiled scripts/ctc_qpcr from source again (issue 17: ≈ 75 ms a job). Compiled
# once here instead, where the folder is writable; compileall skips what is up to date.
if sys.dont_write_bytecode:
    import compileall

    compileall.compile_dir(WORKFLOW_ROOT / "scripts" / "ctc_qpcr", quiet=2)

import pandas as pd  # noqa: E402

from ctc_qpcr.chip_options import chip_options  # noqa: E402
from ctc_qpcr import config_check  # noqa: E402
from ctc_qpcr.config_check import check_config, check_settings  # noqa: E402
from ctc_qpcr.errors import ConfigError, InputError  # noqa: E402
from ctc_qpcr import sheets  # noqa: E402
from ctc_qpcr.provenance import sha256  # noqa: E402

try:
    check_config(config, _CONFIG_SCHEMA)  # read by config_file.smk
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None

validate(config, schema="../schemas/config.schema.yaml")


def validate_sheets():
    """Schema validation of the three sheets on their distinct constrained values."""
    for frame, name in ((plates, "plates"), (samples, "samples"), (assays, "assays")):
        schema = WORKFLOW_ROOT / "workflow" / "schemas" / f"{name}.schema.yaml"
        view = sheets.schema_view(frame, config_check.load_schema(schema))
        validate(view, schema=f"../schemas/{name}.schema.yaml")


def check_settings_against_sheets():
    """Dry-run checks of the settings that name genes, groups and time points; the
    prediction batch's sheets are loaded (and their exports checked) here too.
    Returns the prediction batch's exports (inputs of the predict rule)."""
    exports = []
    try:
        check_settings(
            config,
            samples,
            assays,
            config["samples"],
            config["assays"],
            ", ".join(map(str, workflow.configfiles)) or "config/config.yaml",
        )
        if config["classifier"]["activate"] and config["predict"]["plates"]:
            new = sheets.load_plates(config["predict"]["plates"])
            sheets.check_new_exports(plates, new, config["predict"]["plates"])
            exports = list(new["path"])
            if config["predict"]["samples"]:
                sheets.load_samples(config["predict"]["samples"])
    except (ConfigError, InputError) as exc:
        raise WorkflowError(str(exc)) from None
    return exports


# A qPCR study names its three sheets; a CellSearch count study (outcome: only)
# names none of them and plans no qPCR job.
QPCR_SHEETS = ("plates", "samples", "assays")
for key in QPCR_SHEETS:
    config[key] = config.get(key) or ""
QPCR_ACTIVE = any(config[key] for key in QPCR_SHEETS)
if QPCR_ACTIVE and not all(config[key] for key in QPCR_SHEETS):
    raise WorkflowError(
        "config: a qPCR study needs plates, samples and assays; missing: "
        + ", ".join(key for key in QPCR_SHEETS if not config[key])
        + " — give all three sheets, or none of them for a CellSearch count study"
    )
if not QPCR_ACTIVE and not (
    config["outcome"]["activate"] and config["outcome"]["ctc_counts"]
):
    raise WorkflowError(
        "config: nothing to do — give plates, samples and assays (a qPCR study) or "
        "an outcome: section with activate: true, ctc_counts and clinical (a count study)"
    )

try:
    if QPCR_ACTIVE:
        plates = sheets.load_plates(config["plates"])
        samples = sheets.load_samples(config["samples"])
        assays = sheets.load_assays(config["assays"])
    else:
        plates = pd.DataFrame(columns=["plate", "batch", "path", "format", "assay"])
        samples = pd.DataFrame(columns=[*sheets.REQUIRED["samples"], "patient"])
        assays = pd.DataFrame(columns=list(sheets.REQUIRED["assays"]))
    if config["outcome"]["activate"] and config["outcome"]["ctc_counts"]:
        # imported only when used: ctc_qpcr.outcome loads scipy.stats (~1 s of every dry run)
        from ctc_qpcr.outcome import check_outcome_inputs, outcome_options

        check_outcome_inputs(outcome_options(config["outcome"]))
except (ConfigError, InputError) as exc:
    raise WorkflowError(str(exc)) from None

# ctc_qpcr.sheets has already checked every row (with its line number); the
# schemas see only the distinct combinations of the values they constrain
# (sheets.schema_view), so start-up stays fast for tens of thousands of samples.
PREDICT_EXPORTS = []
if QPCR_ACTIVE:
    validate_sheets()
    PREDICT_EXPORTS = check_settings_against_sheets()

# Batches in the order of first appearance in plates.tsv: the first batch
# anchors the IPC reference (config ipc.reference: null).
BATCHES = list(dict.fromkeys(plates["batch"]))
# Each batch's plates.tsv rows as plain records (one to_dict for the sheet, not one
# per batch: the per-batch rules' params), its exports (their inputs) and plates.
PLATE_RECORDS = {b: [] for b in BATCHES}
for _batch, _record in zip(
    plates["batch"],
    plates[["plate", "path", "format", "assay"]].to_dict("records"),
    strict=True,
):
    PLATE_RECORDS[_batch].append(_record)
EXPORTS_OF = {b: [r["path"] for r in PLATE_RECORDS[b]] for b in BATCHES}
PLATES_OF = {b: [r["plate"] for r in PLATE_RECORDS[b]] for b in BATCHES}
FIRST_BATCH = BATCHES[0] if BATCHES else ""

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
    """Chip-level settings of one batch: the global ones with its overrides (the global ones are copied once)."""
    # a batch without overrides: the global settings, deep-copied once (not once per batch)
    if batch not in config["batches"]:
        return dict(_global_chip_settings())  # callers read it; none changes it
    merged = {key: copy.deepcopy(config[key]) for key in CHIP_KEYS}
    for key, value in config["batches"].get(batch, {}).items():
        if isinstance(value, dict):
            merged[key].update(value)
        else:
            merged[key] = value
    return merged


def check_batch_overrides():
    """Each batch's overrides parsed with the global settings now (a dry run), so a wrong
    value names the batch instead of failing one chip-level job later."""
    for batch in config["batches"]:
        try:
            chip_options({**batch_settings(batch), "efficiency": config["efficiency"]})
        except ConfigError as exc:
            message = str(exc).removeprefix("config ")
            raise WorkflowError(
                f"config batches: {batch}: {message} (the override of batch '{batch}')"
            ) from None


_GLOBAL_CHIP_SETTINGS = []


def _global_chip_settings():
    if not _GLOBAL_CHIP_SETTINGS:
        _GLOBAL_CHIP_SETTINGS.append(
            {key: copy.deepcopy(config[key]) for key in CHIP_KEYS}
        )
    return _GLOBAL_CHIP_SETTINGS[0]


check_batch_overrides()


def get_ipc_anchor(batch):
    """Later batches read the first batch's IPC levels (the fixed reference), from the ipc_anchor job."""
    if config["ipc"]["reference"] is not None or batch == FIRST_BATCH:
        return []
    return f"results/batches/{FIRST_BATCH}/ipc_anchor.tsv"


def get_batch_tables(name):
    return expand("results/batches/{batch}/{name}", batch=BATCHES, name=name)


def outcome_active():
    return bool(config["outcome"]["activate"] and config["outcome"]["ctc_counts"])


OUTCOME = config["outcome"]
OUTCOME_CATEGORY = "6. CTC counts and outcome"
OUTCOME_EXPRESSION = QPCR_ACTIVE and bool(OUTCOME["expression_timepoint"])
OUTCOME_ENDPOINTS = ["pfs", "os"]


def outcome_join_inputs():
    """The qPCR tables joined with outcome (none in a count study)."""
    if not QPCR_ACTIVE:
        return {}
    join = {
        "positivity": "results/positivity/sample_calls.tsv",
        "samples": config["samples"],
    }
    if OUTCOME_EXPRESSION:
        join["normalised"] = (
            f"results/normalised/{config['normalisation']['default']}.tsv"
        )
    return join


def outcome_targets():
    targets = [
        "results/outcome/cox.tsv",
        "results/outcome/positivity_rates.tsv",
        "results/outcome/plots/km.svg",
        "results/outcome/plots/km_os.svg",
        "results/outcome/plots/positivity.svg",
    ]
    targets += expand(
        "results/outcome/plots/{kind}/{endpoint}_{draw}.svg",
        kind=["km_draws", "km_change"],
        endpoint=OUTCOME_ENDPOINTS,
        draw=OUTCOME["followups"],
    )
    if OUTCOME["subgroups"]:
        targets += expand(
            "results/outcome/plots/forest_{endpoint}.svg", endpoint=OUTCOME_ENDPOINTS
        )
    return targets


def predict_active():
    return bool(config["classifier"]["activate"] and config["predict"]["plates"])


def get_final_output():
    if not QPCR_ACTIVE:
        return outcome_targets()
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
        "results/qc/ntc.html",
        "results/qc/plots/gdna_fraction.svg",
        "results/reference_genes/genorm.tsv",
        "results/reference_genes/plots/genorm_m.svg",
        "results/normalised/strategy_agreement.tsv",
        "results/positivity/calls.tsv",
        "results/run_record.json",
        "results/qc/miqe.tsv",
        "results/qc/layout",
        "results/rdml/study.rdml",
        "results/preprocessed/cq_plate_summary.tsv",
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
        targets += outcome_targets()
    return targets


def startup_hashes():
    """SHA-256 of the sheets read at start-up (plates.tsv names the exports; the
    prediction batch's sheets), taken now, when they are read."""
    paths = [config["plates"], config["samples"], config["assays"]]
    if predict_active():
        paths += [config["predict"]["plates"], config["predict"]["samples"]]
    return {path: sha256(path) for path in sorted(set(filter(None, paths)))}


def run_record_logs():
    """Logs of the jobs whose results the run record covers (each lists the inputs it read)."""
    if not QPCR_ACTIVE:
        return ["logs/outcome.log"] if outcome_active() else []
    logs = expand("logs/preprocess_batch/{batch}.log", batch=BATCHES)
    logs += ["logs/merge_batches.log", "logs/normalise.log", "logs/positivity.log"]
    if COMPARISONS:
        logs.append("logs/differential.log")
    if config["classifier"]["activate"]:
        logs.append("logs/classifier.log")
    if predict_active():
        logs.append("logs/predict.log")
    if outcome_active():
        logs.append("logs/outcome.log")
    return logs


def site_volcano_files():
    """{comparison: {site: SVG path}} of the per_site comparisons: one volcano per
    site named in the samples sheet (or in the comparison's levels), known at
    parse time, all written by the one plot_differential job."""
    import re

    out = {}
    for spec in config["differential"].get("comparisons", []):
        if spec.get("type") != "per_site" or not QPCR_ACTIVE:
            continue
        column = spec.get("column") or "sites"
        values = samples[column] if column in samples.columns else []
        sites = spec.get("levels") or sorted(
            {
                part.strip().lower()
                for value in pd.unique(pd.Series(values, dtype=object).dropna())
                for part in str(value).split(";")
                if part.strip() and part.strip().lower() not in ("nan", "na")
            }
        )
        files, taken = {}, set()
        for site in sites:
            stem = (
                re.sub(r"[^a-z0-9_.-]+", "_", str(site).lower()).strip("_.") or "site"
            )
            while stem in taken:
                stem += "_"
            taken.add(stem)
            files[str(site)] = (
                f"results/differential/plots/{spec['name']}/{stem}.volcano.svg"
            )
        out[spec["name"]] = files
    return out
