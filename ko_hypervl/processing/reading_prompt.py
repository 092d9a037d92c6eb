"""The reading head's reading of an image, put into the question as text for a copy head to copy from.

The reading goes last in the user turn, so the token after its last one is the turn's ``<|end|>``: a copy
that runs to the end of the reading ends the answer as well.
"""

from __future__ import annotations

READING_HEADER = "\n읽은 글:\n"


def with_reading(question: str, reading: str) -> str:
    """``question`` followed by what the reading head read in its image(s) (empty when it read nothing)."""
    return f"{question}{READING_HEADER}{reading.strip()}"
