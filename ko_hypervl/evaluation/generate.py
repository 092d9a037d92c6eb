"""Greedy answers for many questions at once: left-padded batches, one branch and VRC decision per image.

Every question is asked alone (one user turn: the image, then the question), exactly as ``KoHyperVL.ask``
builds it, so batched answers equal single ``ask`` answers (padding is masked; see tests/test_model.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..inference import KoHyperVL, VRCDecision
from .data import EvalQuestion


def chat_prompt(processor, question: str) -> str:
    """The single-turn prompt for ``question`` about one image, ending where the assistant's answer starts."""
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def decide_all(vlm: KoHyperVL, images: Sequence, mode: str, batch_size: int) -> list[VRCDecision]:
    """The branch, scale and visual tokens of every image in ``mode`` (the VRC runs batch by batch in ``auto``)."""
    decisions: list[VRCDecision] = []
    for start in range(0, len(images), batch_size):
        decisions.extend(vlm.decide(images[start:start + batch_size], mode))
    return decisions


def batches_by_size(questions: list[EvalQuestion], decisions: list[VRCDecision], batch_size: int) -> list[list[int]]:
    """Question indices in batches of similar prompt size (visual tokens, then question length): less padding."""
    order = sorted(range(len(questions)), key=lambda i: (decisions[questions[i].image_index].visual_tokens,
                                                         len(questions[i].question)))
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


@torch.inference_mode()
def answer_batch(vlm: KoHyperVL, images: Sequence, prompts: list[str], decisions: list[VRCDecision],
                 max_new_tokens: int) -> list[str]:
    """Greedy answers to ``prompts``, prompt ``i`` about ``images[i]`` with ``decisions[i]``'s scale."""
    inputs = vlm.processor(images=images, text=prompts, branch=decisions[0].branch,
                           scales=[d.scale for d in decisions], padding_side="left").to(vlm.model.device)
    output = vlm.model.generate(**inputs, do_sample=False, max_new_tokens=max_new_tokens)
    new_tokens = output[:, inputs["input_ids"].shape[-1]:]
    return [text.strip() for text in vlm.processor.batch_decode(new_tokens, skip_special_tokens=True)]


def asked_questions(vlm: KoHyperVL, images: Sequence, questions: list[EvalQuestion], progress: bool = True) -> list[str]:
    """Each question as the model is asked it: with its image's reading where the model has a copy head (each
    image read once, for all the questions about it)."""
    from tqdm.auto import tqdm

    if not vlm.uses_readings:
        return [q.question for q in questions]
    indices = sorted({q.image_index for q in questions})
    read = {i: vlm.read(images[i])[0].text for i in tqdm(indices, desc="reading", unit="img", disable=not progress)}
    return [vlm.question_with_reading(q.question, [images[q.image_index]], read[q.image_index]) for q in questions]


def generate_answers(vlm: KoHyperVL, images: Sequence, questions: list[EvalQuestion], decisions: list[VRCDecision],
                     max_new_tokens: int, batch_size: int, desc: str = "answering", progress: bool = True,
                     asked: list[str] | None = None) -> list[str]:
    """The model's answer to every question, in the order of ``questions`` (asked as ``asked`` gives them, where
    a caller has ``asked_questions`` already, else as that makes them)."""
    from tqdm.auto import tqdm

    answers: list[str | None] = [None] * len(questions)
    batches = batches_by_size(questions, decisions, batch_size)
    asked = asked or asked_questions(vlm, images, questions, progress)
    with tqdm(total=len(questions), desc=desc, unit="q", disable=not progress) as bar:
        for batch in batches:
            picked = [questions[i] for i in batch]
            texts = answer_batch(vlm, [images[q.image_index] for q in picked],
                                 [chat_prompt(vlm.processor, asked[i]) for i in batch],
                                 [decisions[q.image_index] for q in picked], max_new_tokens)
            for i, text in zip(batch, texts):
                answers[i] = text
            bar.update(len(batch))
    return answers
