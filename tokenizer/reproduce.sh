#!/usr/bin/env bash
# Rebuild the bundled tokenizer and every tokenizer figure in the README.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ko-hypervl tokenizer train --vocab-size 32000 --out ko_hypervl/assets/tokenizer/ko-hypervl-32k
ko-hypervl tokenizer eval --plot docs/tokenizer_eval.png --json-out docs/tokenizer_eval.json
ko-hypervl tokenizer sweep --out /tmp/ko-hypervl-sweep
cp /tmp/ko-hypervl-sweep/sweep.md docs/tokenizer_sweep.md
cp /tmp/ko-hypervl-sweep/sweep.png docs/tokenizer_sweep.png
