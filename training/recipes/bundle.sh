#!/usr/bin/env bash
# Make a finished tiny-recipe run the bundled model (issue #7): store its weights in float16 (half the size,
# loaded back as float32), evaluate that exact folder with the ablations, and put the model card, eval.json
# and plots inside it. Commit ko_hypervl/assets/model/ko-hypervl-tiny only when its numbers improve.
#   bash training/recipes/bundle.sh runs/ko-hypervl-tiny runs/ablation-dcl runs/ablation-lm
set -euo pipefail
RUN=${1:-runs/ko-hypervl-tiny}
DCL=${2:-runs/ablation-dcl}
LM=${3:-runs/ablation-lm}
DEST=${DEST:-ko_hypervl/assets/model/ko-hypervl-tiny}
EVAL_FLAGS=(${EVAL_FLAGS:---max-new-tokens 64})
STAGING="$RUN/bundle/$(basename "$DEST")"   # the folder's name is the model's name on its card
rm -rf "$STAGING" && mkdir -p "$RUN/bundle"
ko-hypervl model export "$RUN/model" --out "$STAGING" --dtype float16
ko-hypervl eval --model "$STAGING" "${EVAL_FLAGS[@]}" --out "$RUN/bundle-eval" \
  --ablations "no-dcl=$DCL/eval/eval.json" "lm-tokenizer=$LM/bpc.json"
cp "$RUN"/bundle-eval/*.md "$RUN"/bundle-eval/*.json "$RUN"/bundle-eval/*.png "$STAGING"/
rm -rf "$DEST" && mkdir -p "$(dirname "$DEST")" && cp -r "$STAGING" "$DEST"
du -sh "$DEST"
