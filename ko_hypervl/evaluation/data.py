"""The evaluation rows: the test split of a saved image corpus, or the same held-out samples rendered on the fly.

A rendered sample's split is a pure function of (seed, kind, index) (see ``imagecorpus.build``), so the
first ``num`` test-split indices of a kind are exactly the first ``num`` test rows of a default
``ko-hypervl corpora build`` with that seed: the held-out fonts, words and styles, never a training row.
The validation split works the same way, for choosing settings without looking at the test rows.
Every question of a row becomes its own single-turn question about the row's image.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..imagecorpus.build import ImageCorpusSettings, render_sample, split_of_sample
from ..imagecorpus.records import KINDS, features, qa_pairs
from .errors import EvalInputError
from .exams import ExamItemRef, exam_item_for, row_metadata

log = logging.getLogger(__name__)
TEST_SPLIT = "test"
EVAL_SPLITS = ("validation", TEST_SPLIT)   # never train: those rows are what the model learned from
# the corpus builder's own defaults, so rendered rows are the test rows of a default build
_CORPUS_DEFAULTS = {f.name: f.default for f in dataclasses.fields(ImageCorpusSettings)}


@dataclass(frozen=True)
class EvalQuestion:
    """One question about one image, with its exact answer."""

    image_index: int          # into ``EvalData.images``
    row_id: str
    kind: str
    task: str
    question: str
    answer: str
    exam_item: ExamItemRef | None = None


class LazyImages(Sequence):
    """The rows' images, decoded (and passed through ``prepare``) only when asked for.

    Decoded exam pages take megabytes each; holding a few hundred of them would exhaust memory, while
    decoding one again costs milliseconds next to answering a question about it.
    """

    def __init__(self, dataset, prepare: Callable = lambda image: image):
        self._column = dataset.select_columns(["image"])
        self._prepare = prepare

    def __len__(self) -> int:
        return len(self._column)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(f"image {index} of {len(self)}")
        return self._prepare(self._column[index % len(self)]["image"])


@dataclass
class EvalData:
    dataset: Any              # the selected rows as a ``datasets.Dataset`` (the Tesseract baseline reads it)
    images: LazyImages        # one image per row
    questions: list[EvalQuestion]
    origin: str               # where the rows came from, for the report

    def rows_per_kind(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for kind in self.dataset["kind"]:
            counts[kind] = counts.get(kind, 0) + 1
        return counts


def check_eval_split(split: str) -> None:
    if split not in EVAL_SPLITS:
        raise EvalInputError(f"--split must be one of {', '.join(EVAL_SPLITS)}, got {split!r}")


def held_out_indices(kind: str, num: int, seed: int, split: str = TEST_SPLIT) -> list[int]:
    """The first ``num`` sample indices of ``kind`` that a default build with ``seed`` puts in ``split``."""
    validation, test = _CORPUS_DEFAULTS["validation_fraction"], _CORPUS_DEFAULTS["test_fraction"]
    indices, i = [], 0
    while len(indices) < num:
        if split_of_sample(seed, kind, i, validation, test) == split:
            indices.append(i)
        i += 1
    return indices


def render_held_out_rows(kinds: list[str], num: int, seed: int, progress: bool = True,
                         split: str = TEST_SPLIT) -> list[dict]:
    """The first ``num`` rows of ``split`` of each kind, rendered now (same questions as a default build)."""
    from tqdm.auto import tqdm

    jobs = [(kind, i) for kind in kinds for i in held_out_indices(kind, num, seed, split)]
    n_questions = _CORPUS_DEFAULTS["questions"]
    return [render_sample(kind, i, seed, split, n_questions)
            for kind, i in tqdm(jobs, desc=f"rendering {split} rows", unit="img", disable=not progress)]


def first_rows_per_kind(kinds: list[str], num: int) -> list[int]:
    """Indices of the first ``num`` rows of every kind, in the dataset's order."""
    seen: dict[str, int] = {}
    chosen = []
    for index, kind in enumerate(kinds):
        if seen.get(kind, 0) < num:
            seen[kind] = seen.get(kind, 0) + 1
            chosen.append(index)
    return chosen


def questions_of(dataset) -> list[EvalQuestion]:
    """Every (question, answer, task) of every row; exam questions carry the item they name."""
    questions = []
    columns = dataset.select_columns(["id", "kind", "messages", "tasks", "metadata"])
    for image_index, row in enumerate(columns):
        pairs = qa_pairs(row["messages"])
        if len(pairs) != len(row["tasks"]):
            raise EvalInputError(f"row {row['id']}: {len(pairs)} answers but {len(row['tasks'])} task labels")
        metadata = row_metadata(row["metadata"]) if row["kind"] == "exams" else {}
        for (question, answer), task in zip(pairs, row["tasks"]):
            questions.append(EvalQuestion(image_index, row["id"], row["kind"], task, question, answer,
                                          exam_item_for(question, metadata) if metadata else None))
    return questions


def _select_saved(data_dir: Path, kinds: list[str] | None, num: int, split: str):
    from ..imagecorpus.records import load_split

    try:
        dataset = load_split(data_dir, split, kinds)
    except (FileNotFoundError, ValueError) as exc:
        raise EvalInputError(str(exc)) from None
    return dataset.select(first_rows_per_kind(dataset["kind"], num))


def load_eval_data(data_dir: Path | None, kinds: list[str] | None, num: int, seed: int,
                   progress: bool = True, split: str = TEST_SPLIT) -> EvalData:
    """The rows to evaluate: ``split`` of ``data_dir`` or, without one, that split's rows rendered now."""
    from datasets import Dataset

    if num <= 0:
        raise EvalInputError(f"--num must be at least 1, got {num}")
    check_eval_split(split)
    if data_dir is not None:
        dataset = _select_saved(Path(data_dir), kinds, num, split)
        origin = f"{split} split of {data_dir} (first {num} rows per kind)"
    else:
        unknown = sorted(set(kinds or ()) - set(KINDS))
        if unknown:
            raise EvalInputError(f"unknown kind(s) {', '.join(unknown)}; rendered rows are one of {', '.join(KINDS)}")
        chosen = list(dict.fromkeys(kinds or KINDS))   # a kind named twice is rendered once
        dataset = Dataset.from_list(render_held_out_rows(chosen, num, seed, progress, split), features=features())
        origin = f"rendered held-out {split} rows (seed {seed}, first {num} per kind)"
    questions = questions_of(dataset)
    if not questions:
        raise EvalInputError(f"no questions to evaluate in the {origin}")
    images = LazyImages(dataset)
    log.info("%d images, %d questions from the %s", len(images), len(questions), origin)
    return EvalData(dataset, images, questions, origin)
