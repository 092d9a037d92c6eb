"""Readers for users' own image-text data: exact rows for every layout, and every bad input reported by file
and line (stopping at the first, or skipped and returned)."""

import json
import logging
import shutil
from pathlib import Path

import pytest
from PIL import Image

from ko_hypervl.imagecorpus.readers import (ReaderError, read_llava, read_multiple_choice, read_user_data)
from ko_hypervl.imagecorpus.records import QA, conversation, qa_pairs

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "user_data"
IMAGES = FIXTURES / "images"


def rows(result):
    return [dict(row, metadata=json.loads(row["metadata"])) for row in result.dataset]


def summary(result):
    """(id, image file name, qa pairs, tasks) of every row."""
    return [(r["id"], Path(r["image"].filename).name, qa_pairs(r["messages"]), r["tasks"]) for r in rows(result)]


def mc_summary(result):
    """(question, answer, choices, answer index) of every multiple-choice row."""
    out = []
    for row in rows(result):
        [(question, answer)] = qa_pairs(row["messages"])
        out.append((question, answer, row["metadata"]["choices"], row["metadata"]["answer_index"]))
    return out


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def llava_line(image, id="x"):
    return json.dumps({"id": id, "image": image, "conversations": [
        {"from": "human", "value": "<image>\n색은?"}, {"from": "gpt", "value": "빨강"}]}, ensure_ascii=False)


# --- LLaVA conversations ----------------------------------------------------------------------------------

def test_llava_json_list():
    result = read_llava(FIXTURES / "llava.json")
    assert result.problems == []
    assert summary(result) == [
        ("l1", "red.png", [("이 그림은 무슨 색인가요?", "빨간색입니다."), ("모양은 어떤가요?", "정사각형입니다.")],
         ["conversation", "conversation"]),
        ("l2", "blue.jpg", [("무슨 색이에요?", "파란색이에요.")], ["color"]),
    ]
    first, second = rows(result)
    assert (first["kind"], first["font"], first["style"]) == ("user", "", "")
    assert first["metadata"] == {"source_file": str(FIXTURES / "llava.json"), "line": 2, "index": 0, "format": "llava"}
    assert (second["metadata"]["line"], second["metadata"]["index"]) == (12, 1)
    assert first["image"].size == (4, 4) and second["image"].size == (8, 8)


def test_llava_jsonl_user_assistant_trailing_placeholder_default_id_and_extra_fields():
    result = read_llava(FIXTURES / "llava.jsonl")
    assert summary(result) == [
        ("j1", "gray.png", [("배경은 무슨 색인가요?", "회색입니다.")], ["conversation"]),
        ("llava-3", "red.png", [("이 사진을 설명해 주세요.", "빨간 정사각형이 있습니다.")], ["conversation"]),
    ]
    assert rows(result)[1]["metadata"] == {"source_file": str(FIXTURES / "llava.jsonl"), "line": 3,
                                           "format": "llava", "extra": {"source": "직접 촬영"}}


@pytest.mark.parametrize("name", ["llava.json", "llava.jsonl", "mc.csv", "mc.tsv", "mc.jsonl", "mc.json"])
def test_messages_round_trip_and_images_open(name):
    for row in read_user_data(FIXTURES / name).dataset:
        qas = [QA(q, a, task) for (q, a), task in zip(qa_pairs(row["messages"]), row["tasks"], strict=True)]
        assert conversation(qas) == row["messages"]
        with Image.open(row["image"].filename) as image:
            image.load()


# --- multiple choice --------------------------------------------------------------------------------------

def test_multiple_choice_csv_separate_columns_answer_as_letter_number_text():
    result = read_multiple_choice(FIXTURES / "mc.csv")
    assert mc_summary(result) == [
        ("대한민국의 수도는?\n① 부산\n② 서울\n③ 대구\n④ 인천", "정답: ② 서울", ["부산", "서울", "대구", "인천"], 1),
        ("가장 큰 수는?\n① 1\n② 2\n③ 30\n④ 4\n⑤ 5", "정답: ③ 30", ["1", "2", "30", "4", "5"], 2),
        ("남쪽에 있는 항구 도시는?\n① 서울\n② 부산\n③ 대전\n④ 광주", "정답: ② 부산", ["서울", "부산", "대전", "광주"], 1),
    ]
    first = rows(result)[0]
    assert first["id"] == "c1" and first["tasks"] == ["multiple_choice"]
    assert first["metadata"] == {
        "source_file": str(FIXTURES / "mc.csv"), "line": 2, "format": "multiple_choice", "question": "대한민국의 수도는?",
        "choices": ["부산", "서울", "대구", "인천"], "answer_index": 1, "extra": {"category": "사회"}}


def test_multiple_choice_tsv_json_list_column_answer_as_number_and_mark():
    result = read_multiple_choice(FIXTURES / "mc.tsv")
    assert mc_summary(result) == [
        ("빨간색을 고르세요.\n① 빨강\n② 파랑\n③ 초록", "정답: ① 빨강", ["빨강", "파랑", "초록"], 0),
        ("표의 합계는?\n① 10\n② 20\n③ 30\n④ 40", "정답: ④ 40", ["10", "20", "30", "40"], 3),
    ]
    assert [r["id"] for r in rows(result)] == ["mc-2", "mc-3"]


def test_multiple_choice_jsonl_list_and_bar_separated_choices():
    result = read_multiple_choice(FIXTURES / "mc.jsonl")
    assert mc_summary(result) == [
        ("사과의 색은?\n① 노랑\n② 빨강\n③ 보라\n④ 검정", "정답: ② 빨강", ["노랑", "빨강", "보라", "검정"], 1),
        ("하늘의 색은?\n① 초록\n② 파랑\n③ 빨강\n④ 흰색", "정답: ② 파랑", ["초록", "파랑", "빨강", "흰색"], 1),
    ]
    assert rows(result)[1]["metadata"]["extra"] == {"difficulty": "쉬움"}


def test_multiple_choice_json_choice_columns_and_newline_separated_options():
    result = read_multiple_choice(FIXTURES / "mc.json")
    assert mc_summary(result) == [
        ("바다는 무슨 색인가요?\n① 빨강\n② 파랑\n③ 노랑\n④ 검정", "정답: ② 파랑", ["빨강", "파랑", "노랑", "검정"], 1),
        ("바른 것은?\n① 가\n② 나\n③ 다\n④ 라\n⑤ 마", "정답: ⑤ 마", ["가", "나", "다", "라", "마"], 4),
    ]
    assert [(r["metadata"]["line"], r["metadata"]["index"]) for r in rows(result)] == [(2, 0), (3, 1)]


@pytest.mark.parametrize("name, format", [("llava.json", "llava"), ("llava.jsonl", "llava"), ("mc.csv", "multiple_choice"),
                                          ("mc.tsv", "multiple_choice"), ("mc.jsonl", "multiple_choice"),
                                          ("mc.json", "multiple_choice")])
def test_read_user_data_sniffs_the_format(name, format):
    auto = read_user_data(FIXTURES / name)
    assert {json.loads(m)["format"] for m in auto.dataset["metadata"]} == {format}
    assert auto.dataset.to_list() == read_user_data(FIXTURES / name, format=format).dataset.to_list()


def test_read_user_data_cannot_sniff(tmp_path):
    path = write(tmp_path, "x.jsonl", '{"image": "a.png", "caption": "고양이"}\n')
    with pytest.raises(ReaderError, match="cannot tell the format"):
        read_user_data(path)


# --- errors: stop or skip ---------------------------------------------------------------------------------

LLAVA_BAD = FIXTURES / "llava_bad.jsonl"
LLAVA_PROBLEMS = [
    (2, "not valid JSON: Expecting value"),
    (3, "missing 'image' (one image path per record)"),
    (4, "turn 1 is from 'human', expected gpt/assistant: turns must alternate, question first"),
    (5, f"image 'images/missing.png': no such file '{IMAGES / 'missing.png'}'"),
    (6, "image 'images/broken.jpg': unreadable image (OSError: image file is truncated"),  # then "(N bytes ...))"
    (7, f"image 'images/not_image.png': unreadable image (UnidentifiedImageError: cannot identify image file "
        f"'{IMAGES / 'not_image.png'}')"),
]


def test_stop_raises_the_first_error_with_file_and_line():
    with pytest.raises(ReaderError) as caught:
        read_llava(LLAVA_BAD)
    assert str(caught.value) == f"{LLAVA_BAD}:2: not valid JSON: Expecting value"
    assert (caught.value.file, caught.value.line, caught.value.index) == (str(LLAVA_BAD), 2, None)
    assert isinstance(caught.value, ValueError)


def test_skip_returns_the_good_rows_and_every_problem(caplog):
    with caplog.at_level(logging.WARNING, logger="ko_hypervl.imagecorpus.readers"):
        result = read_llava(LLAVA_BAD, on_error="skip")
    assert [r["id"] for r in rows(result)] == ["ok1", "ok2"]
    assert [p.line for p in result.problems] == [line for line, _ in LLAVA_PROBLEMS]
    for problem, (line, reason) in zip(result.problems, LLAVA_PROBLEMS):
        assert str(problem).startswith(f"{LLAVA_BAD}:{line}: {reason}")
    assert [r.getMessage() for r in caplog.records] == [f"skipped {p}" for p in result.problems]


def test_table_errors_point_at_the_row_start_line_even_after_a_multiline_cell():
    path = FIXTURES / "mc_bad.csv"
    with pytest.raises(ReaderError, match=r"mc_bad\.csv:3: answer 'F' is not among the choices \(① 가, ② 나, ③ 다, ④ 라\)$"):
        read_multiple_choice(path)
    result = read_multiple_choice(path, on_error="skip")
    assert [(p.line, p.reason) for p in result.problems] == [
        (3, "answer 'F' is not among the choices (① 가, ② 나, ③ 다, ④ 라)"),
        (4, "missing 'question'"),
        (7, "6 cells, but the header has 7"),
        (8, "answer '1' is ambiguous: it reads as ① or ② (① 3, ② 1, ③ 2, ④ 4)"),
    ]
    assert [(r["metadata"]["line"], r["metadata"]["question"], r["metadata"]["answer_index"]) for r in rows(result)] == [
        (2, "첫째?", 0), (5, "여러 줄\n질문?", 3), (9, "다섯째?", 1)]


def test_json_list_errors_name_the_line_and_the_item(tmp_path):
    records = json.loads((FIXTURES / "llava.json").read_text(encoding="utf-8"))
    del records[1]["image"]
    path = write(tmp_path, "list.json", json.dumps(records, ensure_ascii=False, indent=1))
    with pytest.raises(ReaderError) as caught:
        read_llava(path, image_dir=FIXTURES)
    assert str(caught.value) == f"{path}:24 (item 1): missing 'image' (one image path per record)"
    assert (caught.value.line, caught.value.index) == (24, 1)
    assert path.read_text(encoding="utf-8").splitlines()[23:25] == [" {", '  "id": "l2",']


@pytest.mark.parametrize("image, reason", [
    ("missing.png", "no such file"),
    ("broken.jpg", "unreadable image (OSError: image file is truncated"),
    ("not_image.png", "unreadable image (UnidentifiedImageError: cannot identify image file"),
])
def test_bad_images_are_never_used(tmp_path, image, reason):
    path = write(tmp_path, "data.jsonl", llava_line("red.png", "good") + "\n" + llava_line(image, "bad") + "\n")
    with pytest.raises(ReaderError) as caught:
        read_llava(path, image_dir=IMAGES)
    assert str(caught.value).startswith(f"{path}:2: image '{image}': {reason}")
    result = read_llava(path, image_dir=IMAGES, on_error="skip")
    assert [r["id"] for r in rows(result)] == ["good"] and [p.line for p in result.problems] == [2]


def test_broken_jpeg_passes_pil_verify_so_the_reader_must_decode_it():
    with Image.open(IMAGES / "broken.jpg") as image:
        image.verify()  # no error: verify alone would let this file through
    with pytest.raises(OSError):
        Image.open(IMAGES / "broken.jpg").load()


def test_images_resolve_against_the_record_file_folder_unless_image_dir_is_given(tmp_path):
    path = tmp_path / "llava.jsonl"
    shutil.copy(FIXTURES / "llava.jsonl", path)
    with pytest.raises(ReaderError, match=r"llava\.jsonl:1: image 'images/gray\.png': no such file"):
        read_llava(path)
    result = read_llava(path, image_dir=FIXTURES)
    assert [Path(r["image"].filename) for r in rows(result)] == [IMAGES / "gray.png", IMAGES / "red.png"]


def test_zero_valid_records_is_an_error_even_when_skipping(tmp_path):
    path = write(tmp_path, "data.jsonl", llava_line("missing.png") + "\n")
    with pytest.raises(ReaderError, match=r"data\.jsonl: no valid records \(1 skipped, the first: .*data\.jsonl:1: image"):
        read_llava(path, image_dir=IMAGES, on_error="skip")


@pytest.mark.parametrize("name, text, reason", [
    ("empty.jsonl", "", "the file is empty"),
    ("blank.csv", "\n  \n", "the file is empty"),
    ("empty.json", "[]", "the file has no records"),
    ("header.csv", "image,question,A,B,answer\n", "the file has no records"),
    ("blank_lines.jsonl", "\n\n", "the file is empty"),
])
def test_empty_inputs(tmp_path, name, text, reason):
    path = write(tmp_path, name, text)
    with pytest.raises(ReaderError) as caught:
        read_multiple_choice(path, on_error="skip")
    assert str(caught.value) == f"{path}: {reason}"


def test_invalid_json_document_and_non_list(tmp_path):
    broken = write(tmp_path, "broken.json", '[\n  {"image": "a.png",\n]\n')
    with pytest.raises(ReaderError, match=r"broken\.json:3: not valid JSON"):
        read_llava(broken, on_error="skip")
    wrapped = write(tmp_path, "wrapped.json", '{"data": []}')
    with pytest.raises(ReaderError, match="expected a JSON list of records, found a dict"):
        read_llava(wrapped)


def test_unknown_extension_names_the_supported_ones(tmp_path):
    path = write(tmp_path, "data.txt", llava_line("red.png"))
    with pytest.raises(ReaderError, match=r"data\.txt: unsupported file type '\.txt'; supported: \.json, \.jsonl, \.csv, \.tsv$"):
        read_user_data(path)
    with pytest.raises(ReaderError, match=r"supported: \.json, \.jsonl$"):
        read_llava(FIXTURES / "mc.csv")


def test_bad_arguments():
    with pytest.raises(ValueError, match="on_error must be 'stop' or 'skip'"):
        read_llava(FIXTURES / "llava.json", on_error="ignore")
    with pytest.raises(ValueError, match="format must be"):
        read_user_data(FIXTURES / "llava.json", format="coco")
