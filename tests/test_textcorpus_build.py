"""The corpus builder, end to end, on a miniature release written inside the test."""

import gzip
import json
from pathlib import Path

import pytest

from ko_hypervl import load_eval_text, load_text_corpus
from ko_hypervl.textcorpus.build import TextCorpusBuildSettings, build_text_corpus, clean_training_document, SourceStats
from ko_hypervl.textcorpus.sources import SOURCES, Document

SHARED = "버스는 정류장에 멈췄다."  # a held-out sentence that a training source repeats


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if rel.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode("utf-8")))
    else:
        path.write_text(text, encoding="utf-8")


def make_release(root: Path) -> None:
    nsmc = "review_id\tmovie_id\trating\tdate\treview\n" + "".join(
        f"{i}\t{100 + i % 3}\t9\t15.08.25\t영화 리뷰 {i}번 정말 재밌어요 &lt;3\n" for i in range(30)
    ) + "99\t100\t1\t15.08.25\tgood movie\n" + "98\t101\t1\t15.08.25\t영화 리뷰 1번 정말 재밌어요 &lt;3\n"
    write(root, "nsmc/nsmc_raw_reviews.tsv.gz", nsmc)
    write(root, "boddari/boddari/csv/wikinews.csv", "작성일,출처,제목,내용\n2009-01-20,http://x,제목입니다,\"첫 문장.\n" + SHARED + "\"\n")
    write(root, "boddari/boddari/csv/book_review01.csv.gz", "작성일,책제목,제목,작성자,출처,내용\n2016,책,서평 제목,나,http://y,좋은 책이다.\n")
    write(root, "boddari/boddari/csv/book_review02.csv", "작성일,책제목,제목,출처,내용\n2006,책,다른 서평,http://z,읽을 만하다.\n")
    write(root, "boddari/boddari/csv/fairytale01.csv", "title,writer,body\n미운 아기 오리,안데르센,옛날 옛적에\n")
    write(root, "boddari/boddari/txt/unesco_report.txt.gz", "세계시민교육\n\x07발간사\n")
    write(root, "3i4k/data/fci.txt.gz", "0\t고급\n1\t밥 먹었어?\n1\t밥 먹었어?\n")
    write(root, "sae4k/data/sae4k_v1.txt.gz", "\ufeff불 켜 줘\t불 켜기\t0\n")
    write(root, "chatbot_data/ChatbotData.csv", "Q,A,label\n안녕,반가워요.,0\n")
    write(root, "question_pair/kor_pair_train.csv", "id,qid1,qid2,question1,question2,is_duplicate\n1,1,2,질문 하나,질문 둘,1\n")
    write(root, "question_pair/kor_Pair_test.csv", "test_id,question1,question2,is_duplicate\n1,질문 셋,질문 넷,0\n")
    nli = "sentence1\tsentence2\tgold_label\n그가 말했다.\t그는 말하지 않았다.\tcontradiction\n"
    write(root, "kornlu/KorNLI/xnli.dev.ko.tsv", nli)
    write(root, "kornlu/KorNLI/xnli.test.ko.tsv", nli)
    sts = "genre\tfilename\tyear\tid\tscore\tsentence1\tsentence2\nm\tf\t2012\t1\t5.0\t비행기가 이륙한다.\t비행기가 뜬다.\n"
    for name in ("sts-train.tsv", "sts-dev.tsv", "sts-test.tsv"):
        write(root, f"kornlu/KorSTS/{name}", sts)
    for rel in ("korean-english-news-v1/korean-english-park.dev.ko", "korean-english-news-v1/korean-english-park.test.ko",
                "korean-english-jhe/jhe-koen-dev.ko", "korean-english-jhe/jhe-koen-eval.ko"):
        write(root, f"korean_parallel_corpora/{rel}", "세계 에서 가장 강력한 컴퓨터.\n")
    conllu = f"# sent_id = s1\n# text = {SHARED}\n1\t버스는\t버스+는\tNOUN\tNNG+JX\t_\t2\tnsubj\t_\t_\n" \
             "2\t정류장에\t정류장+에\tNOUN\tNNG+JKB\t_\t3\tobl\t_\t_\n3\t멈췄다.\t멈추+었+다+.\tVERB\tVV+EP+EF+SF\t_\t0\troot\t_\t_\n\n"
    for rel in ("gsd/ko_gsd-ud-dev.conllu", "gsd/ko_gsd-ud-test.conllu", "kaist/ko_kaist-ud-dev.conllu.gz",
                "kaist/ko_kaist-ud-test.conllu.gz", "pud/ko_pud-ud-test.conllu"):
        write(root, f"ud_korean/{rel}", conllu)
    write(root, "korean_ambiguity/korean_ambiguity.jsonl.gz",
          json.dumps({"surface": "가", "text": "하나가 아닌 가 생각", "answer": "가/EF"}, ensure_ascii=False) + "\n")
    write(root, "tatoeba_manythings_kor/kor.txt", "Go.\t가.\tCC-BY 2.0 (France) Attribution: tatoeba.org #1 (CM)\n")
    write(root, "klue/klue-nli-v1.1_dev.json", json.dumps([{"guid": "klue-nli-1", "premise": "전제.", "hypothesis": "가설."}]))
    write(root, "klue/klue-sts-v1.1_dev.json", json.dumps([{"guid": "klue-sts-1", "sentence1": "문장 하나.", "sentence2": "문장 둘."}]))
    write(root, "klue/klue-dp-v1.1_dev.tsv", "## 주석 : ##\n## klue-dp-1_dev\t의존 구문 문장.\n1\t의존\t의존\tNNG\t2\tNP\n\n")
    write(root, "klue/klue-ner-v1.1_dev.tsv.gz", "## klue-ner-1_dev\t<경찰:OG>은 <박:PS>씨를 만났다.\n경\tB-OG\n\n")
    for src in SOURCES:
        for rel in src.licence_files:
            if not (root / rel).exists():
                write(root, rel, f"licence of {src.name}\n")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("release")
    make_release(root)
    out = tmp_path_factory.mktemp("corpora")
    manifest = build_text_corpus(TextCorpusBuildSettings(source_dir=root, out_dir=out, nsmc_max_chars=100,
                                                         nsmc_reviews_per_film=3))
    return root, out, manifest


def test_build_writes_a_loadable_corpus(built):
    _, out, manifest = built
    assert [e["name"] for e in manifest["sources"]] == [s.name for s in SOURCES]
    corpus = load_text_corpus(out)
    texts = [t for ds in corpus.values() for t in ds["text"]]
    joined = "\n".join(texts)
    assert "good movie" not in joined  # no Hangul
    assert "&lt;" not in joined and "<3" in joined  # entities decoded
    assert "\x07" not in joined and "\ufeff" not in joined  # control characters and BOM
    assert joined.count("밥 먹었어?") == 1  # duplicate line dropped
    assert SHARED not in joined  # held-out sentence never trained on
    ner = load_eval_text(out)["klue_dev"]
    assert "경찰은 박씨를 만났다." in ner["text"]


def test_build_is_reproducible(built, tmp_path):
    root, out, manifest = built
    again = build_text_corpus(TextCorpusBuildSettings(source_dir=root, out_dir=tmp_path, nsmc_max_chars=100,
                                                      nsmc_reviews_per_film=3))
    assert [e["sha256"] for e in again["sources"]] == [e["sha256"] for e in manifest["sources"]]


def test_nsmc_budget_and_per_film_cap(built):
    _, out, manifest = built
    nsmc = next(e for e in manifest["sources"] if e["name"] == "nsmc")
    with gzip.open(out / nsmc["file"], "rt", encoding="utf-8") as fh:
        films = [json.loads(line) for line in fh]
    assert all(len(f["text"].split("\n")) <= 3 for f in films)
    assert len(films) < 3  # the 100-character budget stops after the film that crosses it


def test_missing_release_or_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="source release not found"):
        build_text_corpus(TextCorpusBuildSettings(source_dir=tmp_path / "nope", out_dir=tmp_path / "o"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="source file missing"):
        build_text_corpus(TextCorpusBuildSettings(source_dir=tmp_path / "empty", out_dir=tmp_path / "o"))


def test_clean_training_document_counts_what_it_drops():
    stats, seen = SourceStats(), set()
    doc = Document("d", "하나\n\nabc\n하나\n 둘 \n셋", {})
    out = clean_training_document(doc, seen, {"셋"}, stats)
    assert out.text == "하나\n둘"
    assert (stats.dropped_duplicate_lines, stats.dropped_non_korean_lines, stats.dropped_eval_overlap_lines) == (1, 1, 1)
    assert clean_training_document(Document("e", "abc", {}), seen, set(), SourceStats()) is None
