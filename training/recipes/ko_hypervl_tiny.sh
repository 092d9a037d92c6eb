#!/usr/bin/env bash
# The full recipe of the bundled ko-hypervl-tiny: render the image corpus, pretrain the LM on the Korean
# text corpus, align, instruction-tune, DCL, VRC; the result is <OUT>/model, with its model card.
# Resumable: rerun the same command after an interruption. On several GPUs:
#   accelerate launch -m ko_hypervl train pipeline --out "$OUT"   (each training stage uses every process)
set -euo pipefail
OUT=${1:-runs/ko-hypervl-tiny}
ko-hypervl train pipeline --recipe tiny --out "$OUT" --evaluate "${@:2}"
