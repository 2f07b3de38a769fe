# config/config.yaml checked before Snakemake loads it: a broken file (a tab in
# the indentation, an unclosed bracket) is reported with its line, where
# Snakemake's own loader names neither the file nor the line.
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))

from ctc_qpcr.config_check import check_yaml_file  # noqa: E402
from ctc_qpcr.errors import ConfigError  # noqa: E402

if Path("config/config.yaml").is_file():
    try:
        check_yaml_file("config/config.yaml")
    except ConfigError as exc:
        raise WorkflowError(str(exc)) from None
