"""How often `ko_hypervl.processing.lines` cuts an image into the right number of text lines: every row of an
image corpus's split with a transcription, its line count against the transcription's (reading_pretraining.md,
last section).

    python docs/ablations/line_cut_check.py runs/read-data --split test      # 500 of 2,044 rows by default
"""

from __future__ import annotations

import argparse
import collections
import time
from pathlib import Path

from PIL import Image

from ko_hypervl.imagecorpus.records import load_split, transcriptions
from ko_hypervl.processing.lines import find_lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="a `ko-hypervl corpora build` folder")
    parser.add_argument("--split", default="test")
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--upscale", type=float, default=1.0,
                        help="enlarge each image this many times first (a phone photo of a page is 4-5x a corpus page)")
    args = parser.parse_args()
    dataset = load_split(args.data, args.split, ["ocr"])
    rows = transcriptions(dataset)[:args.rows]
    wrong_by_style, right, started = collections.Counter(), 0, time.perf_counter()
    for index, text in rows:
        image = dataset[index]["image"]
        if args.upscale != 1:
            image = image.resize((round(image.width * args.upscale), round(image.height * args.upscale)),
                                 Image.BICUBIC)
        expected = len([line for line in text.strip().splitlines() if line.strip()])
        if len(find_lines(image)[1]) == expected:
            right += 1
        else:
            wrong_by_style[dataset[index]["style"]] += 1
    seconds = time.perf_counter() - started
    print(f"{right}/{len(rows)} rows cut into the right number of lines ({right / len(rows):.1%}), "
          f"{1000 * seconds / len(rows):.0f} ms a row; wrong by style: {dict(wrong_by_style.most_common())}")


if __name__ == "__main__":
    main()
