#!/usr/bin/env bash
# The project's test command: unit/integration tests, then the interop suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

echo "==> cargo test --workspace"
cargo test --workspace

echo "==> interop tests (server/tests/interop/run.sh)"
server/tests/interop/run.sh "$@"
