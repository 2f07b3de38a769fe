# config/config.yaml and every --configfile checked before Snakemake uses them:
# a broken file (a tab in the indentation, an unclosed bracket, a key given
# twice, an unknown key) is reported with its file and line, where Snakemake's
# own loader names neither. (A --configfile that is not valid YAML stops
# Snakemake before this file runs; `python scripts/check_config.py FILE` names
# the line: docs/methods.md §12.)
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

# From this file's place: workflow.basedir is the *using* workflow's folder when
# ctc-qpcr runs as a Snakemake module.
sys.path.insert(0, str(Path(workflow.current_basedir).parents[1] / "scripts"))

from ctc_qpcr.config_check import check_config_files, load_schema  # noqa: E402
from ctc_qpcr.errors import ConfigError  # noqa: E402

# read once (C parser): common.smk checks the merged config against it too
_CONFIG_SCHEMA = load_schema(
    Path(workflow.current_basedir).parent / "schemas" / "config.schema.yaml"
)
_CONFIG_FILES = (
    [Path("config/config.yaml")] if Path("config/config.yaml").is_file() else []
)
try:
    check_config_files(
        _CONFIG_FILES + [Path(p) for p in workflow.overwrite_configfiles],
        _CONFIG_SCHEMA,
    )
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None
