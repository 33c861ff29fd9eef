#!/usr/bin/env bash
# Create .venv (Python >= 3.11) and install countylab and its client; "dev" adds test tools.
# Third-party versions come from constraints.txt (scripts/refresh_constraints.py writes it); the
# client is named on the same command line as the lab, so pip satisfies the lab's
# `countylab-client==…` requirement with this checkout's ./client, never with an index.
# Output is one short line per step: pip runs quietly (no progress bars, no version nag, no
# root warning) but its errors still show; then `countylab` is linked onto PATH.
set -euo pipefail
extra="${1:-}"
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
  echo "countylab needs Python 3.11 or newer (found $("$PY" --version 2>&1))" >&2; exit 1; }
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off PIP_ROOT_USER_ACTION=ignore \
  PIP_NO_WARN_SCRIPT_LOCATION=1 PIP_NO_INPUT=1
# the same for npm (scripts/assets.sh): no "new version available" notice, fund or audit banners
export NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false
# A host's pip.conf may name local indexes that do not exist on this machine (an image's
# /opt/pypi): pip then prints one "Location … is ignored" warning per package, a wall of text
# before anything useful.  Those lines only are dropped; every other warning and error shows.
pip_quiet() {
  .venv/bin/python -m pip "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}
if [ ! -x .venv/bin/python ]; then
  echo "• creating .venv ($("$PY" --version 2>&1))"
  "$PY" -m venv .venv
fi
stamp=".venv/.installed-${extra:-base}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ client/pyproject.toml -nt "$stamp" ] \
  || [ constraints.txt -nt "$stamp" ]; then
  echo "• installing countylab${extra:+ [$extra]} into .venv (a few minutes the first time)"
  pip_quiet install -q --upgrade pip
  if [ "$extra" = "dev" ]; then
    pip_quiet install -q -c constraints.txt -e ./client -e '.[dev]'
  else
    pip_quiet install -q -c constraints.txt -e ./client -e .
  fi
  touch "$stamp"
else
  echo "• .venv is up to date"
fi
bash scripts/link-cli.sh
bash scripts/assets.sh  # ECharts into web/static/vendor/ from package-lock.json (charts of answers)
