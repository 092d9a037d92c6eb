"""Vocabulary transfer onto tiny Llama/Qwen2 models, with two tiny byte-level BPE tokenizers trained here."""

from __future__ import annotations

import copy

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM,
)

from ko_hypervl.model.vocab_transfer import TransferReport, transfer_embeddings, transfer_vocabulary

OLD_TEXT = [
    "오늘은 날씨가 정말 좋습니다.", "저는 학교에 가서 친구를 만났어요.", "한국어 문장을 여러 번 반복합니다.",
    "우리는 도서관에서 책을 읽었습니다.", "내일은 비가 올 것 같아요.", "서울은 한국의 수도입니다.",
    "커피를 마시면서 음악을 들었어요.", "이 영화는 정말 재미있었습니다.", "The weather is really nice today.",
    "We read books in the library.", "Seoul is the capital of Korea.", "I met my friend at school.",
]
NEW_TEXT = [
    "날씨가 좋아서 공원에 산책을 갔습니다.", "학교에서 한국어와 영어를 배웁니다.", "친구와 함께 영화를 봤어요.",
    "도서관에 새로운 책이 많이 있습니다.", "비가 오면 집에서 음악을 듣습니다.", "수도 서울에는 사람이 많아요.",
    "아침마다 커피를 한 잔 마십니다.", "이 문장은 새 토크나이저를 위한 것입니다.", "The library has many new books.",
    "My friend likes coffee and music.", "It rains a lot in Seoul.", "We walked in the park today.",
]
HELD_OUT = "오늘은 친구와 도서관에서 책을 읽었습니다."

OLD_SPECIALS = ["<unk>", "<s>", "</s>", "<pad>"]
NEW_SPECIALS = ["<|pad|>", "<|bos|>", "<|eos|>", "<|unk|>", "<image>", "<|user|>"]


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy machine their spin-waits cost seconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _bpe(texts: list[str], specials: list[str], vocab_size: int, **roles) -> PreTrainedTokenizerFast:
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts * 20, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=backend, **roles)


@pytest.fixture(scope="module")
def old_tok():
    # Small vocabulary: like an English-first LM, the old tokenizer cuts Korean into short pieces.
    return _bpe(OLD_TEXT, OLD_SPECIALS, 300, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>")


@pytest.fixture(scope="module")
def new_tok():
    return _bpe(NEW_TEXT, NEW_SPECIALS, 500, bos_token="<|bos|>", eos_token="<|eos|>", pad_token="<|pad|>",
                unk_token="<|unk|>")


def _llama(old_tok, tied: bool) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(old_tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=2, tie_word_embeddings=tied, bos_token_id=old_tok.bos_token_id,
        eos_token_id=old_tok.eos_token_id, pad_token_id=old_tok.pad_token_id,
    )
    return LlamaForCausalLM(config).eval()


def _text_of(new_tok, token_id: int) -> str:
    """Surface text of a new token via the backend's own ByteLevel decoder (independent of the module)."""
    return new_tok.backend_tokenizer.decoder.decode([new_tok.convert_ids_to_tokens(token_id)])


def test_copy_average_and_specials(old_tok, new_tok):
    torch.manual_seed(1)
    old_emb = torch.randn(len(old_tok), 16)
    new_emb, report = transfer_embeddings(old_emb, old_tok, new_tok)
    assert new_emb.shape == (len(new_tok), 16) and new_emb.dtype == old_emb.dtype
    assert isinstance(report, TransferReport)
    assert report.copied + report.averaged + report.fallback == len(new_tok)

    old_vocab, specials = old_tok.get_vocab(), set(NEW_SPECIALS)
    shared = [t for t in new_tok.get_vocab() if t in old_vocab and t not in specials]
    split = []
    for token, i in new_tok.get_vocab().items():
        if token in specials or token in old_vocab:
            continue
        text = _text_of(new_tok, i)  # U+FFFD marks a partial UTF-8 piece, tested separately
        if "\ufffd" not in text and len(old_tok.encode(text, add_special_tokens=False)) > 1:
            split.append((i, text))
    assert len(shared) > 50 and len(split) > 20

    # 1. same string in both vocabularies: the old row, exactly
    for token in shared:
        assert torch.equal(new_emb[new_tok.convert_tokens_to_ids(token)], old_emb[old_vocab[token]])
    # 2. split by the old tokenizer: the mean of its pieces (a leading space stays on the first piece)
    leading_space = [(i, t) for i, t in split if t.startswith(" ")]
    assert leading_space, "want at least one Ġ-token among the split ones"
    for i, text in split:
        pieces = old_tok.encode(text, add_special_tokens=False)
        torch.testing.assert_close(new_emb[i], old_emb[pieces].mean(0))
    i, text = leading_space[0]
    assert old_tok.convert_ids_to_tokens(old_tok.encode(text, add_special_tokens=False))[0].startswith("Ġ")
    # 3. specials by role; extra specials (and unknown-role ones) get the mean of all old rows
    for new, old in [("<|bos|>", "<s>"), ("<|eos|>", "</s>"), ("<|pad|>", "<pad>"), ("<|unk|>", "<unk>")]:
        assert torch.equal(new_emb[new_tok.convert_tokens_to_ids(new)], old_emb[old_vocab[old]])
        assert report.specials_mapped[new] == old
    for extra in ("<image>", "<|user|>"):
        torch.testing.assert_close(new_emb[new_tok.convert_tokens_to_ids(extra)], old_emb.mean(0))
        assert extra not in report.specials_mapped
    assert report.fallback >= 2


def _is_partial_utf8(new_tok, token: str) -> bool:
    """The ByteLevel decoder replaces bytes that are not valid UTF-8 on their own with U+FFFD."""
    return "\ufffd" in new_tok.backend_tokenizer.decoder.decode([token])


def test_partial_utf8_tokens_use_old_byte_pieces(old_tok, new_tok):
    """A byte-level piece of a Korean syllable has no text: copied, or built from the old byte tokens."""
    torch.manual_seed(2)
    old_emb = torch.randn(len(old_tok), 8)
    new_emb, _ = transfer_embeddings(old_emb, old_tok, new_tok)
    old_vocab = old_tok.get_vocab()
    lead = "ì"  # byte 0xEC as a ByteLevel symbol: the first byte of many Hangul syllables
    assert torch.equal(new_emb[new_tok.convert_tokens_to_ids(lead)], old_emb[old_vocab[lead]])
    # Two-symbol partial pieces the old vocabulary lacks: the mean of the two old single-byte rows.
    pairs = [t for t in new_tok.get_vocab() if len(t) == 2 and t not in old_vocab and _is_partial_utf8(new_tok, t)]
    assert pairs
    for token in pairs:
        expected = old_emb[[old_vocab[token[0]], old_vocab[token[1]]]].mean(0)
        torch.testing.assert_close(new_emb[new_tok.convert_tokens_to_ids(token)], expected)


@pytest.mark.parametrize("arch", ["llama-untied", "llama-tied", "qwen2"])
def test_transfer_vocabulary_updates_model(old_tok, new_tok, arch):
    if arch == "qwen2":
        torch.manual_seed(0)
        model = Qwen2ForCausalLM(Qwen2Config(
            vocab_size=len(old_tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
            num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True,
        )).eval()
    else:
        model = _llama(old_tok, tied=arch == "llama-tied")
    tied = model.config.tie_word_embeddings
    old_in = model.get_input_embeddings().weight.detach().clone()
    old_out = model.get_output_embeddings().weight.detach().clone()

    report = transfer_vocabulary(model, old_tok, new_tok)

    emb, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    assert emb.shape == (len(new_tok), 32) and head.shape == (len(new_tok), 32)
    assert model.config.vocab_size == len(new_tok)
    for role in ("bos", "eos", "pad"):
        assert getattr(model.config, f"{role}_token_id") == getattr(new_tok, f"{role}_token_id")
        assert getattr(model.generation_config, f"{role}_token_id") == getattr(new_tok, f"{role}_token_id")
    assert report.copied + report.averaged + report.fallback == len(new_tok)
    expected_in, _ = transfer_embeddings(old_in, old_tok, new_tok)
    torch.testing.assert_close(emb.detach(), expected_in)
    if tied:
        assert head is emb
    else:
        assert head is not emb
        expected_out, _ = transfer_embeddings(old_out, old_tok, new_tok)
        torch.testing.assert_close(head.detach(), expected_out)
        assert not torch.allclose(head, emb)

    ids = torch.tensor([[new_tok.bos_token_id, *new_tok.encode(HELD_OUT, add_special_tokens=False)]])
    assert int(ids.max()) >= len(old_tok)  # ids only the grown matrix has
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    assert logits.shape == (1, ids.shape[1], len(new_tok))
    out = model.generate(ids, max_new_tokens=3, do_sample=False, pad_token_id=new_tok.pad_token_id)
    assert out.shape == (1, ids.shape[1] + 3) and int(out.max()) < len(new_tok)


@pytest.mark.parametrize("tied", [False, True])
def test_transfer_beats_random_init(old_tok, new_tok, tied):
    """A model trained with the old tokenizer keeps more of what it learned than random new rows.

    The old model sees both texts (as a pretrained LM has seen the language) through the old
    tokenizer; the held-out sentence mixes their words and is scored through the new tokenizer.
    Zero-shot transfer needs that: a model this small and this sharp, scored on words it never saw,
    is confidently wrong after transfer and then scores worse than near-uniform random rows.
    """
    model = _llama(old_tok, tied=tied).train()
    rows = [old_tok.encode(t, add_special_tokens=False) for t in OLD_TEXT + NEW_TEXT]
    width = max(map(len, rows)) + 1
    batch = torch.full((len(rows), width), old_tok.pad_token_id)
    labels = torch.full_like(batch, -100)
    for r, ids in enumerate(rows):
        batch[r, : len(ids) + 1] = torch.tensor([old_tok.bos_token_id, *ids])
        labels[r, : len(ids) + 1] = batch[r, : len(ids) + 1]
    optim = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(30):
        optim.zero_grad()
        model(input_ids=batch, labels=labels).loss.backward()
        optim.step()
    model.eval()

    transferred, randomised = copy.deepcopy(model), copy.deepcopy(model)
    transfer_vocabulary(transferred, old_tok, new_tok)
    transfer_vocabulary(randomised, old_tok, new_tok)
    with torch.no_grad():  # same model, same shapes, but fresh random vocabulary rows
        for w in (randomised.get_input_embeddings().weight, randomised.get_output_embeddings().weight):
            w.normal_(0.0, randomised.config.initializer_range)

    ids = torch.tensor([[new_tok.bos_token_id, *new_tok.encode(HELD_OUT, add_special_tokens=False)]])
    with torch.no_grad():
        loss_transferred = transferred(input_ids=ids, labels=ids).loss.item()
        loss_random = randomised(input_ids=ids, labels=ids).loss.item()
    print(f"held-out loss: transferred {loss_transferred:.3f}, random {loss_random:.3f}")
    assert loss_transferred < loss_random - 0.75
