"""The tokenizer ablation for the LM (issue #7): the plain BPE twin tokenizer, bits per character of a
checkpoint's LM (every token predicted once, the same definition for every tokenizer), ``model bpc``."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer

from ko_hypervl.checkpoint import load_checkpoint
from ko_hypervl.cli import main
from ko_hypervl.evaluation.language import (LMEvalSettings, copy_gain, evaluate_language_models, first_documents,
                                            language_model_bits_per_char, repeated_spans, scoring_windows, stream_nll)
from ko_hypervl.textcorpus import load_text_corpus
from ko_hypervl.tokenization import SPECIAL_TOKENS, bundled_tokenizer_dir, load_tokenizer, train
from ko_hypervl.tokenization.train import TokenizerTrainSettings, spans_words, train_tokenizer
from ko_hypervl.training.data import document_token_ids, pack_text_blocks

TINY_FLAGS = ["--tile-size", "56", "--patch-size", "14", "--vit-hidden-size", "32", "--vit-layers", "1",
              "--small-vit-hidden-size", "16", "--small-vit-layers", "1", "--lm-hidden-size", "32", "--lm-layers", "1",
              "--lm-heads", "2", "--lm-kv-heads", "1", "--lm-intermediate-size", "64", "--max-positions", "512",
              "--max-tiles", "6"]
TWIN_VOCAB = 700
HARD = [
    "학교에 갔었다고 했잖아요.",
    "  두 칸 띄어쓰기와\t탭,\n줄바꿈\r\n그리고 끝 공백   ",
    "ㅋㅋㅋㅋ ㅎㅎ ㅠㅠ ㄱㄴㄷ",
    "\u1112\u1161\u11ab\u1100\u1173\u11af",
    "漢字와 한자 混用, 大韓民國 ＡＢＣ　①②③ ㈜ ℃",
    "이모지 😀👍🏽👨‍👩‍👧 조합, 제어 문자\x00\x01\x7f\u200b\ufeff 포함",
    "뷁 햏 똠방각하 쀍 mixed English, 日本語, русский 2024년 3.14%",
    "<image> <|user|> 특수 토큰처럼 보이는 글자",
]


def _no_kiwi(*args, **kwargs):
    raise AssertionError("the plain twin must not run the morpheme analysis")


@pytest.fixture(scope="module")
def twin_dir(tmp_path_factory):
    """The plain BPE twin, trained through the CLI on the first 400 corpus lines, with Kiwi made to fail."""
    out = tmp_path_factory.mktemp("twin") / "bpe-tokenizer"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train, "cached_morpheme_cuts", _no_kiwi)
        mp.setattr(train, "morpheme_cuts", _no_kiwi)
        assert main(["tokenizer", "train", "--method", "plain", "--vocab-size", str(TWIN_VOCAB), "--max-lines", "400",
                     "--cache-dir", str(out.parent / "cache"), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, twin_dir):
    """Two tiny untrained checkpoints, identical but for the tokenizer: ours (bundled) and the twin."""
    root = tmp_path_factory.mktemp("ckpts")
    assert main(["model", "init", "--out", str(root / "ours"), *TINY_FLAGS]) == 0
    assert main(["model", "init", "--out", str(root / "bpe"), "--tokenizer", str(twin_dir), *TINY_FLAGS]) == 0
    return root / "ours", root / "bpe"


@pytest.fixture(scope="module")
def test_texts():
    return load_text_corpus()["test"]["text"]


# -- 1. the plain BPE twin -----------------------------------------------------------------------------------------

def test_twin_has_our_special_tokens_ids_and_encode_pipeline(twin_dir):
    twin, ours = load_tokenizer(twin_dir), load_tokenizer()
    assert len(twin) == TWIN_VOCAB
    assert twin.convert_tokens_to_ids(SPECIAL_TOKENS) == ours.convert_tokens_to_ids(SPECIAL_TOKENS) == \
        list(range(len(SPECIAL_TOKENS)))
    for attr in ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id", "image_token_id"):
        assert getattr(twin, attr) == getattr(ours, attr), attr
    assert twin.chat_template == ours.chat_template
    spec_twin, spec_ours = (json.loads((d / "tokenizer.json").read_text(encoding="utf-8"))
                            for d in (twin_dir, bundled_tokenizer_dir()))
    for part in ("decoder", "post_processor", "normalizer"):
        assert spec_twin[part] == spec_ours[part], part
    # the twin is plain BPE: GPT-2's word pre-tokenizer, no token across a space; ours may join phrases
    assert spec_twin["pre_tokenizer"]["type"] == "ByteLevel" and spec_twin["pre_tokenizer"]["use_regex"]
    assert not spans_words(Tokenizer.from_file(str(twin_dir / "tokenizer.json")))
    assert json.loads((twin_dir / "training_args.json").read_text())["method"] == "plain"


def test_twin_round_trips_exactly(twin_dir, test_texts):
    twin = load_tokenizer(twin_dir)
    for text in HARD + list(test_texts[:20]):
        ids = twin.encode(text, add_special_tokens=False)
        assert twin.decode(ids) == text


def test_twin_merges_cross_morpheme_and_space_cuts():
    """Plain BPE learns a word with its leading space and its particle as one token; ours never does in round 1."""
    lines = ["학교에 갔다. 학교에서 놀았다. 우리 학교에 가자."] * 50
    tok = train_tokenizer(TokenizerTrainSettings(out=Path("unused"), vocab_size=500, method="plain", cache_dir=None),
                          lines)
    assert tok.decode(tok.encode(" 학교에").ids) == " 학교에"
    assert len(tok.encode(" 학교에", add_special_tokens=False).ids) == 1


def test_plain_method_skips_kiwi_in_process(monkeypatch):
    monkeypatch.setattr(train, "cached_morpheme_cuts", _no_kiwi)
    monkeypatch.setattr(train, "morpheme_cuts", _no_kiwi)
    tok = train_tokenizer(TokenizerTrainSettings(out=Path("unused"), vocab_size=460, method="plain", cache_dir=None),
                          ["가나다라 마바사"] * 10)
    assert [tok.get_vocab()[t] for t in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))
    with pytest.raises(AssertionError, match="must not run"):   # the default method does run it
        train_tokenizer(TokenizerTrainSettings(out=Path("unused"), vocab_size=460, cache_dir=None), ["가나다"] * 10)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown tokenizer method 'bpe'; choose from morpheme, plain"):
        TokenizerTrainSettings(out=Path("x"), method="bpe")


# -- 2. bits per character -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("n, block", [(2, 2), (3, 2), (10, 2), (10, 3), (10, 10), (10, 11), (257, 256), (1000, 64)])
def test_windows_predict_every_token_after_the_first_once(n, block):
    windows = scoring_windows(n, block)
    targets = [t for start, end in windows for t in range(start + 1, end)]
    assert targets == list(range(1, n))
    assert all(2 <= end - start <= block for start, end in windows)
    assert all(end - start == block for start, end in windows[:-1])
    assert all(b[0] == a[1] - 1 for a, b in zip(windows, windows[1:]))   # next input starts at the last target


def test_stream_is_the_lm_stages_stream():
    tok = load_tokenizer()
    texts = ["첫 문서입니다.", "   ", "", "둘째 문서.\n두 줄."]
    ids = document_token_ids(tok, texts, progress=False)
    expected = []
    for text in ("첫 문서입니다.", "둘째 문서.\n두 줄."):
        expected += tok.encode(text, add_special_tokens=False) + [tok.eos_token_id]
    assert ids == expected
    blocks = pack_text_blocks(tok, texts, 4, progress=False)
    assert blocks.flatten().tolist() == ids[:blocks.numel()]


class Bigram(torch.nn.Module):
    """Logits depend on the current token only, so windowing cannot change any token's loss."""

    def __init__(self, vocab: int):
        super().__init__()
        self.table = torch.nn.Embedding(vocab, vocab)
        torch.nn.init.normal_(self.table.weight, std=2.0, generator=torch.Generator().manual_seed(0))

    def forward(self, input_ids):
        return type("Out", (), {"logits": self.table(input_ids)})()


def test_window_size_does_not_change_a_context_free_models_loss():
    ids = torch.randint(0, 50, (301,), generator=torch.Generator().manual_seed(1)).tolist()
    model = Bigram(50)
    x = torch.tensor(ids)
    direct = torch.nn.functional.cross_entropy(model.table(x[:-1]), x[1:], reduction="sum").item()
    for block, batch in [(2, 1), (3, 4), (17, 3), (64, 8), (300, 2), (301, 1), (512, 8)]:
        assert stream_nll(model, ids, block, batch) == pytest.approx(direct, rel=1e-6, abs=1e-4), (block, batch)


class CopyOracle(torch.nn.Module):
    """Knows the spans are fed twice: in the second copy it predicts the token one span back, else nothing."""

    def __init__(self, vocab: int, span: int):
        super().__init__()
        self.vocab, self.span = vocab, span
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids):
        logits = torch.zeros(*input_ids.shape, self.vocab)
        nxt = input_ids[:, 1:self.span]   # what position span + i predicts: token i + 1 of the span
        logits[:, self.span:2 * self.span - 1].scatter_(-1, nxt.unsqueeze(-1), 30.0)
        return type("Out", (), {"logits": logits})()


def test_copy_gain_is_zero_without_context_and_log_vocab_for_a_perfect_copier():
    ids = torch.randint(0, 50, (1000,), generator=torch.Generator().manual_seed(2)).tolist()
    pairs = repeated_spans(ids, 16, 5)
    assert pairs.shape == (5, 32) and pairs[1, :16].tolist() == ids[16:32] == pairs[1, 16:].tolist()
    assert repeated_spans(ids, 300, 64).shape == (3, 600)   # as many whole spans as the stream has
    bigram = copy_gain(Bigram(50), ids, span=16, count=10, batch_size=3)   # the same targets after the same token
    assert bigram["copy_gain_nats"] == pytest.approx(0.0, abs=1e-5) and bigram["copy_spans"] == 10
    oracle = copy_gain(CopyOracle(50, 16), ids, span=16, count=10)
    assert oracle["copy_first_nats"] == pytest.approx(math.log(50), rel=1e-5)
    assert oracle["copy_second_nats"] == pytest.approx(0.0, abs=1e-6)
    assert oracle["copy_gain_nats"] == pytest.approx(math.log(50), rel=1e-5)
    with pytest.raises(ValueError, match="fewer than one copy span"):
        repeated_spans(ids[:10], 16, 5)
    with pytest.raises(ValueError, match="at least 2 tokens"):
        repeated_spans(ids, 1, 5)


def test_one_window_equals_the_full_sequence_and_batching_changes_nothing(checkpoints, test_texts):
    model, processor = load_checkpoint(checkpoints[0])
    tok = processor.tokenizer
    texts = first_documents(test_texts, 600)
    ids = document_token_ids(tok, texts, progress=False)
    assert 20 < len(ids) <= 512
    result = language_model_bits_per_char(model, tok, texts, block_size=512, batch_size=8)
    x = torch.tensor([ids])
    with torch.no_grad():
        logits = model(input_ids=x).logits[0, :-1]
    direct = torch.nn.functional.cross_entropy(logits.float(), x[0, 1:], reduction="sum").item()
    assert result["nats"] == pytest.approx(direct, rel=1e-4)
    assert result["predicted_tokens"] == len(ids) - 1 and result["tokens"] == len(ids)
    assert result["chars"] == sum(map(len, texts))
    assert result["bits_per_char"] == pytest.approx(direct / math.log(2) / result["chars"], rel=1e-4)
    # several windows: batched (full windows together, the short last one alone) equals one window at a time
    windows = scoring_windows(len(ids), 16)
    with torch.no_grad():
        one_by_one = sum(torch.nn.functional.cross_entropy(
            model(input_ids=x[:, s:e]).logits[0, :-1].float(), x[0, s + 1:e], reduction="sum").item()
            for s, e in windows)
    several = language_model_bits_per_char(model, tok, texts, block_size=16, batch_size=5)
    assert several["nats"] == pytest.approx(one_by_one, rel=1e-4)
    assert several["predicted_tokens"] == result["predicted_tokens"]


def test_untrained_model_scores_about_log2_vocab_bits_per_token(checkpoints, test_texts):
    model, processor = load_checkpoint(checkpoints[0])
    texts = first_documents(test_texts, 4000)
    result = language_model_bits_per_char(model, processor.tokenizer, texts, block_size=128, batch_size=8)
    vocab = len(processor.tokenizer)
    uniform = math.log2(vocab) * result["predicted_tokens"] / result["chars"]
    assert result["bits_per_char"] == pytest.approx(uniform, rel=0.03)
    assert result["bits_per_token"] == pytest.approx(math.log2(vocab), rel=0.03)
    assert result["tokens_per_char"] == pytest.approx(result["tokens"] / result["chars"])
    assert 0.2 < result["tokens_per_char"] < 1.0


def test_first_documents_are_whole_and_the_same_for_every_model():
    docs = ["가" * 5, " ", "나" * 5, "다" * 5]
    assert first_documents(docs, 0) == ["가" * 5, "나" * 5, "다" * 5]
    assert first_documents(docs, 12) == ["가" * 5, "나" * 5]
    assert first_documents(docs, 3) == ["가" * 3]   # a first document longer than the budget is cut


# -- 3. ko-hypervl model bpc ---------------------------------------------------------------------------------------

def test_bpc_cli_prints_both_models_side_by_side(checkpoints, tmp_path, capsys):
    ours, bpe = checkpoints
    out = tmp_path / "bpc.json"
    assert main(["model", "bpc", str(ours), str(bpe), "--max-chars", "3000", "--block-size", "64",
                 "--json-out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    rows = [line for line in printed.splitlines() if line.startswith(f"| {ours} ") or line.startswith(f"| {bpe} ")]
    assert len(rows) == 2 and rows[0].startswith(f"| {ours} ")
    assert "32,000" in rows[0] and f"{TWIN_VOCAB:,}" in rows[1]
    record = json.loads(out.read_text(encoding="utf-8"))
    first, second = record["rows"]
    assert first["model"] == str(ours) and second["model"] == str(bpe)
    assert first["bits_per_char_ratio"] == 1.0
    assert second["bits_per_char_ratio"] == pytest.approx(second["bits_per_char"] / first["bits_per_char"])
    assert first["chars"] == second["chars"] and first["documents"] == second["documents"]   # the same text
    assert second["vocab_size"] == TWIN_VOCAB and first["vocab_size"] == 32000
    assert first["tokens_per_char"] != second["tokens_per_char"]
    assert record["settings"]["models"] == [str(ours), str(bpe)]
    assert "copy gain" in printed and abs(first["copy_gain_nats"]) < 0.5   # untrained: no copying
    assert first["copy_span"] == 64 and first["copy_first_nats"] > 5


# -- 4. bad input --------------------------------------------------------------------------------------------------

def test_bad_settings_are_clear():
    with pytest.raises(ValueError, match="block size must be at least 2"):
        LMEvalSettings(models=["x"], block_size=1)
    with pytest.raises(ValueError, match="at least one checkpoint"):
        LMEvalSettings(models=[])
    with pytest.raises(ValueError, match="--batch-size must be at least 1"):
        LMEvalSettings(models=["x"], batch_size=0)
    with pytest.raises(ValueError, match="unknown split"):
        LMEvalSettings(models=["x"], split="dev")
    with pytest.raises(ValueError, match="--max-chars cannot be negative"):
        LMEvalSettings(models=["x"], max_chars=-1)
    for span, spans in [(1, 64), (-1, 64), (64, 0)]:
        with pytest.raises(ValueError, match="--copy-span must be 0"):
            LMEvalSettings(models=["x"], copy_span=span, copy_spans=spans)


def test_missing_checkpoint_is_named_before_any_scoring(checkpoints, tmp_path, capsys):
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match=re.escape(f"model directory not found: {missing}")):
        evaluate_language_models(LMEvalSettings(models=[str(checkpoints[0]), str(missing)], progress=False))
    assert main(["model", "bpc", str(checkpoints[0]), str(missing), "--no-progress"]) == 1
    assert f"model directory not found: {missing}" in capsys.readouterr().err
    (tmp_path / "half").mkdir()
    with pytest.raises(FileNotFoundError, match="not a complete ko-hypervl checkpoint"):
        evaluate_language_models(LMEvalSettings(models=[str(tmp_path / "half")], progress=False))


def test_bad_text_and_block_size_are_clear(checkpoints):
    model, processor = load_checkpoint(checkpoints[0])
    tok = processor.tokenizer
    with pytest.raises(ValueError, match="no text to score"):
        language_model_bits_per_char(model, tok, ["", "  \n"], block_size=16)
    with pytest.raises(ValueError, match="block size must be at least 2"):
        language_model_bits_per_char(model, tok, ["안녕하세요"], block_size=1)
    with pytest.raises(ValueError, match=r"longer than the language model's context \(512 tokens\)"):
        language_model_bits_per_char(model, tok, ["안녕하세요"], block_size=1024)
    with pytest.raises(ValueError, match="literal string '<image>'"):
        language_model_bits_per_char(model, tok, ["그림 <image> 설명"], block_size=16)
