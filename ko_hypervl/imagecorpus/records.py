"""The one row schema every image-text dataset of the project uses, rendered or read from user files.

A row is one image with several question/answer turns in the chat format the tokenizer's chat template
takes (``messages``: the image part comes first in the first user turn), the task type of every answer
(``tasks``, aligned with the assistant turns), and free-form ``metadata`` (JSON text: the chart spec,
the exam item, the source file and line...) from which every answer can be recomputed.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

TRANSCRIBE = "transcribe"    # the task of a turn whose answer is the image's text, as written

KINDS = ("charts", "exams", "ocr", "tables")
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class QA:
    """One question about an image, its exact answer and its task type (``lookup``, ``max``, ``transcribe``...)."""

    question: str
    answer: str
    task: str


def features():
    """The ``datasets.Features`` of a row (built lazily: importing ``datasets`` is slow)."""
    from datasets import Features, Image as ImageFeature, List, Value

    part = {"type": Value("string"), "text": Value("string")}
    return Features({
        "id": Value("string"),
        "image": ImageFeature(),
        "kind": Value("string"),
        "messages": List({"role": Value("string"), "content": List(part)}),
        "tasks": List(Value("string")),
        "font": Value("string"),
        "style": Value("string"),
        "metadata": Value("string"),
    })


def conversation(qas: list[QA]) -> list[dict]:
    """Chat messages for ``qas``: the image goes once, before the first question."""
    if not qas:
        raise ValueError("a sample needs at least one question")
    messages = []
    for i, qa in enumerate(qas):
        content = [{"type": "image", "text": None}] if i == 0 else []
        content.append({"type": "text", "text": qa.question})
        messages.append({"role": "user", "content": content})
        messages.append({"role": "assistant", "content": [{"type": "text", "text": qa.answer}]})
    return messages


def qa_pairs(messages: list[dict]) -> list[tuple[str, str]]:
    """The (question, answer) text pairs of a conversation, the inverse of ``conversation``."""
    def text(message: dict) -> str:
        return "".join(part["text"] or "" for part in message["content"] if part["type"] == "text")

    pairs = []
    for user, assistant in zip(messages[::2], messages[1::2]):
        if user["role"] != "user" or assistant["role"] != "assistant":
            raise ValueError("messages must alternate user and assistant turns")
        pairs.append((text(user), text(assistant)))
    return pairs


def transcriptions(dataset, single_line: bool = False) -> list[tuple[int, str]]:
    """(row index, transcription) of every row with a ``transcribe`` turn (with ``single_line``, only those of
    one line); images stay undecoded."""
    rows = []
    for index, row in enumerate(dataset.select_columns(["messages", "tasks"])):
        for (_, answer), task in zip(qa_pairs(row["messages"]), row["tasks"]):
            if task == TRANSCRIBE and answer.strip():
                if not single_line or len(answer.strip().splitlines()) == 1:
                    rows.append((index, answer))
                break
    return rows


def encode_image(image: Image.Image, *, jpeg_quality: int | None) -> dict:
    """Image bytes for the ``image`` column: JPEG at ``jpeg_quality``, or lossless PNG when None."""
    buffer = io.BytesIO()
    if jpeg_quality is None:
        image.save(buffer, format="PNG", optimize=False, compress_level=1)
    else:
        image.convert("RGB").save(buffer, format="JPEG", quality=jpeg_quality)
    return {"bytes": buffer.getvalue(), "path": None}


def make_record(*, id: str, image: dict | str, kind: str, qas: list[QA], font: str = "", style: str = "",
                metadata: dict[str, Any] | None = None) -> dict:
    """One row. ``image`` is an ``encode_image`` dict or a path to an image file."""
    return {
        "id": id,
        "image": {"bytes": None, "path": str(image)} if not isinstance(image, dict) else image,
        "kind": kind,
        "messages": conversation(qas),
        "tasks": [qa.task for qa in qas],
        "font": font,
        "style": style,
        "metadata": json.dumps(metadata or {}, ensure_ascii=False, sort_keys=True),
    }


def load_split(dataset_dir, split: str, kinds: list[str] | None = None):
    """One split of a saved dataset (optionally only rows of ``kinds``), with errors that name what is missing."""
    from datasets import load_from_disk

    dataset_dir = Path(dataset_dir)
    if not dataset_dir.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {dataset_dir}")
    dataset = load_from_disk(str(dataset_dir))
    if split not in dataset:
        raise ValueError(f"split {split!r} not in {dataset_dir} (has {', '.join(dataset)})")
    ds = dataset[split]
    if kinds:
        ds = ds.filter(lambda k: k in kinds, input_columns="kind")
    if len(ds) == 0:
        raise ValueError(f"no samples{' of kind ' + ', '.join(kinds) if kinds else ''} in split {split!r} of {dataset_dir}")
    return ds


def rows_spread_over_kinds(kinds: list[str], count: int) -> list[int]:
    """Indices of ``count`` rows taken from each kind in turn (kinds in order of first appearance, each kind's rows
    in the dataset's order); every row when ``count`` is 0 or at least the number of rows.

    Why: a saved corpus is ordered by kind, so its first N rows are all charts; a subset that stands for the
    corpus must take every kind, and take them equally until a kind runs out.
    """
    if count <= 0 or count >= len(kinds):
        return list(range(len(kinds)))
    queues: dict[str, list[int]] = {}
    for index, kind in enumerate(kinds):
        queues.setdefault(kind, []).append(index)
    chosen: list[int] = []
    depth = 0
    while len(chosen) < count:
        for queue in queues.values():
            if depth < len(queue) and len(chosen) < count:
                chosen.append(queue[depth])
        depth += 1
    return sorted(chosen)
