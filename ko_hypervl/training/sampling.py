"""The data order: which samples step ``s`` trains on, as a pure function of (seed, step).

Sample slot ``p = s · batch + j`` falls in epoch ``p // n`` and takes position ``p % n`` of that epoch's
seeded permutation. Nothing is stored between steps, so a resumed run, or a run with more processes,
sees exactly the samples an uninterrupted single-process run would.
"""

from __future__ import annotations

import functools
import random

import torch


@functools.lru_cache(maxsize=4)
def _epoch_order(seed: int, epoch: int, size: int) -> tuple[int, ...]:
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return tuple(torch.randperm(size, generator=generator).tolist())


def global_batch(seed: int, step: int, batch_size: int, size: int) -> list[int]:
    """Dataset indices of the whole (all-process) batch of ``step``."""
    if size <= 0:
        raise ValueError("the dataset is empty: there is nothing to train on")
    indices = []
    for slot in range(step * batch_size, (step + 1) * batch_size):
        epoch, position = divmod(slot, size)
        indices.append(_epoch_order(seed, epoch, size)[position])
    return indices


def process_share(batch: list, rank: int, num_processes: int) -> list:
    """This process's contiguous share of the global batch."""
    share = len(batch) // num_processes
    return batch[rank * share:(rank + 1) * share]


def micro_batches(share: list, count: int) -> list[list]:
    """``share`` cut into ``count`` equal micro-batches."""
    size = len(share) // count
    return [share[i * size:(i + 1) * size] for i in range(count)]


def sample_rng(seed: int, step: int, index: int) -> random.Random:
    """Randomness for one sample at one step (e.g. its VRC scale): the same on any process, after any resume."""
    return random.Random(f"{seed}/{step}/{index}")


def epochs_seen(step: int, batch_size: int, size: int) -> float:
    return (step * batch_size) / size if size else 0.0
