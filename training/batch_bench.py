"""How fast the training loop makes a vision-language stage's batches: steps per second with the batches made in
the training process (0 workers, what the CPU recipes do) and with forked batch workers (`--batch-workers`, what a
GPU run gets by default), side by side in the same run. A GPU step of the tiny model takes milliseconds, so
decoding, tiling and tokenising the images on one core would bound it.

    python training/batch_bench.py DATA_DIR [--init CKPT] [--workers 2] [--steps 24] [--batch-size 16]

DATA_DIR is a `ko-hypervl corpora build` folder (or a pipeline run's `data/`); CKPT gives the processor
(default: the bundled model).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ko_hypervl.checkpoint import bundled_model_dir, load_checkpoint
from ko_hypervl.training.loop import step_batches
from ko_hypervl.training.run import _vision_language_dataset
from ko_hypervl.training.settings import TrainSettings
from ko_hypervl.training.stages import SFTSettings, VisionLanguageStage


def steps_per_second(stage, settings: TrainSettings, workers: int) -> tuple[float, float]:
    """(seconds, steps/s) to make every step's batches, the workers' start-up included."""
    started = time.perf_counter()
    made = sum(1 for _ in step_batches(stage, settings, 0, stage.dataset_size(), 0, 1, 1, prefetch=2,
                                       workers=workers))
    seconds = time.perf_counter() - started
    return seconds, made / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--init", type=Path, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    init = args.init or bundled_model_dir()
    _, processor = load_checkpoint(init)
    settings = SFTSettings(init=init, data=args.data, answer_weighting="sqrt")   # the tiny-read recipe's sft
    stage = VisionLanguageStage("sft", settings, _vision_language_dataset(settings), processor, seed=0)
    train = TrainSettings(out=Path("unused"), steps=args.steps, batch_size=args.batch_size,
                          micro_batch_size=args.batch_size)
    print(f"{args.steps} sft steps of {args.batch_size} conversations from {args.data}")
    print("| batch workers | seconds | steps/s | vs in process |\n| ---: | ---: | ---: | ---: |")
    base = None
    for workers in (0, args.workers):
        seconds, rate = steps_per_second(stage, train, workers)
        base = base or rate
        print(f"| {workers} | {seconds:.1f} | {rate:.2f} | {rate / base:.2f}x |")


if __name__ == "__main__":
    main()
