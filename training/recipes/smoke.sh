#!/usr/bin/env bash
# Every stage end to end on a toy-sized model, in a few minutes on a laptop CPU (the tests run this too).
# Rerun the same command after an interruption: finished stages are skipped, the current one resumes.
set -euo pipefail
OUT=${1:-runs/smoke}
ko-hypervl train pipeline --smoke --out "$OUT" "${@:2}"
