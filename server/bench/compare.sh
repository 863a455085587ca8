#!/usr/bin/env bash
# Side-by-side benchmark: Vireo against Prosody 0.12 and ejabberd 23.01 from
# Debian, in one run, on this machine, over loopback (issue 3).
#
#   server/bench/compare.sh [--quick] [--only vireo,prosody,ejabberd] [--tls]
#                           [--archiving] [--pep] [--muc] [--websocket] [--count M]
#                           [--bench-threads N]
#                           [--no-install] [--no-build] [--no-huge] [--check]
#                           [--keep]
#
#   --quick          small sizes: a smoke run of about two minutes
#   --only LIST      servers to run (comma-separated; default all three)
#   --tls            repeat the throughput runs (idle, messages, login) over STARTTLS
#   --archiving      message archives (XEP-0313) on in all three servers (Vireo's
#                    mam, Prosody's and ejabberd's mod_mam, each archiving every
#                    conversation) and only the messages runs, as mam-messages-*
#   --pep            PEP (XEP-0163) on in all three servers (Vireo's pep, Prosody's
#                    mod_pep, ejabberd's mod_pubsub with its pep plugin + mod_caps) and only the PEP runs:
#                    pep-nN-mM (one publisher, N contacts with +notify caps, M items;
#                    --pep-contacts, --pep-items; rerun as pep-nN-long with enough
#                    items for 3 s when under 2 s) and idle with PEP on
#   --pep-contacts N contacts of the pep run (default 200, quick 20)
#   --pep-items M    items of the pep run (default 200, quick 20)
#   --pep-fanout N   contacts of the pep-fanout run (default 2000, quick 100): 10 items
#                    back to back while two other accounts exchange a message every
#                    5 ms (vireo-bench pep --probe); 0 skips it
#   --muc            group chat (XEP-0045) on in all three servers (Vireo's muc,
#                    Prosody's Component "conference.<domain>" "muc", ejabberd's
#                    mod_muc) and only the muc runs: R rooms x O occupants
#                    (10 x 20; quick 4 x 10), every occupant sending --count
#                    groupchat messages (default 100, quick 20) with 2 in flight,
#                    then one room of 1,000 occupants (quick 200) sending 2 each;
#                    with --archiving every room is archived too (Vireo's
#                    muc_log_all_rooms, Prosody's mod_muc_mam, ejabberd's
#                    default_room_options mam), as mam-muc-*
#   --websocket      the web transports (issue 14): WebSocket (RFC 7395: Vireo's websocket,
#                    Prosody's mod_websocket, ejabberd's ejabberd_http_ws) and BOSH (XEP-0206:
#                    Vireo's bosh, Prosody's mod_bosh, ejabberd's mod_bosh) on in all three on a
#                    plain HTTP port, authentication over plain HTTP allowed, and only these runs,
#                    TCP beside WebSocket on the same server build and sizes: idle-N, ws-idle-N
#                    (vireo-bench --transport ws) and bosh-idle-N (server/bench/bosh_idle.py:
#                    N sessions each holding one request; N = 1,000, quick 100), messages-fresh
#                    and ws-messages-fresh; for Vireo the two messages runs again in its default
#                    configuration (server vireo-defaults: vireo-defaults.toml.in, every
#                    module, archiving on; each case on a fresh copy of the provisioned store)
#   --postgresql     Vireo on PostgreSQL too (a throwaway Debian PostgreSQL cluster on a
#                    loopback port, fsync on): with --archiving, the messages runs are made
#                    for Vireo on redb and on PostgreSQL, each with archiving on and off
#                    (vireo-nomam, vireo-pg, vireo-pg-nomam), and PostgreSQL's own CPU
#                    (its server processes) is recorded beside Vireo's (db_cpu_us_per_msg)
#   --prosody-archive internal|sql
#                    Prosody's archive store with --archiving: internal (its
#                    default, files; the default here) or sql (SQLite, needs
#                    lua-dbi-sqlite3, installed when missing)
#   --count M        messages per pair for the messages runs (default 4000, quick 400)
#   --bench-threads  executor threads of the load generator (default 1)
#   --no-install     do not apt-get install missing packages
#   --no-build       do not run cargo build (use the binaries in target/release)
#   --no-huge        skip the Vireo-only 15,000-idle-session runs of a full run
#   --check          server management only: start each server from its generated
#                    config, provision accounts, record start-up time and RSS, stop
#                    (works without vireo-bench)
#   --keep           keep the temporary directory (configs, logs, data) for inspection
#
# Each server runs as its own process with a generated config in a temporary
# directory, on free 127.0.0.1 ports, is restarted fresh for every scenario and
# stopped by PID afterwards; a trap cleans up on any exit. Results: one JSON
# line per run in target/bench/results-<timestamp>.jsonl, the load generator's
# tables in target/bench/run-<timestamp>.log, and the comparison table
# (server/bench/report.py) on stdout.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PY="${PYTHON:-python3}"
LIB="$HERE/benchlib.py"

QUICK=0 TLS=0 ARCHIVING=0 WEB=0 PEP=0 PEP_N="" PEP_M="" PEP_FANOUT="" MUC=0 PROSODY_ARCHIVE=internal INSTALL=1 BUILD=1 CHECK=0 KEEP=0 HUGE_RUNS=1
ONLY="vireo,prosody,ejabberd" COUNT="" BENCH_THREADS=1 POSTGRES=0
DOMAIN=localhost PASSWORD=bench-pw PREFIX=u ROSTER_PREFIX=r
# ejabberd 23.01 (p1_xmpp) hashes SCRAM with a fixed 4,096 iterations; Prosody
# (default_iteration_count) and Vireo ([stream] scram_iterations) are set to match.
SCRAM_ITERATIONS=4096

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --tls) TLS=1 ;;
        --archiving) ARCHIVING=1 ;;
        --postgresql) POSTGRES=1 ;;
        --websocket) WEB=1 ;;
        --pep) PEP=1 ;;
        --pep-contacts) PEP_N="$2"; shift ;;
        --pep-items) PEP_M="$2"; shift ;;
        --pep-fanout) PEP_FANOUT="$2"; shift ;;
        --muc) MUC=1 ;;
        --prosody-archive) PROSODY_ARCHIVE="$2"; shift ;;
        --prosody-archive=*) PROSODY_ARCHIVE="${1#*=}" ;;
        --only) ONLY="$2"; shift ;;
        --only=*) ONLY="${1#*=}" ;;
        --count) COUNT="$2"; shift ;;
        --bench-threads) BENCH_THREADS="$2"; shift ;;
        --no-install) INSTALL=0 ;;
        --no-build) BUILD=0 ;;
        --no-huge) HUGE_RUNS=0 ;;
        --check) CHECK=1 ;;
        --keep) KEEP=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "compare.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

SERVERS=()
for s in ${ONLY//,/ }; do
    case "$s" in
        vireo|prosody|ejabberd) SERVERS+=("$s") ;;
        *) echo "compare.sh: unknown server '$s' (vireo, prosody, ejabberd)" >&2; exit 2 ;;
    esac
done
has() { [[ " ${SERVERS[*]} " == *" $1 "* ]]; }

# Scenario sizes (issue 3). Quick: the same shapes, small.
MUC_COUNT="$COUNT"  # --count as given (the messages defaults are set below)
if [ "$QUICK" = 1 ]; then
    IDLE_SMALL=100 IDLE_BIG=500 PAIRS=10 WINDOW=10 COUNT="${COUNT:-400}"
    LOGIN_ACCOUNTS=200 LOGIN_CONC=20 RP_USERS=20 RP_CONTACTS=10 HUGE=0
    PEP_N="${PEP_N:-20}" PEP_M="${PEP_M:-20}" PEP_FANOUT="${PEP_FANOUT:-100}"
    MUC_ROOMS=4 MUC_OCCUPANTS=10 MUC_COUNT="${MUC_COUNT:-20}" MUC_BIG=200
else
    IDLE_SMALL=1000 IDLE_BIG=5000 PAIRS=50 WINDOW=20 COUNT="${COUNT:-4000}"
    LOGIN_ACCOUNTS=2000 LOGIN_CONC=50 RP_USERS=200 RP_CONTACTS=50 HUGE=15000
    PEP_N="${PEP_N:-200}" PEP_M="${PEP_M:-200}" PEP_FANOUT="${PEP_FANOUT:-2000}"
    MUC_ROOMS=10 MUC_OCCUPANTS=20 MUC_COUNT="${MUC_COUNT:-100}" MUC_BIG=1000
    [ "$HUGE_RUNS" = 1 ] || HUGE=0
fi
# Archiving (--archiving): what each template gets in its module list.
case "$PROSODY_ARCHIVE" in
    internal) PROSODY_STORAGE='storage = "internal"' ;;
    sql) PROSODY_STORAGE='storage = { archive = "sql" }  -- everything else internal' ;;
    *) echo "compare.sh: --prosody-archive is internal or sql" >&2; exit 2 ;;
esac
if [ "$ARCHIVING" = 1 ]; then
    MAM_VIREO=', "mam"' MAM_PROSODY='"mam";' MAM_EJABBERD='mod_mam: {default: always}'
else
    MAM_VIREO='' MAM_PROSODY='' MAM_EJABBERD=''
fi
if [ "$PEP" = 1 ]; then
    PEP_VIREO=', "pep"' PEP_PROSODY='"pep";' PEP_EJABBERD='mod_caps: {}\n  mod_pubsub:\n    plugins: [flat, pep]'
else
    PEP_VIREO='' PEP_PROSODY='' PEP_EJABBERD=''
fi
# Group chat (--muc): the MUC service in each configuration.
if [ "$MUC" = 1 ]; then
    MUC_VIREO=', "muc"' MUC_PROSODY="Component \"conference.$DOMAIN\" \"muc\"" MUC_EJABBERD='mod_muc: {max_users: 1000}'
else
    MUC_VIREO='' MUC_PROSODY='' MUC_EJABBERD=''
fi
# --muc --archiving: every room archived (XEP-0313 on the room JID), as the
# servers' shipped configurations do for persistent rooms (ejabberd's example
# configuration: default_room_options mam: true) and Prosody's mod_muc_mam.
VIREO_SERVICES='' MUC_CASE_PREFIX=''
if [ "$MUC" = 1 ] && [ "$ARCHIVING" = 1 ]; then
    VIREO_SERVICES='[services]\nmuc_log_all_rooms = true'
    MUC_PROSODY="$MUC_PROSODY\n\tmodules_enabled = { \"muc_mam\" }\n\tmuc_log_all_rooms = true"
    MUC_EJABBERD='mod_muc: {max_users: 1000, default_room_options: {mam: true}}'
    MUC_CASE_PREFIX='mam-'
fi
# Web transports (--websocket): the HTTP endpoints in each configuration, allowed
# to authenticate over plain HTTP (loopback), as the TCP runs are over plain TCP.
if [ "$WEB" = 1 ]; then
    WEB_VIREO=', "http", "websocket", "bosh"'
    # (No '#' in these values: it is fill's sed delimiter.)
    VIREO_INTERFACES='[interfaces]\nhttp_max_per_address = 100000\nwebsocket_consider_secure = true\nbosh_consider_secure = true'
    WEB_PROSODY='"websocket"; "bosh";' PROSODY_HTTP_PORT='@HTTP_PORT@'
    EJABBERD_HTTP_LISTENER='-\n    port: @HTTP_PORT@\n    ip: "127.0.0.1"\n    module: ejabberd_http\n    request_handlers:\n      /xmpp-websocket: ejabberd_http_ws\n      /http-bind: mod_bosh\n    backlog: 1024'
    EJABBERD_BOSH='mod_bosh: {}'
else
    WEB_VIREO='' VIREO_INTERFACES='' WEB_PROSODY='' PROSODY_HTTP_PORT='' EJABBERD_HTTP_LISTENER='' EJABBERD_BOSH=''
fi
max() { local m=$1; shift; for v in "$@"; do [ "$v" -gt "$m" ] && m=$v; done; echo "$m"; }
# Accounts PREFIX0..: pairs + idle sessions of the largest run, login accounts; +10 slack.
N_COMMON=$(( $(max $((IDLE_BIG + 2 * PAIRS)) "$LOGIN_ACCOUNTS") + 10 ))
N_VIREO=$(( $(max "$N_COMMON" $((HUGE + 2 * PAIRS))) + 10 ))
# Roster accounts r0..: roster-presence users, or the pep run's publisher and contacts.
N_ROSTER=$(( $(max $((RP_USERS + RP_CONTACTS)) $((PEP_N + 1))) + 10 ))
[ "$PEP" = 1 ] && N_ROSTER=$(( $(max "$N_ROSTER" $((PEP_FANOUT + 3 + 10))) ))
if [ "$MUC" = 1 ]; then
    # The muc runs only: just the occupants' accounts.
    N_COMMON=$(( $(max $((MUC_ROOMS * MUC_OCCUPANTS)) "$MUC_BIG") + 10 )) N_VIREO=$N_COMMON N_ROSTER=0
elif [ "$WEB" = 1 ]; then
    # The web transport runs only: the idle sessions and the pairs.
    N_COMMON=$(( $(max "$IDLE_SMALL" $((2 * PAIRS))) + 10 )) N_VIREO=$N_COMMON N_ROSTER=0
fi

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT_DIR="$TARGET/bench"
RESULTS="$OUT_DIR/results-$STAMP.jsonl"
RUNLOG="$OUT_DIR/run-$STAMP.log"
mkdir -p "$OUT_DIR"
: > "$RESULTS"

log() { printf '[compare %s] %s\n' "$(date +%H:%M:%S)" "$*" | tee -a "$RUNLOG" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- cleanup
TMP=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    pg_stop
    if [ -n "$TMP" ] && [ -d "$TMP" ]; then
        local f
        for f in "$TMP"/*/pids; do
            [ -f "$f" ] || continue
            # shellcheck disable=SC2046
            "$PY" "$LIB" stop --timeout 10 $(cat "$f") || true
            rm -f "$f"
        done
        if [ "$KEEP" = 1 ]; then
            log "kept $TMP"
        else
            rm -rf "$TMP"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- open files
HARD="$(ulimit -Hn)"
[ "$HARD" = unlimited ] && HARD=1048576
ulimit -n "$HARD" || die "cannot raise the open-file soft limit to $HARD"
log "open-file limit: $(ulimit -Sn) (hard $HARD)"
if [ "$HUGE" -gt 0 ] && [ "$HARD" -lt $((HUGE + 1000)) ]; then
    log "open-file hard limit $HARD is too low for $HUGE sessions; skipping those runs"
    HUGE=0
fi

# ---------------------------------------------------------------- packages
pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
if [ "$INSTALL" = 1 ]; then
    missing=()
    for s in prosody ejabberd; do
        has "$s" && ! pkg_installed "$s" && missing+=("$s")
    done
    if has prosody && [ "$ARCHIVING" = 1 ] && [ "$PROSODY_ARCHIVE" = sql ] && ! pkg_installed lua-dbi-sqlite3; then
        missing+=(lua-dbi-sqlite3)
    fi
    for tool in openssl:openssl setpriv:util-linux; do
        command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        apt-get update -q >>"$RUNLOG" 2>&1 || die "apt-get update failed (see $RUNLOG)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" \
            >>"$RUNLOG" 2>&1 || die "apt-get install ${missing[*]} failed (see $RUNLOG)"
    fi
fi
for s in prosody ejabberd; do
    has "$s" && ! pkg_installed "$s" && die "$s is not installed (drop --no-install or --only it away)"
done

# The packages start system services on their default ports and /etc configs:
# stop (and, under systemd, disable) them; the /etc configs are never touched.
stop_package_services() {
    local s pids
    for s in prosody ejabberd; do
        pkg_installed "$s" || continue
        if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
            systemctl disable --now "$s" >/dev/null 2>&1 || true
        elif command -v service >/dev/null; then
            service "$s" stop >/dev/null 2>&1 || true
        fi
    done
    pids="$("$PY" "$LIB" package-pids)"
    if [ -n "$pids" ]; then
        log "stopping package-started server processes: $(echo $pids)"
        # shellcheck disable=SC2086
        "$PY" "$LIB" stop --timeout 15 $pids || true
    fi
}
stop_package_services

# ---------------------------------------------------------------- build
if [ "$BUILD" = 1 ]; then
    log "cargo build --release -p vireo"
    (cd "$ROOT" && cargo build --release -p vireo) >>"$RUNLOG" 2>&1 || die "cargo build failed (see $RUNLOG)"
fi
VIREO="$TARGET/release/vireo"
BENCH="$TARGET/release/vireo-bench"
[ -x "$VIREO" ] || die "$VIREO is missing"
if [ ! -x "$BENCH" ]; then
    [ "$CHECK" = 1 ] || die "$BENCH is missing (cargo build --release -p vireo --bin vireo-bench); --check runs without it"
    BENCH=""
fi

# ---------------------------------------------------------------- machine
TMP="$(mktemp -d /tmp/vireo-compare.XXXXXX)"
chmod 755 "$TMP"
{
    "$PY" "$LIB" machine | "$PY" -c '
import json, subprocess, sys
m = json.loads(sys.stdin.read())
def out(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:
        return ""
m["stamp"] = sys.argv[1]
m["mode"] = sys.argv[2]
m["archiving"] = sys.argv[5] == "1"
m["pep"] = sys.argv[7] == "1"
m["muc"] = sys.argv[8] == "1"
m["websocket"] = sys.argv[9] == "1"
if m["archiving"]:
    m["prosody_archive"] = sys.argv[6]
m["vireo_rev"] = out("git", "-C", sys.argv[3], "describe", "--always", "--dirty")
for p in ("prosody", "ejabberd"):
    v = out("dpkg-query", "-W", "-f=${Version}", p)
    if v:
        m[p + "_version"] = v
m["scram_iterations"] = int(sys.argv[4])
print(json.dumps(m))
' "$STAMP" "$([ "$QUICK" = 1 ] && echo quick || echo full)" "$ROOT" "$SCRAM_ITERATIONS" "$ARCHIVING" "$PROSODY_ARCHIVE" "$PEP" "$MUC" "$WEB"
} >> "$RESULTS"

# One self-signed certificate for all three servers (TLS runs).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
    -subj "/CN=$DOMAIN" -addext "subjectAltName=DNS:$DOMAIN" \
    -keyout "$TMP/localhost.key" -out "$TMP/localhost.crt" >/dev/null 2>&1 \
    || die "openssl could not generate a certificate"

# ---------------------------------------------------------------- servers
declare -A PORT TLS_PORT DIST_PORT HTTP_PORT HTTPS_PORT S2S_PORT S2S_TLS_PORT PID
free_ports() { "$PY" "$LIB" free-ports "$1" | tr '\n' ' '; }

fill() { # fill TEMPLATE OUT DIR [KEY=VALUE...]
    local tpl="$1" out="$2" dir="$3" kv args=()
    shift 3
    args=(-e "s#@DIR@#$dir#g" -e "s#@DOMAIN@#$DOMAIN#g" -e "s#@SCRAM_ITERATIONS@#$SCRAM_ITERATIONS#g"
          -e "s#@MAM@#$MAM_VIREO#g" -e "s#@PROSODY_MAM@#$MAM_PROSODY#g" -e "s#@EJABBERD_MAM@#$MAM_EJABBERD#g"
          -e "s#@PROSODY_ARCHIVE_STORAGE@#$PROSODY_STORAGE#g"
          -e "s#@PEP@#$PEP_VIREO#g" -e "s#@PROSODY_PEP@#$PEP_PROSODY#g" -e "s#@EJABBERD_PEP@#$PEP_EJABBERD#g"
          -e "s#@MUC@#$MUC_VIREO#g" -e "s#@PROSODY_MUC@#$MUC_PROSODY#g" -e "s#@EJABBERD_MUC@#$MUC_EJABBERD#g"
          -e "s#@VIREO_SERVICES@#$VIREO_SERVICES#g"
          -e "s#@WEB@#$WEB_VIREO#g" -e "s#@VIREO_INTERFACES@#$VIREO_INTERFACES#g"
          -e "s#@PROSODY_WEB@#$WEB_PROSODY#g" -e "s#@PROSODY_HTTP_PORT@#$PROSODY_HTTP_PORT#g"
          -e "s#@EJABBERD_HTTP_LISTENER@#$EJABBERD_HTTP_LISTENER#g" -e "s#@EJABBERD_BOSH@#$EJABBERD_BOSH#g")
    for kv in "$@"; do args+=(-e "s#@${kv%%=*}@#${kv#*=}#g"); done
    sed "${args[@]}" "$tpl" > "$out"
}

accounts_file() { # accounts_file OUT N_COMMON N_ROSTER
    "$PY" -c '
import sys
out, n, nr, dom, pw, p, rp = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:]
with open(out, "w") as f:
    for i in range(n):
        f.write("%s%d@%s %s\n" % (p, i, dom, pw))
    for i in range(nr):
        f.write("%s%d@%s %s\n" % (rp, i, dom, pw))
' "$1" "$2" "$3" "$DOMAIN" "$PASSWORD" "$PREFIX" "$ROSTER_PREFIX"
}

setup_vireo() {
    local d="$TMP/vireo" p
    mkdir -p "$d"
    cp "$TMP/localhost.crt" "$TMP/localhost.key" "$d/"
    read -r PORT[vireo] TLS_PORT[vireo] HTTP_PORT[vireo] HTTPS_PORT[vireo] S2S_PORT[vireo] \
        S2S_TLS_PORT[vireo] <<<"$(free_ports 6)"
    # Variants of one server (one data directory, the same ports): vireo-t1 with one
    # executor thread; vireo-defaults (--websocket) in the default configuration.
    for p in vireo-t1 vireo-defaults vireo-nomam vireo-pg vireo-pg-nomam; do
        PORT[$p]=${PORT[vireo]} TLS_PORT[$p]=${TLS_PORT[vireo]}
    done
    # Archiving off for the side-by-side with --archiving (vireo-nomam, vireo-pg-nomam).
    MAM_VIREO="" fill "$HERE/vireo.toml.in" "$d/vireo-nomam.toml" "$d" \
        "C2S_PORT=${PORT[vireo]}" "C2S_TLS_PORT=${TLS_PORT[vireo]}" "THREADS=0"
    for p in "vireo:0" "vireo-t1:1"; do
        fill "$HERE/vireo.toml.in" "$d/${p%%:*}.toml" "$d" \
            "C2S_PORT=${PORT[vireo]}" "C2S_TLS_PORT=${TLS_PORT[vireo]}" "THREADS=${p#*:}"
    done
    fill "$HERE/vireo-defaults.toml.in" "$d/vireo-defaults.toml" "$d" \
        "C2S_PORT=${PORT[vireo]}" "C2S_TLS_PORT=${TLS_PORT[vireo]}"
    accounts_file "$d/accounts.txt" "$N_VIREO" "$N_ROSTER"
    log "vireo: importing $((N_VIREO + N_ROSTER)) accounts (server stopped)"
    if ! vireo_env "$VIREO" -c "$d/vireo.toml" import-users "$d/accounts.txt" >>"$d/import.log" 2>&1; then
        log "vireo: 'vireo import-users' failed (see below); falling back to one 'vireo adduser' per account"
        tail -5 "$d/import.log" | tee -a "$RUNLOG" >&2
        local jid pw
        while read -r jid pw; do
            printf '%s\n' "$pw" | vireo_env "$VIREO" -c "$d/vireo.toml" adduser "$jid" >>"$d/import.log" 2>&1 \
                || die "vireo adduser $jid failed (see $d/import.log)"
        done < "$d/accounts.txt"
    fi
    if [ "$POSTGRES" = 1 ]; then
        pg_start
        log "vireo: importing $((N_VIREO + N_ROSTER)) accounts into PostgreSQL"
        # shellcheck disable=SC2046
        vireo_env env $(pg_env) "$VIREO" -c "$d/vireo.toml" import-users "$d/accounts.txt" \
            >>"$d/import.log" 2>&1 || die "vireo import-users into PostgreSQL failed (see $d/import.log)"
    fi
    # The store as provisioned (--websocket): every vireo-defaults case starts from a copy,
    # so its archive (mam is on there) holds only that case's messages, whichever runs first.
    if [ "$WEB" = 1 ]; then
        cp -a "$d/data" "$d/data.provisioned"
    fi
}
# --postgresql: a throwaway cluster (Debian's PostgreSQL; initdb refuses root, so
# its files belong to the postgres user), its database "vireo" provisioned like
# the redb store.
PG_BIN="" PG_DIR="" PG_PORT=""
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_start() {
    PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
    [ -x "$PG_BIN/initdb" ] || die "--postgresql needs Debian's postgresql package"
    PG_DIR="$TMP/pg" PG_PORT="$(free_ports 1 | tr -d ' ')"
    mkdir -p "$PG_DIR"
    [ "$(id -u)" = 0 ] && chown postgres "$PG_DIR"
    as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres -E UTF8 >>"$RUNLOG" 2>&1 \
        || die "initdb failed (see $RUNLOG)"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w start \
        -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1" >>"$RUNLOG" 2>&1 \
        || die "PostgreSQL did not start (see $PG_DIR/log)"
    as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres vireo
    log "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT"
}
pg_stop() {
    [ -n "$PG_DIR" ] && [ -d "$PG_DIR/data" ] || return 0
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
}
# CPU seconds the cluster's processes have used (the postmaster and every backend).
pg_cpu() {
    local pm
    pm="$(head -1 "$PG_DIR/data/postmaster.pid")"
    "$PY" - "$pm" <<'PYEOF'
import os, sys
pm = sys.argv[1]
tick = os.sysconf("SC_CLK_TCK")
total = 0
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        continue
    fields = stat.rsplit(")", 1)[1].split()
    ppid = fields[1]
    if pid == pm or ppid == pm:
        # utime, stime, cutime, cstime (exited backends are reaped by the postmaster)
        total += sum(int(x) for x in fields[11:15])
print(total / tick)
PYEOF
}
pg_env() { echo VIREO_DB_DRIVER=postgresql VIREO_DB_HOST=127.0.0.1 VIREO_DB_PORT="$PG_PORT" VIREO_DB_NAME=vireo VIREO_DB_USER=postgres; }

vireo_env() {
    env VIREO_C2S_REQUIRE_ENCRYPTION=false VIREO_BIND=127.0.0.1 VIREO_LOG=warn \
        VIREO_C2S_PORT="${PORT[vireo]}" VIREO_C2S_TLS_PORT="${TLS_PORT[vireo]}" \
        VIREO_HTTP_PORT="${HTTP_PORT[vireo]}" VIREO_HTTPS_PORT="${HTTPS_PORT[vireo]}" \
        VIREO_S2S_PORT="${S2S_PORT[vireo]}" VIREO_S2S_TLS_PORT="${S2S_TLS_PORT[vireo]}" \
        VIREO_DATA_PATH="$TMP/vireo/data" "$@"
}

setup_prosody() {
    local d="$TMP/prosody"
    mkdir -p "$d/data"
    cp "$TMP/localhost.crt" "$TMP/localhost.key" "$d/"
    read -r PORT[prosody] TLS_PORT[prosody] HTTP_PORT[prosody] <<<"$(free_ports 3)"
    fill "$HERE/prosody.cfg.lua.in" "$d/prosody.cfg.lua" "$d" \
        "C2S_PORT=${PORT[prosody]}" "C2S_TLS_PORT=${TLS_PORT[prosody]}" "HTTP_PORT=${HTTP_PORT[prosody]}"
    chown -R prosody:prosody "$d"
    chmod 600 "$d/localhost.key"
    provision_ibr prosody
}

setup_ejabberd() {
    local d="$TMP/ejabberd"
    mkdir -p "$d/etc" "$d/log" "$d/db"
    cp "$TMP/localhost.crt" "$TMP/localhost.key" "$d/"
    read -r PORT[ejabberd] TLS_PORT[ejabberd] DIST_PORT[ejabberd] HTTP_PORT[ejabberd] <<<"$(free_ports 4)"
    local kv=("C2S_PORT=${PORT[ejabberd]}" "C2S_TLS_PORT=${TLS_PORT[ejabberd]}"
              "DIST_PORT=${DIST_PORT[ejabberd]}" "HTTP_PORT=${HTTP_PORT[ejabberd]}" "NODE=vbench$$")
    fill "$HERE/ejabberd.yml.in" "$d/etc/ejabberd.yml" "$d" "${kv[@]}"
    fill "$HERE/ejabberdctl.cfg.in" "$d/etc/ejabberdctl.cfg" "$d" "${kv[@]}"
    fill "$HERE/inetrc.in" "$d/etc/inetrc" "$d"
    chown -R ejabberd:ejabberd "$d"
    chmod 600 "$d/localhost.key"
    provision_ibr ejabberd
}

# XEP-0077 registration of the same accounts, on a server started for it.
provision_ibr() {
    local srv="$1" d="$TMP/$1" ok=0
    start_server "$srv" provision
    log "$srv: registering $((N_COMMON + N_ROSTER)) accounts in-band (XEP-0077)"
    if [ -n "$BENCH" ] && [ "${PROVISION_WITH:-bench}" = bench ]; then
        if "$BENCH" --host 127.0.0.1 --port "${PORT[$srv]}" --domain "$DOMAIN" --password "$PASSWORD" \
                --register --user-prefix "$PREFIX" --label "$srv/provision" \
                login --accounts "$N_COMMON" --concurrency 20 >"$d/provision.json" 2>>"$d/provision.log" \
           && { [ "$N_ROSTER" = 0 ] || "$BENCH" --host 127.0.0.1 --port "${PORT[$srv]}" --domain "$DOMAIN" \
                --password "$PASSWORD" --register --user-prefix "$ROSTER_PREFIX" --label "$srv/provision" \
                login --accounts "$N_ROSTER" --concurrency 20 >>"$d/provision.json" 2>>"$d/provision.log"; }; then
            ok=1
        else
            log "$srv: vireo-bench --register failed (see $d/provision.log); using benchlib.py register"
            tail -5 "$d/provision.log" | tee -a "$RUNLOG" >&2
        fi
    fi
    if [ "$ok" = 0 ]; then
        "$PY" "$LIB" register --port "${PORT[$srv]}" --domain "$DOMAIN" --prefix "$PREFIX" \
            --count "$N_COMMON" --password "$PASSWORD" | tee -a "$RUNLOG" >&2 \
            || die "$srv: registration of $PREFIX* failed"
        "$PY" "$LIB" register --port "${PORT[$srv]}" --domain "$DOMAIN" --prefix "$ROSTER_PREFIX" \
            --count "$N_ROSTER" --password "$PASSWORD" | tee -a "$RUNLOG" >&2 \
            || die "$srv: registration of $ROSTER_PREFIX* failed"
    fi
    stop_server "$srv"
}

# start_server SERVER CASE: spawn it fresh, wait for stream features, record
# start-up time and RSS as a "startup" line; sets PID[SERVER].
start_server() {
    local srv="$1" case="$2" base="${1%%-*}" d cmd=() comm=() line
    d="$TMP/$base"
    case "$srv" in
        vireo|vireo-t1|vireo-defaults|vireo-nomam|vireo-pg|vireo-pg-nomam)
            local toml="$srv" db=()
            case "$srv" in
                vireo-pg) toml=vireo ;;
                vireo-pg-nomam) toml=vireo-nomam ;;
            esac
            # shellcheck disable=SC2207
            [[ "$srv" == vireo-pg* ]] && db=($(pg_env))
            cmd=(env "${db[@]}" VIREO_C2S_REQUIRE_ENCRYPTION=false VIREO_BIND=127.0.0.1 VIREO_LOG=warn
                 VIREO_C2S_PORT="${PORT[vireo]}" VIREO_C2S_TLS_PORT="${TLS_PORT[vireo]}"
                 VIREO_HTTP_PORT="${HTTP_PORT[vireo]}" VIREO_HTTPS_PORT="${HTTPS_PORT[vireo]}"
                 VIREO_S2S_PORT="${S2S_PORT[vireo]}" VIREO_S2S_TLS_PORT="${S2S_TLS_PORT[vireo]}"
                 VIREO_DATA_PATH="$d/data" "$VIREO" run --config "$d/$toml.toml")
            if [ "$srv" = vireo-defaults ]; then
                rm -rf "$d/data-defaults"
                cp -a "$d/data.provisioned" "$d/data-defaults"
                cmd=("${cmd[@]/#VIREO_DATA_PATH=*/VIREO_DATA_PATH=$d/data-defaults}")
            fi ;;
        prosody)
            cmd=(setpriv --reuid=prosody --regid=prosody --init-groups
                 prosody -F --config "$d/prosody.cfg.lua") ;;
        ejabberd)
            # As root, ejabberdctl would re-exec itself through su, whose PAM
            # limits cap open files at 1024: start it as the ejabberd user.
            cmd=(env HOME="$d" setpriv --reuid=ejabberd --regid=ejabberd --init-groups
                 ejabberdctl --config-dir "$d/etc" --logs "$d/log" --spool "$d/db" foreground)
            comm=(--comm beam.smp) ;;
    esac
    line="$("$PY" "$LIB" launch --server "$srv" --label "$case" --port "${PORT[$srv]}" \
        --domain "$DOMAIN" --log "$d/server.log" --pidfile "$d/pids" --cwd "$d" \
        --timeout 90 "${comm[@]}" -- "${cmd[@]}")" || die "$srv did not start (log: $d/server.log)"
    PID[$srv]="$(cut -d' ' -f1 "$d/pids")"
    printf '%s\n' "$line" | "$PY" -c '
import json, sys
r = json.loads(sys.stdin.read()); r.pop("features", None); r["case"] = sys.argv[1]
print(json.dumps(r))' "$case" >> "$RESULTS"
    log "$srv started for $case: $(printf '%s' "$line" | "$PY" -c '
import json, sys; r = json.loads(sys.stdin.read())
print("%.1f ms to stream features, RSS %d KiB, PID %d" % (r["startup_ms"], r["rss_kib"] or 0, r["pid"]))')"
}

stop_server() {
    local d="$TMP/${1%%-*}"
    if [ -f "$d/pids" ]; then
        # shellcheck disable=SC2046
        "$PY" "$LIB" stop --timeout 15 $(cat "$d/pids") || true
        rm -f "$d/pids"
    fi
    PID[$1]=""
}

# ---------------------------------------------------------------- scenarios
# run_case SERVER CASE [--tls starttls] [--user-prefix P] SCENARIO ARGS...
# With TRANSPORT=ws in its environment, the sessions use XMPP over WebSocket on the
# server's HTTP port (vireo-bench --transport ws).
run_case() {
    local srv="$1" case="$2" d rc=0 port tr=()
    shift 2
    d="$TMP/${srv%%-*}"
    port="${PORT[$srv]}"
    if [ "${TRANSPORT:-tcp}" = ws ]; then
        port="${HTTP_PORT[${srv%%-*}]}" tr=(--transport ws --ws-path /xmpp-websocket)
    fi
    start_server "$srv" "$case"
    log "$srv: $case: vireo-bench ${tr[*]} $*"
    local db_before="" db_cpu=""
    [[ "$srv" == vireo-pg* ]] && db_before="$(pg_cpu)"
    "$BENCH" --host 127.0.0.1 --port "$port" "${tr[@]}" --domain "$DOMAIN" --password "$PASSWORD" \
        --server-pid "${PID[$srv]}" --threads "$BENCH_THREADS" --mechanism SCRAM-SHA-1 \
        --label "$srv/$case" "$@" >"$d/case.json" 2> >(tee -a "$RUNLOG" >&2) || rc=$?
    [ -n "$db_before" ] && db_cpu="$("$PY" -c "print($(pg_cpu) - $db_before)")"
    stop_server "$srv"
    DB_CPU_S="$db_cpu" record_case "$srv" "$case" "$rc" "$d/case.json" "${tr[*]} $*"
}

# bosh_case SERVER CASE N: N idle BOSH sessions, each holding one request
# (server/bench/bosh_idle.py), and the server's RSS per session.
bosh_case() {
    local srv="$1" case="$2" n="$3" d rc=0 args
    d="$TMP/${srv%%-*}"
    args=(--port "${HTTP_PORT[${srv%%-*}]}" --path /http-bind --domain "$DOMAIN" --prefix "$PREFIX"
          --password "$PASSWORD" --sessions "$n" --concurrency 50 --wait 60)
    start_server "$srv" "$case"
    log "$srv: $case: bosh_idle.py ${args[*]}"
    "$PY" "$HERE/bosh_idle.py" "${args[@]}" --server-pid "${PID[$srv]}" --label "$srv/$case" \
        >"$d/case.json" 2> >(tee -a "$RUNLOG" >&2) || rc=$?
    stop_server "$srv"
    record_case "$srv" "$case" "$rc" "$d/case.json" "bosh_idle.py ${args[*]}"
}

# record_case SERVER CASE STATUS JSON_FILE ARGS: the run's JSON line, labelled, into
# the results (an error line when the tool gave none).
record_case() {
    local srv="$1" case="$2" rc="$3"
    "$PY" - "$srv" "$case" "$rc" "$4" "$5" >>"$RESULTS" <<'EOF'
import json, os, sys
srv, case, rc, path, argv = sys.argv[1:]
lines = [l for l in open(path, encoding="utf-8", errors="replace").read().splitlines() if l.strip()]
rec = None
for l in reversed(lines):
    try:
        rec = json.loads(l)
        break
    except ValueError:
        pass
if rec is None or not isinstance(rec, dict):
    rec = {"error": "no JSON line from vireo-bench (exit %s)" % rc}
elif rc != "0":
    rec.setdefault("error", "vireo-bench exit status %s" % rc)
rec["server"], rec["case"], rec["args"] = srv, case, argv
# --postgresql: the database's own CPU over the whole run (setup included).
db = os.environ.get("DB_CPU_S")
if db:
    rec["db_cpu_s"] = round(float(db), 3)
    if rec.get("delivered"):
        rec["db_cpu_us_per_msg"] = round(float(db) * 1e6 / rec["delivered"], 3)
print(json.dumps(rec))
EOF
    [ "$rc" = 0 ] || log "$srv: $case: failed with status $rc (recorded; continuing)"
}

# Seconds of the measured phase, if the JSON line has it (for the >= 2 s check).
case_seconds() {
    tail -n 1 "$RESULTS" | "$PY" -c '
import json, sys
r = json.loads(sys.stdin.read())
for k in ("steady_s", "duration_s"):
    if isinstance(r.get(k), (int, float)):
        print(r[k]); break
else:
    print("")'
}

messages_case() { # messages_case SERVER CASE [extra args before the scenario] -- [scenario args]
    local srv="$1" case="$2" pre=() post=() secs count="$COUNT"
    shift 2
    while [ $# -gt 0 ] && [ "$1" != -- ]; do pre+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    post=("$@")
    run_case "$srv" "$case" "${pre[@]}" messages --pairs "$PAIRS" --window "$WINDOW" --count "$count" "${post[@]}"
    # A fast server must not be measured on its start-up burst: rerun longer if < 2 s.
    secs="$(case_seconds)"
    if [ "$QUICK" = 0 ] && [ -n "$secs" ] && "$PY" -c "import sys; sys.exit(0 if 0 < $secs < 2.0 else 1)"; then
        count="$("$PY" -c "print(int($count * 3.0 / $secs) + 1)")"
        log "$srv: $case measured only ${secs}s; rerunning with --count $count"
        run_case "$srv" "$case" "${pre[@]}" messages --pairs "$PAIRS" --window "$WINDOW" --count "$count" "${post[@]}"
    fi
}

muc_case() { # muc_case SERVER CASE ROOMS OCCUPANTS COUNT
    local srv="$1" case="$2" rooms="$3" occupants="$4" secs count="$5"
    run_case "$srv" "$case" muc --rooms "$rooms" --occupants "$occupants" --window 2 --count "$count"
    # As for messages: a fast server is not measured on its start-up burst.
    secs="$(case_seconds)"
    if [ "$QUICK" = 0 ] && [ -n "$secs" ] && "$PY" -c "import sys; sys.exit(0 if 0 < $secs < 2.0 else 1)"; then
        count="$("$PY" -c "print(int($count * 3.0 / $secs) + 1)")"
        log "$srv: $case measured only ${secs}s; rerunning with --count $count"
        run_case "$srv" "$case" muc --rooms "$rooms" --occupants "$occupants" --window 2 --count "$count"
    fi
}

log "results: $RESULTS"
for s in "${SERVERS[@]}"; do
    log "setting up $s"
    "setup_$s"
done

if [ -z "$BENCH" ]; then
    # --check without vireo-bench: start each fresh, record start-up, stop.
    for s in "${SERVERS[@]}"; do
        for i in 1 2 3; do
            start_server "$s" "check"
            "$PY" "$LIB" features --port "${PORT[$s]}" --domain "$DOMAIN" | grep -q "<stream:features" \
                || die "$s: no stream features on a second connection"
            stop_server "$s"
        done
    done
elif [ "$PEP" = 1 ]; then
    # PEP on everywhere: the notification fan-out, and idle sessions with PEP
    # loaded (what the default configurations, which enable it, cost at rest).
    for s in "${SERVERS[@]}"; do
        run_case "$s" "pep-n$PEP_N-m$PEP_M" --user-prefix "$ROSTER_PREFIX" \
            pep --contacts "$PEP_N" --items "$PEP_M"
        # As for messages: a phase under 2 s is rerun long enough to measure.
        secs="$(case_seconds)"
        if [ "$QUICK" = 0 ] && [ -n "$secs" ] && "$PY" -c "import sys; sys.exit(0 if 0 < $secs < 2.0 else 1)"; then
            items="$("$PY" -c "print(int($PEP_M * 3.0 / $secs) + 1)")"
            log "$s: pep measured only ${secs}s; rerunning with --items $items"
            run_case "$s" "pep-n$PEP_N-long" --user-prefix "$ROSTER_PREFIX" \
                pep --contacts "$PEP_N" --items "$items"
        fi
        if [ "$PEP_FANOUT" -gt 0 ]; then
            run_case "$s" "pep-fanout-n$PEP_FANOUT" --user-prefix "$ROSTER_PREFIX" \
                pep --contacts "$PEP_FANOUT" --items 10 --window 10 --probe
        fi
        run_case "$s" "pep-idle-$IDLE_BIG" idle --sessions "$IDLE_BIG"
    done
elif [ "$MUC" = 1 ]; then
    # Group chat only: R rooms x O occupants, every occupant sending.
    for s in "${SERVERS[@]}"; do
        muc_case "$s" "${MUC_CASE_PREFIX}muc-${MUC_ROOMS}x${MUC_OCCUPANTS}" "$MUC_ROOMS" "$MUC_OCCUPANTS" "$MUC_COUNT"
        # One big room: every message to all of its occupants (issue 12: 1,000).
        muc_case "$s" "${MUC_CASE_PREFIX}muc-1x${MUC_BIG}" 1 "$MUC_BIG" 2
    done
elif [ "$WEB" = 1 ]; then
    # Web transports beside TCP, like for like (same build and sizes, a fresh server per case), one
    # server after the other: idle memory per session over TCP, WebSocket and BOSH,
    # then messages over TCP and WebSocket; for Vireo also in its defaults.
    for s in "${SERVERS[@]}"; do
        run_case "$s" "idle-$IDLE_SMALL" idle --sessions "$IDLE_SMALL"
        TRANSPORT=ws run_case "$s" "ws-idle-$IDLE_SMALL" idle --sessions "$IDLE_SMALL"
        bosh_case "$s" "bosh-idle-$IDLE_SMALL" "$IDLE_SMALL"
        messages_case "$s" "messages-fresh"
        TRANSPORT=ws messages_case "$s" "ws-messages-fresh"
        if [ "$s" = vireo ]; then
            messages_case vireo-defaults "messages-fresh"
            TRANSPORT=ws messages_case vireo-defaults "ws-messages-fresh"
        fi
    done
elif [ "$ARCHIVING" = 1 ]; then
    # Like for like with archiving on everywhere: the messages runs only
    # (every message archived twice, the sender's and the recipient's copy).
    for s in "${SERVERS[@]}"; do
        messages_case "$s" "mam-messages-fresh"
        messages_case "$s" "mam-messages-idle$IDLE_BIG" -- --idle "$IDLE_BIG"
        if [ "$s" = vireo ]; then
            # Archiving off beside it (the cost of archiving), and on PostgreSQL.
            messages_case vireo-nomam "messages-fresh"
            if [ "$POSTGRES" = 1 ]; then
                messages_case vireo-pg "mam-messages-fresh"
                messages_case vireo-pg-nomam "messages-fresh"
            fi
        fi
    done
else
    for s in "${SERVERS[@]}"; do
        run_case "$s" "idle-$IDLE_SMALL" idle --sessions "$IDLE_SMALL"
        run_case "$s" "idle-$IDLE_BIG" idle --sessions "$IDLE_BIG"
        messages_case "$s" "messages-fresh"
        messages_case "$s" "messages-idle$IDLE_BIG" -- --idle "$IDLE_BIG"
        run_case "$s" "login-c$LOGIN_CONC" login --accounts "$LOGIN_ACCOUNTS" --concurrency "$LOGIN_CONC"
        run_case "$s" "roster-presence" --user-prefix "$ROSTER_PREFIX" \
            roster-presence --users "$RP_USERS" --contacts "$RP_CONTACTS"
        if [ "$TLS" = 1 ]; then
            run_case "$s" "tls-idle-$IDLE_BIG" --tls starttls idle --sessions "$IDLE_BIG"
            messages_case "$s" "tls-messages-fresh" --tls starttls
            messages_case "$s" "tls-messages-idle$IDLE_BIG" --tls starttls -- --idle "$IDLE_BIG"
            run_case "$s" "tls-login-c$LOGIN_CONC" --tls starttls \
                login --accounts "$LOGIN_ACCOUNTS" --concurrency "$LOGIN_CONC"
        fi
        if [ "$s" = vireo ]; then
            # Scaling past one core: the same messages run on 1 executor thread.
            messages_case vireo-t1 "messages-fresh"
            if [ "$HUGE" -gt 0 ]; then
                run_case vireo "idle-$HUGE" idle --sessions "$HUGE"
                messages_case vireo "messages-idle$HUGE" -- --idle "$HUGE"
            fi
        fi
    done
fi

log "done: $RESULTS"
"$PY" "$HERE/report.py" "$RESULTS" | tee -a "$RUNLOG"
