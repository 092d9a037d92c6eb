"""The fonts the renderers draw with: committed under ``corpora/fonts`` with their licences (SIL OFL 1.1).

``corpora/fonts/fonts.json`` lists every face with its style (``handwriting`` or ``printed``) and the split
it belongs to: faces marked ``test`` are never used for training or validation samples, so the test split
measures reading an unseen hand, not recalling a seen one.

The faces are committed xz-compressed (``NanumPen.ttf.xz``): 40 MB of TTF packs into 9 MB, which keeps a
checkout small enough to travel (the GPU machine takes at most 64 MiB). ``load_font_catalog`` unpacks each
one once into ``~/.cache/ko_hypervl/fonts`` and checks it against the sha256 in ``fonts.json``, so every
renderer, matplotlib and fontTools still get a plain TTF path and draw byte-identical images.
"""

from __future__ import annotations

import functools
import hashlib
import json
import lzma
import os
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import ImageFont

from ..textcorpus.layout import ENV_VAR, default_corpora_dir

STYLES = ("handwriting", "printed")
PACKED_SUFFIX = ".xz"


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


def font_cache_dir() -> Path:
    """Where packed faces are unpacked (``$KO_HYPERVL_FONT_CACHE`` if set)."""
    env = os.environ.get("KO_HYPERVL_FONT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "ko_hypervl" / "fonts"


def unpacked_font(packed: Path, sha256: str, cache_dir: Path | None = None) -> Path:
    """The TTF inside the xz file ``packed``, unpacked once into the cache and checked against ``sha256``.

    The cache entry is named by the hash, so a changed face never reuses a stale file, and it is written to a
    temporary name and renamed, so a process killed mid-write (or two unpacking at once) leaves no half font."""
    if not sha256:
        raise FontError(f"{packed} is packed but fonts.json gives no sha256 to check it against")
    target = (cache_dir or font_cache_dir()) / sha256[:16] / packed.name.removesuffix(PACKED_SUFFIX)
    if target.is_file():
        return target
    try:
        data = lzma.decompress(packed.read_bytes())
    except (OSError, lzma.LZMAError) as exc:
        raise FontError(f"cannot unpack font {packed}: {exc}") from exc
    if hashlib.sha256(data).hexdigest() != sha256:
        raise FontError(f"font {packed} unpacks to bytes whose sha256 is not the {sha256} of fonts.json")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
        partial.write_bytes(data)
        os.replace(partial, target)
    except OSError as exc:
        raise FontError(f"cannot unpack font {packed} into {target.parent}: {exc}; "
                        f"set KO_HYPERVL_FONT_CACHE to a writable folder") from exc
    return target


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
    return tuple(replace(face, path=unpacked_font(face.path, entry.get("sha256", "")))
                 if face.path.name.endswith(PACKED_SUFFIX) else face for face, entry in zip(faces, entries))


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
