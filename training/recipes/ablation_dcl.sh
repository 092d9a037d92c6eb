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
# the run's own DCL stage settings (its pipeline.json: recipe, --steps-scale and the encoders: fixed or at
# which rate), so the budget is the same by construction; only the KL is off
read -r -a DCL_FLAGS <<< "$(python - "$RUN/pipeline.json" <<'PY'
import json, sys
from ko_hypervl.training.pipeline import PipelineSettings
run = json.load(open(sys.argv[1], encoding="utf-8"))
dcl = dict(run["recipe"]["train"]["dcl"])
# the encoders as the pipeline's DCL stage had them: fixed (--freeze-vision) or at a share of its rate
dcl.update(PipelineSettings(**run["settings"]).encoder_settings)
dcl["steps"] = max(1, round(dcl["steps"] * run["settings"]["steps_scale"]))
dcl["save_every"] = min(dcl.get("save_every", 50), dcl["steps"])
dcl["seed"] = run["settings"]["seed"]
dcl.update(run["recipe"]["stage"].get("dcl", {}))   # the recipe's DCL stage settings (e.g. --answer-weighting)
flag = lambda key, value: (f"--{'' if value else 'no-'}{key}" if isinstance(value, bool) else f"--{key} {value}")
print(" ".join(flag(key.replace("_", "-"), value) for key, value in dcl.items()))
PY
)"
if [[ ! -f "$OUT/final/model.safetensors" ]]; then
  ko-hypervl train dcl --init "$RUN/sft/final" --data "$RUN/data" --out "$OUT" --kl-weight 0 "${DCL_FLAGS[@]}"
fi
ko-hypervl eval --model "$OUT/final" --modes high low "${EVAL_FLAGS[@]}" --out "$OUT/eval"
