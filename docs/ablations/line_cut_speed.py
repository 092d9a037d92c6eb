"""What cutting an image into lines costs, and what the numpy square opening saves over PIL's rank filters
(the same masks; `processing.lines.square_opening`): per kind of the card's held-out rows, the mean time of the
opening both ways, and of the whole `reading_lines` with the numpy one.

    python docs/ablations/line_cut_speed.py --rows 10
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from PIL import Image, ImageFilter

from ko_hypervl.evaluation.data import load_eval_data
from ko_hypervl.processing.lines import AREA_SIDE, INK_CONTRAST, page_blur, reading_lines, square_opening


def pil_opening(mask: np.ndarray, side: int) -> np.ndarray:
    """The opening as `ink_mask` computed it before: PIL's MinFilter, then MaxFilter."""
    image = Image.fromarray((mask * 255).astype(np.uint8))
    return np.asarray(image.filter(ImageFilter.MinFilter(side)).filter(ImageFilter.MaxFilter(side))) > 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10, help="rows per kind")
    args = parser.parse_args()
    print("| kind | rows | mean size | opening, PIL (ms) | opening, numpy (ms) | ratio | reading_lines (ms) |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for kind in ("ocr", "charts", "tables", "exams"):
        data = load_eval_data(None, [kind], args.rows, 0, progress=False)
        images = [data.dataset[i]["image"].convert("RGB") for i in range(len(data.dataset))]
        pil = ours = whole = 0.0
        for image in images:
            grey = image.convert("L")
            ink = np.asarray(grey, dtype=np.int16) < np.asarray(page_blur(grey), dtype=np.int16) - INK_CONTRAST
            started = time.perf_counter()
            before = pil_opening(ink, AREA_SIDE)
            pil += time.perf_counter() - started
            started = time.perf_counter()
            after = square_opening(ink, AREA_SIDE)
            ours += time.perf_counter() - started
            if not np.array_equal(before, after):
                raise SystemExit(f"the openings differ on a {kind} image")
            started = time.perf_counter()
            reading_lines(image)
            whole += time.perf_counter() - started
        n = len(images)
        size = f"{sum(i.width for i in images) // n}×{sum(i.height for i in images) // n}"
        print(f"| {kind} | {n} | {size} | {1000 * pil / n:.0f} | {1000 * ours / n:.0f} | {pil / ours:.1f}× | "
              f"{1000 * whole / n:.0f} |", flush=True)


if __name__ == "__main__":
    main()
