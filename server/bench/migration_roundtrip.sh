#!/usr/bin/env bash
# Migration round trip (issue 15): a redb store of USERS accounts (each with
# a roster of two, a vCard, a private XML document and an offline message)
# and MESSAGES archived messages is copied to PostgreSQL and back into a
# fresh redb store with `vireo storage migrate`, each hop verified by
# reading both stores back; then both redb stores are exported (XEP-0227,
# `vireo export`) and the files compared byte for byte. Times and sizes are
# printed.
#
#   server/bench/migration_roundtrip.sh [USERS] [MESSAGES]   (default 10000 1000000)
#
# Needs release binaries (cargo build --release -p vireo --bins) and
# Debian's PostgreSQL (a throwaway cluster is started on a free loopback
# port and removed at the end).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
USERS=${1:-10000}
MESSAGES=${2:-1000000}
BIN=target/release
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
WORK=$(mktemp -d /tmp/vireo-migrate-XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$WORK"
cleanup() {
    as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
as_pg "$PGBIN/initdb" -D "$WORK/pg" -A trust -U postgres -E UTF8 >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -o "-p $PORT -k $WORK -c listen_addresses=127.0.0.1" -l "$WORK/pg.log" -w start >/dev/null
as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres vireo
export VIREO_DB_HOST=127.0.0.1 VIREO_DB_PORT=$PORT VIREO_DB_NAME=vireo VIREO_DB_USER=postgres
export VIREO_DOMAIN=localhost
mkdir -p "$WORK/a/store" "$WORK/b"
t() { local s; s=$(date +%s.%N); "$@"; echo "    ($(python3 -c "print(round($(date +%s.%N) - $s, 1))") s)"; }
echo "== fill a redb store: $USERS accounts, $MESSAGES archived messages"
fill() { "$BIN/vireo-bench" --port 1 mam --fill-store "$WORK/a/store" --accounts "$USERS" --messages "$MESSAGES" >/dev/null 2>"$WORK/fill.log"; }
t fill
du -sh "$WORK/a/store" | sed 's/^/    redb store: /'
echo "== redb -> postgresql"
t env VIREO_DATA_PATH="$WORK/a" "$BIN/vireo" storage migrate --from redb --to postgresql
as_pg "$PGBIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -Atc "select 'postgresql database: ' || pg_size_pretty(pg_database_size('vireo'))" vireo
echo "== postgresql -> redb (a fresh data directory)"
t env VIREO_DATA_PATH="$WORK/b" "$BIN/vireo" storage migrate --from postgresql --to redb
du -sh "$WORK/b/store" | sed 's/^/    redb store: /'
echo "== XEP-0227 exports of the first and the last store"
t env VIREO_DATA_PATH="$WORK/a" "$BIN/vireo" export "$WORK/a.xml"
t env VIREO_DATA_PATH="$WORK/b" "$BIN/vireo" export "$WORK/b.xml"
ls -l "$WORK/a.xml" | awk '{print "    export: " $5 " bytes"}'
if cmp -s "$WORK/a.xml" "$WORK/b.xml"; then
    echo "    identical: the round trip redb -> postgresql -> redb kept every byte"
else
    echo "    DIFFERENT: the round trip changed the store" >&2
    cmp "$WORK/a.xml" "$WORK/b.xml" | head -3 >&2
    exit 1
fi
