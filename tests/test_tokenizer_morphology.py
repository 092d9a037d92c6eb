"""Morpheme cut points and boundary metrics: the definitions the tokenizer is judged by."""

import math

from ko_hypervl.tokenization.bytelevel import utf8_char_offsets
from ko_hypervl.tokenization.metrics import BoundaryCount, inner_boundaries
from ko_hypervl.tokenization.morphology import (
    gold_cuts_of_eojeol, gold_cuts_of_sentence, morpheme_cuts, split_at,
)


def test_safe_cuts_rebuild_the_text_exactly():
    # the examples of NOTES §3: contracted morphemes share spans, so only non-overlapping cuts are safe
    text = "학교에 갔었다고 했잖아요."
    (cuts,) = morpheme_cuts([text])
    pieces = split_at(text, cuts)
    assert "".join(pieces) == text
    assert [p.strip() for p in pieces if p.strip()] == ["학교", "에", "갔었", "다고", "했", "잖아요", "."]


def test_safe_cuts_on_contractions():
    # 이건 → 이거(0,2) ᆫ(1,1): the spans overlap, so there is no safe cut inside
    for text, expected in [("해서", ["해서"]), ("먹었다", ["먹", "었", "다"]), ("이건", ["이건"])]:
        (cuts,) = morpheme_cuts([text])
        assert split_at(text, cuts) == expected, text


def test_gold_cuts_from_ud_lemmas():
    assert gold_cuts_of_eojeol("스타벅스가", "스타벅스+가") == [4]
    assert gold_cuts_of_eojeol("멈췄다.", "멈추+었+다+.") == [2, 3]  # 멈췄 is contracted: no cut inside it
    assert gold_cuts_of_eojeol("가까운", "가깝+ㄴ") == []
    words = [{"form": "제일", "lemma": "제일"}, {"form": "가까운", "lemma": "가깝+ㄴ"}, {"form": "스타벅스가", "lemma": "스타벅스+가"}]
    text = "제일 가까운 스타벅스가"
    assert gold_cuts_of_sentence(text, words) == [2, 3, 6, 7, 11]


def test_inner_boundaries_ignore_whitespace_edges():
    text = "가 나다"  # bytes: 가(0-3) ' '(3) 나(4-7) 다(7-10)
    spans = [(0, 3), (3, 7), (7, 10)]  # "가" | " 나" | "다"
    assert inner_boundaries(text, spans) == [7]


def test_boundary_share_counts_mid_character_splits_as_off_cut():
    text = "학교에"
    offsets = utf8_char_offsets(text)
    bc = BoundaryCount()
    bc.add(text, [(0, 6), (6, 9)], [2])  # 학교|에: on the cut
    bc.add(text, [(0, 4), (4, 9)], [2])  # a syllable split in two bytes-wise: off
    assert (bc.on_cut, bc.total) == (1, 2) and offsets[2] == 6
    assert math.isnan(BoundaryCount().share)
