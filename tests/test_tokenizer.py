"""The morpheme-aware Korean tokenizer: losslessness, special tokens, loading, exact ids, bad input."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st
from tokenizers import Tokenizer
from transformers import AutoTokenizer

import ko_hypervl  # noqa: F401  (registers the tokenizer class with AutoTokenizer)
from ko_hypervl.tokenization import SPECIAL_TOKENS, bundled_tokenizer_dir, load_tokenizer, tokenize_dataset
from ko_hypervl.tokenization.hf import chunk_boundaries, is_safe_cut
from ko_hypervl.tokenization.morphology import morpheme_cuts
from ko_hypervl.tokenization.train import TokenizerTrainSettings, spans_words, train_tokenizer, training_lines

FIXTURE = Path(__file__).parent / "fixtures" / "tokenizer_ids.json"

HARD = [
    "",
    " ",
    "학교에 갔었다고 했잖아요.",
    "  두 칸 띄어쓰기와\t탭,\n줄바꿈\r\n그리고 끝 공백   ",
    "ㅋㅋㅋㅋ ㅎㅎ ㅠㅠ ㄱㄴㄷ",  # compatibility jamo (NFKC would rewrite these)
    "\u1112\u1161\u11ab\u1100\u1173\u11af",  # 한글 in NFD (conjoining jamo)
    "漢字와 한자 混用, 大韓民國",
    "ＡＢＣ　전각 문자 ①②③ ㈜ ℃",
    "이모지 😀👍🏽👨‍👩‍👧 조합",
    "제어 문자\x00\x01\x7f\u200b\ufeff 포함",
    "mixed English, 日本語, русский, עברית and 한국어 2024년 3.14%",
    "뷁 햏 똠방각하 쀍",  # rare and unseen syllables fall back to bytes
    "<image> <|user|> 특수 토큰처럼 보이는 글자",
    "a" * 5000,
]


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer()


def test_bundled_tokenizer_loads_the_hf_way(tok):
    auto = AutoTokenizer.from_pretrained(str(bundled_tokenizer_dir()))
    assert type(auto).__name__ == "KoHyperVLTokenizer"
    assert len(auto) == 32000
    assert auto.encode("안녕하세요", add_special_tokens=False) == tok.encode("안녕하세요", add_special_tokens=False)


def test_plain_tokenizers_runtime_gives_the_same_ids(tok):
    plain = Tokenizer.from_file(str(bundled_tokenizer_dir() / "tokenizer.json"))
    for text in HARD:
        assert plain.encode(text, add_special_tokens=False).ids == tok.encode(text, add_special_tokens=False)


@pytest.mark.parametrize("text", HARD)
def test_round_trip_hard_cases(tok, text):
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_round_trip_any_text(tok, text):
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("가나다라마바사 하고 에서 을를 \n.,ㅋ1"), max_size=400), st.integers(5, 60))
def test_encode_long_equals_encode(tok, text, chunk):
    phrases = spans_words(tok.backend_tokenizer)
    chunks = list(chunk_boundaries(text, chunk, phrases))
    assert "".join(text[a:b] for a, b in chunks) == text
    assert all(b - a <= chunk for a, b in chunks)
    ids = tok.encode_long(text, chunk_chars=chunk)
    assert tok.decode(ids) == text
    if all(is_safe_cut(text, b, phrases) for _, b in chunks[:-1]):
        assert ids == tok.encode(text, add_special_tokens=False)


def test_encode_long_on_realistic_text_is_identical(tok):
    from ko_hypervl import load_eval_text

    text = "\n".join(load_eval_text()["klue_dev"]["text"][:3000])
    assert tok.encode_long(text, chunk_chars=500) == tok.encode(text, add_special_tokens=False)


def test_heldout_lines_round_trip(tok):
    from ko_hypervl import load_eval_text

    for name, ds in load_eval_text().items():
        lines = ds["text"][:2000]
        ids = tok(lines, add_special_tokens=False)["input_ids"]
        bad = [l for l, i in zip(lines, ids) if tok.decode(i) != l]
        assert not bad, f"{name}: {bad[:3]}"


def test_special_tokens_are_single_reserved_ids(tok):
    vocab = tok.get_vocab()
    assert [vocab[t] for t in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))
    for t in SPECIAL_TOKENS:
        assert tok.encode(t, add_special_tokens=False) == [vocab[t]]
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2)
    assert tok.image_token == "<image>" and tok.image_token_id == vocab["<image>"]
    assert tok.encode("<row_8_col_8>", add_special_tokens=False) == [vocab["<row_8_col_8>"]]


def test_chat_template(tok):
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "제목이 뭐야?"}]},
                {"role": "assistant", "content": "월별 판매량"}]
    text = tok.apply_chat_template(messages, tokenize=False)
    assert text == "<|user|>\n<image>제목이 뭐야?<|end|>\n<|assistant|>\n월별 판매량<|end|>\n"
    prompt = tok.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|assistant|>\n")


def test_batching_padding_offsets(tok):
    batch = tok(["가나다 라마", "바"], padding=True, return_offsets_mapping=True)
    assert len(batch["input_ids"][0]) == len(batch["input_ids"][1])
    assert batch["attention_mask"][1][-1] == 0 and batch["input_ids"][1][-1] == tok.pad_token_id
    text = "학교에 갔었다"
    enc = tok(text, return_offsets_mapping=True, add_special_tokens=False)
    assert "".join(text[a:b] for a, b in enc["offset_mapping"]).replace(" ", "") == text.replace(" ", "")


def test_save_load_identity(tok, tmp_path):
    tok.save_pretrained(str(tmp_path))
    again = AutoTokenizer.from_pretrained(str(tmp_path))
    assert again.get_vocab() == tok.get_vocab()
    for text in HARD:
        assert again.encode(text, add_special_tokens=False) == tok.encode(text, add_special_tokens=False)
    assert again.chat_template == tok.chat_template


def test_exact_ids_on_committed_fixture(tok):
    cases = json.loads(FIXTURE.read_text(encoding="utf-8"))
    assert len(cases) >= 10
    for case in cases:
        assert tok.encode(case["text"], add_special_tokens=False) == case["ids"], case["text"]


def test_morpheme_aligned_segmentation(tok):
    # tokens split Korean words between morphemes, not inside them
    for text in ["학교에서", "먹었습니다", "친구들과", "도서관에서"]:
        (cuts,) = morpheme_cuts([text])
        ids = tok.encode(text, add_special_tokens=False)
        bounds, pos = [], 0
        for i in ids[:-1]:
            pos += len(tok.decode([i]))
            bounds.append(pos)
        assert set(bounds) <= set(cuts), (text, [tok.decode([i]) for i in ids], cuts)


def test_fewer_tokens_than_gpt4o_on_korean(tok):
    baselines = pytest.importorskip("ko_hypervl.tokenization.baselines")
    try:
        o200k = baselines.o200k_base()
    except baselines.BaselineUnavailable as exc:
        pytest.skip(str(exc))
    from ko_hypervl import load_eval_text

    lines = load_eval_text()["klue_dev"]["text"][:1000]
    ours = sum(len(x) for x in tok(lines, add_special_tokens=False)["input_ids"])
    theirs = sum(len(x) for x in o200k.encode_batch(lines))
    assert ours < 0.85 * theirs


# --- bad input -------------------------------------------------------------------------------------


def test_non_string_input_is_a_type_error(tok):
    for bad in (123, 4.5, b"bytes", {"a": 1}, ["ok", 7]):
        with pytest.raises(TypeError, match=type(bad if not isinstance(bad, list) else 7).__name__):
            tok(bad)


def test_empty_string_has_no_tokens(tok):
    assert tok("", add_special_tokens=False)["input_ids"] == []
    assert tok.encode_long("") == []


def test_lone_surrogate_is_a_value_error(tok):
    with pytest.raises(ValueError, match="surrogate"):
        tok("정상\ud800문장")
    with pytest.raises(ValueError, match=r"text\[1\]"):
        tok(["좋아", "\udfff"])


def test_ten_megabyte_text_encodes_with_bounded_memory(tmp_path):
    code = (
        "import resource; from ko_hypervl.tokenization import load_tokenizer\n"
        "tok = load_tokenizer()\n"
        "text = ('학교에 갔었다고 했잖아요. 오늘 서울의 최고 기온은 27도입니다 ㅋㅋ\\n' * 240000)[:10_000_000]\n"
        "r0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "ids = tok.encode_long(text, chunk_chars=1 << 18)\n"
        "print(len(ids), (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - r0) // 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    n_ids, peak_mb = int(out[0]), int(out[1])
    assert n_ids > 3_000_000
    # a plain single-call encode of this text peaks near 2.7 GB; chunked it stays a fraction of that
    assert peak_mb < 600, peak_mb


def test_missing_or_corrupt_tokenizer_dir_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="tokenizer directory not found"):
        load_tokenizer(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match=r"tokenizer\.json"):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{broken")
    with pytest.raises(ValueError, match=r"corrupt: .*tokenizer\.json"):
        load_tokenizer(tmp_path)
    good = tmp_path / "good"
    shutil.copytree(bundled_tokenizer_dir(), good)
    (good / "tokenizer_config.json").write_text("{broken")
    with pytest.raises(ValueError, match=r"config is corrupt: .*tokenizer_config\.json"):
        load_tokenizer(good)


# --- training, on a throwaway tokenizer trained inside the test ------------------------------------


@pytest.fixture(scope="module")
def small_tokenizer():
    lines = training_lines(max_lines=4000)
    settings = TokenizerTrainSettings(out=Path("unused"), vocab_size=2000, join_share=0.3, cache_dir=None, kiwi_workers=0)
    return train_tokenizer(settings, lines), lines


def test_training_reserves_specials_and_hits_the_vocab_size(small_tokenizer):
    tok, _ = small_tokenizer
    assert tok.get_vocab_size() == 2000
    vocab = tok.get_vocab()
    assert [vocab[t] for t in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))


def test_trained_tokenizer_round_trips_and_joins_morphemes(small_tokenizer):
    tok, lines = small_tokenizer
    for line in lines[:500] + HARD:
        assert tok.decode(tok.encode(line, add_special_tokens=False).ids, skip_special_tokens=False) == line
    # round 2 adds tokens spanning several whole morphemes, e.g. a noun with its particle
    multi = [t for t in tok.get_vocab() if len(t) >= 6]
    assert multi


def test_join_share_trades_tokens_for_boundaries():
    lines = training_lines(max_lines=3000)
    counts = []
    for share in (0.0, 0.5):
        tok = train_tokenizer(TokenizerTrainSettings(out=Path("unused"), vocab_size=1500, join_share=share, phrase_share=0.0,
                                                     cache_dir=None, kiwi_workers=0), lines)
        counts.append(sum(len(e.ids) for e in tok.encode_batch(lines[:1000], add_special_tokens=False)))
    assert counts[1] < counts[0]


def test_space_joins_add_no_boundary_inside_words():
    """joins="space" learns only ' '+one whole morpheme, so its boundaries stay on morpheme cuts more often."""
    from ko_hypervl.tokenization.baselines import HFTokenizerAdapter
    from ko_hypervl.tokenization.bytelevel import to_byte_level
    from ko_hypervl.tokenization.metrics import BoundaryCount
    from ko_hypervl.tokenization.morphology import morpheme_cuts

    lines = training_lines(max_lines=3000)
    space = to_byte_level(" ")
    shares, toks = {}, {}
    for joins in ("space", "morphemes"):
        tok = train_tokenizer(TokenizerTrainSettings(out=Path("unused"), vocab_size=1500, join_share=0.4, joins=joins, phrase_share=0.0,
                                                     cache_dir=None, kiwi_workers=0), lines)
        sample = lines[:800]
        count = BoundaryCount()
        adapter = HFTokenizerAdapter(joins, tok)
        for line, cuts in zip(sample, morpheme_cuts(sample)):
            count.add(line, adapter.byte_spans(line), cuts)
        shares[joins], toks[joins] = count.share, tok
    joined = [t for t in toks["space"].get_vocab() if t.startswith(space) and t.strip(space)]
    assert len(joined) > 100  # round 2 spent its share on space joins ...
    assert all(space not in t.lstrip(space) and len(t) - len(t.lstrip(space)) == 1 for t in joined)  # ... and only those
    for line in lines[:200] + HARD:
        assert toks["space"].decode(toks["space"].encode(line, add_special_tokens=False).ids,
                                    skip_special_tokens=False) == line
    assert shares["space"] > shares["morphemes"]


def test_phrase_joins_span_words_but_never_end_in_a_space_or_split_a_morpheme():
    """Round 3 joins whole-morpheme tokens across one space (수 있다), which plain BPE cannot do."""
    from ko_hypervl.tokenization.bytelevel import to_byte_level
    from ko_hypervl.tokenization.hf import wrap

    lines = training_lines(max_lines=3000)
    held_out = training_lines(max_lines=4000)[3000:]
    space = to_byte_level(" ")

    def train(**kw):
        return train_tokenizer(TokenizerTrainSettings(out=Path("unused"), vocab_size=1500, cache_dir=None,
                                                      kiwi_workers=0, **kw), lines)

    words, phrases, plain = train(join_share=0.3, phrase_share=0.0), train(join_share=0.1, phrase_share=0.2), train(method="plain")
    assert phrases.get_vocab_size() == 1500
    assert spans_words(phrases) and not spans_words(words) and not spans_words(plain)
    vocab = phrases.get_vocab()
    spanning = [t for t in vocab if space in t.lstrip(space) and t.strip(space)]
    assert len(spanning) > 20, "round 3 learned no token across a space"
    assert not [t for t in vocab if t.endswith(space) and t.strip(space)], "a phrase token ends in a space"
    for line in lines[:300] + held_out[:300] + HARD:
        assert phrases.decode(phrases.encode(line, add_special_tokens=False).ids, skip_special_tokens=False) == line
    # round 3 joins only tokens whose edges were morpheme cuts or space edges in training, so on held-out
    # text the edges of tokens that span a space still fall there (Kiwi's cuts depend on context, so not
    # every time)
    sample = held_out[:300]
    on_edge = total = 0
    for line, cuts in zip(sample, morpheme_cuts(sample)):
        edges = {0, len(line), *cuts}
        edges.update(p for p in range(len(line)) if line[p].isspace() or (p and line[p - 1].isspace()))
        for start, end in phrases.encode(line, add_special_tokens=False).offsets:
            if " " in line[start:end].strip(" "):
                on_edge += (start in edges) + (end in edges)
                total += 2
    assert total > 100 and on_edge / total > 0.95, (on_edge, total)

    def count(tok):
        return sum(len(e.ids) for e in tok.encode_batch(held_out, add_special_tokens=False))

    # at this toy size plain BPE still wins (its merges are the frequent syllables); at 32k ours does, below
    assert count(phrases) < count(words)
    # long text: chunked encoding cuts only at line breaks, so it equals one encode
    hf = wrap(phrases)
    text = "\n".join(held_out[:200])
    assert hf.encode_long(text, chunk_chars=300) == phrases.encode(text, add_special_tokens=False).ids


def test_bundled_tokenizer_spends_fewer_tokens_than_a_plain_bpe_twin(tok):
    """Issue #7: the twin is plain byte-level BPE on the same lines with the same vocabulary size."""
    from ko_hypervl import load_text_corpus

    lines = training_lines()
    twin = train_tokenizer(TokenizerTrainSettings(out=Path("unused"), method="plain", vocab_size=len(tok),
                                                  cache_dir=None), lines)
    text = "\n".join(load_text_corpus()["test"]["text"])[:200_000]  # the LM's held-out text
    ours = len(tok.encode(text, add_special_tokens=False))
    theirs = len(twin.encode(text, add_special_tokens=False).ids)
    assert ours < 0.99 * theirs, (ours, theirs)  # measured: 0.4065 against 0.4180 tokens per character


def test_bad_training_settings():
    with pytest.raises(ValueError):
        TokenizerTrainSettings(out=Path("x"), vocab_size=100)
    with pytest.raises(ValueError):
        TokenizerTrainSettings(out=Path("x"), join_share=1.5)
    with pytest.raises(ValueError, match="phrase_share"):
        TokenizerTrainSettings(out=Path("x"), join_share=0.6, phrase_share=0.4)
    with pytest.raises(ValueError, match="unknown join kind"):
        TokenizerTrainSettings(out=Path("x"), joins="everything")
    with pytest.raises(ValueError, match="no training text"):
        train_tokenizer(TokenizerTrainSettings(out=Path("x"), cache_dir=None), ["", ""])


def test_tokenize_dataset_in_parallel(tok):
    from datasets import Dataset

    ds = Dataset.from_dict({"text": ["학교에 갔다", "비가 온다", "", "ㅋㅋ"] * 50})
    out = tokenize_dataset(ds, tok, num_proc=2, batch_size=16)
    assert out["num_tokens"][0] == len(out["input_ids"][0]) and out["input_ids"][0][-1] == tok.eos_token_id
    assert out["input_ids"][2] == [tok.eos_token_id]
