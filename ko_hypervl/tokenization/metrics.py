"""Tokenizer metrics, computed in UTF-8 byte offsets so byte-level tokenizers are judged fairly.

"Inner boundary on a morpheme cut" (../NOTES §2): of the token boundaries *inside* an eojeol (no
whitespace on either side), the share that falls on a position where Kiwi also cuts. A boundary in
the middle of a character (byte-level tokenizers splitting a syllable) is never on a cut.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .bytelevel import utf8_char_offsets


def inner_boundaries(text: str, byte_spans: Sequence[tuple[int, int]]) -> list[int]:
    """Byte positions of token boundaries that lie inside an eojeol, each counted once.

    Some tokenizers emit empty-span tokens (Kiwi's glue ``##``) or leave gaps at spaces, so several
    consecutive span edges can name one position: it is still one boundary.
    """
    data = text.encode("utf-8")
    out = set()
    for (_, end), (start, _) in zip(byte_spans, byte_spans[1:]):
        b = min(end, start)
        if 0 < b < len(data) and not data[b - 1 : b].isspace() and not data[b : b + 1].isspace():
            out.add(b)
    return sorted(out)


@dataclass
class BoundaryCount:
    on_cut: int = 0
    total: int = 0

    @property
    def share(self) -> float:
        return self.on_cut / self.total if self.total else float("nan")

    def add(self, text: str, byte_spans: Sequence[tuple[int, int]], char_cuts: Iterable[int]) -> None:
        offsets = utf8_char_offsets(text)
        cuts = {offsets[c] for c in char_cuts}
        inner = inner_boundaries(text, byte_spans)
        self.total += len(inner)
        self.on_cut += sum(1 for b in inner if b in cuts)


def count_eojeol(texts: Iterable[str]) -> int:
    return sum(len(t.split()) for t in texts)
