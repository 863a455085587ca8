#!/usr/bin/env bash
# Peak and release: does the server give memory back after a peak?
#
# Starts a fresh release `vireo` on loopback, reads its RSS, logs in N
# sessions at once (vireo-bench idle), lets them all disconnect, and reads
# the RSS again after the server went quiet. Repeats the peak ROUNDS times
# so growth from round to round shows too. Prints one line per reading and
# a verdict: the issue's bar is "after the peak, within 2x of fresh".
#
#   server/bench/peak_release.sh [--sessions 15000] [--rounds 2] [--settle 15]
#
# Not part of CI (it needs ~15,000 file descriptors and a minute or two).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

SESSIONS=15000
ROUNDS=2
SETTLE=15
while [[ $# -gt 0 ]]; do
    case "$1" in
        --sessions) SESSIONS="$2"; shift 2 ;;
        --rounds) ROUNDS="$2"; shift 2 ;;
        --settle) SETTLE="$2"; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

ulimit -n "$(ulimit -Hn)"
cargo build --release -q -p vireo --bins
VIREO="$root/target/release/vireo"
BENCH="$root/target/release/vireo-bench"

tmp="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
tls_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export VIREO_C2S_REQUIRE_ENCRYPTION=false VIREO_BIND=127.0.0.1 VIREO_LOG=warn \
    VIREO_C2S_PORT="$port" VIREO_C2S_TLS_PORT="$tls_port" VIREO_DATA_PATH="$tmp/data"

python3 -c "
import sys
with open(sys.argv[1], 'w') as f:
    for i in range(int(sys.argv[2])):
        f.write('u%d@localhost pw\n' % i)
" "$tmp/accounts.txt" "$SESSIONS"
"$VIREO" import-users "$tmp/accounts.txt" >/dev/null

"$VIREO" run >"$tmp/vireo.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
    sleep 0.1
done

rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
sleep 1
fresh="$(rss)"
echo "fresh: ${fresh} KiB"
after=0
for round in $(seq "$ROUNDS"); do
    "$BENCH" --port "$port" --password pw --server-pid "$pid" idle --sessions "$SESSIONS" \
        >"$tmp/idle-$round.json" 2>"$tmp/idle-$round.err"
    peak="$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d.get('rss_after_kib') or d.get('server_rss_after_kib') or '')" "$tmp/idle-$round.json" 2>/dev/null || true)"
    sleep "$SETTLE"
    after="$(rss)"
    echo "round $round: peak ${peak:-?} KiB with $SESSIONS sessions, after all left: ${after} KiB"
done
ratio="$(python3 -c "print(f'{$after / $fresh:.2f}')")"
echo "after/fresh: ${ratio}x (bar: 2x)"
python3 -c "import sys; sys.exit(0 if $after <= 2 * $fresh else 1)"
