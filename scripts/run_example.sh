#!/usr/bin/env bash
# Set up the virtual environment (if needed) and run the example study end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import snakemake" 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -r requirements.txt
fi
export PATH="$PWD/.venv/bin:$PATH"
exec snakemake --cores "${CORES:-2}" "$@"
