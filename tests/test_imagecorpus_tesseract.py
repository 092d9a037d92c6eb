"""Tesseract OCR baseline: CER and readability rules exactly, then a real OCR run on rendered Korean images.

The end-to-end tests need the ``tesseract`` binary with the ``kor`` traineddata and skip without them.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st
from PIL import Image, ImageDraw

from ko_hypervl.imagecorpus import records
from ko_hypervl.imagecorpus import tesseract as T
from ko_hypervl.imagecorpus.fonts import faces_for, truetype

LINES = ["오늘은 날씨가 맑습니다", "도서관에서 책을 읽었다", "내일 다시 만나요"]


def _naive_levenshtein(a: str, b: str) -> int:
    """The textbook full-matrix DP, independent of the prefix/suffix trimming of ``edit_distance``."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    return d[-1][-1]


# ---------------------------------------------------------------- CER

def test_cer_identity_is_zero():
    assert T.character_error_rate("안녕하세요", "안녕하세요") == 0.0


def test_cer_one_substitution():
    assert T.character_error_rate("안녕하세요", "안넝하세요") == pytest.approx(1 / 5)


def test_cer_one_insertion_and_one_deletion():
    assert T.character_error_rate("abcd", "abxcd") == pytest.approx(1 / 4)
    assert T.character_error_rate("abcd", "acd") == pytest.approx(1 / 4)


def test_cer_empty_hypothesis_is_one_and_spurious_text_exceeds_one():
    assert T.character_error_rate("가나다", "") == 1.0
    assert T.character_error_rate("가", "가나다") == 2.0


def test_cer_normalises_whitespace_and_nfc():
    assert T.character_error_rate("첫 줄\n둘째 줄", "  첫  줄 \n\n 둘째\t줄\n") == 0.0
    decomposed = "\u1100\u1161"  # 가 as conjoining jamo (NFD)
    assert T.character_error_rate("가나", decomposed + "나") == 0.0
    # a missing word boundary is still one edit
    assert T.character_error_rate("첫 줄", "첫줄") == pytest.approx(1 / 3)


def test_cer_rejects_empty_reference():
    with pytest.raises(ValueError):
        T.character_error_rate(" \n ", "x")


@given(st.text(alphabet="가나다ab ", max_size=12), st.text(alphabet="가나다ab ", max_size=12))
def test_edit_distance_matches_full_matrix_dp(a, b):
    assert T.edit_distance(a, b) == _naive_levenshtein(a, b) == T.edit_distance(b, a)


# ---------------------------------------------------------------- readability

@pytest.mark.parametrize("answer, text, expected", [
    ("12명", "3월 방문자\n12명", True),
    ("12명", "방문자 수 (명)\n12", True),            # bare number, unit only in the axis title
    ("12명", "방문자 112명", False),                   # not inside a longer number
    ("12명", "평균 12.5", False),
    ("12명", "방문자 21명", False),
    ("3,400원", "가격 3400", True),                    # comma in the answer, none in the OCR
    ("3400원", "가격 3,400 원", True),                 # and the other way round, spacing ignored
    ("3,400원", "가격 3,450원", False),
    ("서울 특별시", "주소: 서울특별시 중구", True),      # whitespace never matters
    ("부산", "주소: 서울특별시 중구", False),
    ("", "아무 글", False),
])
def test_answer_readable(answer, text, expected):
    assert T.answer_readable(answer, text) is expected


# ---------------------------------------------------------------- tesseract plumbing without tesseract

def test_missing_binary_or_language_names_the_apt_command(monkeypatch):
    image = Image.new("L", (10, 10), 255)
    monkeypatch.setattr(T, "_installed_languages", lambda: None)
    assert not T.tesseract_available()
    with pytest.raises(RuntimeError, match="not on PATH.*apt-get install -y tesseract-ocr tesseract-ocr-kor"):
        T.ocr_image(image)
    monkeypatch.setattr(T, "_installed_languages", lambda: frozenset({"eng", "osd"}))
    assert not T.tesseract_available() and T.tesseract_available("eng")
    with pytest.raises(RuntimeError, match="'kor' traineddata.*apt-get install -y tesseract-ocr tesseract-ocr-kor"):
        T.ocr_image(image)


def _record(id: str, image: Image.Image, kind: str, qas: list[records.QA], font: str = "nanum-gothic"):
    return records.make_record(id=id, image=records.encode_image(image, jpeg_quality=None), kind=kind, qas=qas,
                               font=font, style="printed")


def test_empty_transcription_fails_before_any_ocr(monkeypatch):
    from datasets import Dataset

    monkeypatch.setattr(T, "_installed_languages", lambda: frozenset({"kor"}))
    monkeypatch.setattr(T, "ocr_image", lambda *a, **k: pytest.fail("OCR ran on a malformed dataset"))
    qas = [records.QA("글을 옮겨 적으세요.", "  \n", "transcribe")]
    dataset = Dataset.from_list([_record("bad", Image.new("L", (8, 8), 255), "ocr", qas)],
                                features=records.features())
    with pytest.raises(ValueError, match="empty transcription"):
        T.run_tesseract_baseline(dataset, workers=1, progress=False)


def test_misaligned_tasks_fail_before_any_ocr(monkeypatch):
    from datasets import Dataset

    monkeypatch.setattr(T, "_installed_languages", lambda: frozenset({"kor"}))
    monkeypatch.setattr(T, "ocr_image", lambda *a, **k: pytest.fail("OCR ran on a malformed dataset"))
    row = _record("bad", Image.new("L", (8, 8), 255), "charts", [records.QA("몇 명?", "12명", "lookup")])
    row["tasks"] = ["lookup", "max"]
    dataset = Dataset.from_list([row], features=records.features())
    with pytest.raises(ValueError, match="1 answers but 2 tasks"):
        T.run_tesseract_baseline(dataset, workers=1, progress=False)


# ---------------------------------------------------------------- end to end with real tesseract

requires_tesseract = pytest.mark.skipif(not T.tesseract_available("kor"),
                                        reason="tesseract with the kor traineddata is not installed "
                                               f"({T.INSTALL_HINT})")


def _render(lines: list[str], size: int = 40) -> Image.Image:
    """Black text on white, one line per entry, NanumGothic: the easiest case OCR should nail."""
    face = next(f for f in faces_for("train", "printed") if f.name == "nanum-gothic")
    font = truetype(face.path, size)
    step = int(1.6 * size)
    width = max(int(font.getlength(line)) for line in lines)
    image = Image.new("RGB", (width + 2 * size, step * len(lines) + size), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((size, size // 2 + step * i), line, font=font, fill="black")
    return image


@pytest.fixture(scope="module")
def tiny_dataset():
    from datasets import Dataset

    transcription = records.QA("이미지의 글을 그대로 옮겨 적으세요.", "\n".join(LINES), "transcribe")
    chart = records.QA("3월 방문자는 몇 명인가요?", "12명", "lookup")
    absent = records.QA("4월 방문자는 몇 명인가요?", "57명", "lookup")  # not drawn: must count as unreadable
    rows = [
        _record("ocr-0", _render(LINES), "ocr", [transcription]),
        _record("chart-0", _render(["월별 방문자", "3월 12명"]), "charts", [chart, absent]),
    ]
    return Dataset.from_list(rows, features=records.features())


@requires_tesseract
def test_ocr_image_reads_printed_korean():
    text = T.ocr_image(_render(LINES))
    assert T.character_error_rate("\n".join(LINES), text) < 0.2, text


@requires_tesseract
def test_baseline_end_to_end(tiny_dataset):
    report = T.run_tesseract_baseline(tiny_dataset, workers=1, progress=False)

    assert report.rows == 2
    for name in ("all", "style=printed", "font=nanum-gothic"):
        group = report.group(name)
        assert group.samples == 1 and group.reference_chars == len(T.normalize_for_cer("\n".join(LINES)))
        assert group.cer < 0.2 and group.row_mean_cer == pytest.approx(group.cer)
    charts = report.group("kind=charts")
    assert (charts.samples, charts.readable) == (2, 1)  # "12명" read, "57명" correctly not
    assert report.group("task=lookup").share == 0.5
    with pytest.raises(KeyError):
        report.group("kind=ocr")  # the only OCR answer is a transcription, scored by CER instead

    table = report.to_markdown()
    assert "| font=nanum-gothic | 1 |" in table and "| kind=charts | 2 | 50.0 |" in table
    data = json.loads(json.dumps(report.to_dict()))
    assert data["readability"][0] == {"group": "all", "samples": 2, "readable": 1, "share": 0.5}
    assert data["transcription"][0]["cer"] == pytest.approx(report.group("all").cer)


@requires_tesseract
def test_worker_pool_and_limit_give_the_same_scores(tiny_dataset):
    serial = T.run_tesseract_baseline(tiny_dataset, workers=1, progress=False)
    pooled = T.run_tesseract_baseline(tiny_dataset, workers=2, progress=False)
    assert pooled.to_dict() == serial.to_dict()
    first = T.run_tesseract_baseline(tiny_dataset, limit=1, workers=2, progress=False)
    assert first.rows == 1 and first.readability == [] and first.transcription == serial.transcription
