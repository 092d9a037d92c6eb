#!/usr/bin/env bash
# Set everything up (with the test tools) and run the test suite. Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$(bash "$ROOT/scripts/setup.sh" dev,bench)"
cd "$ROOT"
exec "$PY" -m pytest "$@"
