#!/usr/bin/env bash
# The full recipe of the bundled ko-hypervl-tiny (tiny-read, 1.6 h on 2 CPU cores): render the image corpus and
# 5,000 reading lines, pretrain the LM on the Korean text corpus, teach the encoders to read (CTC), then with the
# encoders fixed: align, instruction-tune, DCL, VRC; the result is <OUT>/model, with its model card.
# Resumable: rerun the same command after an interruption. On several GPUs:
#   accelerate launch -m ko_hypervl train pipeline --out "$OUT"   (each training stage uses every process)
set -euo pipefail
OUT=${1:-runs/ko-hypervl-tiny}
ko-hypervl train pipeline --recipe tiny-read --out "$OUT" --evaluate "${@:2}"
