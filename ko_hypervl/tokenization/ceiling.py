"""How high can the morpheme-cut share go at a given vocabulary size? An estimate from the data.

Every token boundary inside a morpheme is off a cut, so a morpheme that is not ONE token in the
vocabulary costs at least one off-cut boundary wherever it occurs. The best case for the share is a
tokenizer that cuts at exactly Kiwi's points (every on-cut boundary kept, no joins, whatever that does
to chars/token) and spends its whole learned vocabulary on the most frequent whole morpheme pieces of
the training text. Its share on held-out text is at most

    on-cut boundaries at Kiwi's cuts / (that + held-out multi-character pieces outside the vocabulary)

Morpheme pieces are the surface pieces between Kiwi's safe cuts (``morphology.safe_cuts``), with
leading whitespace cut off as training does. A real tokenizer does worse: it cannot see Kiwi's cuts at
encode time, a missing piece usually breaks into more than two tokens, and joins (needed for chars/token)
remove on-cut boundaries. So this is a ceiling estimate, not a guarantee for every possible vocabulary.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .bytelevel import utf8_char_offsets
from .metrics import inner_boundaries
from .morphology import split_at


@dataclass
class CutShareCeiling:
    vocab_pieces: int  # whole pieces the vocabulary may hold (0: every piece seen in training)
    share: float  # the ceiling on the morpheme-cut share
    coverage: float  # share of held-out piece occurrences that are one vocabulary entry
    on_cut: int  # inner boundaries at exactly Kiwi's cuts on the held-out text
    off_cut: int  # held-out multi-character pieces outside the vocabulary (>= 1 off-cut boundary each)


def morpheme_pieces(line: str, cuts: Sequence[int]) -> Iterable[str]:
    """The pieces of ``line`` between Kiwi's cuts and whitespace, without the whitespace."""
    for piece in split_at(line, cuts):
        yield from piece.split()


def piece_counts(lines: Sequence[str], cuts: Sequence[Sequence[int]]) -> Counter:
    counts: Counter = Counter()
    for line, line_cuts in zip(lines, cuts):
        counts.update(morpheme_pieces(line, line_cuts))
    return counts


def exact_cut_boundaries(line: str, cuts: Sequence[int]) -> int:
    """Inner boundaries of a tokenization that cuts at exactly ``cuts`` (all of them on a cut)."""
    offsets = utf8_char_offsets(line)
    edges = [0, *cuts, len(line)]
    return len(inner_boundaries(line, [(offsets[a], offsets[b]) for a, b in zip(edges, edges[1:])]))


def cut_share_ceilings(train_pieces: Counter, eval_lines: Sequence[str], eval_cuts: Sequence[Sequence[int]],
                       vocab_pieces: Sequence[int]) -> list[CutShareCeiling]:
    """One ceiling per vocabulary size (0 or anything above the distinct training pieces: all of them)."""
    on_cut = sum(exact_cut_boundaries(line, cuts) for line, cuts in zip(eval_lines, eval_cuts))
    held_out = piece_counts(eval_lines, eval_cuts)
    total = sum(held_out.values())
    ranked = [piece for piece, _ in train_pieces.most_common()]
    out = []
    for k in vocab_pieces:
        vocab = set(ranked[:k] if k else ranked)
        covered = sum(n for piece, n in held_out.items() if piece in vocab or len(piece) == 1)
        off_cut = sum(n for piece, n in held_out.items() if piece not in vocab and len(piece) > 1)
        share = on_cut / (on_cut + off_cut) if on_cut + off_cut else float("nan")
        out.append(CutShareCeiling(k, share, covered / total if total else float("nan"), on_cut, off_cut))
    return out
