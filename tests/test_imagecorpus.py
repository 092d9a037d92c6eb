"""The rendered image-text corpora: determinism, exact answers (recomputed here, independently of the
question writers), held-out fonts/words/styles, fonts and licences, bad input, the CLI."""

from __future__ import annotations

import gzip
import hashlib
import json
import lzma
import random
import re
from fractions import Fraction
from pathlib import Path

import pytest
from datasets import load_from_disk

from ko_hypervl.cli import main
from ko_hypervl.imagecorpus import build as build_module
from ko_hypervl.imagecorpus.build import ImageCorpusSettings, build_image_corpus, render_sample
from ko_hypervl.imagecorpus.charts import nice_axis_max
from ko_hypervl.imagecorpus.chartspec import CHART_KINDS, TIME_AXES, ChartSpec, sample_chart_spec
from ko_hypervl.imagecorpus.examitems import CIRCLED, math_item
from ko_hypervl.imagecorpus.fonts import FontError, coverage, faces_for, fonts_dir, load_font_catalog
from ko_hypervl.imagecorpus.korean import josa
from ko_hypervl.imagecorpus.look import TEST_STYLES, styles_for
from ko_hypervl.imagecorpus.ocr import corpus_lines
from ko_hypervl.imagecorpus.questions import chart_questions
from ko_hypervl.imagecorpus.records import KINDS, qa_pairs
from ko_hypervl.imagecorpus.vocab import DOMAINS, words_for

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A small build with every kind (the test split must get samples of every kind too)."""
    out = tmp_path_factory.mktemp("images") / "ds"
    build_image_corpus(ImageCorpusSettings(out=out, num=24, seed=7, workers=2, test_fraction=0.25,
                                           validation_fraction=0.1))
    return out


def _rows(path: Path):
    dataset = load_from_disk(str(path))
    for split, ds in dataset.items():
        for row in ds.remove_columns("image"):
            yield split, row


# ---------------------------------------------------------------- answers, recomputed from metadata

def _number(text: str) -> Fraction:
    return Fraction(text.replace(",", ""))


def _answer_value(answer: str, unit: str) -> Fraction:
    assert answer.endswith(unit), (answer, unit)
    return _number(answer[: len(answer) - len(unit)] if unit else answer)


def _mentioned(question: str, names) -> list[str]:
    # longest first, so '구름 조금' is not taken for a shorter word inside it
    found, rest = [], question
    for name in sorted(names, key=len, reverse=True):
        if name in rest:
            found.append(name)
            rest = rest.replace(name, "\0")
    return found


def check_chart_answer(spec: ChartSpec, question: str, answer: str, task: str) -> None:
    # the measure and axis names are not categories ('비' is a category inside '응답 비율')
    plain = question.replace(spec.measure, "\0").replace(spec.category_label + "별", "\0")
    series = _mentioned(plain, spec.series) if len(spec.series) > 1 else [spec.series[0]]
    for name in series:
        plain = plain.replace(name, "\0")
    cats = _mentioned(plain, spec.categories)
    ordered = sorted(cats, key=plain.index)
    s = spec.series.index(series[0]) if series else 0
    values = dict(zip(spec.categories, spec.values[s]))
    if task == "lookup":
        assert _answer_value(answer, spec.unit) == values[ordered[0]]
    elif task == "max":
        assert answer == max(values, key=values.get)
    elif task == "min":
        assert answer == min(values, key=values.get)
    elif task == "difference":
        a, b = ordered
        assert _answer_value(answer, spec.unit) == abs(values[a] - values[b])
    elif task == "compare" and len(ordered) == 2:
        a, b = ordered
        assert answer == (a if values[a] > values[b] else b)
    elif task == "compare":   # which series is larger for one category
        (c,) = ordered
        v0, v1 = (spec.values[i][spec.categories.index(c)] for i in range(2))
        assert answer == (spec.series[0] if v0 > v1 else spec.series[1] if v1 > v0 else "같습니다")
    elif task == "sum" and spec.kind == "pie":
        a, b = ordered
        assert answer == f"{values[a] + values[b]}%"
    elif task == "sum" and " + " in question:
        (c,) = ordered
        total = sum(v[spec.categories.index(c)] for v in spec.values)
        assert _answer_value(answer, spec.unit) == total
    elif task == "sum":
        assert _answer_value(answer, spec.unit) == sum(values.values())
    elif task == "average":
        mean = Fraction(sum(values.values()), len(values))
        got = _answer_value(answer, spec.unit)
        assert abs(got - mean) <= Fraction(1, 20) and (mean.denominator != 1 or got == mean)
    elif task == "title":
        assert answer == spec.title
    elif task == "unit":
        assert answer == spec.unit
    elif task == "to_table":
        lines = answer.split("\n")
        header = [c.strip() for c in lines[0].strip("|").split("|")]
        assert header[0] == spec.category_label and len(header) == 1 + len(spec.series)
        body = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
        assert [r[0] for r in body] == list(spec.categories)
        for j in range(len(spec.series)):
            assert [_number(r[j + 1]) for r in body] == list(spec.values[j])
    elif task == "trend" and "언제" in question:
        steps = [b - a for a, b in zip(spec.values[s], spec.values[s][1:])]
        i = steps.index(max(steps))
        assert answer == f"{spec.categories[i]}에서 {spec.categories[i + 1]} 사이"
    elif task == "trend":
        v = spec.values[s]
        if all(b > a for a, b in zip(v, v[1:])):
            assert answer == "계속 증가했습니다."
        elif all(b < a for a, b in zip(v, v[1:])):
            assert answer == "계속 감소했습니다."
        else:
            assert answer.endswith("증가했습니다." if v[-1] > v[0] else "감소했습니다.")
    else:
        raise AssertionError(f"unchecked task {task!r}")


@pytest.mark.parametrize("kind", [*CHART_KINDS, "table"])
def test_chart_answers_recomputed_from_spec(kind):
    rng = random.Random(kind)
    tasks = set()
    for _ in range(150):
        spec = sample_chart_spec(rng, rng.choice(("train", "test")), kind)
        for qa in chart_questions(spec, rng, 20):
            check_chart_answer(spec, qa.question, qa.answer, qa.task)
            tasks.add(qa.task)
    assert {"lookup", "max", "min", "compare", "difference", "title", "to_table"} <= tasks
    if kind == "line":
        assert "trend" in tasks


def _solve_math(stem: str) -> Fraction:
    """Solve a generated math stem from its text alone."""
    if m := re.fullmatch(r"\(?(-?\d+)\)? × (\d+) \+ (\d+) ÷ (\d+)의 값은\?", stem):
        a, b, d, c = map(int, m.groups())
        return Fraction(a * b) + Fraction(d, c)
    if m := re.fullmatch(r"일차방정식 (.+) = (.+)의 해는\?", stem):
        def parse(side):
            m2 = re.fullmatch(r"(-?\d*)x(?: ([+-]) (\d+))?", side)
            coef = {"": 1, "-": -1}.get(m2.group(1), None)
            coef = int(m2.group(1)) if coef is None else coef
            const = 0 if not m2.group(2) else int(m2.group(3)) * (1 if m2.group(2) == "+" else -1)
            return coef, const
        (a, b), (c, d) = parse(m.group(1)), parse(m.group(2))
        return Fraction(d - b, a - c)
    if m := re.fullmatch(r"정가가 ([\d,]+)원인 물건을 (\d+)% 할인하여 팔 때, 판매 가격은\?", stem):
        return _number(m.group(1)) * (100 - int(m.group(2))) / 100
    if m := re.fullmatch(r"학생 \d+명의 수학 점수가 (.+)점일 때, 점수의 평균은\?", stem):
        scores = [int(x) for x in m.group(1).split(", ")]
        return Fraction(sum(scores), len(scores))
    if m := re.fullmatch(r"시속 (\d+) km로 (?:(\d+)시간)? ?(?:(\d+)분)? 동안 이동한 거리는\?", stem):
        minutes = int(m.group(2) or 0) * 60 + int(m.group(3) or 0)
        return Fraction(int(m.group(1)) * minutes, 60)
    if m := re.fullmatch(r"가로가 (\d+) cm, 세로가 (\d+) cm인 직사각형의 넓이는\?", stem):
        return Fraction(int(m.group(1)) * int(m.group(2)))
    if m := re.fullmatch(r"밑변이 (\d+) cm, 높이가 (\d+) cm인 삼각형의 넓이는\?", stem):
        return Fraction(int(m.group(1)) * int(m.group(2)), 2)
    if m := re.fullmatch(r"(\d+)[과와] (\d+)의 최대공약수는\?", stem):
        import math
        return Fraction(math.gcd(int(m.group(1)), int(m.group(2))))
    if m := re.fullmatch(r"(\d+)[과와] (\d+)의 최소공배수는\?", stem):
        import math
        return Fraction(math.lcm(int(m.group(1)), int(m.group(2))))
    if m := re.fullmatch(r"(\d+)/(\d+) \+ (\d+)/(\d+)의 값은\?", stem):
        a, b, c, d = map(int, m.groups())
        return Fraction(a, b) + Fraction(c, d)
    raise AssertionError(f"unknown stem {stem!r}")


def _choice_value(choice: str) -> Fraction:
    text = re.sub(r"^x = ", "", choice)
    text = re.sub(r"(원|점| km| cm²)$", "", text)
    return Fraction(text.replace(",", ""))


def test_math_items_solved_from_their_text():
    rng = random.Random(3)
    kinds = set()
    for _ in range(600):
        item = math_item(rng, rng.choice((4, 5)))
        kinds.add(item.source)
        assert len(set(item.choices)) == len(item.choices)
        assert _choice_value(item.choices[item.answer]) == _solve_math(item.stem)
        # exactly one choice is right
        assert sum(_choice_value(c) == _solve_math(item.stem) for c in item.choices) == 1
    assert len(kinds) == 8


def _kobest_label(source: str) -> tuple[list[str], int]:
    _, task, split, i = source.split("/")
    with gzip.open(REPO / "corpora" / "kobest" / task / f"{split}.tsv.gz", "rt", encoding="utf-8") as f:
        row = f.read().split("\n")[1 + int(i)].split("\t")
    if task == "copa":
        return row[3:5], int(row[5]) - 1
    if task == "hellaswag":
        return row[1:5], int(row[5])
    return ["예", "아니요"], 0 if row[3] == "True" else 1


def test_every_answer_in_a_built_corpus_is_right(corpus):
    seen = {kind: 0 for kind in KINDS}
    for split, row in _rows(corpus):
        meta = json.loads(row["metadata"])
        assert meta["split"] == split
        pairs = qa_pairs(row["messages"])
        assert len(pairs) == len(row["tasks"]) >= 1
        seen[row["kind"]] += 1
        if row["kind"] in ("charts", "tables"):
            spec = ChartSpec.from_dict(meta["spec"])
            assert (spec.kind == "table") == (row["kind"] == "tables")
            for (q, a), task in zip(pairs, row["tasks"]):
                check_chart_answer(spec, q, a, task)
        elif row["kind"] == "ocr":
            lines = meta["lines"]
            for (q, a), task in zip(pairs, row["tasks"]):
                if task == "transcribe":
                    assert a == "\n".join(lines)
                elif task == "count_lines":
                    assert a == f"{len(lines)}줄"
                else:
                    n = int(re.match(r"(\d+)번째", q).group(1))
                    assert a == lines[n - 1]
            # the text is the text corpus' own split: joined lines are corpus lines
            corpus_text = {line for doc in corpus_lines(split) for line in doc}
            joined = " ".join(lines)
            assert any(line in joined for line in corpus_text if len(line) >= len(lines[0]) // 2)
        else:
            items, first = meta["items"], meta["layout"]["first_number"]
            for item in items:
                if item["source"].startswith("math/"):
                    assert _choice_value(item["choices"][item["answer"]]) == _solve_math(item["stem"])
                elif item["source"].startswith("kobest/"):
                    choices, label = _kobest_label(item["source"])
                    assert list(item["choices"]) == choices and item["answer"] == label
                    assert item["source"].split("/")[2] == {"train": "train", "validation": "dev", "test": "test"}[split]
                else:
                    spec = ChartSpec.from_dict(item["chart"])
                    assert item["choices"][item["answer"]] in {*spec.categories, *(
                        f"{v:,}{spec.unit}" for v in {abs(a - b) for a in spec.values[0] for b in spec.values[0]} | set(spec.values[0]))}
            for (q, a), task in zip(pairs, row["tasks"]):
                n = int(re.match(r"(\d+)번", q).group(1))
                item = items[n - first]
                if task == "exam_answer":
                    assert a == f"{CIRCLED[item['answer']]} {item['choices'][item['answer']]}"
                elif task == "read_choice":
                    i = CIRCLED.index(re.search(r"([①-⑤])번 선택지", q).group(1))
                    assert a == item["choices"][i]
                elif task == "read_stem":
                    assert a == item["stem"]
                else:
                    mark = next(m for m in meta["layout"]["marks"] if m["number"] == n)
                    assert a.startswith(f"{CIRCLED[mark['picked']]}번을 골랐고")
                    assert ("정답입니다" in a) == (mark["picked"] == item["answer"])
    assert all(count > 0 for count in seen.values()), seen


# ---------------------------------------------------------------- determinism and held-out splits

def test_render_is_deterministic_per_seed():
    for kind in KINDS:
        a, b = render_sample(kind, 3, 11, "train", 4), render_sample(kind, 3, 11, "train", 4)
        assert a["image"]["bytes"] == b["image"]["bytes"] and a["metadata"] == b["metadata"]
        assert a["messages"] == b["messages"]
        c = render_sample(kind, 3, 12, "train", 4)
        assert c["image"]["bytes"] != a["image"]["bytes"]


def test_build_does_not_depend_on_worker_count(tmp_path, corpus):
    one = tmp_path / "one"
    build_image_corpus(ImageCorpusSettings(out=one, num=24, seed=7, workers=1, test_fraction=0.25,
                                           validation_fraction=0.1))
    a, b = load_from_disk(str(one)), load_from_disk(str(corpus))
    assert {s: len(d) for s, d in a.items()} == {s: len(d) for s, d in b.items()}
    for split in a:
        assert a[split]["id"] == b[split]["id"]
        assert a[split].with_format("arrow")["image"].to_pylist() == b[split].with_format("arrow")["image"].to_pylist()
        assert a[split]["metadata"] == b[split]["metadata"]


def test_held_out_pools_are_disjoint():
    for style in ("handwriting", "printed"):
        train = {f.name for f in faces_for("train", style)}
        test = {f.name for f in faces_for("test", style)}
        assert train and test and not train & test
        assert {f.name for f in faces_for("validation", style)} == train
    for hand in (True, False):
        assert not set(styles_for("train", hand)) & set(styles_for("test", hand))
        assert set(styles_for("test", hand)) <= TEST_STYLES
    train_words = {w for d in DOMAINS for w in words_for(d, "train")}
    test_words = {w for d in DOMAINS for w in words_for(d, "test")}
    assert not train_words & test_words
    assert all(len(words_for(d, "test")) >= 5 for d in DOMAINS)


def test_built_splits_hold_out_fonts_words_and_styles(corpus):
    fonts, styles, words = ({s: set() for s in ("train", "validation", "test")} for _ in range(3))
    for split, row in _rows(corpus):
        fonts[split].add(row["font"])
        styles[split].add(row["style"])
        meta = json.loads(row["metadata"])
        specs = [meta["spec"]] if "spec" in meta else [i["chart"] for i in meta.get("items", []) if i["chart"]]
        for spec in specs:
            if spec["category_label"] not in TIME_AXES:
                words[split].update(spec["categories"])
    for held_out in (fonts, styles, words):
        assert held_out["test"], "the test split rendered no samples of this sort"
        assert not held_out["test"] & (held_out["train"] | held_out["validation"])


# ---------------------------------------------------------------- fonts

def test_fonts_ship_with_licences_and_checksums():
    index = json.loads((fonts_dir() / "fonts.json").read_text(encoding="utf-8"))["fonts"]
    assert {f.name for f in load_font_catalog()} == {e["name"] for e in index}
    unpacked = {f.name: f.path for f in load_font_catalog()}
    for entry in index:
        assert entry["license"] == "OFL-1.1"
        # committed packed; what the renderers open is the unpacked face, checked against the committed hash
        assert entry["file"].endswith(".ttf.xz") and (fonts_dir() / entry["file"]).is_file()
        assert unpacked[entry["name"]].suffix == ".ttf"
        assert hashlib.sha256(unpacked[entry["name"]].read_bytes()).hexdigest() == entry["sha256"], entry["file"]
        licence = (fonts_dir() / entry["license_file"]).read_text(encoding="utf-8")
        assert "SIL OPEN FONT LICENSE" in licence.upper()


def test_fonts_and_kobest_fit_the_repository_budget():
    # packed, the eleven faces are 9 MB instead of 40: a checkout must stay under the GPU machine's 64 MiB
    fonts = sum(p.stat().st_size for p in fonts_dir().iterdir())
    kobest = sum(p.stat().st_size for p in (REPO / "corpora" / "kobest").rglob("*") if p.is_file())
    assert fonts < 12 * 2**20 and kobest < 3 * 2**20


def _packed_face(folder: Path, data: bytes, sha256: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Face.ttf.xz").write_bytes(lzma.compress(data))
    (folder / "fonts.json").write_text(json.dumps({"fonts": [{"name": "face", "file": "Face.ttf.xz", "family": "x",
                                                             "style": "printed", "split": "train",
                                                             "license": "OFL-1.1", "sha256": sha256}]}))
    return folder


def test_packed_font_unpacks_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KO_HYPERVL_FONT_CACHE", str(tmp_path / "cache"))
    gothic = next(f.path for f in load_font_catalog() if f.name == "nanum-gothic").read_bytes()
    folder = _packed_face(tmp_path / "fonts", gothic, hashlib.sha256(gothic).hexdigest())
    (face,) = load_font_catalog(folder)
    assert face.path.parent.parent == tmp_path / "cache" and face.path.name == "Face.ttf"
    assert face.path.read_bytes() == gothic and not list(face.path.parent.glob("*.partial"))
    assert coverage(face.path) >= {ord(ch) for ch in "한글가"}
    # a second catalog load reuses the unpacked file instead of unpacking again
    stamp = face.path.stat().st_mtime_ns
    load_font_catalog.cache_clear()
    assert load_font_catalog(folder)[0].path.stat().st_mtime_ns == stamp
    load_font_catalog.cache_clear()


@pytest.mark.parametrize("packed, sha, message", [
    (lzma.compress(b"not the face"), "0" * 64, "sha256 is not"),
    (b"not xz at all", "0" * 64, "cannot unpack"),
    (lzma.compress(b"x"), "", "no sha256"),
])
def test_bad_packed_font_is_a_clear_error(tmp_path, monkeypatch, packed, sha, message):
    monkeypatch.setenv("KO_HYPERVL_FONT_CACHE", str(tmp_path / "cache"))
    folder = _packed_face(tmp_path / "fonts", b"", sha)
    (folder / "Face.ttf.xz").write_bytes(packed)
    with pytest.raises(FontError, match=message):
        load_font_catalog(folder)
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").rglob("*.ttf"))


def test_every_face_writes_every_vocabulary_word():
    needed = {ord(ch) for d in DOMAINS for w in (*d.words, d.label) for ch in w if not ch.isspace()}
    needed |= {ord(ch) for ch in "①②③④⑤0123456789,.%()단위:"}
    for face in load_font_catalog():
        assert needed <= coverage(face.path), face.name


def test_missing_font_is_a_clear_error(tmp_path, monkeypatch):
    fonts = tmp_path / "fonts"
    fonts.mkdir()
    (fonts / "fonts.json").write_text(json.dumps({"fonts": [{"name": "gone", "file": "Gone.ttf", "family": "x",
                                                             "style": "printed", "split": "train",
                                                             "license": "OFL-1.1"}]}))
    with pytest.raises(FontError, match="Gone.ttf"):
        load_font_catalog(fonts)
    with pytest.raises(FontError, match="font index not found"):
        load_font_catalog(tmp_path / "nowhere")
    monkeypatch.setenv("KO_HYPERVL_CORPORA", str(tmp_path))
    load_font_catalog.cache_clear()
    try:
        assert main(["corpora", "build", "--out", str(tmp_path / "o"), "--num", "1"]) == 1
    finally:
        load_font_catalog.cache_clear()


# ---------------------------------------------------------------- bad input, CLI, interrupted builds

@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "maps"}, "unknown kind"), ({"num": 0}, "positive"), ({"num": -3}, "positive"),
    ({"workers": 0}, "workers"), ({"test_fraction": 0.6, "validation_fraction": 0.5}, "fractions"),
])
def test_bad_settings(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ImageCorpusSettings(out=tmp_path, **kwargs)


def test_unwritable_or_occupied_output(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        build_image_corpus(ImageCorpusSettings(out=blocker, num=1))
    with pytest.raises(ValueError, match="cannot write"):
        build_image_corpus(ImageCorpusSettings(out=blocker / "below", num=1))
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "mine.txt").write_text("keep me")
    assert main(["corpora", "build", "--out", str(occupied), "--num", "1"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert (occupied / "mine.txt").read_text() == "keep me"
    with pytest.raises(SystemExit):   # argparse rejects the choice before anything runs
        main(["corpora", "build", "--kind", "maps", "--out", str(tmp_path / "x")])


def test_interrupted_build_keeps_the_previous_output(tmp_path, monkeypatch):
    out = tmp_path / "ds"
    build_image_corpus(ImageCorpusSettings(out=out, num=2, kind="ocr", workers=1))
    before = sorted(p.name for p in out.rglob("*"))

    def broken(kind, index, *rest):
        if index == 1:
            raise KeyboardInterrupt   # as if the user pressed Ctrl-C mid-build
        return real(kind, index, *rest)

    real = build_module.render_sample
    monkeypatch.setattr(build_module, "render_sample", broken)
    with pytest.raises(KeyboardInterrupt):
        build_image_corpus(ImageCorpusSettings(out=out, num=3, kind="ocr", workers=1, overwrite=True))
    assert sorted(p.name for p in out.rglob("*")) == before
    assert sum(len(d) for d in load_from_disk(str(out)).values()) == 2


def test_cli_build_show_and_bench(tmp_path, capsys):
    out = tmp_path / "charts"
    assert main(["corpora", "build", "--kind", "charts", "--num", "5", "--out", str(out), "--seed", "1",
                 "--workers", "1", "--validation-fraction", "0", "--test-fraction", "0"]) == 0
    assert "train 5" in capsys.readouterr().out
    info = json.loads((out / "ko_hypervl_build.json").read_text())
    assert info["settings"]["kind"] == "charts" and info["rows"] == {"train": 5}
    sheet = tmp_path / "sheet.png"
    assert main(["corpora", "show", str(out), "--out", str(sheet), "-n", "3", "--columns", "3"]) == 0
    from PIL import Image
    with Image.open(sheet) as image:
        assert image.size[0] == 3 * 420
    assert main(["corpora", "show", str(tmp_path / "missing")]) == 1
    assert main(["corpora", "show", str(out), "--split", "test"]) == 1
    assert main(["corpora", "bench", "--num", "2"]) == 0
    printed = capsys.readouterr().out
    assert "matplotlib bar chart (baseline)" in printed and "ko-hypervl exams" in printed


def test_images_decode_and_have_sensible_sizes(corpus):
    dataset = load_from_disk(str(corpus))
    for row in dataset["train"].select(range(8)):
        image = row["image"]
        assert image.mode == "RGB" and 300 <= image.width <= 1400 and 60 <= image.height <= 1600


# ---------------------------------------------------------------- small helpers

def test_korean_particles_and_axis():
    assert [josa(w, "은", "는") for w in ("사과", "딸기", "12kg", "3", "서울")] == ["사과는", "딸기는", "12kg은", "3은", "서울은"]
    assert [josa(w, "과", "와") for w in ("핸드볼", "배", "7")] == ["핸드볼과", "배와", "7과"]
    assert josa("결과", "으로", "로") == "결과로" and josa("원인", "으로", "로") == "원인으로" and josa("서울", "으로", "로") == "서울로"
    assert nice_axis_max(87) == (100, 20) and nice_axis_max(1234) == (1250, 250) and nice_axis_max(9) == (10, 2)


def test_cli_tesseract_baseline_on_the_test_split(corpus, tmp_path, capsys):
    from ko_hypervl.imagecorpus.tesseract import tesseract_available

    if not tesseract_available():
        pytest.skip("tesseract with the kor language is not installed (apt-get install tesseract-ocr-kor)")
    report = tmp_path / "baseline.json"
    assert main(["corpora", "tesseract", str(corpus), "--split", "test", "--limit", "4", "--workers", "1",
                 "--json", str(report)]) == 0
    assert "readable" in capsys.readouterr().out
    assert json.loads(report.read_text())["rows"] == 4
    assert main(["corpora", "tesseract", str(corpus), "--split", "test", "--kind", "maps"]) == 1


def test_cli_import_user_data(tmp_path, capsys):
    fixtures = REPO / "tests" / "fixtures" / "user_data"
    out = tmp_path / "mine"
    assert main(["corpora", "import", str(fixtures / "mc.csv"), "--out", str(out), "--on-error", "skip"]) == 0
    rows = load_from_disk(str(out))["train"]
    assert len(rows) >= 1 and set(rows["kind"]) == {"user"}
    assert "정답: " in qa_pairs(rows[0]["messages"])[0][1]
    assert main(["corpora", "import", str(fixtures / "llava_bad.jsonl"), "--out", str(tmp_path / "bad")]) == 1
    assert "llava_bad.jsonl:" in capsys.readouterr().err
