"""How much the model's answers depend on the image: the loss of each exact answer with its image and with a
white one of the same size.

Why: exact match stays at its floor long after a model has started to look at the image, so it cannot tell
a model that ignores the image from one that has begun to use it. Teacher-forced, the loss of the exact
answer moves as soon as the image tells the model anything about it. The blank image gives the same tiles
and visual tokens, so the gap, in nats per answer token, is what the model takes from the image's content.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..imagecorpus.records import QA, conversation
from ..inference import KoHyperVL, VRCDecision
from ..training.data import ConversationEncoder, collate
from ..training.losses import next_token_targets, predicting_positions
from .data import EvalQuestion
from .generate import batches_by_size


@dataclass(frozen=True)
class AnswerLoss:
    """The summed loss of one exact answer (its end-of-turn token included) and its token count."""

    nats: float
    tokens: int


@torch.inference_mode()
def answer_losses(vlm: KoHyperVL, images: Sequence, questions: list[EvalQuestion], decisions: list[VRCDecision],
                  batch_size: int, desc: str = "answer loss", progress: bool = True) -> list[AnswerLoss]:
    """Teacher-forced loss of every question's exact answer, each asked alone about its image as in ``ask``."""
    from tqdm.auto import tqdm

    encoder = ConversationEncoder(vlm.processor, vlm.model.config.text_config.max_position_embeddings)
    pad_id = vlm.processor.tokenizer.pad_token_id
    device = vlm.model.device
    losses: list[AnswerLoss | None] = [None] * len(questions)
    with tqdm(total=len(questions), desc=desc, unit="q", disable=not progress) as bar:
        for branch in sorted({d.branch for d in decisions}):
            # one branch per forward pass; the other questions are dropped from this branch's batches
            keep = [i for i, q in enumerate(questions) if decisions[q.image_index].branch == branch]
            kept_questions = [questions[i] for i in keep]
            for batch in batches_by_size(kept_questions, decisions, batch_size):
                picked = [keep[i] for i in batch]
                samples = [encoder.encode(images[questions[i].image_index],
                                          conversation([QA(questions[i].question, questions[i].answer,
                                                           questions[i].task)]),
                                          branch, decisions[questions[i].image_index].scale, questions[i].row_id)
                           for i in picked]
                for i, loss in zip(picked, _batch_losses(vlm.model, collate(samples, pad_id), branch, device)):
                    losses[i] = loss
                bar.update(len(picked))
    return losses


def _batch_losses(model, inputs: dict, branch: str, device) -> list[AnswerLoss]:
    labels = inputs["labels"]
    positions = predicting_positions(labels)
    out = model(input_ids=inputs["input_ids"].to(device), attention_mask=inputs["attention_mask"].to(device),
                pixel_values=inputs["pixel_values"].to(device), image_grid=inputs["image_grid"].to(device),
                branch=branch, logits_to_keep=positions.to(device))
    targets = labels[:, 1:][:, positions].to(device)
    mask = next_token_targets(labels)[:, positions].to(device)
    nats = nn.functional.cross_entropy(out.logits.float().transpose(1, 2), targets.clamp(min=0), reduction="none")
    return [AnswerLoss(float(nats[row][mask[row]].sum()), int(mask[row].sum())) for row in range(len(labels))]


@dataclass(frozen=True)
class ImageUse:
    """Answer loss with the images and with blank ones, in nats per answer token, over ``n`` questions.

    ``gain`` is how many nats per token the images save (positive: the model uses them); ``gain_se`` is its
    standard error from the questions' paired differences, so a gain within 2 SE of 0 is not evidence of use.
    """

    n: int
    tokens: int
    seen: float
    blank: float
    gain: float
    gain_se: float

    def to_dict(self) -> dict:
        return {"n": self.n, "tokens": self.tokens, "nats_per_token_seen": round(self.seen, 4),
                "nats_per_token_blank": round(self.blank, 4), "gain": round(self.gain, 4),
                "gain_se": round(self.gain_se, 4)}


def image_use(seen: list[AnswerLoss], blank: list[AnswerLoss]) -> ImageUse:
    """Pool paired answer losses (question ``i`` with its image and blank) into nats per answer token.

    The gain is a ratio of sums (every token weighs the same); its standard error is the delta method's over
    questions: the spread of each question's gain in nats, scaled by the mean tokens per question.
    """
    if len(seen) != len(blank) or not seen:
        raise ValueError(f"need the same questions, at least one, with and without the image "
                         f"(got {len(seen)} and {len(blank)})")
    if any(a.tokens != b.tokens for a, b in zip(seen, blank)):
        raise ValueError("an answer has a different number of tokens with the blank image")
    n = len(seen)
    tokens = sum(a.tokens for a in seen)
    differences = [b.nats - a.nats for a, b in zip(seen, blank)]
    gain = sum(differences) / tokens
    # residuals of each question's saving from the pooled rate: the delta-method variance of a ratio of sums
    residuals = [d - gain * a.tokens for d, a in zip(differences, seen)]
    variance = sum(r * r for r in residuals) / (n - 1) if n > 1 else math.nan
    gain_se = math.sqrt(variance / n) / (tokens / n) if n > 1 else math.nan
    return ImageUse(n, tokens, sum(a.nats for a in seen) / tokens, sum(b.nats for b in blank) / tokens, gain, gain_se)


def image_use_by_kind(questions: list[EvalQuestion], seen: list[AnswerLoss],
                      blank: list[AnswerLoss]) -> dict[str, ImageUse]:
    """``image_use`` over all questions (key ``all``) and over each kind's."""
    out = {"all": image_use(seen, blank)}
    for kind in sorted({q.kind for q in questions}):
        rows = [i for i, q in enumerate(questions) if q.kind == kind]
        out[kind] = image_use([seen[i] for i in rows], [blank[i] for i in rows])
    return out
