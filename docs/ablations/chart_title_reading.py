"""How well a checkpoint's reading head reads chart titles: on the first ``--rows`` held-out chart test rows (the
card's rendering), each title's CER against the line of the reading closest to it (capped at 1), how many
titles some line reads exactly, and how many charts read as nothing (``evaluation.reading_head.titles_on_rows``,
which the model card reports for its own charts and tables; reading_pretraining.md, last section).

    python docs/ablations/chart_title_reading.py runs/cp3/final --rows 40
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ko_hypervl import load
from ko_hypervl.evaluation.data import load_eval_data
from ko_hypervl.evaluation.reading_head import titles_on_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="a checkpoint with a valid reading head")
    parser.add_argument("--rows", type=int, default=40)
    args = parser.parse_args()
    scores = titles_on_rows(load(args.model), load_eval_data(None, ["charts"], args.rows, 0, progress=False))
    print(f"{scores['rows']} charts: title CER against the closest line {scores['title_cer']:.3f}, read exactly "
          f"{scores['exact']}, charts read as nothing {scores['read_nothing']}")


if __name__ == "__main__":
    main()
