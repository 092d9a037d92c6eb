#!/usr/bin/env bash
# The main job: set everything up, then start the demo on the bundled model (http://127.0.0.1:7860).
# Extra arguments replace the default command, e.g. `bash scripts/main.sh demo --port 8080`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$(bash "$ROOT/scripts/setup.sh" bench)"
if [ "$#" -eq 0 ]; then
    set -- demo
fi
exec "$PY" -m ko_hypervl.cli "$@"
