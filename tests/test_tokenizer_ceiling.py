"""The ceiling of the morpheme-cut share: exact numbers on hand-made cuts."""

import math
from collections import Counter

from ko_hypervl.tokenization.ceiling import cut_share_ceilings, exact_cut_boundaries, piece_counts

# 학교에 갔다: 학교|에 |갔|다 (a cut after the space, as training cuts)
TRAIN = [("학교에 갔다", [2, 4, 5]), ("학교에 갔다", [2, 4, 5]), ("도서관에 왔다", [3, 5, 6])]
EVAL = [("도서관에 갔다", [3, 5, 6])]


def test_pieces_drop_whitespace_and_count_every_occurrence():
    counts = piece_counts(*zip(*TRAIN))
    assert counts == Counter({"학교": 2, "에": 3, "갔": 2, "다": 3, "도서관": 1, "왔": 1})


def test_exact_cuts_count_only_boundaries_inside_words():
    # 도서관|에 and 갔|다 are inside words; the cuts beside the space are not inner boundaries
    assert exact_cut_boundaries("도서관에 갔다", [3, 5, 6]) == 2
    assert exact_cut_boundaries("", []) == 0


def test_a_missing_multi_character_morpheme_costs_one_off_cut_boundary():
    train = piece_counts(*zip(*TRAIN))
    top1, everything = cut_share_ceilings(train, *zip(*EVAL), [1, 0])
    # top-1 vocabulary {에, 다 or 학교…}: 도서관 is missing, single characters are always expressible
    assert (top1.on_cut, top1.off_cut) == (2, 1)
    assert math.isclose(top1.share, 2 / 3) and math.isclose(top1.coverage, 3 / 4)
    assert (everything.off_cut, everything.share, everything.coverage) == (0, 1.0, 1.0)


def test_no_text_gives_nan_not_a_division_error():
    (c,) = cut_share_ceilings(Counter(), [], [], [10])
    assert math.isnan(c.share) and math.isnan(c.coverage)
