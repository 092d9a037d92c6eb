"""The copy head (model.copy_head): a pointer that lets the LM copy a token from earlier in its input.

Its claims, each checked on a tiny model: the mixture is a distribution; before any training a repeated
span is already cheap to continue (the built-in token match); generating with a KV cache, in left-padded
batches and with answer-only logits gives the same numbers as without; and a few dozen steps teach the
tiny model to copy a reading from the question into its answer exactly, which it cannot do without the head.
"""

import numpy as np
import pytest
import torch
from PIL import Image

from ko_hypervl import KoHyperVL, ModelBuildSettings, build_model, load_checkpoint, save_checkpoint
from ko_hypervl.checkpoint import add_copy_head
from ko_hypervl.model.build import set_generation_defaults
from ko_hypervl.model.copy_head import MATCH_INIT, answer_starts, shifted, written_already
from ko_hypervl.model.modeling import KoHyperVLForConditionalGeneration
from ko_hypervl.model.reading import ReadingHeadSpec, encoder_digest
from ko_hypervl.processing.reading_prompt import READING_HEADER, with_reading
from ko_hypervl.training.data import with_reading_in_question
from ko_hypervl.training.losses import gather_target_logits, predicting_positions

TINY = dict(tile_size=56, patch_size=14, vit_hidden_size=32, vit_layers=1, small_vit_hidden_size=16,
            small_vit_layers=1, small_image_scale=0.5, lm_hidden_size=32, lm_layers=2, lm_heads=2, lm_kv_heads=1,
            lm_intermediate_size=64, max_positions=512, max_tiles=6)
WORDS = "사과 바다 하늘 기차 연필 학교 우산 시계 나무 구름 토끼 바람 편지 노래 의자 창문".split()


def _with_copy_head(copy_head: bool = True, seed: int = 0):
    model, processor = build_model(ModelBuildSettings(**TINY))
    model.config.copy_head = copy_head
    model.config.assistant_token_id = processor.tokenizer.convert_tokens_to_ids("<|assistant|>")
    torch.manual_seed(seed)
    copying = KoHyperVLForConditionalGeneration(model.config).eval()
    set_generation_defaults(copying, processor.tokenizer)    # <|end|> ends an answer, as in a built model
    return copying, processor


@pytest.fixture(scope="module")
def copying():
    return _with_copy_head()


def _image(seed=0, width=90, height=60):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))


def _prompt(processor, question):
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def test_shifted_moves_values_earlier_and_fills_with_zeros():
    values = torch.arange(1, 6)[None]
    assert shifted(values, 1).tolist() == [[2, 3, 4, 5, 0]]
    assert shifted(values, 2).tolist() == [[3, 4, 5, 0, 0]]
    assert shifted(values, 9).tolist() == [[0, 0, 0, 0, 0]]
    assert shifted(values, -2).tolist() == [[0, 0, 1, 2, 3]]


def test_written_already_marks_the_pairs_the_answer_has_written():
    # the prompt offers 1→2, 2→3, 3→1; 9 opens the answer, which writes 1, 2, then 1 again
    ids = torch.tensor([[1, 2, 3, 1, 9, 1, 2, 1]])
    positions = torch.arange(8)
    written = written_already(ids, positions, answer_starts(ids, positions, 9))[0]
    places = [written[t].nonzero().flatten().tolist() for t in range(8)]
    assert places[:5] == [[]] * 5                  # outside the answer nothing is written
    assert places[5] == [4]                        # the marker's own pair (9, 1); copies never come from there
    assert places[6] == [0, 4, 5]                  # and 1→2: offered at 0 (and at 5, inside the answer)
    assert places[7] == [0, 4, 5, 6]               # and 2→1


def test_answer_starts_are_after_the_last_assistant_marker():
    ids = torch.tensor([[5, 9, 6, 7, 9, 8, 8]])             # 9 opens an assistant turn
    assert answer_starts(ids, torch.arange(7), 9).tolist() == [[0, 2, 2, 2, 5, 5, 5]]
    assert answer_starts(ids, torch.tensor([6]), None).tolist() == [[0]]


def test_the_mixture_is_a_distribution_and_continues_a_repeated_span_before_training(copying):
    model, _ = copying
    vocab = model.get_input_embeddings().num_embeddings
    span = torch.randint(200, vocab, (3, 12), generator=torch.Generator().manual_seed(0))
    ids = torch.cat([span, span], dim=1)
    with torch.no_grad():
        log_probs = model(input_ids=ids).logits
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(ids.shape), atol=1e-4, rtol=0)
    nll = -log_probs[:, :-1].gather(-1, ids[:, 1:, None])[..., 0]
    first, second = nll[:, :11].mean(), nll[:, 12:].mean()
    # an LM alone pays about ln(vocab) for both copies; the head's token match makes the second cost ln 2
    # (the gate starts at one half) before any training
    assert first > 8.0 and second < 0.8
    plain, _ = _with_copy_head(copy_head=False)
    with torch.no_grad():
        plain_nll = -plain(input_ids=ids).logits.log_softmax(-1)[:, :-1].gather(-1, ids[:, 1:, None])[..., 0]
    assert plain_nll[:, 12:].mean() > 8.0


def test_generate_with_and_without_cache_and_in_a_padded_batch_agree(copying):
    model, processor = copying
    images = [_image(1, 40, 30), _image(2, 160, 110)]
    texts = [_prompt(processor, with_reading("무엇이라고 쓰여 있나요?", "사과 바다")),
             _prompt(processor, with_reading("글씨를 읽어 주세요.", "하늘 기차\n연필 학교 우산"))]
    options = dict(max_new_tokens=6, min_new_tokens=6, do_sample=False)
    batch = processor(images=images, text=texts, padding_side="left")
    assert batch["attention_mask"][0].sum() < batch["attention_mask"][1].sum()
    with torch.no_grad():
        batched = model.generate(**batch, **options)[:, -6:]
        for i in range(2):
            single = processor(images=[images[i]], text=texts[i])
            cached = model.generate(**single, use_cache=True, **options)[0, -6:]
            assert torch.equal(cached, model.generate(**single, use_cache=False, **options)[0, -6:])
            assert torch.equal(cached, batched[i])


def test_answer_positions_only_give_the_full_logits_there(copying):
    model, processor = copying
    text = _prompt(processor, with_reading("무엇이라고 쓰여 있나요?", "사과 바다")) + "사과 바다<|end|>"
    inputs = processor(images=[_image()], text=text)
    labels = torch.full_like(inputs["input_ids"], -100)
    labels[:, -4:] = inputs["input_ids"][:, -4:]
    positions = predicting_positions(labels)
    with torch.no_grad():
        full = model(**inputs).logits
        kept = model(**inputs, logits_to_keep=positions).logits
    torch.testing.assert_close(gather_target_logits(full[:, positions], labels, positions)[0],
                               gather_target_logits(kept, labels, positions)[0])


def _text_prompt(processor, question):
    """The prompt of a text-only question, ending where the answer starts."""
    return processor.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                         tokenize=False)


def _copy_batch(processor, rng, rows=8):
    """Text-only conversations whose answer is the reading in the question (random words, so only copying
    predicts them); labels on the answer and its end token."""
    tokenizer = processor.tokenizer
    ids, labels = [], []
    for _ in range(rows):
        reading = " ".join(rng.choice(WORDS, size=int(rng.integers(2, 6))))
        prompt = _text_prompt(processor, with_reading("글씨를 그대로 적어 주세요.", reading))
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(reading + "<|end|>", add_special_tokens=False)["input_ids"]
        ids.append(prompt_ids + answer_ids)
        labels.append([-100] * len(prompt_ids) + answer_ids)
    length = max(map(len, ids))
    pad = tokenizer.pad_token_id
    return {"input_ids": torch.tensor([row + [pad] * (length - len(row)) for row in ids]),
            "attention_mask": torch.tensor([[1] * len(row) + [0] * (length - len(row)) for row in ids]),
            "labels": torch.tensor([row + [-100] * (length - len(row)) for row in labels])}


def _train_to_copy(model, processor, steps=60):
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        loss = model(**_copy_batch(processor, rng)).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def _copied_exactly(model, processor, trials=8) -> int:
    rng = np.random.default_rng(123)
    exact = 0
    for _ in range(trials):
        reading = " ".join(rng.choice(WORDS, size=3))
        prompt = _text_prompt(processor, with_reading("글씨를 그대로 적어 주세요.", reading))
        inputs = processor.tokenizer(prompt, add_special_tokens=False, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=12, do_sample=False)
        exact += processor.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True) == reading
    return exact


def test_a_few_dozen_steps_teach_the_copy_head_to_copy_the_reading_and_the_plain_lm_does_not():
    copier, processor = _with_copy_head(seed=1)
    assert _copied_exactly(copier, processor) == 0        # untrained: it does not know where the reading starts
    assert _copied_exactly(_train_to_copy(copier, processor), processor) == 8
    plain, _ = _with_copy_head(copy_head=False, seed=1)
    assert _copied_exactly(_train_to_copy(plain, processor), processor) == 0


def test_the_reading_goes_last_in_the_first_question():
    messages = [{"role": "user", "content": [{"type": "image", "text": None}, {"type": "text", "text": "질문?"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "답"}]},
                {"role": "user", "content": [{"type": "text", "text": "다음 질문?"}]}]
    added = with_reading_in_question(messages, "  읽은 줄\n둘째 줄 ")
    assert added[0]["content"][1]["text"] == f"질문?{READING_HEADER}읽은 줄\n둘째 줄"
    assert added[1:] == messages[1:] and messages[0]["content"][1]["text"] == "질문?"   # the input is not changed


def test_add_copy_head_needs_a_reading_head_and_keeps_the_folder(tmp_path):
    model, processor = build_model(ModelBuildSettings(**TINY))
    save_checkpoint(model, processor, tmp_path / "plain")
    with pytest.raises(ValueError, match="no reading head"):
        add_copy_head(tmp_path / "plain", tmp_path / "out")
    spec = ReadingHeadSpec("large", ("ㄱ", "ㅏ"), 1, "columns", encoder_digest(model.vision_model))
    model.install_reading_head(torch.nn.Linear(model.config.vision_config.hidden_size, spec.num_classes), spec)
    save_checkpoint(model, processor, tmp_path / "reads")
    (tmp_path / "reads" / "reading_lm.safetensors").write_bytes(b"kept as it is")
    add_copy_head(tmp_path / "reads", tmp_path / "copies")
    assert (tmp_path / "copies" / "reading_lm.safetensors").read_bytes() == b"kept as it is"
    loaded, _ = load_checkpoint(tmp_path / "copies")
    assert loaded.copy_head is not None and loaded.config.copy_head
    assert torch.equal(loaded.copy_head.match_weights, torch.tensor(MATCH_INIT))   # initialised, not random
    with pytest.raises(ValueError, match="already has a copy head"):
        add_copy_head(tmp_path / "copies", tmp_path / "again")


def test_a_model_with_a_copy_head_asks_with_the_reading(copying, monkeypatch):
    model, processor = copying
    vlm = KoHyperVL(model, processor)
    assert vlm.uses_readings
    asked = []
    monkeypatch.setattr(vlm, "read", lambda images: asked.append(len(images)) or
                        [type("R", (), {"text": "사과 바다"})()] * len(images))
    inputs, _ = vlm.prepare(_image(), "무엇이라고 쓰여 있나요?", mode="high")
    text = processor.tokenizer.decode(inputs["input_ids"][0])
    assert asked == [1] and text.endswith(f"무엇이라고 쓰여 있나요?{READING_HEADER}사과 바다<|end|>\n<|assistant|>\n")
    assert not KoHyperVL(build_model(ModelBuildSettings(**TINY))[0], processor).uses_readings


def test_the_copy_never_comes_from_the_answer_being_written(copying):
    model, processor = copying
    tokenizer = processor.tokenizer
    text = _text_prompt(processor, with_reading("적어 주세요.", "바다")) + "사과 사과 사과"
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    apple = tokenizer(" 사과", add_special_tokens=False)["input_ids"][-1]
    assert apple not in ids[0, :-3].tolist()         # only in the answer
    with torch.no_grad():
        model.copy_head.gate.bias.fill_(-30.0)       # copy only
        try:
            from_answer = model(input_ids=ids).logits[0, -1, apple].exp()
            model.config.assistant_token_id, marker = None, model.config.assistant_token_id
            from_anywhere = model(input_ids=ids).logits[0, -1, apple].exp()
        finally:
            model.config.assistant_token_id = marker
            model.copy_head.gate.bias.zero_()
    assert from_answer < 1e-6 and from_anywhere > 0.5


def test_a_stage_carries_the_reading_lm_only_while_the_head_still_reads_its_encoder(tmp_path):
    from ko_hypervl.training.run import carry_reading_lm

    model, _ = build_model(ModelBuildSettings(**TINY))
    spec = ReadingHeadSpec("large", ("ㄱ", "ㅏ"), 1, "columns", encoder_digest(model.vision_model))
    model.install_reading_head(torch.nn.Linear(model.config.vision_config.hidden_size, spec.num_classes), spec)
    (tmp_path / "init").mkdir()
    (tmp_path / "init" / "reading_lm.safetensors").write_bytes(b"lm")
    (tmp_path / "kept").mkdir()
    assert carry_reading_lm(tmp_path / "init", model, tmp_path / "kept")
    assert (tmp_path / "kept" / "reading_lm.safetensors").read_bytes() == b"lm"
    with torch.no_grad():
        next(model.vision_model.parameters()).add_(1.0)     # a later stage trained the encoder
    (tmp_path / "dropped").mkdir()
    assert not carry_reading_lm(tmp_path / "init", model, tmp_path / "dropped")
    assert not (tmp_path / "dropped" / "reading_lm.safetensors").exists()


def test_a_checkpoint_without_one_of_the_heads_weights_keeps_the_others_as_trained(copying, tmp_path):
    from safetensors.torch import load_file, save_file

    model, processor = copying
    with torch.no_grad():
        model.copy_head.match_weights.add_(1.0)
        model.copy_head.gate.bias.fill_(0.5)
    try:
        save_checkpoint(model, processor, tmp_path)
    finally:
        model.copy_head.reset_parameters()
    weights = load_file(str(tmp_path / "model.safetensors"))
    del weights["copy_head.repeat_penalty"]                  # as saved before the penalty existed
    save_file(weights, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    loaded, _ = load_checkpoint(tmp_path)
    assert torch.equal(loaded.copy_head.match_weights, torch.tensor(MATCH_INIT) + 1.0)
    assert loaded.copy_head.gate.bias.item() == 0.5 and loaded.copy_head.repeat_penalty.item() == 8.0
