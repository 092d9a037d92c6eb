#!/usr/bin/env bash
# The main job: set everything up, then run ko-hypervl. Extra arguments replace the default command.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$(bash "$ROOT/scripts/setup.sh")"
if [ "$#" -eq 0 ]; then
    set -- corpora text stats
fi
exec "$PY" -m ko_hypervl.cli "$@"
