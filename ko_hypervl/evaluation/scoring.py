"""Scores of one mode's answers: exact match per task and kind, CER of transcriptions, exam accuracy by source,
and the visual tokens the mode spent. Pure functions of questions, answers and VRC decisions."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from ..imagecorpus.records import TRANSCRIBE
from ..inference import VRCDecision
from .data import EvalQuestion
from .exams import source_groups
from .metrics import CERTally, Tally, chosen_option, exact_match

EXAM_ANSWER = "exam_answer"
ALL = "all"


@dataclass
class ExamTally(Tally):
    """Exam items answered with the right choice, what guessing uniformly would score, and which choice the
    answers name most often: a model that names the same choice for every item scores the share of items whose
    answer that choice is, above or below chance as the draw of items falls, and knows nothing."""

    chance_sum: float = 0.0
    picked: Counter = field(default_factory=Counter)     # 0-based choice named → items (None: no choice named)

    def add_item(self, correct: bool, n_choices: int, picked: int | None = None) -> None:
        self.add(correct)
        self.chance_sum += 1 / n_choices
        self.picked[picked] += 1

    @property
    def chance(self) -> float:
        return self.chance_sum / self.n if self.n else 0.0

    def to_dict(self) -> dict:
        named = [(count, choice) for choice, count in self.picked.items() if choice is not None]
        count, choice = max(named, key=lambda pair: (pair[0], -pair[1])) if named else (0, None)
        return {**super().to_dict(), "chance": round(self.chance, 4),
                "most_named_choice": None if choice is None else choice + 1,
                "most_named_share": round(count / self.n, 4) if self.n else 0.0}


@dataclass
class ModeScores:
    exact_match: Tally = field(default_factory=Tally)
    by_task: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    by_kind: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    transcription: CERTally = field(default_factory=CERTally)
    exam: dict[str, ExamTally] = field(default_factory=lambda: defaultdict(ExamTally))

    def to_dict(self) -> dict:
        return {
            "exact_match": self.exact_match.to_dict(),
            "exact_match_by_task": {k: v.to_dict() for k, v in sorted(self.by_task.items())},
            "exact_match_by_kind": {k: v.to_dict() for k, v in sorted(self.by_kind.items())},
            "transcription_cer": self.transcription.to_dict() if self.transcription.n else None,
            "exam_accuracy_by_source": {k: v.to_dict() for k, v in sorted(self.exam.items(), key=_all_first)},
        }


def _all_first(item: tuple[str, object]) -> tuple[bool, str]:
    return item[0] != ALL, item[0]


def score_answers(questions: list[EvalQuestion], predictions: list[str]) -> ModeScores:
    """Exact match of every answer; CER of ``transcribe`` answers; the picked choice of ``exam_answer`` items.

    Exam accuracy counts an item right when the answer names its correct choice (①, "2번" …): "② 12" and
    "②" both pick choice 2, which exact match against "② 12" would not credit.
    """
    if len(questions) != len(predictions):
        raise ValueError(f"{len(questions)} questions but {len(predictions)} predictions")
    scores = ModeScores()
    for question, prediction in zip(questions, predictions):
        hit = exact_match(question.answer, prediction)
        scores.exact_match.add(hit)
        scores.by_task[question.task].add(hit)
        scores.by_kind[question.kind].add(hit)
        if question.task == TRANSCRIBE:
            scores.transcription.add(question.answer, prediction)
        item = question.exam_item
        if question.task == EXAM_ANSWER and item is not None:
            picked = chosen_option(prediction)
            for group in (ALL, *dict.fromkeys(source_groups(item.source))):
                scores.exam[group].add_item(picked == item.answer, item.n_choices, picked)
    return scores


@dataclass(frozen=True)
class VisualTokenSummary:
    images: int
    mean_visual_tokens: float
    mean_full_visual_tokens: float   # the same branch at scale 1.0
    mean_scale: float

    @property
    def saved_share(self) -> float:
        """Share of the full-resolution visual tokens the mode did not spend."""
        return 1 - self.mean_visual_tokens / self.mean_full_visual_tokens if self.mean_full_visual_tokens else 0.0

    def to_dict(self) -> dict:
        return {"images": self.images, "mean_visual_tokens": round(self.mean_visual_tokens, 2),
                "mean_full_visual_tokens": round(self.mean_full_visual_tokens, 2),
                "saved_share": round(self.saved_share, 4), "mean_scale": round(self.mean_scale, 4)}


def summarize_visual_tokens(decisions: list[VRCDecision]) -> VisualTokenSummary:
    """Mean visual tokens per image in a mode, beside what the same branch costs at full resolution."""
    n = len(decisions)
    if not n:
        return VisualTokenSummary(0, 0.0, 0.0, 0.0)
    return VisualTokenSummary(n, sum(d.visual_tokens for d in decisions) / n,
                              sum(d.full_visual_tokens for d in decisions) / n, sum(d.scale for d in decisions) / n)
