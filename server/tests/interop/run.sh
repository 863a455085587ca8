#!/usr/bin/env bash
# Interop tests: the real `vireo` binary driven by slixmpp and raw sockets.
# Usage: server/tests/interop/run.sh [extra pytest args, e.g. -k login -x]
# Env: PYTHON (default python3), VIREO_TEST_LOG (server log filter), VIREO_TEST_KEEP=1.
#      MUC_TEST_SERVER=prosody runs test_muc*.py against Prosody 0.12 instead (reference_peers.py):
#      the group chat tests proven on a known-correct server.
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

echo "interop: cargo build -p vireo"
cargo build -p vireo

export VIREO_BIN="$root/target/debug/vireo"
export PYTHONDONTWRITEBYTECODE=1
set +e
"$venv/bin/python" -m pytest -q -p no:cacheprovider \
    -o asyncio_default_fixture_loop_scope=function "$here" "$@"
rc=$?
set -e
exit "$rc"
