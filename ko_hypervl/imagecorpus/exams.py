"""Exam pages in the style of Korean GED (검정고시, 4 choices) and CSAT (수능, 5 choices) papers:
a header, numbered items in one or two columns, passages in boxes, charts, ①-⑤ choices, and
sometimes a student's pencil marks."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw

from . import draw as d
from .charts import render_chart
from .examitems import ExamItem, chart_of, choice_label, sample_exam_item
from .fonts import faces_for
from .look import HAND_INKS, Look, styles_for
from .paper import make_paper
from .records import QA

SUBJECTS = ("국어", "수학", "사회", "과학", "영어", "한국사", "도덕", "기술·가정")
# exam papers are printed in black ink: series are told apart by shades of grey
GREYS = ((40, 40, 40), (150, 150, 150), (95, 95, 95), (200, 200, 200), (70, 70, 70), (120, 120, 120), (175, 175, 175))


@dataclass(frozen=True)
class ExamLayout:
    exam: str            # ged | csat
    columns: int
    n_choices: int


def _header(draw: ImageDraw.ImageDraw, look: Look, rng: random.Random, width: int, layout: ExamLayout) -> float:
    subject = rng.choice(SUBJECTS)
    year = rng.randint(2019, 2027)
    if layout.exam == "ged":
        title = f"{year}년도 제{rng.randint(1, 2)}회 {rng.choice(('고등학교', '중학교'))} 졸업학력 검정고시"
    else:
        title = f"{year}학년도 대학수학능력시험 {rng.choice(('', '모의평가 '))}문제지".replace("  ", " ")
    d.text(draw, (width / 2, 30), title, 20, look, rng, anchor="mt")
    box = d.text(draw, (width / 2, 62), f"{subject} 영역" if layout.exam == "csat" else subject, 34, look, rng, anchor="mt")
    d.text(draw, (width - 40, 70), f"제 {rng.randint(1, 4)} 교시", 16, look, rng, anchor="rt")
    y = box[3] + 14
    draw.line([(30, y), (width - 30, y)], fill=look.ink, width=3)
    draw.line([(30, y + 5), (width - 30, y + 5)], fill=look.ink, width=1)
    return y + 20


def _place_item(image: Image.Image, draw: ImageDraw.ImageDraw, item: ExamItem, number: int, x: float, y: float,
                width: float, look: Look, rng: random.Random, size: int, limit: float) -> tuple[float, list[tuple]] | None:
    """Draw one item at (x, y) in a column of ``width``; None (and nothing drawn) if it would pass ``limit``."""
    lead = size * 1.55
    stem_lines = d.wrap(f"{number}. {item.stem}", look.font.path, size, width)
    passage_lines = d.wrap(item.passage, look.font.path, size - 2, width - 30) if item.passage else []
    spec = chart_of(item)
    chart_h = int(width * 0.55) if spec else 0
    choice_w = max(d.text_size(f"{choice_label(i)} {c}", look.font.path, size)[0] for i, c in enumerate(item.choices))
    per_row = 1 if choice_w > width / 2 - 20 else (len(item.choices) if choice_w * len(item.choices) + 30 * len(item.choices) < width else 2)
    choice_rows = [list(range(i, min(i + per_row, len(item.choices)))) for i in range(0, len(item.choices), per_row)]
    choice_lines = sum(len(d.wrap(f"{choice_label(i)} {item.choices[i]}", look.font.path, size, width - 20))
                       for row in choice_rows for i in row[:1]) if per_row == 1 else len(choice_rows)
    needed = lead * (len(stem_lines) + choice_lines + 1) + (lead * 0.9 * len(passage_lines) + 24 if passage_lines else 0) + chart_h
    if y + needed > limit:
        return None
    for line in stem_lines:
        d.text(draw, (x, y), line, size, look, rng, anchor="lt")
        y += lead
    if passage_lines:
        top = y
        y += 10
        for line in passage_lines:
            d.text(draw, (x + 15, y), line, size - 2, look, rng, anchor="lt")
            y += lead * 0.9
        draw.rectangle((x, top - 2, x + width, y + 6), outline=look.ink, width=1)
        y += 20
    if spec:
        chart_look = Look(False, look.font, "white", look.ink, look.palette, 0.0, 1, "solid")
        chart = render_chart(spec, chart_look, rng, size=(int(width * 0.9), chart_h - 10))
        image.paste(chart, (int(x + width * 0.05), int(y)))
        y += chart_h
    boxes = []
    for row in choice_rows:
        col_w = width / len(row) if per_row > 1 else width
        for j, i in enumerate(row):
            cx = x + 10 + j * col_w
            if per_row == 1:
                lines = d.wrap(f"{choice_label(i)} {item.choices[i]}", look.font.path, size, width - 20)
                first = d.text(draw, (cx, y), lines[0], size, look, rng, anchor="lt")
                for extra in lines[1:]:
                    y += lead
                    d.text(draw, (cx + size * 1.2, y), extra, size, look, rng, anchor="lt")
                boxes.append(first)
            else:
                boxes.append(d.text(draw, (cx, y), f"{choice_label(i)} {item.choices[i]}", size, look, rng, anchor="lt"))
        y += lead
    return y + lead * 0.6, boxes


def _pencil_mark(draw: ImageDraw.ImageDraw, box: tuple, size: int, rng: random.Random) -> None:
    """A student's circle around a choice number, drawn in pencil."""
    ink = rng.choice(HAND_INKS)
    x0, y0 = box[0] - 5, box[1] - 4
    x1, y1 = box[0] + size * 1.05 + 5, box[3] + 2
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    start = rng.uniform(0, math.tau)
    points = [(cx + rx * math.cos(start + t) * rng.uniform(0.95, 1.08), cy + ry * math.sin(start + t) * rng.uniform(0.95, 1.08))
              for t in (math.tau * 1.1 * k / 30 for k in range(31))]
    draw.line(points, fill=ink, width=2, joint="curve")


def render_exam_page(rng: random.Random, split: str, font_dir=None) -> tuple[Image.Image, list[ExamItem], dict]:
    """An exam page of ``split`` (fonts, paper style and chart words held out as the split says).

    Returns the page, its items (numbered from ``meta['first_number']``) and the layout/marks metadata."""
    exam, columns = rng.choice(("ged", "csat")), rng.choice((1, 1, 2))
    layout = ExamLayout(exam, columns, 4 if exam == "ged" else 5)
    face = rng.choice(faces_for(split, "printed", font_dir))
    # exam pages use the printed paper styles, held out as every printed look is
    paper = rng.choice(styles_for(split, hand=False)).split("-", 1)[1]
    look = Look(False, face, paper, (20, 20, 20), GREYS, 0.0, 1, "solid")
    width = 1000 if layout.columns == 2 else rng.randint(760, 880)
    height = int(width * rng.uniform(1.3, 1.42))
    page = make_paper(paper, width, height, rng)
    draw = ImageDraw.Draw(page)
    y0 = _header(draw, look, rng, width, layout)
    size = rng.randint(17, 20) if layout.columns == 2 else rng.randint(18, 22)
    margin, gap = 36, 36
    col_w = (width - 2 * margin - gap * (layout.columns - 1)) / layout.columns
    if layout.columns == 2:
        draw.line([(width / 2, y0), (width / 2, height - 40)], fill=look.ink, width=1)
    first = rng.randint(1, 16)
    items, marks, placed = [], [], []
    for col in range(layout.columns):
        x, y = margin + col * (col_w + gap), y0
        misses = 0
        while misses < 3 and len(items) < 6:
            item = sample_exam_item(rng, split, layout.n_choices)
            result = _place_item(page, draw, item, first + len(items), x, y, col_w, look, rng, size, height - 40)
            if result is None:
                misses += 1
                continue
            y, boxes = result
            items.append(item)
            placed.append(boxes)
    if not items:
        raise RuntimeError("no exam item fitted on the page")   # cannot happen with the sizes above; fail loudly
    hand = rng.random() < 0.4
    if hand:
        for k, (item, boxes) in enumerate(zip(items, placed)):
            if rng.random() < 0.7:
                picked = item.answer if rng.random() < 0.7 else rng.randrange(len(item.choices))
                _pencil_mark(draw, boxes[picked], size, rng)
                marks.append({"number": first + k, "picked": picked})
    d.text(draw, (width / 2, height - 22), f"- {rng.randint(1, 12)} -", 16, look, rng, anchor="mm")
    meta = {"exam": layout.exam, "columns": layout.columns, "first_number": first, "marks": marks,
            "paper": paper, "font": face.name}
    return page, items, meta


def exam_questions(items: list[ExamItem], meta: dict, rng: random.Random, count: int) -> list[QA]:
    first = meta["first_number"]
    qas = []
    for k, item in enumerate(items):
        n = first + k
        answer = f"{choice_label(item.answer)} {item.choices[item.answer]}"
        qas.append(QA(rng.choice((f"{n}번 문제의 정답은 무엇인가요?", f"{n}번 문제를 풀고 정답을 번호와 함께 알려 주세요.",
                                  f"{n}번의 답은 몇 번인가요?")), answer, "exam_answer"))
    for k, item in enumerate(items):
        i = rng.randrange(len(item.choices))
        qas.append(QA(f"{first + k}번 문제의 {choice_label(i)}번 선택지를 그대로 읽어 주세요.", item.choices[i], "read_choice"))
    if items:
        k = rng.randrange(len(items))
        qas.append(QA(f"{first + k}번 문제의 발문을 그대로 옮겨 적어 주세요.", items[k].stem, "read_stem"))
    for mark in meta["marks"]:
        item = items[mark["number"] - first]
        verdict = "정답입니다" if mark["picked"] == item.answer else f"오답입니다. 정답은 {choice_label(item.answer)}번입니다"
        qas.append(QA(f"{mark['number']}번 문제에 학생이 표시한 답은 몇 번이고, 맞았나요?",
                      f"{choice_label(mark['picked'])}번을 골랐고, {verdict}.", "marked_answer"))
    answers = [q for q in qas if q.task == "exam_answer"]
    rest = [q for q in qas if q.task != "exam_answer"]
    rng.shuffle(rest)
    return (answers[:max(1, count // 2)] + rest)[:count]
