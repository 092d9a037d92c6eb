"""The jamo of the vocabulary's one-syllable tokens, as features a linear map can compose embeddings from.

Why: the encoders read Korean in jamo (about 70 letters) and the LM's vocabulary has a token for each Hangul
syllable. A projector can only show the LM a syllable it never saw in an image if that syllable's input
embedding follows from its jamo; in the bundled LM it does not (docs/ablations/copying.md §6).
"""

from __future__ import annotations

import torch

FIRST_SYLLABLE, LAST_SYLLABLE = 0xAC00, 0xD7A3
INITIALS, MEDIALS, FINALS = 19, 21, 28
# initial, medial and final one-hot, a word-start flag (`▁가` vs `가`) and a constant
JAMO_FEATURES = INITIALS + MEDIALS + FINALS + 2


def is_syllable(char: str) -> bool:
    return len(char) == 1 and FIRST_SYLLABLE <= ord(char) <= LAST_SYLLABLE


def jamo_features(syllable: str, word_start: bool = False) -> torch.Tensor:
    """(JAMO_FEATURES,) one-hot initial, medial and final of a Hangul syllable, the word-start flag, 1."""
    if not is_syllable(syllable):
        raise ValueError(f"{syllable!r} is not one Hangul syllable")
    index = ord(syllable) - FIRST_SYLLABLE
    features = torch.zeros(JAMO_FEATURES)
    features[index // (MEDIALS * FINALS)] = 1
    features[INITIALS + index % (MEDIALS * FINALS) // FINALS] = 1
    features[INITIALS + MEDIALS + index % FINALS] = 1
    features[-2] = float(word_start)
    features[-1] = 1
    return features


def syllable_tokens(tokenizer) -> list[tuple[int, str, bool]]:
    """(token id, syllable, word start?) of every token that decodes to one Hangul syllable, with or without
    the space a word-start token decodes with; the first id wins where two decode the same."""
    seen, tokens = set(), []
    texts = tokenizer.batch_decode([[token_id] for token_id in range(len(tokenizer))])
    for token_id, text in enumerate(texts):
        word_start = text.startswith(" ")
        syllable = text[1:] if word_start else text
        if is_syllable(syllable) and (syllable, word_start) not in seen:
            seen.add((syllable, word_start))
            tokens.append((token_id, syllable, word_start))
    return tokens


def syllable_jamo_features(tokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    """(token ids (n,), jamo features (n, JAMO_FEATURES)) of the vocabulary's one-syllable tokens."""
    tokens = syllable_tokens(tokenizer)
    if not tokens:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, JAMO_FEATURES)
    ids = torch.tensor([token_id for token_id, _, _ in tokens])
    return ids, torch.stack([jamo_features(syllable, word_start) for _, syllable, word_start in tokens])
