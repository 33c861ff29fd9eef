#!/usr/bin/env bash
# Run every benchmark entry point in bench/ at its default size and print each one's final JSON line.
# Defaults are sized so the whole run takes well under 15 minutes on a 2-core machine; the figures at
# full size (10M rows) and how to reproduce them are in bench/README.md.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
status=0
for name in ingest dp_query sandbox dp_audit load chaos search showcase; do
    script="bench/$name.py"
    [ -f "$script" ] || { echo "{\"bench\": \"$name\", \"skipped\": \"$script not present\"}"; continue; }
    log="$(mktemp)"
    if "$PY" "$script" >"$log" 2> >(sed "s/^/[$name] /" >&2); then
        line="$(grep '^{' "$log" | tail -n 1)"
        echo "{\"bench\": \"$name\", \"result\": ${line:-null}}"
    else
        echo "{\"bench\": \"$name\", \"failed\": true}"
        status=1
    fi
    rm -f "$log"
done
exit $status
