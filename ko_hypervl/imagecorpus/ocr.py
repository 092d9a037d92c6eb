"""OCR samples: lines and short paragraphs of the project's Korean text corpus, printed or handwritten.

The text of a sample comes from the text corpus split of the same name, so no sentence of a test
image was ever in a training image.
"""

from __future__ import annotations

import functools
import random

from PIL import Image, ImageDraw

from . import draw as d
from .fonts import can_write
from .look import Look
from .paper import make_paper
from .records import QA

MIN_CHARS, MAX_CHARS = 6, 70


@functools.lru_cache(maxsize=3)
def corpus_lines(split: str) -> tuple[tuple[str, ...], ...]:
    """Documents of the text corpus split as tuples of usable lines (6-70 characters, not blank)."""
    from ..textcorpus import load_text_corpus

    documents = []
    for text in load_text_corpus()[split]["text"]:
        lines = tuple(line.strip() for line in text.split("\n") if MIN_CHARS <= len(line.strip()) <= MAX_CHARS)
        if lines:
            documents.append(lines)
    if not documents:
        raise ValueError(f"the text corpus split {split!r} has no lines to render")
    return tuple(documents)


def pick_text(rng: random.Random, split: str, look: Look, max_lines: int) -> list[str]:
    """One line, or up to ``max_lines`` consecutive lines of one document, all writable in the look's face."""
    documents = corpus_lines(split)
    for _ in range(50):
        doc = rng.choice(documents)
        n = min(len(doc), rng.randint(1, max_lines))
        start = rng.randint(0, len(doc) - n)
        chosen = list(doc[start:start + n])
        if all(can_write(look.font, line) for line in chosen):
            return chosen
    raise ValueError(f"no text writable in font {look.font.name} after 50 tries")


def render_ocr(sentences: list[str], look: Look, rng: random.Random) -> tuple[Image.Image, list[str]]:
    """Draw ``sentences`` as a paragraph; returns the image and the lines exactly as they were broken."""
    width = rng.randint(560, 900)
    size = rng.randint(24, 34) if look.hand else rng.randint(20, 28)
    margin = rng.randint(30, 60)
    lines = [wrapped for sentence in sentences for wrapped in d.wrap(sentence, look.font.path, size, width - 2 * margin)]
    leading = size * rng.uniform(1.5, 1.9)
    height = int(2 * margin + leading * len(lines))
    image = make_paper(look.paper, width, max(height, 90), rng)
    draw = ImageDraw.Draw(image)
    ink = look.ink if look.hand or rng.random() < 0.7 else look.palette[0]
    y = margin + leading / 2
    for line in lines:
        d.text(draw, (margin, y), line, size, look, rng, color=ink, anchor="lm")
        y += leading
    return image, lines


def ocr_questions(lines: list[str], rng: random.Random) -> list[QA]:
    transcript = "\n".join(lines)
    qas = [QA(rng.choice(("이미지에 적힌 글을 그대로 옮겨 적어 주세요.", "사진 속 글씨를 읽어 주세요.",
                          "이 글을 텍스트로 옮겨 주세요.", "무엇이라고 쓰여 있나요? 그대로 적어 주세요.")),
              transcript, "transcribe")]
    if len(lines) > 1:
        qas.append(QA("글은 모두 몇 줄인가요?", f"{len(lines)}줄", "count_lines"))
        i = rng.randrange(len(lines))
        qas.append(QA(f"{i + 1}번째 줄에는 무엇이라고 쓰여 있나요?", lines[i], "read_line"))
    return qas
