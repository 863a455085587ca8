#!/usr/bin/env bash
# Interop tests: the real `vireo` binary driven by slixmpp and raw sockets.
# Usage: server/tests/interop/run.sh [extra pytest args, e.g. -k login -x]
# Needs Node.js >= 20 and npm (xmpp.js), and Debian's chromium for the browser tests. Env: PYTHON (default python3), VIREO_TEST_LOG (server log filter), VIREO_TEST_KEEP=1,
#      VIREO_BIN (test this binary as it is, without `cargo build`: e.g. from a git worktree, another checkout's build).
#      MUC_TEST_SERVER=prosody runs test_muc*.py against Prosody 0.12 instead (reference_peers.py):
#      the group chat tests proven on a known-correct server.
#      VIREO_TEST_STORAGE=postgresql runs every server under test on PostgreSQL instead of the
#      embedded store: a throwaway cluster (postgres.py; Debian's postgresql package), a fresh
#      database per server; tests marked embedded_store are skipped. run-all.sh runs both passes.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
cd "$root"

python="${PYTHON:-python3}"
venv="$root/target/interop-venv"
req="$here/requirements.txt"
stamp="$venv/.requirements.stamp"

# Reuse the venv while requirements.txt and the interpreter are unchanged.
want="$({ sha256sum <"$req"; "$python" -c 'import sys; print(sys.version, sys.executable)'; } | sha256sum | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]]; then
    echo "interop: creating $venv"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-input -r "$req"
    echo "$want" >"$stamp"
fi

# xmpp.js for test_pep_xmppjs.py, Converse.js and playwright-core for the
# browser tests (browser.py): `npm ci` from the pinned lock file, again only
# when it changes. playwright-core drives Debian's /usr/bin/chromium (.ci/run
# installs it) and must never download a browser of its own.
js="$here/js"
js_stamp="$js/node_modules/.lock.stamp"
js_want="$(sha256sum <"$js/package-lock.json" | cut -d' ' -f1)"
if [[ "$(cat "$js_stamp" 2>/dev/null || true)" != "$js_want" ]]; then
    if ! command -v npm >/dev/null; then
        echo "interop: npm not found: install Node.js >= 20 with npm (.ci/run does)" >&2
        exit 1
    fi
    echo "interop: npm ci in $js"
    (cd "$js" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
    echo "$js_want" >"$js_stamp"
fi

if [[ -n "${VIREO_BIN:-}" ]]; then
    echo "interop: testing $VIREO_BIN (VIREO_BIN is set: no cargo build)"
else
    echo "interop: cargo build -p vireo"
    cargo build -p vireo
    export VIREO_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/vireo"
fi
echo "interop: storage ${VIREO_TEST_STORAGE:-embedded}"
export PYTHONDONTWRITEBYTECODE=1
set +e
"$venv/bin/python" -m pytest -q -p no:cacheprovider \
    -o asyncio_default_fixture_loop_scope=function "$here" "$@"
rc=$?
set -e
exit "$rc"
