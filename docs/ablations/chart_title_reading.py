"""How well a checkpoint's reading head reads chart titles: on the first ``--rows`` held-out chart test rows (the
card's rendering), the CER of each chart's title against the line of the reading closest to it (capped at 1),
how many titles some line reads exactly, and how many charts read as nothing (reading_pretraining.md, last
section).

    python docs/ablations/chart_title_reading.py runs/cp3/final --rows 40
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ko_hypervl import load
from ko_hypervl.evaluation.data import load_eval_data
from ko_hypervl.imagecorpus.tesseract import character_error_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="a checkpoint with a valid reading head")
    parser.add_argument("--rows", type=int, default=40)
    args = parser.parse_args()
    vlm = load(args.model)
    data = load_eval_data(None, ["charts"], args.rows, 0, progress=False)
    rates, exact, empty, lines = [], 0, 0, 0
    for index in range(len(data.dataset)):
        row = data.dataset[index]
        title = json.loads(row["metadata"])["spec"]["title"]
        read = [line for line in vlm.read(row["image"])[0].text.split("\n") if line.strip()]
        lines += len(read)
        closest = min((character_error_rate(title, line) for line in read), default=1.0)
        rates.append(min(closest, 1.0))
        exact += closest == 0
        empty += not read
    print(f"{len(rates)} charts: title CER against the closest line {sum(rates) / len(rates):.3f}, read exactly "
          f"{exact}, charts read as nothing {empty}, lines read {lines}")


if __name__ == "__main__":
    main()
