"""What a chart or table shows, as plain data: the renderers draw it, the question writers ask about it.

A spec is pure data (JSON in every row's metadata), so every answer can be recomputed from it.
Values are integers and distinct within a series, so "the largest" always has exactly one answer.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

from .korean import josa
from .vocab import DOMAINS, MONTHS, QUARTERS, SERIES_PAIRS, WEEKDAYS, YEARS, Domain, words_for

CHART_KINDS = ("bar", "hbar", "grouped_bar", "stacked_bar", "line", "pie")
TIME_AXES = {"월": MONTHS, "요일": WEEKDAYS, "연도": YEARS, "분기": QUARTERS}
# measures whose values add up to something meaningful (a sum of prices or temperatures is not asked)
ADDITIVE_UNITS = ("명", "개", "kg", "권", "대", "회", "시간", "그릇", "잔", "송이", "만 명", "일", "천 톤", "만 원", "톤")
NON_ADDITIVE_MEASURES = ("가격", "점수", "만족도", "비율", "기온", "무게")


@dataclass(frozen=True)
class ChartSpec:
    kind: str                     # one of CHART_KINDS, or "table"
    domain: str
    title: str
    measure: str                  # what is counted: 판매량, 학생 수 ...
    unit: str
    category_label: str           # the category axis: 과일, 월 ...
    categories: tuple[str, ...]
    series: tuple[str, ...]       # legend names; one series is named after the measure
    values: tuple[tuple[int, ...], ...]   # [series][category]

    @property
    def additive(self) -> bool:
        """Whether a sum of the values means something (a total of sales does; a total of prices does not)."""
        return self.unit in ADDITIVE_UNITS and not any(w in self.measure for w in NON_ADDITIVE_MEASURES)

    def value(self, category: str, series: str | None = None) -> int:
        s = self.series.index(series) if series is not None else 0
        return self.values[s][self.categories.index(category)]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ChartSpec":
        return cls(**{**d, "categories": tuple(d["categories"]), "series": tuple(d["series"]),
                      "values": tuple(tuple(v) for v in d["values"])})


def _distinct_values(rng: random.Random, n: int, low: int, high: int) -> tuple[int, ...]:
    """``n`` distinct values in [low, high], on a step a person would choose (1, 5 or 10) when the range allows."""
    span = high - low
    steps = [s for s in (1, 2, 5, 10, 20, 50, 100, 500, 1000) if span // s >= n * 3] or [1]
    step = rng.choice(steps[-2:])
    grid = range(low - low % step + (step if low % step else 0), high + 1, step)
    if len(grid) < n:
        grid = range(low, low + n)
    return tuple(rng.sample(list(grid), n))


def _is_preference(measure: str) -> bool:
    return measure.startswith(("좋아하는", "희망", "선호", "응답"))


def _title(rng: random.Random, domain: Domain, measure: str, label: str, time_axis: str | None) -> str:
    if time_axis:
        subject = rng.choice(domain.words)
        return rng.choice((f"{label}별 {measure}", f"{subject} {measure} 변화", f"{label}에 따른 {subject} {measure}"))
    if measure.startswith(("좋아하는", "희망")):
        verb = "좋아하는" if measure.startswith("좋아하는") else "희망하는"
        who = rng.choice(("우리 반 학생들이", "우리 학교 학생들이", "3학년 학생들이", "동아리 친구들이", ""))
        return f"{who} {verb} {domain.label}".strip() if rng.random() < 0.6 else f"{verb} {domain.label} 조사"
    place = rng.choice(("", "우리 동네 ", "우리 학교 ", "올해 ", "지난달 ", "1학기 "))
    return rng.choice((f"{place}{label}별 {measure}", f"{place}{domain.label}별 {measure}",
                       f"{josa(domain.label, '에', '에')} 따른 {measure}", f"{domain.label}의 {measure} 비교")).strip()


def sample_chart_spec(rng: random.Random, split: str, kind: str | None = None) -> ChartSpec:
    """A random chart spec whose category words belong to ``split`` (see ``vocab.words_for``)."""
    kind = kind or rng.choice(CHART_KINDS)
    if kind not in (*CHART_KINDS, "table"):
        raise ValueError(f"unknown chart kind {kind!r}; choose from {', '.join((*CHART_KINDS, 'table'))}")
    domain = rng.choice(DOMAINS)
    measures = [m for m in domain.measures if kind != "line" or not _is_preference(m[0])]
    if kind == "stacked_bar":   # stacking only makes sense for amounts that add up
        measures = [m for m in measures if m[1] in ADDITIVE_UNITS and not any(w in m[0] for w in NON_ADDITIVE_MEASURES)]
    measures = measures or list(domain.measures)
    measure, unit, low, high = rng.choice(measures)
    time_axis = None
    if kind == "line":
        time_axis = rng.choice(tuple(TIME_AXES))
        axis = TIME_AXES[time_axis]
        n = rng.randint(4, min(8, len(axis)))
        start = rng.randint(0, len(axis) - n)
        categories = axis[start:start + n]
        label = time_axis
    else:
        pool = words_for(domain, split)
        n = rng.randint(3, min(7 if kind in ("bar", "hbar", "pie") else 5, len(pool)))
        categories = tuple(rng.sample(pool, n))
        label = domain.label
    if kind == "pie":
        unit, measure = "%", "응답 비율" if _is_preference(measure) else f"{measure} 비율"
        values = (_shares(rng, len(categories)),)
        series = (measure,)
    else:
        # a series may not share a name with a category ('농촌' is a region and a series; '2024년' a year)
        pairs = [p for p in SERIES_PAIRS if not set(p) & (set(domain.words) | set(categories))]
        n_series = 2 if kind in ("grouped_bar", "stacked_bar") else (rng.choice((1, 1, 2)) if kind in ("line", "table") else 1)
        series = rng.choice(pairs)[:n_series] if n_series > 1 else (measure,)
        if kind == "table" and n_series == 1 and rng.random() < 0.4:
            series = rng.choice(pairs)
        values = tuple(_distinct_values(rng, len(categories), low, high) for _ in series)
    title = _title(rng, domain, measure, label, time_axis)
    return ChartSpec(kind, domain.name, title, measure, unit, label, tuple(categories), tuple(series), values)


def _shares(rng: random.Random, n: int) -> tuple[int, ...]:
    """``n`` distinct positive percentages that add up to exactly 100."""
    while True:
        step = rng.choice((1, 5)) if n <= 5 else 1
        cuts = sorted(rng.sample(range(1, 100 // step), n - 1))
        parts = [b - a for a, b in zip([0, *cuts], [*cuts, 100 // step])]
        shares = tuple(p * step for p in parts)
        if len(set(shares)) == n and sum(shares) == 100 and min(shares) >= 3:
            return shares
