#!/usr/bin/env bash
# Run the whole test suite: starts a throw-away PostgreSQL on 127.0.0.1, runs pytest, stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"

PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
if [ -z "$PGBIN" ]; then echo "PostgreSQL server binaries not found (run scripts/system-deps.sh test)" >&2; exit 1; fi
PGDIR="$(mktemp -d /tmp/countylab-pg.XXXXXX)"
PGPORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
AS=()
if [ "$(id -u)" = 0 ]; then chown postgres "$PGDIR"; AS=(runuser -u postgres --); fi

stop_pg() {
  "${AS[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PGDIR"
}
trap stop_pg EXIT

"${AS[@]}" "$PGBIN/initdb" -D "$PGDIR/data" -U countylab --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
"${AS[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGDIR -c fsync=off -c max_connections=200" start >/dev/null
export COUNTYLAB_TEST_PG_URL="postgresql://countylab@127.0.0.1:$PGPORT/postgres"
export COUNTYLAB_TEST_REQUIRE_PG=1
export COUNTYLAB_TEST_ARTIFACTS="$ROOT/test-artifacts"
mkdir -p "$COUNTYLAB_TEST_ARTIFACTS"

set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
exit $rc
