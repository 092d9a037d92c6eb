"""Morpheme cut points from Kiwi, as positions in the ORIGINAL text.

Kiwi's morphemes carry ``start``/``len`` in characters of the input, but contracted morphemes share
or overlap spans (했잖아요 → 하(0,1) 었(0,1) 잖아요(1,3)) and a morpheme's ``form`` need not be a
substring of the text. A position is a safe cut only where everything before it ends at or before
everything after it starts; cutting only there splits text into surface pieces that rebuild it
exactly: '학교에 갔었다고 했잖아요.' → 학교|에 갔었|다고 했|잖아요|.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache


@lru_cache(maxsize=4)
def get_kiwi(num_workers: int = 0):
    """A shared Kiwi analyser (model load takes about a second)."""
    from kiwipiepy import Kiwi

    return Kiwi(num_workers=num_workers)


def safe_cuts(tokens: Sequence, text_length: int) -> list[int]:
    """Cut positions strictly inside ``(0, text_length)`` implied by Kiwi ``tokens`` of one text."""
    cuts: list[int] = []
    max_end = 0
    for prev, nxt in zip(tokens, tokens[1:]):
        max_end = max(max_end, prev.start + prev.len)
        if max_end <= nxt.start and 0 < nxt.start < text_length:
            if not cuts or cuts[-1] != nxt.start:
                cuts.append(nxt.start)
    return cuts


def morpheme_cuts(texts: Iterable[str], num_workers: int = 0) -> list[list[int]]:
    """Safe morpheme cut positions for every text (batched; ``num_workers`` -1 uses all cores)."""
    texts = list(texts)
    kiwi = get_kiwi(num_workers)
    # Kiwi's batch mode needs a thread pool; with num_workers=0 it raises, so analyse one by one
    analysed = kiwi.tokenize(texts) if num_workers != 0 else (kiwi.tokenize(t) for t in texts)
    return [safe_cuts(tokens, len(text)) for text, tokens in zip(texts, analysed)]


def split_at(text: str, cuts: Iterable[int]) -> list[str]:
    """The pieces of ``text`` between the cut positions (they concatenate back to ``text``)."""
    pieces, last = [], 0
    for c in cuts:
        pieces.append(text[last:c])
        last = c
    pieces.append(text[last:])
    return [p for p in pieces if p]


def gold_cuts_of_eojeol(form: str, lemma: str) -> list[int]:
    """Surface cut positions inside one UD eojeol from its gold morpheme split (``lemma``: 'a+b+c').

    Morphemes are matched from the left while the surface starts with them and from the right while it
    ends with them; a contracted middle (멈췄 for 멈추+었) stays one unit with no cut inside, so a
    tokenizer is never credited or blamed for a cut the gold data cannot place.
    """
    morphs = [m for m in lemma.split("+") if m] if lemma not in ("+", "_") else [lemma]
    cuts: set[int] = set()
    left, i = 0, 0
    while i < len(morphs) - 1 and form.startswith(morphs[i], left):
        left += len(morphs[i])
        cuts.add(left)
        i += 1
    right, j = len(form), len(morphs) - 1
    while j > i and form.endswith(morphs[j], 0, right) and right - len(morphs[j]) >= left:
        right -= len(morphs[j])
        cuts.add(right)
        j -= 1
    return sorted(c for c in cuts if 0 < c < len(form))


def gold_cuts_of_sentence(text: str, words: Sequence[dict]) -> list[int]:
    """Gold cut positions in ``text`` from UD rows (form, lemma): word edges and in-word morpheme cuts."""
    cuts: list[int] = []
    pos = 0
    for w in words:
        form = w["form"]
        start = text.find(form, pos)
        if start < 0:  # the treebank's text and forms disagree: skip this word rather than guess
            continue
        if start > 0:
            cuts.append(start)
        cuts.extend(start + c for c in gold_cuts_of_eojeol(form, w["lemma"]))
        pos = start + len(form)
        if pos < len(text):
            cuts.append(pos)
    return sorted(set(c for c in cuts if 0 < c < len(text)))
