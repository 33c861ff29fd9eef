#!/usr/bin/env bash
# Install the browser libraries the lab serves itself (no CDN): ECharts for the charts of answers.
# Exact versions come from package-lock.json (`npm ci`); only the built files are copied into
# src/countylab/web/static/vendor/ (git-ignored: third-party code is never committed), each with
# its licence.  Pages work without them (the tables stay), so a missing npm is a warning, not an
# error.  Called by scripts/venv.sh; run it again after package-lock.json changes.
set -euo pipefail
cd "$(dirname "$0")/.."
vendor=src/countylab/web/static/vendor
if ! command -v npm >/dev/null; then
  echo "countylab: npm not found, charts stay off (install nodejs npm: scripts/system-deps.sh)" >&2
  exit 0
fi
stamp=node_modules/.countylab-installed
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  if ! npm ci --omit=dev --no-audit --no-fund --loglevel=error >/dev/null; then
    echo "countylab: npm ci failed (no registry?), charts stay off; tables work as before" >&2
    exit 0
  fi
  touch "$stamp"
fi
mkdir -p "$vendor"
cp node_modules/echarts/dist/echarts.min.js "$vendor/echarts.min.js"
cp node_modules/echarts/LICENSE "$vendor/echarts.LICENSE"
[ -f node_modules/echarts/NOTICE ] && cp node_modules/echarts/NOTICE "$vendor/echarts.NOTICE"
[ -f node_modules/zrender/LICENSE ] && cp node_modules/zrender/LICENSE "$vendor/zrender.LICENSE"
[ -f node_modules/tslib/LICENSE.txt ] && cp node_modules/tslib/LICENSE.txt "$vendor/tslib.LICENSE"
exit 0
