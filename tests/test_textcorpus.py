"""The committed Korean text corpus: splits, cleanliness, leakage, the data card, and bad files."""

import gzip
import json
import shutil
import unicodedata

import pytest

from ko_hypervl import CorpusError, SplitSettings, load_eval_text, load_text_corpus
from ko_hypervl.textcorpus.card import read_card, render_card
from ko_hypervl.textcorpus.clean import clean_line, dedup_key, has_hangul
from ko_hypervl.textcorpus.layout import default_corpora_dir
from ko_hypervl.textcorpus.load import read_manifest, split_of

CORPORA = default_corpora_dir()


@pytest.fixture(scope="module")
def corpus():
    return load_text_corpus()


@pytest.fixture(scope="module")
def heldout():
    return load_eval_text()


def test_splits_and_columns(corpus):
    assert set(corpus) == {"train", "validation", "test"}
    for ds in corpus.values():
        assert ds.column_names == ["id", "source", "genre", "text"]
    n = {k: len(v) for k, v in corpus.items()}
    assert n["train"] > 20 * n["validation"] > 0 and n["test"] > 0


def test_data_card_states_what_the_loader_returns():
    assert read_card(CORPORA / "README.md") == render_card()


def test_split_is_by_document_and_deterministic(corpus):
    keys = {split: {(s, i) for s, i in zip(ds["source"], ds["id"])} for split, ds in corpus.items()}
    assert not keys["train"] & keys["validation"]
    assert not keys["train"] & keys["test"]
    assert not keys["validation"] & keys["test"]
    for split, ds in corpus.items():
        for source, doc_id in list(zip(ds["source"], ds["id"]))[:200]:
            assert split_of(source, doc_id) == split


def test_no_line_is_in_two_splits(corpus):
    lines = {split: {dedup_key(l) for t in ds["text"] for l in t.split("\n")} for split, ds in corpus.items()}
    assert not lines["train"] & lines["test"]
    assert not lines["train"] & lines["validation"]


def test_training_text_is_clean_deduplicated_and_korean(corpus):
    seen = set()
    for split, ds in corpus.items():
        for text in ds["text"]:
            assert unicodedata.is_normalized("NFC", text)
            for line in text.split("\n"):
                assert line == clean_line(line) and line
                assert has_hangul(line)
                key = dedup_key(line)
                assert key not in seen
                seen.add(key)


def test_heldout_text_never_in_training(corpus, heldout):
    train_lines = {dedup_key(l) for ds in corpus.values() for t in ds["text"] for l in t.split("\n")}
    for name, ds in heldout.items():
        overlap = [t for t in ds["text"] if dedup_key(t) in train_lines]
        assert not overlap, f"{name}: {overlap[:3]}"


def test_heldout_sets(heldout):
    assert set(heldout) == {"ud_korean", "korean_ambiguity", "tatoeba", "klue_dev"}
    ud = heldout["ud_korean"][0]
    assert ud["words"] and {"form", "lemma", "xpos"} <= set(ud["words"][0])
    # the gold segmentation covers the sentence: eojeol forms are its space-separated pieces
    assert "".join(w["form"] for w in ud["words"]) == ud["text"].replace(" ", "")
    assert all(a for a in heldout["tatoeba"]["attribution"])  # CC BY 2.0 FR needs it per sentence
    assert not any("<" in t and ":OG>" in t for t in heldout["klue_dev"]["text"])  # NER markup stripped


def test_genre_balance(corpus):
    chars = {}
    for src, text in zip(corpus["train"]["source"], corpus["train"]["text"]):
        chars[src] = chars.get(src, 0) + len(text)
    total = sum(chars.values())
    assert chars["nsmc"] / total < 0.45
    assert len(chars) >= 10


def test_manifest_has_licence_and_attribution_for_every_source():
    root, manifest = read_manifest()
    for entry in manifest["sources"]:
        assert entry["license"] and entry["attribution"] and entry["url"]
        assert entry["licence_files"]
        for rel in entry["licence_files"]:
            assert (root / rel).is_file()


def test_corpus_fits_the_repository_budget():
    # the text corpus proper; fonts and KoBEST under corpora/ have budgets of their own (test_imagecorpus)
    size = sum(p.stat().st_size for d in ("text", "eval", "licenses") for p in (CORPORA / d).rglob("*") if p.is_file())
    assert size < 20 * 2**20


def test_split_settings_change_the_split_sizes():
    small = load_text_corpus(sources=["wikinews"], split_settings=SplitSettings(0.2, 0.2))
    assert 0.3 < (len(small["validation"]) + len(small["test"])) / sum(map(len, small.values())) < 0.5
    with pytest.raises(ValueError):
        SplitSettings(0.6, 0.5)


def test_unknown_source_is_named():
    with pytest.raises(ValueError, match="nope"):
        load_text_corpus(sources=["nope"])


# --- bad files -------------------------------------------------------------------------------------


@pytest.fixture()
def corpus_copy(tmp_path):
    dst = tmp_path / "corpora"
    shutil.copytree(CORPORA, dst)
    return dst


def test_missing_manifest(tmp_path):
    with pytest.raises(CorpusError, match="manifest not found"):
        load_text_corpus(tmp_path)


def test_corrupt_manifest(corpus_copy):
    (corpus_copy / "manifest.json").write_text("{not json")
    with pytest.raises(CorpusError, match="manifest is corrupt"):
        load_text_corpus(corpus_copy)


def test_missing_file_is_named(corpus_copy):
    (corpus_copy / "text" / "wikinews.jsonl.gz").unlink()
    with pytest.raises(CorpusError, match=r"missing: .*wikinews\.jsonl\.gz"):
        load_text_corpus(corpus_copy)


def test_corrupt_file_is_named(corpus_copy):
    path = corpus_copy / "text" / "fairytales.jsonl.gz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorpusError, match=r"corrupt: .*fairytales\.jsonl\.gz"):
        load_text_corpus(corpus_copy)
    # without the checksum, the broken gzip stream itself is reported
    with pytest.raises(CorpusError, match=r"fairytales"):
        load_text_corpus(corpus_copy, verify=False)


def test_truncated_file_without_checksum(corpus_copy):
    path = corpus_copy / "eval" / "tatoeba.jsonl.gz"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CorpusError, match="tatoeba"):
        load_eval_text(corpus_copy, verify=False)


def test_env_var_points_the_loader_elsewhere(corpus_copy, monkeypatch):
    monkeypatch.setenv("KO_HYPERVL_CORPORA", str(corpus_copy))
    assert read_manifest()[0] == corpus_copy


def test_records_are_plain_jsonl():
    with gzip.open(CORPORA / "text" / "wikinews.jsonl.gz", "rt", encoding="utf-8") as fh:
        rec = json.loads(fh.readline())
    assert set(rec) == {"id", "text"}
