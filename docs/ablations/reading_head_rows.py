"""The model card's "Reading head" line on any corpus split: a checkpoint's reading head (with its reading LM)
and Tesseract on the first ``--rows`` OCR rows, pooled as the card's CER, over all of them, the single lines and
the pages (reading_pretraining.md, last section).

    python docs/ablations/reading_head_rows.py runs/cp3/final runs/read-data --split test --rows 300
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ko_hypervl import load
from ko_hypervl.evaluation.data import load_eval_data
from ko_hypervl.evaluation.reading_head import reading_head_on_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="a checkpoint with a valid reading head")
    parser.add_argument("data", type=Path, help="a `ko-hypervl corpora build` folder")
    parser.add_argument("--split", default="test")
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--no-tesseract", dest="tesseract", action="store_false")
    args = parser.parse_args()
    data = load_eval_data(args.data, ["ocr"], args.rows, 0, progress=False, split=args.split)
    scores = reading_head_on_rows(load(args.model), data, args.tesseract)
    if not scores["ran"]:
        raise SystemExit(scores["note"])
    print(json.dumps({group: scores[group] for group in ("all", "single_lines", "pages")}, indent=1))


if __name__ == "__main__":
    main()
