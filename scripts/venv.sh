#!/usr/bin/env bash
# Create .venv (Python >= 3.11) and install countylab and its client; "dev" adds test tools.
# Third-party versions come from constraints.txt (scripts/refresh_constraints.py writes it); the
# client is named on the same command line as the lab, so pip satisfies the lab's
# `countylab-client==…` requirement with this checkout's ./client, never with an index.
set -euo pipefail
extra="${1:-}"
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
  echo "countylab needs Python 3.11 or newer (found $("$PY" --version 2>&1))" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=".venv/.installed-${extra:-base}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ client/pyproject.toml -nt "$stamp" ] \
  || [ constraints.txt -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  if [ "$extra" = "dev" ]; then
    .venv/bin/python -m pip install -q -c constraints.txt -e ./client -e '.[dev]'
  else
    .venv/bin/python -m pip install -q -c constraints.txt -e ./client -e .
  fi
  touch "$stamp"
fi
