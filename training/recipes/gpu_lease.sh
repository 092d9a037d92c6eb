#!/usr/bin/env bash
# The tiny-read recipe on one borrowed GPU, inside a device lease: 15 minutes of device time in all, at most
# 10 for one command, a bare machine whose image lacks `datasets`, and at most 8 files of 16 MiB coming back.
# Every training stage stops by the clock (STAGE.max_seconds) with its learning rate decayed by then; the LM
# pretrains with batch 64 in bf16 for as many of 20,000 steps as its minutes allow (copying.md, "What it means
# for #7", route 2). What the run made comes back under $OUT: log.txt, lm_bpc.json (the new LM against the
# bundled one: bits per character and copy gain), reports.tar.gz (training summary, loss curves, model card,
# eval.json) and the model in float16 as model.tar.gz.part-* (join with cat, then tar -xzf).
#
#   here, once:     bash training/recipes/gpu_lease.sh wheels   # .whl/: datasets, dill, multiprocess for CPython 3.12
#   on the device:  run(command="bash training/recipes/gpu_lease.sh run", carry=[".whl"], timeout_s=600)
#   rehearse here:  SECONDS_SCALE=0.05 RECIPE=smoke OUT=/tmp/lease bash training/recipes/gpu_lease.sh run
#
# A stage's seconds: LM_S READ_S ALIGN_S SFT_S DCL_S (times SECONDS_SCALE); BUDGET_S: when the evaluation must
# stop, counted from the start of this script (the run tool kills the command at 600 s).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
WHEELS=.whl
PY=${PY:-python3}

case "${1:-}" in
wheels)
  # the versions this checkout's tests run with; --no-deps: the GPU image has the rest (pyarrow, pandas, fsspec…)
  rm -rf "$WHEELS" && mkdir -p "$WHEELS"
  "$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$WHEELS" datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19
  ls -l "$WHEELS" && du -sh "$WHEELS"
  exit 0 ;;
run) ;;
*)
  echo "usage: bash training/recipes/gpu_lease.sh wheels|run (see the comments at its top)" >&2
  exit 2 ;;
esac

OUT=${OUT:?set OUT to the folder whose files come back (the device sets it)}
RUN=${RUN:-runs/gpu-lease}
RECIPE=${RECIPE:-tiny-read}
SCALE=${SECONDS_SCALE:-1}
BUDGET_S=${BUDGET_S:-570}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
export PYTHONUNBUFFERED=1
if compgen -G "$WHEELS/*.whl" >/dev/null; then
  "$PY" -m pip install -q --disable-pip-version-check --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/ko-hypervl-site "$WHEELS"/*.whl
  export PYTHONPATH=/tmp/ko-hypervl-site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}    # the checkout itself, not installed

"$PY" - <<'EOF'
import importlib, platform, torch
versions = {name: importlib.import_module(name).__version__
            for name in ("torch", "transformers", "accelerate", "datasets", "tokenizers", "numpy", "pyarrow")}
device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU (CPU rehearsal)"
print(f"python {platform.python_version()}; {device};", ", ".join(f"{k} {v}" for k, v in versions.items()))
EOF

seconds() { "$PY" -c "print(max(1.0, round($1 * $SCALE, 1)))"; }
DEVICE=$("$PY" -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
WORKERS=$(( $(nproc) > 2 ? $(nproc) - 1 : 1 ))

CLOCKS=("lm.max_seconds=$(seconds "${LM_S:-120}")" "align.max_seconds=$(seconds "${ALIGN_S:-30}")"
        "sft.max_seconds=$(seconds "${SFT_S:-90}")" "dcl.max_seconds=$(seconds "${DCL_S:-30}")")
[ "$RECIPE" = tiny ] || CLOCKS+=("read.max_seconds=$(seconds "${READ_S:-45}")")   # the recipes that read first
"$PY" -m ko_hypervl train pipeline --recipe "$RECIPE" --out "$RUN" --workers "$WORKERS" --no-progress --override \
  lm.steps=20000 lm.batch_size=64 lm.micro_batch_size=64 lm.copy_share=0.5 lm.precision=bf16 "${CLOCKS[@]}"

# the model first, so that it comes back even if the evaluation runs out of time: in float16 as the bundle
# stores it (half the size; loaded back as float32), named as it would be bundled
rm -rf "$RUN/export" && "$PY" -m ko_hypervl model export "$RUN/model" --out "$RUN/export/ko-hypervl-tiny" --dtype float16
tar -czf "$RUN/model.tar.gz" -C "$RUN/export" ko-hypervl-tiny
split -b 15M -d -a 1 "$RUN/model.tar.gz" "$OUT/model.tar.gz.part-"
"$PY" -m ko_hypervl model bpc "$RUN/lm/final" ko_hypervl/assets/model/ko-hypervl-tiny --device "$DEVICE" \
  --no-progress --json-out "$OUT/lm_bpc.json" || echo "the LM comparison failed (exit $?); the evaluation still runs"

reports() {
  tar -czf "$OUT/reports.tar.gz" -C "$RUN" --ignore-failed-read model/training_summary.json \
    $(cd "$RUN" && ls -d ./*/log.jsonl ./*/loss.png ./*/train_result.json vrc/vrc_curve.* eval 2>/dev/null)
}
reports
LEFT=$(( BUDGET_S - SECONDS ))
if (( LEFT > 30 )); then
  timeout "$LEFT" "$PY" -m ko_hypervl eval --model "$RUN/model" --out "$RUN/eval" --device "$DEVICE" \
    --max-new-tokens 64 --no-tesseract || echo "evaluation stopped (exit $?) with ${LEFT} s left"
  reports
else
  echo "no evaluation: ${LEFT} s of the ${BUDGET_S} s budget left"
fi
ls -l "$OUT"
