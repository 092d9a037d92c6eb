"""The fonts the renderers draw with: committed under ``corpora/fonts`` with their licences (SIL OFL 1.1).

``corpora/fonts/fonts.json`` lists every face with its style (``handwriting`` or ``printed``) and the split
it belongs to: faces marked ``test`` are never used for training or validation samples, so the test split
measures reading an unseen hand, not recalling a seen one.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from PIL import ImageFont

from ..textcorpus.layout import ENV_VAR, default_corpora_dir

STYLES = ("handwriting", "printed")


class FontError(RuntimeError):
    """A font the renderers need is missing or unreadable."""


@dataclass(frozen=True)
class FontFace:
    name: str
    path: Path
    family: str
    style: str
    split: str
    license: str


def fonts_dir(corpus_dir: Path | str | None = None) -> Path:
    return (Path(corpus_dir) if corpus_dir is not None else default_corpora_dir()) / "fonts"


@functools.lru_cache(maxsize=8)
def load_font_catalog(directory: Path | str | None = None) -> tuple[FontFace, ...]:
    """Every face of ``fonts.json`` in ``directory`` (default: the repository's ``corpora/fonts``)."""
    root = Path(directory) if directory is not None else fonts_dir()
    index = root / "fonts.json"
    if not index.is_file():
        raise FontError(f"font index not found: {index}. The fonts live in the repository's corpora/fonts; "
                        f"run from a checkout or set {ENV_VAR} to a corpora/ folder that has them.")
    try:
        entries = json.loads(index.read_text(encoding="utf-8"))["fonts"]
        faces = tuple(FontFace(e["name"], root / e["file"], e["family"], e["style"], e["split"], e["license"])
                      for e in entries)
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise FontError(f"font index {index} is malformed: {exc}") from exc
    for face in faces:
        if face.style not in STYLES:
            raise FontError(f"{index}: font {face.name!r} has unknown style {face.style!r}")
        if not face.path.is_file():
            raise FontError(f"font file missing: {face.path} (listed in {index} as {face.name!r})")
    return faces


def faces_for(split: str, style: str, directory: Path | str | None = None) -> list[FontFace]:
    """The faces of ``style`` a sample of ``split`` may use: test faces for test, the others otherwise."""
    want_test = split == "test"
    chosen = [f for f in load_font_catalog(directory) if f.style == style and (f.split == "test") == want_test]
    if not chosen:
        raise FontError(f"no {style} font for split {split!r} in {fonts_dir() if directory is None else directory}")
    return chosen


@functools.lru_cache(maxsize=512)
def truetype(path: Path, size: int) -> ImageFont.FreeTypeFont:
    """A cached PIL font (opening a 4 MB TTF each time would dominate rendering)."""
    try:
        return ImageFont.truetype(str(path), size)
    except OSError as exc:
        raise FontError(f"cannot read font {path}: {exc}") from exc


@functools.lru_cache(maxsize=64)
def face_scale(path: Path) -> float:
    """How much to enlarge a face so its Hangul looks as big as NanumGothic's at the same nominal size.

    Handwriting faces draw narrow, small letters (Nanum Pen's 한글가 is 61% as wide as NanumGothic's);
    scaling by the square root of the width ratio evens out the look without making them overflow."""
    reference_width = 282.0   # NanumGothic, '한글가' at 100 px
    width = truetype(path, 100).getlength("한글가")
    return max(0.85, min(1.4, (reference_width / max(width, 1.0)) ** 0.5))


def scaled(path: Path, size: int) -> ImageFont.FreeTypeFont:
    """The face at ``size`` corrected by ``face_scale``: what every renderer draws text with."""
    return truetype(path, max(6, round(size * face_scale(path))))


@functools.lru_cache(maxsize=64)
def coverage(path: Path) -> frozenset[int]:
    """The code points ``path`` has glyphs for (the BM faces cover only the 2,350 common syllables)."""
    from fontTools.ttLib import TTFont

    with TTFont(str(path), lazy=True) as font:
        return frozenset(font.getBestCmap())


def can_write(face: FontFace, text: str) -> bool:
    """Whether every non-space character of ``text`` has a glyph in ``face`` (no tofu boxes in an answer)."""
    covered = coverage(face.path)
    return all(ord(ch) in covered for ch in text if not ch.isspace())
