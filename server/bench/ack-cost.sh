#!/usr/bin/env bash
# The cost of durable XEP-0198 acknowledgements (spec/performance.md,
# "Acknowledgements are promises"): `vireo-bench messages` against two
# `vireo` binaries, alternated, each round on a fresh store, with senders
# asking for an acknowledgement every N messages (--ack-every) and without,
# with and without archiving.
#
#   server/bench/ack-cost.sh BEFORE_VIREO AFTER_VIREO [ROUNDS] [PAIRS] [COUNT] [ACK_EVERY]
#
# vireo-bench comes from target/release (cargo build --release -p vireo --bins).
# Prints one JSON line per run (vireo-bench's), prefixed with the binary's label.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
before="$1" after="$2" rounds="${3:-3}" pairs="${4:-50}" count="${5:-2000}" every="${6:-20}"
bench="$root/target/release/vireo-bench"
tmp="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
pid=""
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -keyout "$tmp/localhost.key" -out "$tmp/localhost.crt" >/dev/null 2>&1
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
tls_port=$((port + 1))
n=$((2 * pairs))
for i in $(seq 0 $((n - 1))); do echo "u$i@localhost bench-pw"; done > "$tmp/accounts.txt"

run() { # label binary mam ack_every
    local label="$1" bin="$2" mam="$3" ack="$4" d="$tmp/run"
    rm -rf "$d"; mkdir -p "$d"
    sed -e "s|@DOMAIN@|localhost|; s|@DIR@|$tmp|g; s|@C2S_PORT@|$port|; s|@C2S_TLS_PORT@|$tls_port|" \
        -e "s|@THREADS@|0|; s|@SCRAM_ITERATIONS@|4096|; s|@MAM@|, \"smacks\"$mam|" \
        -e "s|data_path = \"$tmp/data\"|data_path = \"$d/data\"|" \
        "$here/vireo.toml.in" > "$d/vireo.toml"
    local envs=(VIREO_C2S_REQUIRE_ENCRYPTION=false VIREO_LOG=warn)
    env "${envs[@]}" "$bin" -c "$d/vireo.toml" import-users "$tmp/accounts.txt" >/dev/null 2>&1
    env "${envs[@]}" "$bin" -c "$d/vireo.toml" run >"$d/log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
    local out
    out=$("$bench" --host 127.0.0.1 --port "$port" --domain localhost --password bench-pw \
        --server-pid "$pid" messages --pairs "$pairs" --window 20 --count "$count" \
        --ack-every "$ack" 2>>"$d/bench.err" | tail -1 || true)
    echo "$label mam=${mam:+on} ack_every=$ack $out"
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
}

for r in $(seq "$rounds"); do
    for mam in "" ', "mam"'; do
        for ack in 0 "$every"; do
            run before "$before" "$mam" "$ack"
            run after "$after" "$mam" "$ack"
        done
    done
done
