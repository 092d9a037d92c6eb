"""Evaluate a checkpoint on the held-out image test rows in each mode and write its model card.

``evaluate(EvalSettings(model="ckpt"))`` answers every test question in auto/high/low mode, scores exact
match, OCR CER and exam accuracy, counts visual tokens, times single requests, runs the Tesseract baseline
on the same rows, and writes ``model_card.md``, ``eval.json``, ``predictions.jsonl`` and plots.
``evaluate_language_models(LMEvalSettings(models=[...]))`` compares checkpoints' LMs in bits per character.
"""

from .errors import EvalInputError
from .language import LMEvalSettings, evaluate_language_models, language_model_bits_per_char
from .metrics import chosen_option, exact_match, normalize_answer, transcription_cer
from .run import EvalReport, EvalSettings, evaluate, run_evaluation
from .scoring import score_answers

__all__ = [
    "EvalInputError", "EvalReport", "EvalSettings", "LMEvalSettings", "chosen_option", "evaluate",
    "evaluate_language_models", "exact_match", "language_model_bits_per_char", "normalize_answer", "run_evaluation",
    "score_answers", "transcription_cer",
]
