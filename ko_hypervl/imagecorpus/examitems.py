"""Exam items: generated math and chart-reading items with exactly computed answers, and real Korean
multiple-choice items from KoBEST (COPA, HellaSwag, BoolQ) kept in their own splits."""

from __future__ import annotations

import csv
import functools
import gzip
import math
import random
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from pathlib import Path

from .chartspec import ChartSpec, sample_chart_spec
from .korean import format_number, josa, with_unit
from ..textcorpus.layout import default_corpora_dir

CIRCLED = "①②③④⑤"
KOBEST_SPLIT = {"train": "train", "validation": "dev", "test": "test"}


@dataclass(frozen=True)
class ExamItem:
    stem: str
    choices: tuple[str, ...]
    answer: int                      # 0-based index into choices
    source: str                      # math/arithmetic, chart, kobest/copa ...
    passage: str = ""
    chart: dict | None = field(default=None)   # a ChartSpec dict drawn under the stem

    def to_dict(self) -> dict:
        return asdict(self)


def _choices(rng: random.Random, correct, distractors, n: int, fmt) -> tuple[tuple[str, ...], int]:
    """``n`` distinct choices, the correct one among them, in ascending order as exams print numbers."""
    pool = [x for x in dict.fromkeys(distractors) if x != correct]
    rng.shuffle(pool)
    values = [correct, *pool[:n - 1]]
    step = max(1, abs(int(correct)) // 10)
    k = 1
    while len(values) < n:   # too few plausible slips: pad with near misses above the answer
        if correct + k * step not in values:
            values.append(correct + k * step)
        k += 1
    values.sort()
    return tuple(fmt(v) for v in values), values.index(correct)


def _near(rng: random.Random, x: int, spread: int) -> list[int]:
    return [x + d for d in rng.sample([d for d in range(-spread, spread + 1) if d], min(2 * spread, 8))]


def math_item(rng: random.Random, n_choices: int) -> ExamItem:
    """One generated math item; the answer is computed, the distractors are the slips students make."""
    kind = rng.choice(("arithmetic", "equation", "discount", "average", "distance", "area", "gcd_lcm", "fraction"))
    if kind == "arithmetic":
        a, b, c = rng.randint(-9, 9) or 3, rng.randint(2, 9), rng.randint(2, 6)
        d = c * rng.randint(1, 9)
        value = a * b + d // c
        shown_a = f"({a})" if a < 0 else str(a)
        stem = f"{shown_a} × {b} + {d} ÷ {c}의 값은?"
        distract = [a * b - d // c, (a * b + d) // c if (a * b + d) % c == 0 else value + c, -value, value + 1, value - 1, a * (b + d // c)]
        choices, ans = _choices(rng, value, distract + _near(rng, value, 4), n_choices, format_number)
    elif kind == "equation":
        x = rng.randint(-9, 12)
        a, c = rng.sample([k for k in range(-5, 8) if k], 2)
        b = rng.randint(-15, 15)
        d = (a - c) * x + b
        def side(coef, const):
            term = "x" if coef == 1 else "-x" if coef == -1 else f"{coef}x"
            return term + (f" + {const}" if const > 0 else f" - {-const}" if const < 0 else "")
        stem = f"일차방정식 {side(a, b)} = {side(c, d)}의 해는?"
        choices, ans = _choices(rng, x, [-x, x + 1, x - 1, x + 2, x - 2, x * 2], n_choices, lambda v: f"x = {v}")
    elif kind == "discount":
        price = rng.randint(6, 60) * 1000
        pct = rng.choice((10, 15, 20, 25, 30, 40, 50))
        value = price * (100 - pct) // 100
        stem = f"정가가 {format_number(price)}원인 물건을 {pct}% 할인하여 팔 때, 판매 가격은?"
        distract = [price * pct // 100, price - pct * 100, value + 1000, value - 1000, value + 500]
        choices, ans = _choices(rng, value, distract, n_choices, lambda v: with_unit(v, "원"))
    elif kind == "average":
        n = rng.randint(4, 6)
        mean = rng.randint(60, 90)
        scores = [mean + rng.randint(-15, 15) for _ in range(n - 1)]
        scores.append(mean * n - sum(scores))
        stem = f"학생 {n}명의 수학 점수가 {', '.join(map(str, scores))}점일 때, 점수의 평균은?"
        choices, ans = _choices(rng, mean, _near(rng, mean, 4), n_choices, lambda v: with_unit(v, "점"))
    elif kind == "distance":
        speed = rng.choice((4, 5, 6, 40, 50, 60, 70, 80, 90))
        minutes = rng.choice((30, 90, 120, 150, 180, 45, 75))
        value = Fraction(speed * minutes, 60)
        hours = f"{minutes // 60}시간 {minutes % 60}분" if minutes % 60 and minutes >= 60 else (f"{minutes // 60}시간" if minutes >= 60 else f"{minutes}분")
        stem = f"시속 {speed} km로 {hours} 동안 이동한 거리는?"
        distract = [value + speed, value - Fraction(speed, 2), Fraction(speed * minutes, 100), value * 2, value + 5]
        choices, ans = _choices(rng, value, [v for v in distract if v > 0], n_choices, lambda v: f"{format_number(v)} km")
    elif kind == "area":
        w, h = rng.randint(3, 15), rng.randint(3, 15)
        if rng.random() < 0.5:
            stem = f"가로가 {w} cm, 세로가 {h} cm인 직사각형의 넓이는?"
            value, distract = w * h, [2 * (w + h), w * h + w, w * h - h, (w + h) ** 2 // 2, w * h // 2]
        else:
            w += w % 2
            stem = f"밑변이 {w} cm, 높이가 {h} cm인 삼각형의 넓이는?"
            value, distract = w * h // 2, [w * h, w + h, w * h // 2 + h, w * h // 4 + 1, (w * h) // 2 - w]
        choices, ans = _choices(rng, value, [v for v in distract if v > 0], n_choices, lambda v: f"{v} cm²")
    elif kind == "gcd_lcm":
        g = rng.randint(2, 9)
        a, b = g * rng.randint(2, 7), g * rng.randint(2, 7)
        while a == b or math.gcd(a, b) != g:
            a, b = g * rng.randint(2, 7), g * rng.randint(2, 7)
        if rng.random() < 0.5:
            stem, value = f"{josa(str(a), '과', '와')} {b}의 최대공약수는?", g
            distract = [v for v in {1, g * 2, g // 2 or g + 1, g + 1, g - 1, math.gcd(a, b + 1)} if v > 0]
        else:
            value = a * b // g
            stem = f"{josa(str(a), '과', '와')} {b}의 최소공배수는?"
            distract = [a * b, value // 2 if value % 2 == 0 else value + g, value + g, value - g, value * 2]
        choices, ans = _choices(rng, value, distract, n_choices, format_number)
    else:
        b, d = rng.sample(range(2, 10), 2)
        a, c = rng.randint(1, b - 1), rng.randint(1, d - 1)
        value = Fraction(a, b) + Fraction(c, d)
        stem = f"{a}/{b} + {c}/{d}의 값은?"
        distract = [Fraction(a + c, b + d), Fraction(a * c, b * d), value + Fraction(1, b * d), value - Fraction(1, b * d),
                    Fraction(a + c, b * d), value + 1]
        choices, ans = _choices(rng, value, [v for v in distract if v > 0], n_choices,
                                lambda v: str(v.numerator) if v.denominator == 1 else f"{v.numerator}/{v.denominator}")
    return ExamItem(stem, choices, ans, f"math/{kind}")


def chart_item(rng: random.Random, split: str, n_choices: int) -> ExamItem:
    """A chart-reading item: a printed chart under the stem, a question answered from its values."""
    spec = sample_chart_spec(rng, split, rng.choice(("bar", "hbar", "line", "table")))
    # one series only: the stem names no series, so a second column would make the question ambiguous
    spec = replace(spec, series=(spec.measure,), values=spec.values[:1])
    values = list(spec.values[0])
    cats = list(spec.categories)
    ask = rng.choice(("max", "min", "value", "difference")) if len(cats) >= n_choices or rng.random() < 0.5 else "value"
    kind_word = "표" if spec.kind == "table" else "그래프"
    if ask in ("max", "min") and len(cats) >= n_choices:
        pick = max(values) if ask == "max" else min(values)
        correct = cats[values.index(pick)]
        others = [c for c in cats if c != correct]
        options = [correct, *rng.sample(others, n_choices - 1)]
        rng.shuffle(options)
        word = "가장 많은" if ask == "max" else "가장 적은"
        stem = f"다음은 {spec.title}을(를) 나타낸 {kind_word}이다. {josa(spec.measure, '이', '가')} {word} {josa(spec.category_label, '은', '는')}?"
        stem = stem.replace("을(를)", "을" if josa(spec.title, "을", "를").endswith("을") else "를")
        return ExamItem(stem, tuple(options), options.index(correct), "chart/" + ask, chart=spec.to_dict())
    if ask == "difference":
        a, b = rng.sample(cats, 2)
        value = abs(spec.value(a) - spec.value(b))
        stem = f"다음 {kind_word}에서 {josa(a, '과', '와')} {b}의 {spec.measure} 차이는?"
    else:
        a = rng.choice(cats)
        value = spec.value(a)
        stem = f"다음 {kind_word}에서 {a}의 {josa(spec.measure, '은', '는')}?"
    step = max(1, value // 10 or 1)
    distract = [value + k * step for k in (-3, -2, -1, 1, 2, 3)] + [v for v in values if v != value]
    choices, ans = _choices(rng, value, [v for v in distract if v >= 0], n_choices, lambda v: with_unit(v, spec.unit))
    return ExamItem(stem, choices, ans, "chart/" + ask, chart=spec.to_dict())


@functools.lru_cache(maxsize=16)
def _kobest_rows(task: str, split: str, corpus_dir: str | None) -> tuple[tuple[str, ...], ...]:
    root = Path(corpus_dir) if corpus_dir else default_corpora_dir()
    path = root / "kobest" / task / f"{KOBEST_SPLIT[split]}.tsv.gz"
    if not path.is_file():
        raise FileNotFoundError(f"KoBEST file missing: {path} (see corpora/kobest/README.md)")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return tuple(tuple(r) for r in rows[1:])


def kobest_item(rng: random.Random, split: str, corpus_dir: str | None = None) -> ExamItem:
    """A random KoBEST item of ``split`` phrased as an exam question."""
    task = rng.choice(("copa", "hellaswag", "boolq"))
    rows = _kobest_rows(task, split, corpus_dir)
    i = rng.randrange(len(rows))
    row = rows[i]
    source = f"kobest/{task}/{KOBEST_SPLIT[split]}/{i}"
    if task == "copa":
        _, sentence, relation, c1, c2, answer = row
        word = "원인" if relation == "원인" else "결과"
        return ExamItem(f"다음 문장의 {josa(word, '으로', '로')} 가장 적절한 것은?", (c1, c2), int(answer) - 1, source, passage=sentence)
    if task == "hellaswag":
        context, *choices, label = row
        return ExamItem("다음 글 바로 뒤에 이어질 내용으로 가장 적절한 것은?", tuple(choices), int(label), source, passage=context)
    _, text, question, answer = row
    return ExamItem(f"다음 글을 읽고 물음에 답하시오. {question}", ("예", "아니요"), 0 if answer == "True" else 1,
                    source, passage=text)


def sample_exam_item(rng: random.Random, split: str, n_choices: int) -> ExamItem:
    roll = rng.random()
    if roll < 0.4:
        return math_item(rng, n_choices)
    if roll < 0.6:
        return chart_item(rng, split, n_choices)
    return kobest_item(rng, split)


def chart_of(item: ExamItem) -> ChartSpec | None:
    return ChartSpec.from_dict(item.chart) if item.chart else None


def choice_label(i: int) -> str:
    return CIRCLED[i]
