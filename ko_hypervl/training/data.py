"""Training data as tensors: packed text blocks for the LM, and image conversations whose labels are
the assistant's answers only (the question, the image tokens and the chat markup are never targets)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from ..imagecorpus.records import QA, conversation, qa_pairs
from ..processing.reading_prompt import with_reading
from ..tokenization import specials

log = logging.getLogger(__name__)
IGNORE = -100


def document_token_ids(tokenizer, texts, max_tokens: int | None = None, progress: bool = True) -> list[int]:
    """The token stream the LM stage trains on: each non-blank document's ids (no BOS), then EOS, in order.

    With ``max_tokens`` encoding stops once that many ids exist (the stream may run a little past it).
    """
    from tqdm.auto import tqdm

    ids: list[int] = []
    batch: list[str] = []

    def flush():
        for encoded in tokenizer(batch, add_special_tokens=False)["input_ids"]:
            ids.extend(encoded)
            ids.append(tokenizer.eos_token_id)
        batch.clear()

    for text in tqdm(list(texts), desc="tokenizing", unit="doc", disable=not progress):
        if is_document(text):
            batch.append(text)
        if len(batch) == 256:
            flush()
            if max_tokens and len(ids) >= max_tokens:
                break
    if batch:
        flush()
    return ids


def is_document(text) -> bool:
    """Whether the LM stream includes ``text`` (blank documents are skipped)."""
    return bool(text and text.strip())


def pack_text_blocks(tokenizer, texts, block_size: int, max_tokens: int | None = None,
                     progress: bool = True) -> torch.Tensor:
    """Documents joined by EOS and cut into ``(blocks, block_size)`` token ids (the last partial block dropped)."""
    if block_size < 2:
        raise ValueError(f"the block size must be at least 2 tokens, got {block_size}")
    ids = document_token_ids(tokenizer, texts, max_tokens, progress)
    if max_tokens:
        ids = ids[:max_tokens]
    blocks = len(ids) // block_size
    if blocks == 0:
        raise ValueError(f"the text gives {len(ids)} tokens, fewer than one block of {block_size}; "
                         "add text or lower --block-size")
    return torch.tensor(ids[:blocks * block_size], dtype=torch.long).view(blocks, block_size)


def repeat_opening(block: torch.Tensor, span: int) -> torch.Tensor:
    """``block`` with its first ``span`` tokens written twice in a row, the rest of the text after them.

    Same length as ``block``: the copy pushes the block's last ``span`` tokens out. The second copy is
    predictable only by looking back, so training on such blocks teaches the LM to copy from its context.
    """
    if not 0 < span <= block.shape[-1] // 2:
        raise ValueError(f"the repeated span must be 1 to half the block ({block.shape[-1] // 2}) tokens, got {span}")
    opening = block[..., :span]
    return torch.cat([opening, opening, block[..., span:block.shape[-1] - span]], dim=-1)


def chat_segments(processor, messages: list[dict]) -> list[tuple[str, bool]]:
    """The chat-template text of a conversation as ``(text, is_answer)`` pieces, in order.

    Each answer piece is the assistant's text alone; the end-of-turn token after it is a target too
    (it is how the model learns to stop) and is added by the encoder. The pieces concatenate, with
    ``<|end|>`` after every answer, to exactly ``apply_chat_template(messages)``.
    """
    render = processor.apply_chat_template
    pieces: list[tuple[str, bool]] = []
    done = ""
    for turn in range(0, len(messages), 2):
        prompt = render(messages[:turn + 1], add_generation_prompt=True, tokenize=False)
        full = render(messages[:turn + 2], tokenize=False)
        answer = full[len(prompt):]
        tail = specials.END + "\n"
        if not prompt.startswith(done) or not answer.endswith(tail):
            raise ValueError("the chat template does not render turns as '<|assistant|>\\n' + answer + '<|end|>\\n'")
        pieces.append((prompt[len(done):], False))
        pieces.append((answer[:-len(tail)], True))
        pieces.append(("\n", False))
        done = full
    return pieces


@dataclass
class EncodedSample:
    input_ids: list[int]
    labels: list[int]
    pixel_values: torch.Tensor | None
    image_grid: torch.Tensor | None
    visual_tokens: int


class ConversationEncoder:
    """One image conversation → ids, answer-only labels and tiles, for a branch and a VRC scale."""

    def __init__(self, processor, max_length: int):
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.max_length = max_length
        self.end_id = self.tokenizer.convert_tokens_to_ids(specials.END)

    def encode(self, image, messages: list[dict], branch: str, scale: float, sample_id: str = "?") -> EncodedSample:
        return self.encode_variants(image, messages, [(branch, scale)], sample_id)[0]

    def encode_variants(self, image, messages: list[dict], variants: list[tuple[str, float]],
                        sample_id: str = "?") -> list[EncodedSample]:
        """One sample per (branch, scale): the text is templated and tokenized once, only the image part is redone."""
        segments = chat_segments(self.processor, messages)
        if specials.IMAGE not in segments[0][0]:
            raise ValueError(f"sample {sample_id}: the conversation has no image in its first user turn")
        rest = []
        for text, is_answer in segments[1:]:
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            rest.append((ids + [self.end_id] if is_answer else ids, is_answer))
        return [self._assemble(image, segments[0][0], rest, branch, scale, sample_id) for branch, scale in variants]

    def _assemble(self, image, first: str, rest: list[tuple[list[int], bool]], branch: str, scale: float,
                  sample_id: str) -> EncodedSample:
        batch = self.processor(images=[image], text=first, branch=branch, scales=[scale], padding=False)
        visual = sum(plan.visual_tokens for plan in batch.tile_plans)
        input_ids: list[int] = []
        labels: list[int] = []
        for ids, is_answer in [(batch["input_ids"][0].tolist(), False), *rest]:
            if len(input_ids) + len(ids) > self.max_length:
                if any(label != IGNORE for label in labels):
                    # later turns do not fit: train on the ones that do (cut at a turn, never mid-answer)
                    while labels and labels[-1] == IGNORE:
                        input_ids.pop(), labels.pop()
                    break
                raise ValueError(f"sample {sample_id}: its first question and answer need more than "
                                 f"{self.max_length} tokens ({visual} visual); raise --max-length or lower the "
                                 "tiles per image (model init --max-tiles)")
            input_ids += ids
            labels += ids if is_answer else [IGNORE] * len(ids)
        return EncodedSample(input_ids, labels, batch["pixel_values"], batch["image_grid"], visual)


def collate(samples: list[EncodedSample], pad_id: int) -> dict:
    """Right-padded training batch (positions then count real tokens from the left, as at inference)."""
    length = max(len(s.input_ids) for s in samples)
    input_ids = torch.full((len(samples), length), pad_id, dtype=torch.long)
    labels = torch.full((len(samples), length), IGNORE, dtype=torch.long)
    attention_mask = torch.zeros((len(samples), length), dtype=torch.long)
    for row, sample in enumerate(samples):
        n = len(sample.input_ids)
        input_ids[row, :n] = torch.tensor(sample.input_ids)
        labels[row, :n] = torch.tensor(sample.labels)
        attention_mask[row, :n] = 1
    return {
        "input_ids": input_ids, "attention_mask": attention_mask, "labels": labels,
        "pixel_values": torch.cat([s.pixel_values for s in samples]),
        "image_grid": torch.cat([s.image_grid for s in samples]),
    }


READING_COLUMN = "reading"     # in a corpus read by `ko-hypervl corpora read`: each image's reading


def asked_messages(row: dict, messages: list[dict]) -> list[dict]:
    """``messages`` about ``row``'s image as the model is asked them: with the image's reading in the first question
    where the corpus has one (``READING_COLUMN``), as ``KoHyperVL.ask`` adds it for a model with a copy head."""
    reading = row.get(READING_COLUMN)
    return messages if reading is None else with_reading_in_question(messages, reading)


def with_reading_in_question(messages: list[dict], reading: str) -> list[dict]:
    """``messages`` with the image's reading added to the first question (``processing.reading_prompt``)."""
    first = messages[0]
    parts = list(first["content"])
    last_text = max(i for i, part in enumerate(parts) if part["type"] == "text")
    parts[last_text] = {**parts[last_text], "text": with_reading(parts[last_text]["text"], reading)}
    return [{**first, "content": parts}, *messages[1:]]


def select_turns(messages: list[dict], tasks: list[str], keep: set[str] | None) -> list[dict]:
    """The conversation with only the turns whose task is in ``keep`` (empty when none is)."""
    if not keep:
        return messages
    kept = [QA(question, answer, task) for (question, answer), task in zip(qa_pairs(messages), tasks) if task in keep]
    return conversation(kept) if kept else []
