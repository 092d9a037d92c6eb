"""The model on tiny configs of real classes: built-in ViT + LM, SigLIP + Qwen2, SigLIP + Llama, SigLIP + Qwen3.

The SigLIP/Qwen2/Llama/Qwen3 parts are saved to local folders first (random weights, safetensors, with their
own tokenizer) and loaded from there, the way a user brings a pretrained backbone.
"""

import io
import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForImageTextToText, AutoProcessor, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, Qwen2Config,
    Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM, SiglipVisionConfig, SiglipVisionModel,
)

from ko_hypervl import KoHyperVL, ModelBuildSettings, attach_lora, build_model, load_checkpoint, save_checkpoint
from ko_hypervl.configuration import KoHyperVLConfig
from ko_hypervl.model.lora import lora_target_modules
from ko_hypervl.model.projector import pixel_shuffle
from ko_hypervl.processing import ImageInputError

TINY = dict(tile_size=56, patch_size=14, vit_hidden_size=32, vit_layers=1, small_vit_hidden_size=16,
            small_vit_layers=1, small_image_scale=0.5, lm_hidden_size=32, lm_layers=2, lm_heads=2, lm_kv_heads=1, lm_intermediate_size=64,
            max_positions=512, max_tiles=6)
OLD_TEXT = ["오늘 서울의 기온은 27도입니다.", "The chart shows sales by month.", "학교에 갔었다고 했잖아요."] * 20


def _old_tokenizer():
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "</s>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(OLD_TEXT, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    root = tmp_path_factory.mktemp("parts")
    torch.manual_seed(0)
    for name, size in (("siglip-large", 32), ("siglip-small", 16)):
        config = SiglipVisionConfig(hidden_size=size, intermediate_size=2 * size, num_hidden_layers=1,
                                    num_attention_heads=2, image_size=56, patch_size=14)
        SiglipVisionModel(config).save_pretrained(root / name)
    old = _old_tokenizer()
    common = dict(vocab_size=len(old), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512,
                  bos_token_id=old.bos_token_id, eos_token_id=old.eos_token_id, pad_token_id=old.pad_token_id)
    Qwen2ForCausalLM(Qwen2Config(tie_word_embeddings=True, **common)).save_pretrained(root / "qwen2")
    LlamaForCausalLM(LlamaConfig(tie_word_embeddings=False, **common)).save_pretrained(root / "llama")
    Qwen3ForCausalLM(Qwen3Config(tie_word_embeddings=True, head_dim=16, **common)).save_pretrained(root / "qwen3")
    for name in ("qwen2", "llama", "qwen3"):
        old.save_pretrained(root / name)
    return root


COMBOS = ["builtin", "builtin+stem", "siglip+qwen2", "siglip+llama", "siglip+qwen3"]


@pytest.fixture(scope="module")
def built(parts):
    models_ = {}
    for combo in COMBOS:
        settings = dict(TINY)
        if combo == "builtin+stem":
            settings.update(vit_stem_channels=(8, 16), small_vit_stem_channels=(8,))
        elif combo != "builtin":
            settings.update(large_vision=str(parts / "siglip-large"), small_vision=str(parts / "siglip-small"),
                            language=str(parts / combo.split("+")[1]))
        model, processor = build_model(ModelBuildSettings(**settings))
        models_[combo] = (model.eval(), processor)
    return models_


def _chart(width=150, height=100, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))


def _prompt(processor, question="가장 큰 값은?", images=1):
    content = [{"type": "image"}] * images + [{"type": "text", "text": question}]
    return processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True,
                                         tokenize=False)


@pytest.mark.parametrize("combo", COMBOS)
@pytest.mark.parametrize("branch", ["large", "small"])
def test_forward_backward_reaches_every_part_of_the_branch(built, combo, branch):
    model, processor = built[combo]
    model.train()
    inputs = processor(images=[_chart()], text=_prompt(processor) + "42<|end|>", branch=branch)
    labels = inputs["input_ids"].clone()
    labels[labels == model.config.image_token_id] = -100
    out = model(**inputs, labels=labels)
    assert torch.isfinite(out.loss)
    model.zero_grad()
    out.loss.backward()
    encoder, projector = model.vision_branch(branch)
    other_encoder, _ = model.vision_branch("small" if branch == "large" else "large")
    assert next(encoder.parameters()).grad is not None and projector.fc1.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in other_encoder.parameters())
    assert model.get_input_embeddings().weight.grad.abs().sum() > 0
    model.eval()


@pytest.mark.parametrize("combo", COMBOS)
def test_save_then_load_gives_identical_logits_and_a_self_contained_folder(built, combo, tmp_path):
    model, processor = built[combo]
    save_checkpoint(model, processor, tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
            "processor_config.json"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)
    loaded = AutoModelForImageTextToText.from_pretrained(tmp_path).eval()
    loaded_processor = AutoProcessor.from_pretrained(tmp_path)
    for branch in ("large", "small"):
        a = processor(images=[_chart(200, 90)], text=_prompt(processor), branch=branch)
        b = loaded_processor(images=[_chart(200, 90)], text=_prompt(processor), branch=branch)
        assert torch.equal(a["input_ids"], b["input_ids"]) and torch.equal(a["pixel_values"], b["pixel_values"])
        with torch.no_grad():
            assert torch.equal(model(**a).logits, loaded(**b).logits)
    assert type(loaded.language_model) is type(model.language_model)


@pytest.mark.parametrize("combo", COMBOS)
def test_generate_with_and_without_cache_agree(built, combo):
    model, processor = built[combo]
    inputs = processor(images=[_chart(180, 120)], text=_prompt(processor))
    options = dict(max_new_tokens=12, min_new_tokens=12, do_sample=False)
    with torch.no_grad():
        cached = model.generate(**inputs, use_cache=True, **options)
        uncached = model.generate(**inputs, use_cache=False, **options)
    assert cached.shape[-1] == inputs["input_ids"].shape[-1] + 12
    assert torch.equal(cached, uncached)


@pytest.mark.parametrize("combo", COMBOS)
def test_generate_feeds_one_new_token_a_step_through_the_cache_without_deprecation_warnings(built, combo):
    model, processor = built[combo]
    inputs = processor(images=[_chart(180, 120)], text=_prompt(processor))
    lengths = []
    hook = model.language_model.register_forward_pre_hook(
        lambda module, args, kwargs: lengths.append(kwargs["inputs_embeds"].shape[1]), with_kwargs=True)
    try:
        with warnings.catch_warnings(record=True) as caught, torch.no_grad():
            warnings.simplefilter("always")
            model.generate(**inputs, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    finally:
        hook.remove()
    assert lengths == [inputs["input_ids"].shape[-1], 1, 1, 1]      # the prompt once, then only the new token
    assert not [w for w in caught if "past_key_values" in str(w.message)]


@pytest.mark.parametrize("combo", ["builtin", "siglip+qwen2"])
def test_a_padded_batch_of_different_image_sizes_matches_single_requests(built, combo):
    model, processor = built[combo]
    images = [_chart(40, 30, seed=1), _chart(160, 110, seed=2)]  # one tile; 2×3 tiles + thumbnail
    texts = [_prompt(processor, "제목은?"), _prompt(processor, "3월과 4월의 합은 얼마입니까?")]
    batch = processor(images=images, text=texts, padding_side="left")
    assert batch["attention_mask"][0].sum() < batch["attention_mask"][1].sum()  # the first row is padded
    options = dict(max_new_tokens=6, min_new_tokens=6, do_sample=False)
    with torch.no_grad():
        batched_logits = model(**batch).logits[:, -1]
        batched = model.generate(**batch, **options)[:, -6:]
        for i in range(2):
            single = processor(images=[images[i]], text=texts[i])
            torch.testing.assert_close(model(**single).logits[0, -1], batched_logits[i], atol=1e-4, rtol=1e-4)
            assert torch.equal(model.generate(**single, **options)[0, -6:], batched[i])


def test_right_padded_training_batch_ignores_padding(built):
    model, processor = built["builtin"]
    texts = [_prompt(processor) + "7<|end|>", _prompt(processor, "아주 긴 질문입니다 " * 5) + "12<|end|>"]
    batch = processor(images=[_chart(60, 50), _chart(120, 60)], text=texts, padding_side="right")
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    with torch.no_grad():
        loss = model(**batch, labels=labels).loss
    assert torch.isfinite(loss)


def test_chunked_tile_encoding_equals_encoding_all_at_once(built):
    model, processor = built["builtin"]
    pixels = processor.image_processor(_chart(300, 200))["pixel_values"]
    assert pixels.shape[0] > 3
    with torch.no_grad():
        model.config.vision_chunk_size = 1
        one = model.get_image_features(pixels)
        model.config.vision_chunk_size = 1000
        everything = model.get_image_features(pixels)
        model.config.vision_chunk_size = 4
    torch.testing.assert_close(one, everything, atol=1e-5, rtol=1e-5)


def test_the_convolutional_stem_keeps_the_patch_grid_and_starts_at_he_scale(built):
    model, _ = built["builtin+stem"]
    stem = model.vision_model.patch_embedding
    convs = [m for m in stem if isinstance(m, torch.nn.Conv2d)]
    assert [m.out_channels for m in convs] == [8, 16, 32]
    # 14-px patches: one 2×2 pool after the first width (7 is odd), then the 7×7 projection
    assert [type(m).__name__ for m in stem] == ["Conv2d", "GroupNorm", "GELU", "MaxPool2d",
                                                "Conv2d", "GroupNorm", "GELU", "Conv2d"]
    assert convs[0].stride == convs[1].stride == (1, 1) and convs[-1].kernel_size == convs[-1].stride == (7, 7)
    plain, _ = built["builtin"]
    tiles = torch.rand(3, 3, 56, 56)
    with torch.no_grad():
        assert model.vision_model(pixel_values=tiles).last_hidden_state.shape == \
            plain.vision_model(pixel_values=tiles).last_hidden_state.shape == (3, 16, 32)
        # He initialisation: the stem hands the transformer features of about unit scale, where the ViT's
        # std of 0.02 would have shrunk them a hundredfold over three convolutions
        features = stem(torch.randn(8, 3, 56, 56))
    assert 0.3 < float(features.std()) < 3
    assert float(convs[0].weight.detach().std()) == pytest.approx((2 / 27) ** 0.5, rel=0.3)
    assert model.config.vision_config.stem_channels == [8, 16] and plain.config.vision_config.stem_channels is None
    with pytest.raises(ValueError, match="positive widths"):
        build_model(ModelBuildSettings(**(TINY | dict(vit_stem_channels=(8, 0)))))


@pytest.mark.parametrize("patch, widths, pools, projection", [(16, (4, 4, 4, 4), 4, 1), (16, (4, 4), 2, 4),
                                                              (21, (4, 4), 0, 21), (12, (4, 4, 4), 2, 3)])
def test_the_stem_pools_while_it_can_and_projects_the_rest_of_the_patch(patch, widths, pools, projection):
    from ko_hypervl.model.vision import KoViTConvStem

    stem = KoViTConvStem(3, list(widths), 24, patch)
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in stem) == pools
    assert stem[-1].kernel_size == stem[-1].stride == (projection, projection)
    with torch.no_grad():
        assert stem(torch.rand(2, 3, 3 * patch, 2 * patch)).shape == (2, 24, 3, 2)      # one vector per patch


def test_pixel_shuffle_folds_square_blocks():
    side, hidden = 4, 1
    features = torch.arange(side * side, dtype=torch.float32).view(1, side * side, hidden)
    out = pixel_shuffle(features, 2)
    assert out.shape == (1, 4, 4)
    assert out[0, 0].tolist() == [0, 1, 4, 5]      # the top-left 2×2 block, row-major
    assert out[0, 3].tolist() == [10, 11, 14, 15]  # the bottom-right block
    with pytest.raises(ValueError, match="square"):
        pixel_shuffle(torch.zeros(1, 12, 1), 2)


@pytest.mark.parametrize("combo", ["builtin", "siglip+llama"])
def test_lora_attach_train_and_merge(built, combo):
    model, processor = built[combo]
    import copy

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        peft_model = attach_lora(copy.deepcopy(model))
    assert not [str(w.message) for w in caught if issubclass(w.category, FutureWarning)]   # nothing the user can fix
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert all(n.startswith("language_model.") for n in lora_target_modules(model))
    with_projectors = lora_target_modules(model, include_projectors=True)
    assert {"projector.fc1", "projector.fc2", "small_projector.fc1"} <= set(with_projectors)
    inputs = processor(images=[_chart()], text=_prompt(processor) + "5<|end|>")
    optimizer = torch.optim.SGD([p for p in peft_model.parameters() if p.requires_grad], lr=0.5)
    for _ in range(2):
        loss = peft_model(**inputs, labels=inputs["input_ids"].masked_fill(
            inputs["input_ids"] == model.config.image_token_id, -100)).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    peft_model.eval()
    with torch.no_grad():
        adapted = peft_model(**inputs).logits
        base = model(**inputs).logits
        merged = peft_model.merge_and_unload()(**inputs).logits
    assert not torch.allclose(adapted, base)
    torch.testing.assert_close(merged, adapted, atol=1e-4, rtol=1e-4)


def test_vocabulary_transfer_when_the_lm_brings_its_own_tokenizer(built, parts):
    model, processor = built["siglip+llama"]
    old = LlamaForCausalLM.from_pretrained(parts / "llama")
    old_tokenizer = PreTrainedTokenizerFast.from_pretrained(parts / "llama")
    new_tokenizer = processor.tokenizer
    assert len(new_tokenizer) != len(old_tokenizer)
    assert model.get_input_embeddings().weight.shape[0] == len(new_tokenizer)
    old_rows = old.get_input_embeddings().weight
    new_rows = model.get_input_embeddings().weight
    # a new token spelled by several old pieces starts as their mean
    checked = 0
    for token_id in new_tokenizer("서울의 최고 기온은 27도입니다", add_special_tokens=False)["input_ids"]:
        text = new_tokenizer.decode([token_id])
        pieces = old_tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(pieces) >= 2 and "\ufffd" not in text:
            torch.testing.assert_close(new_rows[token_id], old_rows[pieces].mean(0))
            checked += 1
    assert checked >= 2
    torch.testing.assert_close(new_rows[new_tokenizer.eos_token_id], old_rows[old_tokenizer.eos_token_id])


def test_vrc_decision_and_token_accounting(built):
    model, processor = built["builtin"]
    vlm = KoHyperVL(model, processor)
    images = [_chart(400, 300), _chart(50, 40)]
    auto = vlm.decide(images, "auto")
    assert all(d.chosen_by == "vrc" and d.scale in model.config.vrc_scales for d in auto)
    fixed = vlm.decide(images, "auto", scale=0.5)
    assert [d.scale for d in fixed] == [0.5, 0.5] and fixed[0].chosen_by == "fixed"
    assert fixed[0].visual_tokens < fixed[0].full_visual_tokens and fixed[0].tokens_saved > 0
    low, high = vlm.decide(images, "low"), vlm.decide(images, "high")
    assert low[0].branch == "small" and high[0].branch == "large" and high[0].scale == 1.0
    inputs, decisions = vlm.prepare(images, "두 그림을 비교하세요", mode="auto", scale=0.5)
    counted = int((inputs["input_ids"] == model.config.image_token_id).sum())
    assert counted == sum(d.visual_tokens for d in decisions)


def test_the_small_branch_sees_the_image_at_its_share_of_the_resolution(built, tmp_path):
    model, processor = built["builtin"]
    vlm = KoHyperVL(model, processor)
    image = _chart(168, 112)                                   # 56-px tiles: 2×3 for the large branch
    high, low = vlm.decide([image], "high")[0], vlm.decide([image], "low")[0]
    assert (high.rows, high.cols, high.resized_width) == (2, 3, 168)
    assert (low.rows, low.cols, low.resized_width, low.resized_height) == (1, 2, 84, 56)
    assert low.scale == 1.0 and low.tokens_saved == 0         # VRC savings stay per branch
    assert vlm.decide([image], "low", scale=0.5)[0].resized_width == 42   # the VRC scale composes with it
    inputs, decisions = vlm.prepare([image], "제목은?", mode="low")
    assert inputs["pixel_values"].shape[0] == 3                # 2 tiles + the global thumbnail
    assert int((inputs["input_ids"] == model.config.image_token_id).sum()) == decisions[0].visual_tokens
    with torch.no_grad():
        assert torch.isfinite(model(**inputs).logits).all()
    # a processor saved before dual resolution (no branch_scales) encodes both branches at full resolution
    save_checkpoint(model, processor, tmp_path)
    saved = json.loads((tmp_path / "processor_config.json").read_text(encoding="utf-8"))
    assert saved["image_processor"]["branch_scales"] == {"large": 1.0, "small": 0.5}
    del saved["image_processor"]["branch_scales"]
    (tmp_path / "processor_config.json").write_text(json.dumps(saved), encoding="utf-8")
    assert AutoProcessor.from_pretrained(tmp_path).image_processor.branch_scales == {"large": 1.0, "small": 1.0}
    with pytest.raises(ValueError, match="small_image_scale"):
        KoHyperVLConfig(small_image_scale=0.0)


def test_a_follow_up_question_keeps_the_earlier_turns_image_where_it_was_shown(built):
    model, processor = built["builtin"]
    vlm = KoHyperVL(model, processor)
    first, second = _chart(300, 200, seed=1), _chart(120, 90, seed=2)
    history = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "가장 큰 값은?"}]},
               {"role": "assistant", "content": [{"type": "text", "text": "사과"}]}]
    inputs, decisions = vlm.prepare([first], "가장 작은 값은?", mode="high", history=history)
    conversation = history + [{"role": "user", "content": [{"type": "text", "text": "가장 작은 값은?"}]}]
    expected = processor(images=[first], branch="large",
                         text=processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False))
    assert torch.equal(inputs["input_ids"], expected["input_ids"])
    assert torch.equal(inputs["pixel_values"], expected["pixel_values"])
    ids = inputs["input_ids"][0].tolist()
    # the image sits in the first user turn, before the first answer
    answer_start = ids.index(processor.tokenizer.convert_tokens_to_ids("<|assistant|>"))
    assert ids.index(model.config.image_token_id) < answer_start
    assert ids[answer_start:].count(model.config.image_token_id) == 0
    # the question may bring a new image as well: images are the history's first, then the question's
    inputs, decisions = vlm.prepare([first, second], "두 그림을 비교하세요", mode="low", history=history)
    assert [(d.width, d.height) for d in decisions] == [(300, 200), (120, 90)]
    assert int((inputs["input_ids"] == model.config.image_token_id).sum()) == sum(d.visual_tokens for d in decisions)
    with pytest.raises(ValueError, match="history shows 1 image.*0 were given"):
        vlm.prepare([], "가장 작은 값은?", history=history)
    malformed = {"history must be a list": {"role": "user", "content": "hi"},
                 r"history\[0\] must be a dict": ["안녕"],
                 "role 'robot'": [{"role": "robot", "content": "hi"}],
                 "content must be text or a list": [{"role": "user", "content": 3}],
                 r"content\[1\] must be": [{"role": "user", "content": [{"type": "image"}, "그림"]}],
                 r"content\[0\] must be": [{"role": "user", "content": [{"type": "text"}]}]}
    for message, bad in malformed.items():
        with pytest.raises(ValueError, match=message):
            vlm.prepare([first], "가장 작은 값은?", history=bad)
    answer = vlm.ask([first], "가장 작은 값은?", mode="high", history=history, max_new_tokens=4)
    assert answer.new_tokens >= 1 and len(answer.decisions) == 1


def test_vrc_learns_a_scale_from_labels(built):
    """The predictor is trainable end to end: a few steps fit labels that depend on the image size."""
    model, processor = built["builtin"]
    import copy

    vrc_model = copy.deepcopy(model)
    images = [_chart(60, 40, seed=i) for i in range(4)] + [_chart(300, 200, seed=i) for i in range(4)]
    inputs = processor.image_processor.vrc_inputs(images)
    labels = torch.tensor([0] * 4 + [len(model.config.vrc_scales) - 1] * 4)
    optimizer = torch.optim.Adam(vrc_model.vrc.parameters(), lr=1e-2)
    vrc_model.vrc.train()
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(vrc_model.vrc(**_vrc_kwargs(inputs)), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    scales = vrc_model.predict_scales(inputs["vrc_pixel_values"], inputs["vrc_image_sizes"])
    assert scales == [model.config.vrc_scales[i] for i in labels.tolist()]


def _vrc_kwargs(inputs):
    return {"vrc_pixel_values": inputs["vrc_pixel_values"], "image_sizes": inputs["vrc_image_sizes"]}


def test_stream_and_ask_return_the_answer_with_decision_and_timings(built):
    model, processor = built["builtin"]
    vlm = KoHyperVL(model, processor)
    *pieces, answer = list(vlm.stream(_chart(), "가장 큰 값은?", mode="high", max_new_tokens=8))
    assert "".join(pieces).strip() == answer.text
    assert answer.new_tokens >= 1 and answer.time_to_first_token_s > 0
    data = answer.to_dict()
    assert data["vrc"][0]["mode"] == "high" and data["visual_tokens"] == answer.decisions[0].visual_tokens
    assert json.loads(json.dumps(data, ensure_ascii=False)) == data


def test_closing_the_stream_early_stops_generation(built, monkeypatch):
    import copy

    import ko_hypervl.inference as inference

    model, processor = built["builtin"]
    model = copy.deepcopy(model)
    model.generation_config.eos_token_id = None  # nothing but the stop flag or max_new_tokens ends it
    seen = []

    class CountingStreamer(inference._TimedStreamer):
        def put(self, value):
            seen.append(value.numel())
            super().put(value)

    monkeypatch.setattr(inference, "_TimedStreamer", CountingStreamer)
    stream = KoHyperVL(model, processor).stream(_chart(), "길게 답하세요", mode="low", max_new_tokens=300)
    next(stream)
    stream.close()
    assert len(seen) < 50  # the prompt and a few tokens, not 300


# ---- bad input -------------------------------------------------------------------------------------------

def test_image_count_must_match_placeholders(built):
    _, processor = built["builtin"]
    with pytest.raises(ValueError, match="1 <image> placeholder.*2 image"):
        processor(images=[_chart(), _chart()], text=_prompt(processor))
    with pytest.raises(ValueError, match="0 image"):
        processor(text=_prompt(processor))


def test_model_refuses_image_tokens_without_pixels_and_mismatched_features(built):
    model, processor = built["builtin"]
    inputs = processor(images=[_chart()], text=_prompt(processor))
    with pytest.raises(ValueError, match="no pixel_values"):
        model(input_ids=inputs["input_ids"])
    with pytest.raises(ValueError, match="image tokens"):
        model(input_ids=inputs["input_ids"], pixel_values=inputs["pixel_values"][:1])
    with pytest.raises(ValueError, match="image_grid describes 7 crops"):
        model(**{**inputs, "pixel_values": inputs["pixel_values"][:1]})
    with pytest.raises(ValueError, match="small branch encodes 56×56 tiles"):
        model(**{**inputs, "pixel_values": torch.zeros(7, 3, 32, 32), "branch": "small"})
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model(input_ids=torch.tensor([[10 ** 6]]))
    with pytest.raises(ValueError, match="unknown vision branch"):
        model(**{**inputs, "branch": "medium"})


@pytest.mark.parametrize("mode", ["CMYK", "RGBA", "P", "I;16", "L", "1"])
def test_unusual_image_modes_are_converted(built, mode):
    _, processor = built["builtin"]
    image = _chart(90, 60)
    if mode == "I;16":
        image = Image.fromarray((np.asarray(image.convert("L"), dtype=np.uint16) * 257))
    else:
        image = image.convert(mode)
    inputs = processor(images=[image], text=_prompt(processor))
    assert inputs["pixel_values"].shape[1:] == (3, 56, 56) and torch.isfinite(inputs["pixel_values"]).all()


def test_exif_rotation_is_applied(built):
    _, processor = built["builtin"]
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    _chart(200, 60).save(buffer, format="JPEG", exif=exif.tobytes())
    plan = processor(images=[buffer.getvalue()], text=_prompt(processor)).tile_plans[0]
    assert (plan.width, plan.height) == (60, 200)


def test_broken_empty_huge_and_non_image_inputs_get_clear_errors(built, tmp_path):
    _, processor = built["builtin"]
    text = _prompt(processor)
    with pytest.raises(ImageInputError, match="1x1 pixels"):
        processor(images=[Image.new("RGB", (1, 1))], text=text)
    not_image = tmp_path / "notes.txt"
    not_image.write_text("이건 그림이 아닙니다")
    with pytest.raises(ImageInputError, match="notes.txt"):
        processor(images=[str(not_image)], text=text)
    with pytest.raises(FileNotFoundError):
        processor(images=[str(tmp_path / "missing.png")], text=text)
    bomb = tmp_path / "bomb.png"
    Image.new("1", (9000, 9000)).save(bomb, optimize=True)
    processor.image_processor.max_pixels = 50_000_000
    with pytest.raises(ImageInputError, match="pixels"):
        processor(images=[str(bomb)], text=text)
    processor.image_processor.max_pixels = 40_000_000


def test_text_longer_than_the_context_is_refused_before_the_model(built):
    model, processor = built["builtin"]
    long_question = "서울의 인구는 얼마입니까? " * 200
    with pytest.raises(ValueError, match="reads at most 512"):
        processor(images=[_chart()], text=_prompt(processor, long_question))
    with pytest.raises(ValueError, match="reads at most 512"):
        model(input_ids=torch.ones(1, 600, dtype=torch.long))


def test_question_checks_in_the_api(built):
    vlm = KoHyperVL(*built["builtin"])
    for question, match in (("", "empty"), ("가" * 5000, "limit"), ("<image> 뭐야", "placeholder")):
        with pytest.raises(ValueError, match=match):
            vlm.ask(_chart(), question)
    with pytest.raises(ValueError, match="unknown mode"):
        vlm.ask(_chart(), "질문", mode="medium")


def test_missing_or_wrong_checkpoints(tmp_path):
    with pytest.raises(FileNotFoundError, match="model init"):
        load_checkpoint(tmp_path / "nowhere")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="missing model.safetensors"):
        load_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match="safetensors"):
        build_model(ModelBuildSettings(**{**TINY, "language": str(tmp_path)}))


def test_export_halves_the_weights_keeps_every_other_file_and_loads_back_as_float32(built, tmp_path):
    from ko_hypervl.checkpoint import export_checkpoint

    model, processor = built["builtin"]
    source = save_checkpoint(model, processor, tmp_path / "source")
    (source / "model_card.md").write_text("# card\n", encoding="utf-8")
    out = export_checkpoint(source, tmp_path / "half", torch.float16)
    assert (out / "model_card.md").read_text(encoding="utf-8") == "# card\n"
    assert not (tmp_path / "half.partial").exists()
    size = {d: (d / "model.safetensors").stat().st_size for d in (source, out)}
    assert 0.45 < size[out] / size[source] < 0.55
    loaded, loaded_processor = load_checkpoint(out)
    assert {p.dtype for p in loaded.parameters()} == {torch.float32}   # stored half, computed in float32
    inputs = processor(images=[_chart(200, 90)], text=_prompt(processor), branch="large")
    with torch.no_grad():
        reference, exported = model(**inputs).logits, loaded(**inputs).logits
    assert not torch.equal(reference, exported)                          # really rounded to float16 …
    assert torch.allclose(reference, exported, atol=2e-2, rtol=0)       # … and still the same model
    with pytest.raises(ValueError, match="must differ"):
        export_checkpoint(out, out)
