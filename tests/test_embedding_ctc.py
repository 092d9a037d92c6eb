"""The embedding CTC: reading a one-line answer's tokens off the visual tokens, in the LM's embedding space."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ko_hypervl.training.losses import embedding_ctc_sum, tile_token_sequences
from ko_hypervl.training.stages import AlignSettings, SFTSettings, VisionLanguageStage

MESSAGES = [
    {"role": "user", "content": [{"type": "image", "text": None}, {"type": "text", "text": "가장 큰 값은?"}]},
    {"role": "assistant", "content": [{"type": "text", "text": "42명"}]},
    {"role": "user", "content": [{"type": "text", "text": "제목은 무엇인가요?"}]},
    {"role": "assistant", "content": [{"type": "text", "text": "학년별 학생 수"}]},
]


def test_tile_token_sequences_split_images_and_leave_out_thumbnails():
    per_crop, hidden = 4, 3
    grid = torch.tensor([[1, 1], [2, 3], [1, 2]])            # 1 tile; 6 tiles + thumbnail; 2 tiles + thumbnail
    crops = [1, 7, 3]
    crop_of = torch.cat([torch.full((c * per_crop,), float(i)) for i, c in enumerate(crops)])
    position = torch.cat([torch.arange(c * per_crop, dtype=torch.float) for c in crops])
    features = torch.stack([crop_of, position, torch.zeros_like(position)], dim=-1)
    sequences = tile_token_sequences(features, grid)
    assert [s.shape for s in sequences] == [(4, hidden), (24, hidden), (8, hidden)]
    for image, sequence in enumerate(sequences):
        assert (sequence[:, 0] == image).all()                # each image's own tokens…
        assert sequence[:, 1].tolist() == list(range(len(sequence)))   # …in order, the thumbnail's left out
    with pytest.raises(ValueError, match="cannot be split"):
        tile_token_sequences(features[:-1], grid)


def _one_hot_embeddings(vocab: int, hidden: int) -> torch.Tensor:
    return torch.eye(vocab, hidden)


def test_embedding_ctc_is_low_when_the_tokens_show_the_text_in_order_and_high_otherwise():
    embeddings = _one_hot_embeddings(10, 16)
    blank = torch.zeros(16)
    blank[15] = 1.0                                          # a direction no token has
    target = [3, 7, 7, 2]
    read = torch.stack([blank, embeddings[3], blank, embeddings[7], blank, embeddings[7], embeddings[2], blank])
    shuffled = torch.stack([blank, embeddings[7], blank, embeddings[3], blank, embeddings[2], embeddings[7], blank])
    good = embedding_ctc_sum([read], [target], embeddings)
    bad = embedding_ctc_sum([shuffled], [target], embeddings)
    assert good < 0.05 * len(target) < bad
    # the norm of a visual token does not matter, only its direction
    assert torch.isclose(embedding_ctc_sum([read * 7.5], [target], embeddings), good)
    # the embeddings get no gradient; the visual tokens do
    embeddings.requires_grad_(True)
    tokens = shuffled.clone().requires_grad_(True)
    embedding_ctc_sum([tokens], [target], embeddings).backward()
    assert embeddings.grad is None and tokens.grad.abs().sum() > 0


def test_embedding_ctc_skips_rows_without_a_target_and_targets_that_cannot_fit():
    embeddings = _one_hot_embeddings(10, 16)
    tokens = torch.randn(5, 16, requires_grad=True)
    none = embedding_ctc_sum([tokens], [[]], embeddings)
    assert none.item() == 0.0 and none.requires_grad
    too_long = embedding_ctc_sum([tokens[:2]], [[1, 2, 3, 4]], embeddings)
    assert too_long.item() == 0.0
    both = embedding_ctc_sum([tokens, tokens[:2]], [[1, 2], []], embeddings)
    assert torch.isclose(both, embedding_ctc_sum([tokens], [[1, 2]], embeddings))
    with pytest.raises(ValueError, match="2 visual sequences but 1 targets"):
        embedding_ctc_sum([tokens, tokens], [[1]], embeddings)


def test_the_stage_reads_off_one_line_answers_and_trains_the_projector_with_it(tiny):
    from datasets import Dataset
    from PIL import Image

    _, model, processor = tiny
    image = Image.new("RGB", (400, 120), "white")
    multi_line = [MESSAGES[0], {"role": "assistant", "content": [{"type": "text", "text": "첫 줄\n둘째 줄"}]}]
    rows = Dataset.from_list([{"id": "a", "image": image, "messages": MESSAGES, "tasks": ["max", "title"]},
                              {"id": "b", "image": image, "messages": multi_line, "tasks": ["transcribe"]}])
    settings = AlignSettings(init=Path("a"), data=Path("b"), tasks=[], embedding_ctc_weight=1.0)
    stage = VisionLanguageStage("align", settings, rows, processor, seed=0)
    batch = stage.make_batch([0, 1], step=0)
    title_ids = processor.tokenizer("학년별 학생 수", add_special_tokens=False)["input_ids"]
    assert batch["read_off"] == [title_ids, []]               # the title; a transcription of two lines is not read
    by_character = AlignSettings(init=Path("a"), data=Path("b"), tasks=[], embedding_ctc_weight=1.0,
                                 embedding_ctc_unit="character")
    characters = VisionLanguageStage("align", by_character, rows, processor, seed=0).make_batch([0, 1], step=0)
    assert characters["read_off"] == [[i for c in "학년별학생수"
                                       for i in processor.tokenizer(c, add_special_tokens=False)["input_ids"]], []]
    assert characters["read_off"][0] != title_ids
    trainable = stage.trainable_parameters(model)
    total, parts = stage.loss(model, batch, "cpu")
    # the large branch has 16 visual tokens for the title's 4; the toy small branch has 2, too few to align
    assert parts["loss_embed_ctc_large"] > 0 and parts["loss_embed_ctc_small"] == 0.0
    assert parts["loss"] == pytest.approx(parts["loss_large"] + parts["loss_small"] + parts["loss_embed_ctc_large"]
                                          + parts["loss_embed_ctc_small"], rel=1e-5)
    total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in trainable if n.startswith("projector."))
    model.zero_grad(set_to_none=True)
    # off by default: no targets are built and the loss has no such part
    plain = VisionLanguageStage("sft", SFTSettings(init=Path("a"), data=Path("b")), rows, processor, seed=0)
    assert "read_off" not in plain.make_batch([0], step=0)
    with pytest.raises(ValueError, match="--embedding-ctc-weight must be"):
        SFTSettings(init=Path("a"), data=Path("b"), embedding_ctc_weight=-1)
    with pytest.raises(ValueError, match="--embedding-ctc-unit must be one of"):
        SFTSettings(init=Path("a"), data=Path("b"), embedding_ctc_unit="syllable")
    with pytest.raises(ValueError, match="needs at least one task"):
        SFTSettings(init=Path("a"), data=Path("b"), embedding_ctc_weight=1, embedding_ctc_tasks=[])
