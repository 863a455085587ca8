#!/usr/bin/env bash
# The project's test command: unit/integration tests, then the interop suite
# twice: on the embedded store (redb, the default), then on PostgreSQL
# (VIREO_TEST_STORAGE=postgresql: a throwaway cluster, a database per server).
# Extra arguments go to both interop passes (pytest arguments).
# The PostgreSQL pass needs Debian's postgresql package (.ci/run installs it):
# without it the pass is skipped with a warning, except in CI (CI=true), where
# that is a failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

echo "==> cargo test --workspace"
cargo test --workspace

interop=server/tests/interop/run.sh
status=0
summary=()

echo "==> interop tests, embedded store ($interop)"
start=$SECONDS
set +e
"$interop" "$@"
rc=$?
set -e
summary+=("interop, embedded store: exit $rc, $((SECONDS - start))s")
[[ $rc -eq 0 ]] || status=$rc

echo "==> interop tests, PostgreSQL (VIREO_TEST_STORAGE=postgresql $interop)"
if pg_bin="$(python3 server/tests/interop/postgres.py --check)"; then
    echo "PostgreSQL binaries: $pg_bin"
    start=$SECONDS
    set +e
    VIREO_TEST_STORAGE=postgresql "$interop" "$@"
    rc=$?
    set -e
    summary+=("interop, PostgreSQL: exit $rc, $((SECONDS - start))s")
    [[ $rc -eq 0 ]] || status=$rc
elif [[ "${CI:-}" == "true" ]]; then
    echo "ERROR: $pg_bin: the PostgreSQL interop pass cannot run in CI (.ci/run installs postgresql)" >&2
    summary+=("interop, PostgreSQL: FAILED, no PostgreSQL binaries")
    status=1
else
    cat >&2 <<EOF

############################################################################
# WARNING: the PostgreSQL interop pass is SKIPPED: $pg_bin.
# Install Debian's postgresql package (apt-get install postgresql; .ci/run
# does) or set VIREO_TEST_PG_BINDIR. CI runs this pass and fails without it.
############################################################################

EOF
    summary+=("interop, PostgreSQL: SKIPPED (no PostgreSQL binaries)")
fi

echo "==> summary"
printf '  %s\n' "${summary[@]}"
exit "$status"
