"""The one check for text a person typed (a question, a sentence to tokenize): type, emptiness, length."""

from __future__ import annotations


def check_text(text, *, what: str, limit: int, empty_hint: str, long_hint: str) -> str:
    """``text`` unchanged if it is a non-blank string of at most ``limit`` characters; else a clear error.

    ``what`` names the text in the message ("the question"); the hints say what to do, in Korean too.
    """
    if not isinstance(text, str):
        raise TypeError(f"{what} must be text, got {type(text).__name__}")
    if not text.strip():
        raise ValueError(f"{what} is empty; {empty_hint}")
    if len(text) > limit:
        raise ValueError(f"{what} is {len(text):,} characters; the limit is {limit:,} ({long_hint})")
    return text
