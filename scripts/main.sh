#!/usr/bin/env bash
# The main job: set everything up, then run ko-hypervl. Extra arguments replace the default command.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$(bash "$ROOT/scripts/setup.sh" bench)"
if [ "$#" -eq 0 ]; then
    set -- tokenizer encode
fi
exec "$PY" -m ko_hypervl.cli "$@"
