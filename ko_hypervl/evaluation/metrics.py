"""Answer scoring: exact match after normalisation, character error rate, and the choice an exam answer names.

The normalisation is the Tesseract baseline's (NFC, whitespace runs collapsed, ends stripped, thousands
commas dropped), so the model and the OCR baseline are held to the same reading of the same answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..imagecorpus.examitems import CIRCLED
# the baseline's own rules, reused so "3,400" == "3400" means the same thing in both reports
from ..imagecorpus.tesseract import _THOUSANDS_COMMA, character_error_rate, normalize_for_cer

# "2번", "2 번", "2)" at the start, or a bare "2": how an answer names a choice without the circled digit
_NUMBERED_CHOICE = re.compile(r"^\s*([1-9])\s*(?:번|\)|\.|$)")


def normalize_answer(text: str) -> str:
    """NFC, whitespace runs collapsed to one space, ends stripped, thousands commas removed."""
    return _THOUSANDS_COMMA.sub("", normalize_for_cer(text))


def exact_match(reference: str, prediction: str) -> bool:
    """Whether ``prediction`` equals ``reference`` once both are ``normalize_answer``-ed."""
    return normalize_answer(reference) == normalize_answer(prediction)


def transcription_cer(reference: str, prediction: str) -> float:
    """Character error rate of a transcription (0 = perfect; see ``tesseract.character_error_rate``)."""
    return character_error_rate(reference, prediction)


def chosen_option(text: str) -> int | None:
    """The 0-based choice an answer picks: its first circled digit (①…⑤), else a leading "2번"/"2)"/"2".

    None when the answer names no choice, which scores as wrong.
    """
    text = normalize_answer(text)
    for char in text:
        if char in CIRCLED:
            return CIRCLED.index(char)
    match = _NUMBERED_CHOICE.match(text)
    return int(match.group(1)) - 1 if match else None


@dataclass
class Tally:
    """Correct answers out of a number of questions."""

    n: int = 0
    correct: int = 0

    def add(self, correct: bool) -> None:
        self.n += 1
        self.correct += bool(correct)

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    def to_dict(self) -> dict:
        return {"n": self.n, "correct": self.correct, "accuracy": round(self.accuracy, 4)}


@dataclass
class CERTally:
    """Transcription error over several answers: character-weighted and per-answer mean."""

    n: int = 0
    reference_chars: int = 0
    weighted_edits: float = 0.0   # sum of CER × reference length = total edits
    cer_sum: float = 0.0

    def add(self, reference: str, prediction: str) -> None:
        rate = transcription_cer(reference, prediction)
        chars = len(normalize_for_cer(reference))
        self.n += 1
        self.reference_chars += chars
        self.weighted_edits += rate * chars
        self.cer_sum += rate

    @property
    def cer(self) -> float:
        """Total edits over total reference characters (long transcriptions weigh more), as Tesseract's report."""
        return self.weighted_edits / self.reference_chars if self.reference_chars else 0.0

    @property
    def row_mean_cer(self) -> float:
        return self.cer_sum / self.n if self.n else 0.0

    def to_dict(self) -> dict:
        return {"n": self.n, "reference_chars": self.reference_chars, "cer": round(self.cer, 4),
                "row_mean_cer": round(self.row_mean_cer, 4)}
