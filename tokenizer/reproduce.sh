#!/usr/bin/env bash
# Rebuild the bundled tokenizer and every tokenizer figure in the README: the comparison table and chart,
# and the trade-off of chars/token against morpheme-cut share with its ceiling (one eval run).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ko-hypervl tokenizer train --vocab-size 32000 --out ko_hypervl/assets/tokenizer/ko-hypervl-32k
ko-hypervl tokenizer eval --plot docs/tokenizer_eval.png --json-out docs/tokenizer_eval.json \
  --tradeoff-plot docs/tokenizer_tradeoff.png
