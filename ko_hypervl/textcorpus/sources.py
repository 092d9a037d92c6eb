"""Readers for the licensed Korean text release the corpus is built from.

Each source is described once (name, genre, licence, attribution, files) and read by a small
function that yields documents. A *document* is the unit the train/validation/test split is made
on, so text that belongs together (an article, a review, all reviews of one film, a run of
consecutive sentences from one news file) never straddles two splits.

These readers are used only by ``ko-hypervl corpora text build``, the maintainer command that
(re)creates the committed corpus files; nothing reads the release at run time.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

csv.field_size_limit(1 << 30)


@dataclass(frozen=True)
class Document:
    id: str
    text: str
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Source:
    name: str
    genre: str
    role: str  # "train": language-model/tokenizer text; "eval": held out, never trained on
    license: str
    attribution: str
    url: str
    files: tuple[str, ...]  # paths inside the release, read by ``reader``
    licence_files: tuple[str, ...]  # the source's own LICENSE/README, copied beside the data
    reader: Callable[[Path], Iterable[Document]]
    note: str = ""


def _open_text(path: Path) -> io.TextIOBase:
    if not path.exists():
        raise FileNotFoundError(f"source file missing: {path}")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path), encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig")


def _lines(path: Path) -> Iterator[str]:
    with _open_text(path) as fh:
        for line in fh:
            yield line.rstrip("\n")


def _tsv_rows(path: Path) -> Iterator[dict]:
    with _open_text(path) as fh:
        yield from csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)


def _csv_rows(path: Path) -> Iterator[dict]:
    with _open_text(path) as fh:
        yield from csv.DictReader(fh)


def chunk_lines(prefix: str, lines: Iterable[str], size: int) -> Iterator[Document]:
    """Group consecutive lines into documents of ``size`` lines (the split unit for line corpora)."""
    buf: list[str] = []
    n = 0
    for line in lines:
        buf.append(line)
        if len(buf) == size:
            yield Document(f"{prefix}-{n:05d}", "\n".join(buf))
            buf, n = [], n + 1
    if buf:
        yield Document(f"{prefix}-{n:05d}", "\n".join(buf))


# --- training sources --------------------------------------------------------------------------


def read_nsmc(root: Path) -> Iterator[Document]:
    """Naver movie reviews, one document per film (so a film's reviews stay in one split)."""
    by_movie: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in _tsv_rows(root / "nsmc/nsmc_raw_reviews.tsv.gz"):
        by_movie[row["movie_id"]].append((row["review_id"], row["review"] or ""))
    for movie_id in sorted(by_movie, key=int):
        reviews = sorted(by_movie[movie_id], key=lambda r: int(r[0]))
        yield Document(f"movie-{movie_id}", "\n".join(text for _, text in reviews), {"movie_id": movie_id})


def read_wikinews(root: Path) -> Iterator[Document]:
    for i, row in enumerate(_csv_rows(root / "boddari/boddari/csv/wikinews.csv")):
        yield Document(f"wikinews-{i:04d}", f"{row['제목']}\n{row['내용']}", {"url": row["출처"], "date": row["작성일"]})


def read_book_reviews(root: Path) -> Iterator[Document]:
    for name in ("book_review01.csv.gz", "book_review02.csv"):
        for i, row in enumerate(_csv_rows(root / "boddari/boddari/csv" / name)):
            yield Document(f"{name.split('.')[0]}-{i:04d}", f"{row['제목']}\n{row['내용']}", {"url": row["출처"]})


def read_fairytales(root: Path) -> Iterator[Document]:
    for i, row in enumerate(_csv_rows(root / "boddari/boddari/csv/fairytale01.csv")):
        yield Document(f"tale-{i:03d}", f"{row['title']}\n{row['body']}", {"title": row["title"], "writer": row["writer"]})


def read_unesco(root: Path) -> Iterator[Document]:
    # One text file holding 15 reports without reliable boundaries: runs of 80 lines keep
    # paragraphs of one section together.
    return chunk_lines("unesco", _lines(root / "boddari/boddari/txt/unesco_report.txt.gz"), 80)


def read_3i4k(root: Path) -> Iterator[Document]:
    return chunk_lines("fci", (line.split("\t", 1)[1] for line in _lines(root / "3i4k/data/fci.txt.gz") if "\t" in line), 200)


def read_sae4k(root: Path) -> Iterator[Document]:
    def lines() -> Iterator[str]:
        for line in _lines(root / "sae4k/data/sae4k_v1.txt.gz"):
            parts = line.split("\t")
            if len(parts) >= 2:
                yield parts[0]
                yield parts[1]

    return chunk_lines("sae4k", lines(), 200)


def read_chatbot(root: Path) -> Iterator[Document]:
    def lines() -> Iterator[str]:
        for row in _csv_rows(root / "chatbot_data/ChatbotData.csv"):
            yield row["Q"]
            yield row["A"]

    return chunk_lines("chatbot", lines(), 100)


def read_question_pair(root: Path) -> Iterator[Document]:
    def lines() -> Iterator[str]:
        for name in ("kor_pair_train.csv", "kor_Pair_test.csv"):
            for row in _csv_rows(root / "question_pair" / name):
                yield row["question1"]
                yield row["question2"]

    return chunk_lines("qpair", lines(), 100)


def read_kornlu(root: Path) -> Iterator[Document]:
    def nli() -> Iterator[str]:
        for name in ("xnli.dev.ko.tsv", "xnli.test.ko.tsv"):
            for row in _tsv_rows(root / "kornlu/KorNLI" / name):
                yield row["sentence1"]
                yield row["sentence2"]

    def sts() -> Iterator[str]:
        for name in ("sts-train.tsv", "sts-dev.tsv", "sts-test.tsv"):
            for row in _tsv_rows(root / "kornlu/KorSTS" / name):
                yield row["sentence1"]
                yield row["sentence2"]

    yield from chunk_lines("kornli", nli(), 100)
    yield from chunk_lines("korsts", sts(), 100)


def read_parallel_news(root: Path) -> Iterator[Document]:
    base = root / "korean_parallel_corpora"
    for rel in (
        "korean-english-news-v1/korean-english-park.dev.ko",
        "korean-english-news-v1/korean-english-park.test.ko",
        "korean-english-jhe/jhe-koen-dev.ko",
        "korean-english-jhe/jhe-koen-eval.ko",
    ):
        # consecutive lines come from the same article: keep runs of 30 together
        yield from chunk_lines(Path(rel).name.replace(".", "-"), _lines(base / rel), 30)


# --- held-out evaluation sources ---------------------------------------------------------------


def read_conllu_sentences(path: Path) -> Iterator[dict]:
    """Sentences of a CoNLL-U file with their eojeol (form, lemma, xpos) rows; multiword lines skipped."""
    sent_id, text, words = None, None, []
    for line in _lines(path):
        if line.startswith("# sent_id"):
            sent_id = line.split("=", 1)[1].strip()
        elif line.startswith("# text"):
            text = line.split("=", 1)[1].strip()
        elif not line.strip():
            if text is not None and words:
                yield {"sent_id": sent_id, "text": text, "words": words}
            sent_id, text, words = None, None, []
        elif not line.startswith("#"):
            cols = line.split("\t")
            if len(cols) >= 5 and cols[0].isdigit():
                words.append({"form": cols[1], "lemma": cols[2], "xpos": cols[4]})
    if text is not None and words:
        yield {"sent_id": sent_id, "text": text, "words": words}


def read_ud_korean(root: Path) -> Iterator[Document]:
    for rel in (
        "gsd/ko_gsd-ud-dev.conllu",
        "gsd/ko_gsd-ud-test.conllu",
        "kaist/ko_kaist-ud-dev.conllu.gz",
        "kaist/ko_kaist-ud-test.conllu.gz",
        "pud/ko_pud-ud-test.conllu",
    ):
        treebank = rel.split("/")[0]
        for sent in read_conllu_sentences(root / "ud_korean" / rel):
            yield Document(
                f"{treebank}-{sent['sent_id']}",
                sent["text"],
                {"treebank": treebank, "words": sent["words"]},
            )


def read_korean_ambiguity(root: Path) -> Iterator[Document]:
    with _open_text(root / "korean_ambiguity/korean_ambiguity.jsonl.gz") as fh:
        for i, line in enumerate(fh):
            rec = json.loads(line)
            yield Document(f"amb-{i:05d}", rec["text"], {"surface": rec["surface"], "answer": rec["answer"]})


def read_tatoeba(root: Path) -> Iterator[Document]:
    for i, line in enumerate(_lines(root / "tatoeba_manythings_kor/kor.txt")):
        parts = line.split("\t")
        if len(parts) >= 3:
            # CC-BY 2.0 FR requires attribution per sentence: it travels with the text
            yield Document(f"tatoeba-{i:05d}", parts[1], {"english": parts[0], "attribution": parts[2]})


KLUE_NER_MARKUP = re.compile(r"<([^<>:]+):[A-Z]{2}>")  # "<경찰:OG>은" -> "경찰은"


def read_klue_dev(root: Path) -> Iterator[Document]:
    base = root / "klue"
    with _open_text(base / "klue-nli-v1.1_dev.json") as fh:
        for rec in json.load(fh):
            yield Document(rec["guid"] + "-p", rec["premise"], {"task": "nli"})
            yield Document(rec["guid"] + "-h", rec["hypothesis"], {"task": "nli"})
    with _open_text(base / "klue-sts-v1.1_dev.json") as fh:
        for rec in json.load(fh):
            yield Document(rec["guid"] + "-1", rec["sentence1"], {"task": "sts"})
            yield Document(rec["guid"] + "-2", rec["sentence2"], {"task": "sts"})
    for task, name in (("dp", "klue-dp-v1.1_dev.tsv"), ("ner", "klue-ner-v1.1_dev.tsv.gz")):
        for line in _lines(base / name):
            # sentence header lines: "## <guid>\t<raw sentence>"
            if line.startswith("## klue-") and "\t" in line:
                guid, sentence = line[3:].split("\t", 1)
                yield Document(guid, KLUE_NER_MARKUP.sub(r"\1", sentence), {"task": task})


SOURCES: tuple[Source, ...] = (
    Source("nsmc", "review/colloquial", "train", "CC0 1.0", "Lucy Park, NSMC: Naver sentiment movie corpus (e9t/nsmc)",
           "https://github.com/e9t/nsmc", ("nsmc/nsmc_raw_reviews.tsv.gz",), ("nsmc/README.md",), read_nsmc,
           "subsampled: reviews per film and films capped so NSMC does not dominate the mix"),
    Source("wikinews", "news", "train", "CC BY 2.5", "Wikinews contributors (ko.wikinews.org), collected by yiunsr/boddari",
           "https://github.com/yiunsr/boddari", ("boddari/boddari/csv/wikinews.csv",),
           ("boddari/LICENSE.md", "boddari/README.md", "boddari/wikinews/README.md"), read_wikinews),
    Source("book_reviews", "review/expository", "train",
           "CC BY (National Assembly Library reviews); CC BY 2.0 KR (Acorn Publishing blog)",
           "National Assembly Library of Korea and Acorn Publishing, collected by yiunsr/boddari",
           "https://github.com/yiunsr/boddari",
           ("boddari/boddari/csv/book_review01.csv.gz", "boddari/boddari/csv/book_review02.csv"),
           ("boddari/LICENSE.md", "boddari/book_review01/README.md", "boddari/book_review02/README.md"), read_book_reviews),
    Source("fairytales", "literature", "train", "public domain / donated works (free use) / CC BY 4.0, per tale",
           "Translators and authors as listed per tale in the boddari fairytale01 README, collected by yiunsr/boddari",
           "https://github.com/yiunsr/boddari", ("boddari/boddari/csv/fairytale01.csv",),
           ("boddari/LICENSE.md", "boddari/fairytale01/README.md"), read_fairytales),
    Source("unesco_reports", "report", "train", "CC BY-SA 3.0 IGO",
           "APCEIU / UNESCO Korean reports, collected by yiunsr/boddari", "https://github.com/yiunsr/boddari",
           ("boddari/boddari/txt/unesco_report.txt.gz",), ("boddari/LICENSE.md", "boddari/README.md"), read_unesco),
    Source("3i4k", "utterance", "train", "CC BY-SA 4.0", "Won Ik Cho et al., 3i4K (warnikchow/3i4k)",
           "https://github.com/warnikchow/3i4k", ("3i4k/data/fci.txt.gz",), ("3i4k/LICENSE", "3i4k/README.md"), read_3i4k),
    Source("sae4k", "utterance", "train", "CC BY-SA 4.0", "Won Ik Cho et al., sae4K (warnikchow/sae4k)",
           "https://github.com/warnikchow/sae4k", ("sae4k/data/sae4k_v1.txt.gz",), ("sae4k/LICENSE", "sae4k/README.md"),
           read_sae4k),
    Source("chatbot_data", "dialogue", "train", "MIT", "Youngsook Song, Chatbot_data (songys/Chatbot_data)",
           "https://github.com/songys/Chatbot_data", ("chatbot_data/ChatbotData.csv",),
           ("chatbot_data/LICENSE", "chatbot_data/README.md"), read_chatbot),
    Source("question_pair", "question", "train", "MIT", "Youngsook Song, Question_pair (songys/Question_pair)",
           "https://github.com/songys/Question_pair", ("question_pair/kor_pair_train.csv", "question_pair/kor_Pair_test.csv"),
           ("question_pair/LICENSE", "question_pair/README.md"), read_question_pair),
    Source("kornlu", "nli/sts", "train", "CC BY-SA 4.0", "Kakao Brain, KorNLI and KorSTS (kakaobrain/kor-nlu-datasets)",
           "https://github.com/kakaobrain/kor-nlu-datasets",
           ("kornlu/KorNLI/xnli.dev.ko.tsv", "kornlu/KorNLI/xnli.test.ko.tsv", "kornlu/KorSTS/sts-train.tsv",
            "kornlu/KorSTS/sts-dev.tsv", "kornlu/KorSTS/sts-test.tsv"), ("kornlu/LICENSE", "kornlu/README.md"), read_kornlu),
    Source("parallel_news", "news", "train", "CC BY-SA 3.0",
           "Jungyeul Park, korean-parallel-corpora (news v1 and JHE, Korean side)",
           "https://github.com/jungyeul/korean-parallel-corpora",
           ("korean_parallel_corpora/korean-english-news-v1/korean-english-park.dev.ko",
            "korean_parallel_corpora/korean-english-news-v1/korean-english-park.test.ko",
            "korean_parallel_corpora/korean-english-jhe/jhe-koen-dev.ko",
            "korean_parallel_corpora/korean-english-jhe/jhe-koen-eval.ko"),
           ("korean_parallel_corpora/README.md",), read_parallel_news,
           "the North-Korean news files are left out: they are the same sentences respelled (near duplicates)"),
    # held out: never in training text; used to evaluate tokenizers and language models
    Source("ud_korean", "treebank (gold morphemes)", "eval", "CC BY-SA 4.0 (GSD, Kaist); CC BY-SA 3.0 (PUD)",
           "Universal Dependencies Korean GSD, Kaist and PUD treebanks", "https://universaldependencies.org/",
           ("ud_korean/gsd/ko_gsd-ud-dev.conllu", "ud_korean/gsd/ko_gsd-ud-test.conllu",
            "ud_korean/kaist/ko_kaist-ud-dev.conllu.gz", "ud_korean/kaist/ko_kaist-ud-test.conllu.gz",
            "ud_korean/pud/ko_pud-ud-test.conllu"),
           ("ud_korean/gsd/LICENSE.txt", "ud_korean/gsd/README.md", "ud_korean/kaist/LICENSE.txt",
            "ud_korean/kaist/README.md", "ud_korean/pud/LICENSE.txt", "ud_korean/pud/README.md"), read_ud_korean),
    Source("korean_ambiguity", "mixed (ambiguous eojeol)", "eval", "CC BY 4.0",
           "Bareun NLP, korean-ambiguity-data (bareun-nlp/korean-ambiguity-data)",
           "https://github.com/bareun-nlp/korean-ambiguity-data", ("korean_ambiguity/korean_ambiguity.jsonl.gz",),
           ("korean_ambiguity/LICENSE", "korean_ambiguity/README.md"), read_korean_ambiguity),
    Source("tatoeba", "short sentences", "eval", "CC BY 2.0 FR",
           "Tatoeba (tatoeba.org), via manythings.org; per-sentence attribution kept in the `attribution` column",
           "https://tatoeba.org", ("tatoeba_manythings_kor/kor.txt",), ("tatoeba_manythings_kor/_about.txt",), read_tatoeba),
    Source("klue_dev", "mixed (KLUE dev: NLI, STS, DP, NER)", "eval", "CC BY-SA 4.0",
           "KLUE benchmark (KLUE-benchmark/KLUE), dev splits", "https://github.com/KLUE-benchmark/KLUE",
           ("klue/klue-nli-v1.1_dev.json", "klue/klue-sts-v1.1_dev.json", "klue/klue-dp-v1.1_dev.tsv",
            "klue/klue-ner-v1.1_dev.tsv.gz"), ("klue/LICENSE.md", "klue/README.md"), read_klue_dev),
)


def source_by_name(name: str) -> Source:
    for src in SOURCES:
        if src.name == name:
            return src
    raise KeyError(f"unknown corpus source {name!r}; known: {', '.join(s.name for s in SOURCES)}")
