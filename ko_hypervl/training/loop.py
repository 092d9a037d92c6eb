"""The one training loop every stage runs: accelerate for devices and processes, a fixed global batch,
token-weighted losses, atomic resumable checkpoints, progress bar and JSONL log.

A stage supplies the data and the loss (see ``stages.Stage``); the loop owns everything else, so resume,
multi-process equivalence and logging are written and tested once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .checkpointing import latest_checkpoint, load_training_checkpoint, save_training_checkpoint, write_json_atomic
from .memory import OOM_HINT, InsufficientMemoryError, check_fits, is_out_of_memory
from .runlog import RunLog, plot_loss, read_log
from .sampling import global_batch, micro_batches, process_share
from .settings import TrainSettings, learning_rate_at

log = logging.getLogger(__name__)
CHECKPOINTS = "checkpoints"
# settings that may change between a kill and the resume without changing the result
RESUME_FREE = {"progress", "save_every", "keep_checkpoints", "log_every", "threads", "check_memory", "out", "cpu",
               "prefetch_batches", "batch_workers"}
# settings added after runs were written: at these defaults they stay out of the fingerprint, so those runs resume
LATER_DEFAULTS = {"max_seconds": 0.0}


@dataclass
class TrainResult:
    stage: str
    steps: int
    resumed_from: int
    seconds: float
    samples_per_second: float
    tokens_per_second: float
    target_tokens_per_second: float
    final_loss: float | None
    log_file: str
    loss_plot: str | None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def fingerprint(stage, settings: TrainSettings) -> dict:
    """What must match for a resumed run to continue the same run."""
    train = {k: v for k, v in asdict(settings).items()
             if k not in RESUME_FREE and not (k in LATER_DEFAULTS and v == LATER_DEFAULTS[k])}
    return {"stage": stage.name, "train": train, "stage_settings": stage.describe()}


def _param_groups(params: list[tuple[str, torch.nn.Parameter]], weight_decay: float,
                  lr_scale=lambda name: 1.0) -> list[dict]:
    """AdamW groups by (learning-rate scale, decay); ``lr_scale(name)`` is the share of the schedule's rate.

    Norms, biases and embeddings' 1-d neighbours are not decayed (standard for transformers). With every scale
    1.0 there are exactly two groups, as before scales existed, so older checkpoints' optimizer states resume.
    """
    groups: dict[tuple[float, bool], list] = {}
    for scale in sorted({float(lr_scale(name)) for name, _ in params} | {1.0}, reverse=True):
        groups[(scale, True)] = []
        groups[(scale, False)] = []
    for name, param in params:
        groups[(float(lr_scale(name)), param.ndim >= 2)].append(param)
    return [{"params": chosen, "weight_decay": weight_decay if decay else 0.0, "lr_scale": scale}
            for (scale, decay), chosen in groups.items() if chosen or scale == 1.0]


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """The schedule's rate for this step, times each group's ``lr_scale``."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)


class _StepBatches(torch.utils.data.Dataset):
    """Item ``i``: the micro-batches of step ``steps[i]``, for a DataLoader whose workers make them."""

    def __init__(self, make, steps: range):
        self.make, self.steps = make, steps

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, i: int) -> list[dict]:
        return self.make(self.steps[i])


def step_batches(stage, settings: TrainSettings, start: int, size: int, rank: int, world: int, accumulation: int,
                 prefetch: int, workers: int = 0):
    """Each step's micro-batches for this process, from step ``start`` on.

    With ``workers`` > 0 that many forked processes make the steps in turn, ``prefetch`` (at least 1) steps
    ahead each (a GPU trains faster than one core decodes and tiles images); else with ``prefetch`` > 0 one
    background thread prepares up to that many steps ahead while the model trains. The batches are the same
    every way: a step's samples and their random choices depend only on (seed, step, index), never on a
    shared generator (see ``sampling``).
    """
    def make(step: int) -> list[dict]:
        indices = process_share(global_batch(settings.seed, step, settings.batch_size, size), rank, world)
        return [stage.make_batch(chunk, step) for chunk in micro_batches(indices, accumulation)]

    if workers > 0:
        from torch.utils.data import DataLoader

        # fork: the workers inherit the stage (dataset, tokenizer) instead of unpickling it; they never touch CUDA
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")   # a forked Rust tokenizer would warn and serialise
        loader = DataLoader(_StepBatches(make, range(start, settings.steps)), batch_size=None, num_workers=workers,
                            prefetch_factor=max(1, prefetch), multiprocessing_context="fork")
        batches = iter(loader)
        try:
            yield from batches
        finally:
            del batches         # shuts the workers down when training stops early
        return
    steps = iter(range(start, settings.steps))
    if prefetch <= 0:
        yield from map(make, steps)
        return
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{stage.name}-batches")
    try:
        pending = deque(pool.submit(make, step) for _, step in zip(range(prefetch + 1), steps))
        while pending:
            batches = pending.popleft().result()     # a failure in make_batch is raised here, at its step
            for step in steps:
                pending.append(pool.submit(make, step))
                break
            yield batches
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def batch_worker_count(settings: TrainSettings, device: torch.device, processes: int) -> int:
    """``--batch-workers``, with -1 resolved: on a GPU the free cores shared among the processes (at most 8
    each), on the CPU none (workers would take the cores training needs)."""
    if settings.batch_workers >= 0:
        return settings.batch_workers
    if device.type == "cpu":
        return 0
    return max(0, min(8, (os.cpu_count() or 1) // max(1, processes) - 1))


def _make_accelerator(settings: TrainSettings):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    state = AcceleratorState._shared_state
    if state and state.get("_mixed_precision", settings.precision) != settings.precision:
        # accelerate keeps one precision per process and refuses another; a pipeline's stages may differ (an LM
        # in bf16, the rest in float32), so the stage state is renewed (the processes stay joined: PartialState)
        AcceleratorState._reset_state()
    accelerator = Accelerator(cpu=settings.cpu, mixed_precision=settings.precision)
    launched = int(os.environ.get("WORLD_SIZE") or 1)
    if launched > 1 and accelerator.num_processes != launched:
        # torchrun / `accelerate launch --multi_gpu` on a machine without GPUs: accelerate joins CPU processes only
        # when told to use the CPU; unjoined, each process would train alone and all would write the same --out
        raise RuntimeError(f"launched as {launched} processes, but accelerate did not join them (it sees "
                           f"{accelerator.num_processes}); without GPUs, pass --cpu to the train command so the "
                           "processes train together on the CPU (gloo)")
    return accelerator


def train(stage, model, settings: TrainSettings, accelerator=None, processor=None) -> TrainResult:
    """Run ``stage`` on ``model`` for ``settings.steps`` steps, resuming from ``settings.out`` if a run is there.

    Returns when the last step is done (the model then holds the trained weights, unwrapped). With the model's
    ``processor``, every resumable checkpoint is also a model any command loads.
    """
    accelerator = accelerator or _make_accelerator(settings)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    world, rank = accelerator.num_processes, accelerator.process_index
    accumulation = settings.accumulation_steps(world)
    main = accelerator.is_main_process
    out = Path(settings.out)
    checkpoints = out / CHECKPOINTS
    size = stage.dataset_size()
    if size == 0:
        raise ValueError(f"stage {stage.name}: the dataset is empty; check --data and the task filter")

    trainable = stage.trainable_parameters(model)
    if not trainable:
        raise ValueError(f"stage {stage.name}: no parameter is trainable with these settings")
    optimizer = torch.optim.AdamW(_param_groups(trainable, settings.weight_decay, stage.learning_rate_scale),
                                  lr=settings.learning_rate,
                                  betas=(0.9, 0.95), eps=1e-8)
    micro = settings.batch_size // world // accumulation
    if settings.check_memory:
        need = stage.estimate_memory(model, [p for _, p in trainable], micro)
        check_fits(need, accelerator.device)

    start = 0
    state_extra: dict = {}
    expected = fingerprint(stage, settings)
    latest = latest_checkpoint(checkpoints)
    if latest is not None:
        state = load_training_checkpoint(latest, model, optimizer)
        if state.get("fingerprint") != expected:
            raise ValueError(f"{out} holds a run with other settings ({latest}); resume with the same settings or "
                             "choose another --out")
        start, state_extra = state["step"], state.get("counters", {})
        log.info("resuming %s from step %d (%s)", stage.name, start, latest)
    elif main and out.exists() and any(out.glob("final*")):
        log.info("%s: no checkpoint but a final model in %s; training again", stage.name, out)

    model, optimizer = accelerator.prepare(model, optimizer)
    runlog = RunLog(out, start, enabled=main)
    samples_seen = int(state_extra.get("samples", 0))
    tokens_seen = int(state_extra.get("tokens", 0))
    targets_seen = int(state_extra.get("targets", 0))
    elapsed_before = float(state_extra.get("seconds", 0.0))
    run_samples = run_tokens = 0
    started = time.perf_counter()
    last_loss = None
    from tqdm.auto import tqdm

    bar = tqdm(total=settings.steps, initial=start, desc=stage.name, unit="step", disable=not (main and settings.progress))
    prefetch = settings.prefetch_batches
    if prefetch < 0:
        prefetch = 2 if accelerator.device.type != "cpu" else 0
    model.train()
    limit = settings.max_seconds

    def clock() -> float:
        """Seconds of training so far, across resumes; the processes' mean, so all take the same decisions."""
        seconds = torch.tensor(elapsed_before + time.perf_counter() - started, dtype=torch.float64,
                               device=accelerator.device)
        return float(accelerator.reduce(seconds, "mean")) if world > 1 else float(seconds)

    end = settings.steps if not limit or clock() < limit else start    # a finished clock: no step more
    all_batches = step_batches(stage, settings, start, size, rank, world, accumulation, prefetch,
                               batch_worker_count(settings, accelerator.device, world))
    step = start - 1
    for step, batches in zip(range(start, end), all_batches):
        lr = learning_rate_at(step, settings, clock() / limit if limit else 0.0)
        set_learning_rate(optimizer, lr)
        # the loss is a weighted sum over target tokens (weight 1 each unless the stage weights its answers)
        local = torch.tensor([sum(b["num_targets"] for b in batches), sum(b["num_tokens"] for b in batches),
                              sum(b.get("target_weight", b["num_targets"]) for b in batches)],
                             dtype=torch.float64, device=accelerator.device)
        global_targets, global_tokens, global_weight = accelerator.reduce(local, "sum").tolist()
        if global_targets == 0:
            raise ValueError(f"stage {stage.name}: step {step} has no target tokens (every answer was cut off?)")
        torch.manual_seed(settings.seed * 7919 + step * 131 + rank)   # dropout: reproducible after resume
        sums: dict[str, float] = {}
        try:
            for i, batch in enumerate(batches):
                sync = contextlib.nullcontext() if i == len(batches) - 1 else accelerator.no_sync(model)
                with sync:
                    loss_sum, parts = stage.loss(model, batch, accelerator.device)
                    # × world: DDP averages gradients over processes; the loss is a sum over all of them
                    accelerator.backward(loss_sum * world / global_weight)
                for name, value in parts.items():
                    sums[name] = sums.get(name, 0.0) + float(value)
        except RuntimeError as exc:
            if is_out_of_memory(exc):
                raise InsufficientMemoryError(f"stage {stage.name} ran out of memory at step {step}: {OOM_HINT}") from exc
            raise
        params = [p for _, p in trainable]
        if settings.grad_clip:
            grad_norm = float(accelerator.clip_grad_norm_(params, settings.grad_clip))
        else:
            grad_norm = float(torch.norm(torch.stack([p.grad.norm() for p in params if p.grad is not None])))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

        names = sorted(sums)
        totals = accelerator.reduce(torch.tensor([sums[n] for n in names], dtype=torch.float64,
                                                 device=accelerator.device), "sum").tolist() if names else []
        metrics = {name: total / global_weight for name, total in zip(names, totals)}
        last_loss = metrics.get("loss")
        samples_seen += settings.batch_size
        tokens_seen += int(global_tokens)
        targets_seen += int(global_targets)
        run_samples += settings.batch_size
        run_tokens += int(global_tokens)
        spent = time.perf_counter() - started
        if (step + 1) % settings.log_every == 0 or step + 1 == settings.steps:
            runlog.write({"stage": stage.name, "step": step + 1, **{k: round(v, 5) for k, v in metrics.items()},
                          "lr": lr, "grad_norm": round(grad_norm, 4), "samples": samples_seen, "tokens": tokens_seen,
                          "samples_per_s": round(run_samples / spent, 3), "tokens_per_s": round(run_tokens / spent, 1),
                          "seconds": round(elapsed_before + spent, 2)})
        bar.update()
        bar.set_postfix(loss=f"{last_loss:.3f}" if last_loss is not None else "-", lr=f"{lr:.1e}")
        out_of_time = bool(limit) and step + 1 < settings.steps and clock() >= limit
        if (step + 1) % settings.save_every == 0 or step + 1 == settings.steps or out_of_time:
            accelerator.wait_for_everyone()
            if main:
                counters = {"samples": samples_seen, "tokens": tokens_seen, "targets": targets_seen,
                            "seconds": elapsed_before + spent}
                save_training_checkpoint(checkpoints, accelerator.unwrap_model(model), optimizer,
                                         {"step": step + 1, "fingerprint": expected, "counters": counters},
                                         settings.keep_checkpoints, processor)
            accelerator.wait_for_everyone()
        if out_of_time:
            break
    all_batches.close()     # stops the prefetch thread
    bar.close()
    done = step + 1
    if done < settings.steps:
        log.info("%s: stopped by --max-seconds %g after step %d of %d", stage.name, limit, done, settings.steps)
    total = elapsed_before + time.perf_counter() - started
    model = accelerator.unwrap_model(model)
    model.eval()
    plot = None
    if main:
        rows = read_log(runlog.path)
        plot = plot_loss(rows, out / "loss.png", f"{stage.name} loss")
        if last_loss is None and rows:
            last_loss = rows[-1].get("loss")
    result = TrainResult(
        # over the whole run, across resumes (the counters travel in the checkpoints)
        stage=stage.name, steps=done, resumed_from=start, seconds=round(total, 2),
        samples_per_second=round(samples_seen / total, 3) if total else 0.0,
        tokens_per_second=round(tokens_seen / total, 1) if total else 0.0,
        target_tokens_per_second=round(targets_seen / total, 1) if total else 0.0,
        final_loss=last_loss, log_file=str(runlog.path), loss_plot=str(plot) if plot else None,
        extra={"processes": world, "micro_batches_per_step": accumulation,
               **({"planned_steps": settings.steps, "stopped_by": "max_seconds"} if done < settings.steps else {})},
    )
    if main:
        write_json_atomic(out / "train_result.json", result.to_dict())
    return result
