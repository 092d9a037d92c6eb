"""The demo's example gallery: handwritten charts, tables and exam pages with their questions.

The images are rendered by the corpus generators (``imagecorpus.build.render_sample``) in the *test*
split (fonts, words and paper styles held out from training) with a seed no training recipe uses, so no
example was ever seen in training. They are committed (``assets/examples``), small JPEGs, so the demo
starts without rendering anything; ``render_examples`` (``python demo/make_examples.py``) remakes them.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "assets" / "examples"
INDEX = "examples.json"
GALLERY_SEED = 2026_11_21      # training recipes use small seeds (0 by default); this one is for the gallery only
SPLIT = "test"
# what the gallery shows, in order: (kind, how many, keep only handwritten ones)
PLAN = (("charts", 4, True), ("exams", 3, False), ("tables", 1, True))
MAX_SIDE = 1400                # keeps each file small; the processor resizes to its own tile grid anyway


@dataclass(frozen=True)
class Example:
    file: str
    kind: str
    question: str
    answer: str
    task: str
    source_id: str

    def path(self, directory: Path = EXAMPLES_DIR) -> Path:
        return directory / self.file


def _handwritten(record: dict) -> bool:
    return record["style"].startswith("handwritten") or record["kind"] == "exams"


def _shrink(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return image


def render_examples(out: Path = EXAMPLES_DIR, seed: int = GALLERY_SEED) -> list[Example]:
    """Render the gallery into ``out`` (images + ``examples.json``) and return its entries."""
    from ..imagecorpus.build import render_sample
    from ..imagecorpus.records import qa_pairs

    out.mkdir(parents=True, exist_ok=True)
    examples: list[Example] = []
    for kind, count, hand_only in PLAN:
        index, found = 0, 0
        while found < count:
            record = render_sample(kind, index, seed, SPLIT, n_questions=4)
            index += 1
            if hand_only and not _handwritten(record):
                continue
            (question, answer), task = qa_pairs(record["messages"])[0], record["tasks"][0]
            name = f"{kind}-{found + 1}.jpg"
            _shrink(record["image"]["bytes"]).save(out / name, format="JPEG", quality=85, optimize=True)
            examples.append(Example(name, kind, question, answer, task, record["id"]))
            found += 1
    index = {"seed": seed, "split": SPLIT, "note": "rendered by `python demo/make_examples.py`; never used in "
             "training (test split, gallery-only seed)", "examples": [asdict(e) for e in examples]}
    (out / INDEX).write_text(json.dumps(index, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return examples


def load_examples(directory: Path = EXAMPLES_DIR) -> list[Example]:
    """The committed gallery; an empty list (the demo still runs) if it was not shipped."""
    index = directory / INDEX
    if not index.is_file():
        return []
    entries = json.loads(index.read_text(encoding="utf-8"))["examples"]
    return [Example(**e) for e in entries if (directory / e["file"]).is_file()]
