#!/usr/bin/env bash
# Soak: steady mixed load on one fresh release `vireo` (default modules,
# archiving on) for a given time, with the server's RSS and open file
# descriptors sampled every 10 s. Loads, each in its own loop, all at once:
#   - messages between 10 pairs (archived for both sides), 2,000 a run,
#   - 200 logins and logouts a run,
#   - roster-presence: 100 users with 10-contact rosters log in and out,
#   - MAM page queries on an archive the messages loop keeps filling,
#   - XEP-0198 cuts and resumes (slixmpp, when target/interop-venv exists:
#     server/tests/interop/run.sh creates it).
# Prints the samples and the drift after warm-up: the mean of the last tenth
# of the run against the mean of the tenth after the first fifth (goal: RSS
# under 5%, file descriptors flat).
#
#   server/bench/soak.sh [--minutes 60] [--out target/bench/soak-<time>.csv]
#   VIREO_RELEASE_DIR=DIR server/bench/soak.sh ...   # binaries from DIR, no build
#
# Not part of CI. Loopback only; every loop stops at the deadline.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

MINUTES=60
OUT="$root/target/bench/soak-$(date -u +%Y%m%dT%H%M%SZ).csv"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --minutes) MINUTES="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
mkdir -p "$(dirname "$OUT")"

ulimit -n "$(ulimit -Hn)"
# VIREO_RELEASE_DIR: run binaries built (and copied) beforehand, so that
# rebuilding the tree during an hour-long soak does not change them.
if [[ -n "${VIREO_RELEASE_DIR:-}" ]]; then
    bin="$VIREO_RELEASE_DIR"
else
    cargo build --release -q -p vireo --bins
    bin="$root/target/release"
fi
VIREO="$bin/vireo"
BENCH="$bin/vireo-bench"

tmp="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    kill "$server" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port="$(free_port)"
export VIREO_C2S_REQUIRE_ENCRYPTION=false VIREO_BIND=127.0.0.1 VIREO_LOG=warn \
    VIREO_C2S_PORT="$port" VIREO_C2S_TLS_PORT="$(free_port)" VIREO_DATA_PATH="$tmp/data"

python3 - "$tmp/accounts.txt" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for prefix, n in (("s", 20), ("l", 200), ("r", 100), ("m", 4)):
        for i in range(n):
            f.write(f"{prefix}{i}@localhost soakpassword\n")
PY
"$VIREO" import-users "$tmp/accounts.txt" >/dev/null

"$VIREO" run >"$tmp/vireo.log" 2>&1 &
server=$!
for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
    sleep 0.1
done

deadline=$(( $(date +%s) + MINUTES * 60 ))
bench() { "$BENCH" --port "$port" --password soakpassword --server-pid "$server" --timeout 120 "$@"; }

# Each loop runs one load again and again until the deadline, pausing
# between runs so the load is steady rather than a flood (a flood measures
# how fast the archive grows, not drift); a failed run is counted (the soak
# is about memory and descriptors, not pass/fail).
loop() {
    local name="$1" pause="$2"; shift 2
    local runs=0 failures=0
    while (( $(date +%s) < deadline )); do
        if ! "$@" >>"$tmp/$name.jsonl" 2>>"$tmp/$name.err"; then
            failures=$((failures + 1))
        fi
        runs=$((runs + 1))
        sleep "$pause"
    done
    echo "$name: $runs runs, $failures failed" >"$tmp/$name.summary"
}

loop messages 1 bench --user-prefix s messages --pairs 10 --window 2 --count 200 &
pids+=($!)
loop logins 2 bench --user-prefix l login --accounts 200 --concurrency 20 &
pids+=($!)
loop roster 2 bench --user-prefix r roster-presence --users 100 --contacts 10 --concurrency 20 &
pids+=($!)
loop mam 2 bench --user-prefix s mam --queries 20 &
pids+=($!)
venv_py="$root/target/interop-venv/bin/python"
if [[ -x "$venv_py" ]]; then
    loop resumes 1 "$venv_py" "$root/server/bench/soak_resume.py" --port "$VIREO_C2S_TLS_PORT" \
        --jid m0@localhost --sender m1@localhost --password soakpassword --rounds 20 &
    pids+=($!)
else
    echo "no target/interop-venv: XEP-0198 cuts and resumes skipped (run server/tests/interop/run.sh once)" >&2
fi

echo "t_s,rss_kib,fds" >"$OUT"
start=$(date +%s)
while (( $(date +%s) < deadline )); do
    rss="$(awk '/^VmRSS/ {print $2}' "/proc/$server/status")"
    fds="$(find "/proc/$server/fd" -mindepth 1 -maxdepth 1 | wc -l)"
    echo "$(( $(date +%s) - start )),$rss,$fds" >>"$OUT"
    sleep 10
done
for p in "${pids[@]}"; do wait "$p" || true; done
pids=()
cat "$tmp"/*.summary
python3 - "$OUT" <<'PY'
import csv, sys
rows = [(int(r["t_s"]), int(r["rss_kib"]), int(r["fds"])) for r in csv.DictReader(open(sys.argv[1]))]
n = len(rows)
if n < 20:
    sys.exit(f"only {n} samples: run longer")
warm = rows[n // 5 : n // 5 + max(1, n // 10)]
last = rows[-max(1, n // 10):]
mean = lambda xs: sum(xs) / len(xs)
rss_w, rss_l = mean([r[1] for r in warm]), mean([r[1] for r in last])
fd_w, fd_l = mean([r[2] for r in warm]), mean([r[2] for r in last])
print(f"samples: {n} over {rows[-1][0]} s; RSS min {min(r[1] for r in rows)} max {max(r[1] for r in rows)} KiB")
print(f"after warm-up: RSS {rss_w:.0f} KiB -> {rss_l:.0f} KiB ({(rss_l - rss_w) / rss_w * 100:+.1f}%), "
      f"fds {fd_w:.0f} -> {fd_l:.0f}")
PY
echo "samples: $OUT"
