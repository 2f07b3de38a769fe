#!/usr/bin/env python3
"""Check config files the way the workflow does, naming the file and line of a problem.

    python scripts/check_config.py my_study.yaml [more.yaml ...]

Snakemake reads a file given with ``--configfile`` before the workflow starts;
when that file is not valid YAML (a tab in the indentation, an unclosed
bracket) Snakemake stops with "Config file is not valid JSON or YAML" and names
neither the file nor the line. This command does (docs/methods.md §12): YAML
syntax with the line, a key given twice, unknown keys with a did-you-mean.
Exit status 0 when every file passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ctc_qpcr.config_check import check_config_files, load_schema  # noqa: E402
from ctc_qpcr.errors import ConfigError  # noqa: E402

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", help="config files (YAML)")
    args = ap.parse_args(argv)
    schema = load_schema(SCHEMA)
    status = 0
    for path in args.files:
        try:
            check_config_files([path], schema)
        except (ConfigError, OSError) as exc:
            print(exc, file=sys.stderr)
            status = 1
        else:
            print(f"{path}: ok")
    return status


if __name__ == "__main__":
    sys.exit(main())
