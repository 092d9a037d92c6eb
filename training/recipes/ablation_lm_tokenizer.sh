#!/usr/bin/env bash
# Tokenizer ablation for the LM (issue #7): our morpheme-aware tokenizer against a plain byte-level BPE twin
# trained on the same corpus lines with the same vocabulary size and special tokens. Both LMs have the tiny
# recipe's sizes and are trained with identical settings (same steps, sequences per step, block size in
# tokens, learning rate, seed), then scored in bits per character on the same held-out test text:
#   <OUT>/bpc.json and the printed table (first row: ours; tokens/char and bits/char side by side).
# Resumable: rerun the same command; finished steps are skipped and the LM runs resume (use a new OUT to
# change the settings).
#   STEPS=20 bash training/recipes/ablation_lm_tokenizer.sh runs/ablation-quick   # a quick look
#   OURS_TOKENIZER=path/to/tokenizer bash training/recipes/ablation_lm_tokenizer.sh runs/ablation-x  # another of ours
set -euo pipefail
OUT=${1:-runs/ablation-lm}
# the tiny recipe's lm stage (ko_hypervl/training/pipeline.py RECIPES["tiny"])
STEPS=${STEPS:-100}
BATCH=${BATCH:-8}
MICRO=${MICRO:-8}
BLOCK=${BLOCK:-256}
LR=${LR:-2e-3}
WARMUP=${WARMUP:-10}
SEED=${SEED:-0}
VOCAB=32000   # the bundled tokenizer's (ko_hypervl/assets/tokenizer/ko-hypervl-32k/training_args.json)
# ours: the bundled tokenizer, or another of ours to compare (e.g. a candidate from `ko-hypervl tokenizer train`)
OURS_TOKENIZER=${OURS_TOKENIZER:-}
# the tiny recipe's model sizes (TINY_MODEL in ko_hypervl/training/pipeline.py)
MODEL_FLAGS=(--tile-size 112 --patch-size 14 --vit-hidden-size 128 --vit-layers 4 --small-vit-hidden-size 64
             --small-vit-layers 2 --pixel-shuffle-factor 2 --small-pixel-shuffle-factor 4 --lm-hidden-size 256
             --lm-layers 4 --lm-heads 4 --lm-kv-heads 2 --lm-intermediate-size 704 --max-positions 2048
             --max-tiles 20 --seed "$SEED")
TRAIN_FLAGS=(--steps "$STEPS" --batch-size "$BATCH" --micro-batch-size "$MICRO" --learning-rate "$LR"
             --warmup-steps "$WARMUP" --save-every "$(( STEPS < 25 ? STEPS : 25 ))" --seed "$SEED"
             --block-size "$BLOCK")
mkdir -p "$OUT"

# 1. the twin tokenizer: same train-split lines, same vocabulary size, no Kiwi, no morpheme cuts
if [[ ! -f "$OUT/bpe-tokenizer/training_args.json" ]]; then
  ko-hypervl tokenizer train --method plain --vocab-size "$VOCAB" --out "$OUT/bpe-tokenizer"
fi

# 2. two untrained models, identical but for the tokenizer (and so the embedding rows)
if [[ ! -f "$OUT/ours-init/processor_config.json" ]]; then
  ko-hypervl model init "${MODEL_FLAGS[@]}" ${OURS_TOKENIZER:+--tokenizer "$OURS_TOKENIZER"} --out "$OUT/ours-init"
fi
if [[ ! -f "$OUT/bpe-init/processor_config.json" ]]; then
  ko-hypervl model init "${MODEL_FLAGS[@]}" --tokenizer "$OUT/bpe-tokenizer" --out "$OUT/bpe-init"
fi

# 3. the same LM training for both: same steps, sequences per step and tokens per sequence
for name in ours bpe; do
  if [[ ! -f "$OUT/$name/final/model.safetensors" ]]; then
    ko-hypervl train lm --init "$OUT/$name-init" --out "$OUT/$name" "${TRAIN_FLAGS[@]}"
  fi
done

# 4. bits per character on the same held-out text (the corpus test split)
ko-hypervl model bpc "$OUT/ours/final" "$OUT/bpe/final" --block-size "$BLOCK" --json-out "$OUT/bpc.json"
