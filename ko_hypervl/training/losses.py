"""Training losses as sums over target tokens; the loop divides by the global target count, so every
token weighs the same whatever the micro-batch, accumulation or process split."""

from __future__ import annotations

import torch
from torch import nn


def next_token_targets(labels: torch.Tensor) -> torch.Tensor:
    """Mask (batch, length − 1) of positions whose next token is a target (label ≠ −100)."""
    return labels[:, 1:] != -100


def predicting_positions(labels: torch.Tensor) -> torch.Tensor:
    """Sequence positions whose logits some row needs: the model computes the output head only there."""
    return next_token_targets(labels).any(dim=0).nonzero().squeeze(1)


def gather_target_logits(logits: torch.Tensor, labels: torch.Tensor, positions: torch.Tensor):
    """``(logits, targets)`` of every target token, row by row, from logits kept at ``positions``."""
    mask = next_token_targets(labels)[:, positions]
    targets = labels[:, 1:][:, positions][mask]
    return logits[mask], targets


def cross_entropy_sum(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(logits.float(), targets, reduction="sum")


def distillation_kl_sum(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T² · KL(teacher_T ‖ student_T) summed over tokens, the teacher detached (Hinton et al.; DCL).

    Softening both distributions with the temperature passes on how the teacher ranks wrong answers;
    T² keeps the gradient scale comparable to the cross-entropy's as T changes.
    """
    if temperature <= 0:
        raise ValueError(f"the distillation temperature must be positive, got {temperature}")
    teacher = nn.functional.log_softmax(teacher_logits.detach().float() / temperature, dim=-1)
    student = nn.functional.log_softmax(student_logits.float() / temperature, dim=-1)
    kl = nn.functional.kl_div(student, teacher, reduction="sum", log_target=True)
    return kl * temperature ** 2


def greedy_correct(logits: torch.Tensor, targets: torch.Tensor, suppressed: list[int] | None = None) -> torch.Tensor:
    """Per target token, whether greedy decoding picks it (the tokens generation suppresses never win).

    An answer is generated exactly by greedy decoding iff every one of its tokens, its end token
    included, is correct here under teacher forcing, so this scores exact match with one forward pass.
    """
    if suppressed:
        logits = logits.clone()
        logits[:, suppressed] = float("-inf")
    return logits.argmax(dim=-1) == targets
