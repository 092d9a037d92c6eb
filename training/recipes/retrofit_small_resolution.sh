#!/usr/bin/env bash
# Dual resolution on an existing tiny-recipe run (issue #7), without repeating its finished stages: copy the
# stages KEEP of FROM into OUT (default: up to instruction tuning), set the last one's small branch to see
# images at SCALE of the large branch's resolution, and let the pipeline run the remaining stages with the
# current recipe. Instruction tuning trains only the large branch, so the small branch is next trained by
# DCL (at SCALE); its alignment stays the one FROM did at full resolution (a fresh `ko_hypervl_tiny.sh`
# run aligns it at SCALE from the start). Resumable: rerun the same command.
#   bash training/recipes/retrofit_small_resolution.sh runs/tiny2 runs/tiny3 0.5                  # DCL, VRC
#   bash training/recipes/retrofit_small_resolution.sh runs/tiny2 runs/tiny4 0.5 "init lm align"  # SFT, DCL, VRC
set -euo pipefail
FROM=${1:?a finished tiny-recipe run (at least instruction-tuned)}
OUT=${2:?the new run folder}
SCALE=${3:-0.5}
read -r -a KEEP <<< "${4:-init lm align sft}"
LAST=${KEEP[-1]}
mkdir -p "$OUT"
[[ -e "$OUT/data" ]] || ln -s "$(realpath "$FROM/data")" "$OUT/data"
for stage in "${KEEP[@]}"; do
  if [[ ! -e "$OUT/$stage" ]]; then   # the final model and the logs; intermediate checkpoints are not needed
    mkdir -p "$OUT/$stage.partial"
    for item in "$FROM/$stage"/*; do
      [[ "$(basename "$item")" == checkpoints ]] || cp -r "$item" "$OUT/$stage.partial/"
    done
    mv "$OUT/$stage.partial" "$OUT/$stage"
  fi
done
FINAL="$OUT/$LAST/final"; [[ "$LAST" == init ]] && FINAL="$OUT/init"
python - "$FINAL" "$SCALE" <<'PY'
import sys
from ko_hypervl.checkpoint import load_checkpoint, save_checkpoint
directory, scale = sys.argv[1], float(sys.argv[2])
model, processor = load_checkpoint(directory)
if model.config.small_image_scale != scale:
    model.config.small_image_scale = scale
    processor.image_processor.branch_scales["small"] = scale
    save_checkpoint(model, processor, directory)
print(f"{directory}: small branch at {model.config.small_image_scale:g}× the large branch's resolution")
PY
ko-hypervl train pipeline --recipe tiny --out "$OUT"
