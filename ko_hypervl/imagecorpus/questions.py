"""Questions in natural Korean about a chart or table spec, with exact answers computed from the spec.

Every function is pure: the same spec and random state give the same questions, and the test suite
recomputes every answer from the spec stored in a row's metadata.
"""

from __future__ import annotations

import random
from fractions import Fraction

from .chartspec import ChartSpec
from .korean import format_number, josa, round_half_up, with_unit
from .records import QA


def markdown_table(spec: ChartSpec) -> str:
    """The spec as a markdown table: one row per category, one column per series (unit in the header)."""
    unit = f"({spec.unit})" if spec.unit else ""
    header = [spec.category_label, *(f"{s}{unit}" for s in spec.series)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for i, category in enumerate(spec.categories):
        lines.append("| " + " | ".join([category, *(format_number(v[i]) for v in spec.values)]) + " |")
    return "\n".join(lines)


def average_answer(values: list[int], unit: str) -> str:
    """The mean, exact when it is a whole number, else rounded half up to one decimal."""
    mean = Fraction(sum(values), len(values))
    return with_unit(mean if mean.denominator == 1 else round_half_up(mean, 1), unit)


def trend_answer(values: list[int]) -> str:
    """How a series changes from first to last, in one of four fixed sentences."""
    steps = [b - a for a, b in zip(values, values[1:])]
    if all(s > 0 for s in steps):
        return "계속 증가했습니다."
    if all(s < 0 for s in steps):
        return "계속 감소했습니다."
    return "증가와 감소를 반복하다가 처음보다 " + ("증가했습니다." if values[-1] > values[0] else "감소했습니다.")


def _ask(rng: random.Random, *templates: str) -> str:
    return rng.choice(templates)


def _series_label(spec: ChartSpec, s: int) -> str:
    return "" if len(spec.series) == 1 else f"{spec.series[s]} "


def chart_questions(spec: ChartSpec, rng: random.Random, count: int) -> list[QA]:
    """``count`` questions of different types (fewer if the spec supports fewer), in random order."""
    m, unit, label = spec.measure, spec.unit, spec.category_label
    s = rng.randrange(len(spec.series))
    values = list(spec.values[s])
    cats = list(spec.categories)
    ser = _series_label(spec, s)
    a, b = rng.sample(cats, 2)
    va, vb = spec.value(a, spec.series[s]), spec.value(b, spec.series[s])
    chart_word = "표" if spec.kind == "table" else "그래프"
    pool: list[QA] = []

    c = rng.choice(cats)
    pool.append(QA(_ask(rng, f"{ser}{c}의 {josa(m, '은', '는')} 얼마인가요?",
                        f"{chart_word}에서 {ser}{c}의 {josa(m, '을', '를')} 읽어 주세요.",
                        f"{ser}{c}의 {josa(m, '은', '는')} 몇 {unit}인가요?" if unit else f"{ser}{c}의 {m} 값은?"),
                   with_unit(spec.value(c, spec.series[s]), unit), "lookup"))
    top = cats[values.index(max(values))]
    low = cats[values.index(min(values))]
    many = "높은" if unit in ("점", "도", "%", "원", "만 원") else "많은"
    few = "낮은" if many == "높은" else "적은"
    pool.append(QA(_ask(rng, f"{ser}{josa(m, '이', '가')} 가장 {many} {josa(label, '은', '는')} 무엇인가요?",
                        f"{ser}{m} 기준으로 1위인 {josa(label, '은', '는')}?"), top, "max"))
    pool.append(QA(f"{ser}{josa(m, '이', '가')} 가장 {few} {josa(label, '은', '는')} 무엇인가요?", low, "min"))
    pool.append(QA(f"{josa(a, '과', '와')} {b} 중 {ser}{josa(m, '이', '가')} 더 {many} 것은 어느 쪽인가요?",
                   a if va > vb else b, "compare"))
    pool.append(QA(_ask(rng, f"{josa(a, '과', '와')} {b}의 {ser}{m} 차이는 얼마인가요?",
                        f"{ser}{m}에서 {josa(a, '과', '와')} {josa(b, '은', '는')} 얼마나 차이 나나요?"),
                   with_unit(abs(va - vb), unit), "difference"))
    if spec.additive and spec.kind != "pie":
        pool.append(QA(f"{ser}{label}별 {josa(m, '을', '를')} 모두 더하면 얼마인가요?", with_unit(sum(values), unit), "sum"))
    if spec.kind != "pie":
        pool.append(QA(f"{ser}{m}의 평균은 얼마인가요? (나누어떨어지지 않으면 소수 둘째 자리에서 반올림)",
                       average_answer(values, unit), "average"))
    pool.append(QA(_ask(rng, f"이 {chart_word}의 제목은 무엇인가요?", f"{chart_word} 제목을 그대로 읽어 주세요."), spec.title, "title"))
    if unit:
        pool.append(QA(f"{josa(m, '의', '의')} 단위는 무엇인가요?", unit, "unit"))
    pool.append(QA(_ask(rng, f"이 {chart_word}의 내용을 마크다운 표로 옮겨 주세요.",
                        "표를 마크다운으로 그대로 옮겨 적어 주세요." if spec.kind == "table" else "그래프를 표로 정리해 주세요."),
                   markdown_table(spec), "to_table"))
    if spec.kind == "line":
        first, last = cats[0], cats[-1]
        pool.append(QA(f"{josa(first, '부터', '부터')} {last}까지 {ser}{josa(m, '은', '는')} 어떻게 변했나요?",
                       trend_answer(values), "trend"))
        steps = [y - x for x, y in zip(values, values[1:])]
        if max(steps) > 0 and steps.count(max(steps)) == 1:
            i = steps.index(max(steps))
            pool.append(QA(f"{ser}{josa(m, '이', '가')} 가장 많이 증가한 때는 언제인가요?",
                           f"{cats[i]}에서 {cats[i + 1]} 사이", "trend"))
    if spec.kind == "stacked_bar" or (len(spec.series) > 1 and spec.additive):
        totals = [sum(v[i] for v in spec.values) for i in range(len(cats))]
        c = rng.choice(cats)
        pool.append(QA(f"{c}의 {' + '.join(spec.series)} 합계 {josa(m, '은', '는')} 얼마인가요?",
                       with_unit(totals[cats.index(c)], unit), "sum"))
    if len(spec.series) == 2:
        c = rng.choice(cats)
        v0, v1 = (spec.value(c, x) for x in spec.series)
        pool.append(QA(f"{c}에서 {josa(spec.series[0], '과', '와')} {spec.series[1]} 중 {josa(m, '이', '가')} 더 {many} 쪽은?",
                       spec.series[0] if v0 > v1 else spec.series[1] if v1 > v0 else "같습니다", "compare"))
    if spec.kind == "pie":
        pool.append(QA(f"{josa(a, '과', '와')} {josa(b, '을', '를')} 합하면 전체의 몇 %인가요?", with_unit(va + vb, "%"), "sum"))

    rng.shuffle(pool)
    chosen, seen = [], set()
    for qa in pool:   # prefer one question per task type before repeating a type
        if qa.task not in seen:
            chosen.append(qa)
            seen.add(qa.task)
    chosen += [qa for qa in pool if qa not in chosen]
    return chosen[:count]
