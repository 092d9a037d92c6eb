"""Pure text-cleaning functions shared by the corpus builder and its tests."""

from __future__ import annotations

import hashlib
import re
import unicodedata

# C0/C1 control characters other than tab, and the byte-order mark that some sources start lines with.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff]")
_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_SPACES = re.compile(r"\s+")


def clean_line(line: str) -> str:
    """NFC-normalise, drop control characters and strip the ends; inner spacing is kept as written."""
    return _CONTROL.sub("", unicodedata.normalize("NFC", line)).strip()


def has_hangul(text: str) -> bool:
    return _HANGUL.search(text) is not None


def dedup_key(line: str) -> str:
    """Lines equal up to whitespace count as duplicates."""
    return _SPACES.sub(" ", line).strip()


def count_eojeol(text: str) -> int:
    """Eojeol are the space-separated units of Korean text."""
    return len(text.split())


def stable_fraction(key: str) -> float:
    """A number in [0, 1) fixed by ``key`` alone: the same on every machine and Python version."""
    return int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:8], "big") / 2**64
