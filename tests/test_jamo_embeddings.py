"""Jamo-composed syllable embeddings: the vocabulary's jamo features, the residual share and the LM stage's loss."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ko_hypervl.tokenization import load_tokenizer
from ko_hypervl.tokenization.jamo import (FINALS, INITIALS, JAMO_FEATURES, MEDIALS, jamo_features,
                                          syllable_jamo_features, syllable_tokens)
from ko_hypervl.training.losses import jamo_residual_share
from ko_hypervl.training.stages import LanguageModelStage, LMSettings


def test_jamo_features_one_hot_initial_medial_final_word_start_and_a_constant():
    features = jamo_features("한", word_start=True)      # ㅎ (initial 18) ㅏ (medial 0) ㄴ (final 4)
    assert features.shape == (JAMO_FEATURES,)
    assert torch.nonzero(features).flatten().tolist() == [18, INITIALS + 0, INITIALS + MEDIALS + 4,
                                                          INITIALS + MEDIALS + FINALS, JAMO_FEATURES - 1]
    assert jamo_features("가")[INITIALS + MEDIALS] == 1 and jamo_features("가")[-2] == 0   # no final, inside a word
    assert jamo_features("힣")[INITIALS - 1] == 1 and jamo_features("힣")[INITIALS + MEDIALS - 1] == 1
    for bad in ("ㄱ", "a", "가나", ""):
        with pytest.raises(ValueError, match="not one Hangul syllable"):
            jamo_features(bad)


def test_the_bundled_vocabulary_has_word_start_and_inside_tokens_for_common_syllables():
    tokenizer = load_tokenizer()
    tokens = syllable_tokens(tokenizer)
    kinds = {(syllable, word_start) for _, syllable, word_start in tokens}
    assert {("가", False), ("가", True), ("학", False), ("다", False)} <= kinds
    assert len(kinds) == len(tokens) > 1000
    for token_id, syllable, word_start in tokens[:50]:
        assert tokenizer.decode([token_id]) == (" " if word_start else "") + syllable
    ids, features = syllable_jamo_features(tokenizer)
    assert ids.tolist() == [token_id for token_id, _, _ in tokens]
    assert features.shape == (len(tokens), JAMO_FEATURES) and (features.sum(1) == 3 + 1 + features[:, -2]).all()


def _syllable_features(count: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    syllables = torch.randint(0xAC00, 0xD7A4, (count,), generator=generator).tolist()
    return torch.stack([jamo_features(chr(s), word_start=i % 2 == 0) for i, s in enumerate(syllables)])


def test_the_residual_share_is_near_zero_for_jamo_sums_and_near_one_for_random_embeddings():
    torch.manual_seed(0)
    features = _syllable_features(1000)
    composed = features @ torch.randn(JAMO_FEATURES, 32)
    assert float(jamo_residual_share(composed, features)) < 0.01
    assert float(jamo_residual_share(composed.bfloat16(), features)) < 0.01    # as under --precision bf16
    random = torch.randn(1000, 32)
    assert float(jamo_residual_share(random, features)) > 0.85      # 70 features explain ~7% of noise
    mixed = composed / composed.std() + random / random.std()
    assert 0.3 < float(jamo_residual_share(mixed, features)) < 0.7
    with pytest.raises(ValueError, match="999 embeddings but 1000 feature rows"):
        jamo_residual_share(random[:999], features)


def test_descending_the_residual_share_makes_embeddings_jamo_sums():
    torch.manual_seed(0)
    features = _syllable_features(600)
    embeddings = torch.randn(600, 16, requires_grad=True)
    optimizer = torch.optim.Adam([embeddings], lr=0.05)
    start = float(jamo_residual_share(embeddings.detach(), features))
    for _ in range(100):
        optimizer.zero_grad()
        jamo_residual_share(embeddings, features).backward()
        optimizer.step()
    assert start > 0.8 and float(jamo_residual_share(embeddings.detach(), features)) < 0.2


def test_the_lm_stage_adds_the_weighted_share_per_target_token(tiny):
    _, model, processor = tiny
    settings = dict(init=Path("a"), block_size=64, max_tokens=64 * 4)
    plain = LanguageModelStage(LMSettings(**settings), processor.tokenizer, model.config, progress=False)
    jamo = LanguageModelStage(LMSettings(**settings, jamo_weight=2.0), processor.tokenizer, model.config,
                              progress=False)
    batch = plain.make_batch([0, 1], step=0)
    model.eval()
    with torch.no_grad():
        base, base_parts = plain.loss(model, batch, torch.device("cpu"))
        total, parts = jamo.loss(model, batch, torch.device("cpu"))
    assert "jamo_residual" not in base_parts and parts["loss"] == pytest.approx(base_parts["loss"])
    share = parts["jamo_residual"] / batch["num_targets"]
    assert 0.5 < share <= 1.0                                  # an untrained model's embeddings are random
    assert float(total - base) == pytest.approx(2.0 * share * batch["num_targets"], rel=1e-4)
    assert jamo.describe()["jamo_weight"] == 2.0


@pytest.mark.parametrize("bad", [dict(jamo_weight=-1.0), dict(jamo_ridge=0.0)])
def test_bad_jamo_settings_are_refused(bad):
    with pytest.raises(ValueError, match="--jamo-weight must be ≥ 0 and --jamo-ridge > 0"):
        LMSettings(init=Path("a"), **bad)
