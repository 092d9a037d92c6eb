#!/usr/bin/env bash
# DCL ablation (issue #7): the pipeline's DCL stage again from the same instruction-tuned model, with the same
# data, steps, batch and learning rate, but --kl-weight 0 (both branches still train on the answers, the small
# one is just not pulled toward the large one). Its evaluation uses the bundled model's eval settings, so the
# card can compare the small branch's gap to the large branch with and without DCL:
#   ko-hypervl eval … --ablations no-dcl=<OUT>/eval/eval.json
# Resumable: rerun the same command.
#   bash training/recipes/ablation_dcl.sh runs/ko-hypervl-tiny runs/ablation-dcl
set -euo pipefail
RUN=${1:-runs/ko-hypervl-tiny}    # a finished (or at least instruction-tuned) `train pipeline --recipe tiny` run
OUT=${2:-runs/ablation-dcl}
EVAL_FLAGS=(${EVAL_FLAGS:---max-new-tokens 64})
# the tiny recipe's dcl stage (ko_hypervl/training/pipeline.py RECIPES["tiny"]), KL off
if [[ ! -f "$OUT/final/model.safetensors" ]]; then
  ko-hypervl train dcl --init "$RUN/sft/final" --data "$RUN/data" --out "$OUT" --kl-weight 0 \
    --steps 40 --batch-size 16 --micro-batch-size 8 --learning-rate 3e-4 --warmup-steps 4 --save-every 20
fi
ko-hypervl eval --model "$OUT/final" --modes high low "${EVAL_FLAGS[@]}" --out "$OUT/eval"
