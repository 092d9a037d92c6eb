"""The settings every training stage shares: batch, schedule, checkpoints, logging, devices.

The global batch (``batch_size`` samples per optimizer step) is fixed by the settings, not by the
hardware: each process takes an equal share and accumulates gradients over micro-batches until the
share is done, so one CPU and eight GPUs make the same update from the same data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ..settings import setting

PRECISIONS = ("no", "bf16", "fp16")


@dataclass
class TrainSettings:
    out: Path = setting(help="run folder: checkpoints, logs, loss curve and the final model")
    steps: int = setting(100, help="optimizer steps")
    batch_size: int = setting(8, help="global batch: samples per optimizer step, over all processes")
    micro_batch_size: int = setting(4, help="samples per forward pass on one process (gradients accumulate)")
    learning_rate: float = setting(1e-3, help="peak learning rate (AdamW)")
    min_lr_ratio: float = setting(0.1, help="final learning rate as a share of the peak (cosine decay)")
    warmup_steps: int = setting(10, help="linear warm-up steps")
    weight_decay: float = setting(0.01, help="AdamW weight decay on matrices (not on norms and biases)")
    grad_clip: float = setting(1.0, help="clip the gradient norm to this (0: off)")
    seed: int = setting(0, help="seed of the data order, scale sampling and dropout")
    save_every: int = setting(50, help="write a resumable checkpoint every N steps (and at the end)")
    keep_checkpoints: int = setting(2, help="resumable checkpoints kept (older ones are deleted)")
    log_every: int = setting(1, help="write a log row every N steps")
    precision: str = setting("no", help="mixed precision through accelerate", choices=PRECISIONS)
    cpu: bool = setting(False, help="train on the CPU even when a GPU is present")
    threads: int = setting(0, help="torch CPU threads per process (0: leave torch's default)")
    prefetch_batches: int = setting(-1, help="steps of batches a background thread prepares while the model "
                                             "trains (0: inline; -1: 2 on a GPU, 0 on the CPU, where the "
                                             "thread would take cores from training)")
    batch_workers: int = setting(-1, help="processes that make the steps' batches ahead, prefetch-batches steps "
                                           "each (0: this process; -1: on a GPU one per free core, at most 8, "
                                           "on the CPU 0)")
    max_seconds: float = setting(0.0, help="stop after this many seconds of training, counted across resumes, "
                                           "at the end of a step, with the learning rate decayed to its floor "
                                           "by then (0: run all --steps)")
    progress: bool = setting(True, help="show a progress bar")
    check_memory: bool = setting(True, help="refuse settings whose estimated memory exceeds what is free")

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        for name in ("steps", "batch_size", "micro_batch_size", "save_every", "keep_checkpoints", "log_every"):
            if getattr(self, name) <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.learning_rate <= 0 or not math.isfinite(self.learning_rate):
            raise ValueError(f"--learning-rate must be a positive number, got {self.learning_rate}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"--min-lr-ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.warmup_steps < 0 or self.grad_clip < 0 or self.weight_decay < 0:
            raise ValueError("--warmup-steps, --grad-clip and --weight-decay cannot be negative")
        if self.batch_workers < -1:
            raise ValueError(f"--batch-workers must be -1 (auto), 0 or more, got {self.batch_workers}")
        if self.max_seconds < 0 or not math.isfinite(self.max_seconds):
            raise ValueError(f"--max-seconds must be 0 (no limit) or a positive number, got {self.max_seconds}")
        if self.prefetch_batches < -1:
            raise ValueError(f"--prefetch-batches must be -1 (auto), 0 or more, got {self.prefetch_batches}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")

    def accumulation_steps(self, num_processes: int) -> int:
        """Micro-batches per process per step; the global batch must split evenly."""
        share, rest = divmod(self.batch_size, num_processes)
        if rest or share == 0:
            raise ValueError(f"--batch-size {self.batch_size} does not split over {num_processes} processes; "
                             f"use a multiple of {num_processes}")
        micro = min(self.micro_batch_size, share)
        if share % micro:
            raise ValueError(f"each process gets {share} samples per step, which --micro-batch-size {micro} does "
                             f"not divide; pick a micro batch that divides {share}")
        return share // micro


def learning_rate_at(step: int, settings: TrainSettings, time_share: float = 0.0) -> float:
    """Linear warm-up to the peak, then cosine decay to ``min_lr_ratio`` of it at the last step.

    ``time_share`` is the share of ``--max-seconds`` already spent: the decay follows whichever of the steps
    and the clock is further along, so a run the clock stops ends at the floor as a full run does.
    """
    peak = settings.learning_rate
    if step < settings.warmup_steps:
        return peak * (step + 1) / settings.warmup_steps
    span = max(1, settings.steps - settings.warmup_steps - 1)
    progress = min(1.0, max((step - settings.warmup_steps) / span, time_share))
    floor = peak * settings.min_lr_ratio
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * progress))


@dataclass
class CompareSettings:
    runs: list[Path] = setting(help="run folders (or their log.jsonl files) to draw on one chart")
    out: Path = setting(Path("compare.png"), help="the chart (PNG)")
    labels: list[str] = setting([], help="one legend label per run (default: the folder names)")
    metric: str = setting("loss", help="logged value to draw (loss, loss_large, loss_small, loss_kl, grad_norm…)")
    window: int = setting(50, help="steps per moving mean (the first and last such means are printed)")
    title: str = setting("", help="chart title")
    ymax: float = setting(0.0, help="top of the y axis, to see past the first steps' high loss (0: automatic)")

    def __post_init__(self) -> None:
        self.runs = [Path(run) for run in self.runs]
        self.out = Path(self.out)
        if self.labels and len(self.labels) != len(self.runs):
            raise ValueError(f"--labels names {len(self.labels)} runs, but {len(self.runs)} were given")
        if self.window < 1:
            raise ValueError("--window must be at least 1")

    def log_files(self) -> dict[str, Path]:
        """Legend label → log file; a folder stands for its log.jsonl."""
        from .runlog import LOG_FILE

        labels = self.labels or [run.stem if run.is_file() else run.name for run in self.runs]
        if len(set(labels)) != len(labels):
            raise ValueError(f"two runs have the same label ({', '.join(labels)}); name them with --labels")
        files = {label: run / LOG_FILE if run.is_dir() else run for label, run in zip(labels, self.runs)}
        for path in files.values():
            if not path.is_file():
                raise FileNotFoundError(f"no training log at {path}")
        return files
