"""A memory estimate before training starts, so settings that cannot fit fail at once with what to change,
instead of after an hour of swapping or with a bare allocator error."""

from __future__ import annotations

import os

import torch

GIB = 1024 ** 3
OOM_HINT = ("lower --micro-batch-size (gradient accumulation keeps the global --batch-size), shorten the sequences "
            "(--block-size / --max-length, or fewer tiles per image), or train on a machine with more memory")


class InsufficientMemoryError(RuntimeError):
    """The settings need more memory than the device has; the message says what to change."""


def available_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def estimate_training_bytes(model, trainable: list[torch.nn.Parameter], micro_batch_size: int, sequence_length: int,
                            logit_positions: int) -> int:
    """Weights, gradients and AdamW moments, the decoder's saved activations and the output logits.

    Activations: about 34 · hidden bytes per token per layer in fp32 (Korthikanti et al. 2022, without
    recomputation); logits: three copies (logits, their fp32 copy, the softmax gradient).
    """
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    trained = sum(p.numel() for p in trainable)
    optimizer = trained * (4 + 8)
    text = model.config.text_config
    hidden, layers = text.hidden_size, text.num_hidden_layers
    tokens = micro_batch_size * sequence_length
    activations = 34 * hidden * layers * tokens
    logits = 3 * 4 * micro_batch_size * logit_positions * text.vocab_size
    return weights + optimizer + activations + logits


def check_fits(need: int, device: torch.device) -> None:
    have = available_bytes(device)
    if need > have:
        raise InsufficientMemoryError(f"these settings need about {need / GIB:.1f} GiB but {have / GIB:.1f} GiB is free on "
                          f"{device}; {OOM_HINT}")


def is_out_of_memory(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, torch.OutOfMemoryError) or "can't allocate memory" in text or "out of memory" in text
