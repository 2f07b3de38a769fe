#!/usr/bin/env bash
# Set up the virtual environment (if needed) and run the whole test suite:
# unit tests, real-data parser tests, snakefmt, snakemake --lint, a dry run and
# a real run of the example study, the batch and report tests, and (as root
# with apt) the example on a real single-node Slurm.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import snakemake, pytest" 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -r requirements-dev.txt
fi
export PATH="$PWD/.venv/bin:$PATH"
exec .venv/bin/python -m pytest "$@"
