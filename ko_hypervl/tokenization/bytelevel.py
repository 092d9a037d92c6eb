"""Byte-level helpers shared by training, the baselines and the metrics."""

from __future__ import annotations

from functools import lru_cache
from itertools import accumulate


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte → printable character table, which ``tokenizers``' ByteLevel uses."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs = bs[:]
    extra = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + extra)
            extra += 1
    return dict(zip(bs, map(chr, cs)))


@lru_cache(maxsize=1)
def unicode_to_byte() -> dict[str, int]:
    return {c: b for b, c in bytes_to_unicode().items()}


def to_byte_level(text: str) -> str:
    """``text`` as the byte-level string a ByteLevel pre-tokenizer would make of it."""
    table = bytes_to_unicode()
    return "".join(table[b] for b in text.encode("utf-8"))


def utf8_char_offsets(text: str) -> list[int]:
    """``offsets[i]`` is the byte offset of character ``i``; ``offsets[len(text)]`` is the byte length.

    ``surrogatepass`` so a lone surrogate (possible in Python strings) counts its 3 bytes instead of
    raising; real corpus text never has one.
    """
    return [0, *accumulate(len(ch.encode("utf-8", "surrogatepass")) for ch in text)]
