#!/usr/bin/env bash
# Rebuild the reference image-text corpus and every figure the README shows about it:
# the contact sheets, the rendering benchmark and the Tesseract baseline on the held-out test split.
#   bash corpora/reproduce_images.sh [OUT_DIR] [NUM_PER_KIND]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:-$ROOT/data/images}"
NUM="${2:-1000}"
cd "$ROOT"
ko-hypervl corpora build --kind all --num "$NUM" --out "$OUT" --seed 0 --workers 2 --overwrite
ko-hypervl corpora show "$OUT" --kind charts -n 8 --columns 4 --seed 1 --out docs/contact_sheet_charts.png
ko-hypervl corpora show "$OUT" --kind exams -n 2 --columns 2 --seed 1 --cell-width 760 --out docs/contact_sheet_exams.png
ko-hypervl corpora show "$OUT" --kind ocr -n 4 --columns 4 --seed 1 --out docs/contact_sheet_ocr.png
ko-hypervl corpora show "$OUT" --kind tables -n 4 --columns 4 --seed 1 --out docs/contact_sheet_tables.png
ko-hypervl corpora bench --num 100 | tee docs/render_bench.txt
ko-hypervl corpora tesseract "$OUT" --split test --json docs/tesseract_baseline.json | tee docs/tesseract_baseline.md
