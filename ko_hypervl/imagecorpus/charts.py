"""Draw a ``ChartSpec`` as a chart or table: bars (vertical, horizontal, grouped, stacked), lines, pies, tables.

Every value is written on the chart (on or beside its bar, point or slice, or in its cell), because the
questions ask for exact values: a chart whose numbers can only be estimated from the axis would make
exact answers unfair.
"""

from __future__ import annotations

import math
import random

from PIL import Image, ImageDraw

from . import draw as d
from .chartspec import ChartSpec
from .korean import format_number
from .look import Look
from .paper import make_paper, paper_color


def nice_axis_max(value: float) -> tuple[float, float]:
    """An axis top at or above ``value`` and a tick step, both round numbers (1, 2, 2.5, 5 × 10^k)."""
    if value <= 0:
        return 1.0, 1.0
    raw = value / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return math.ceil(value / step) * step, step


def _tick_label(v: float) -> str:
    return format_number(int(v) if float(v).is_integer() else round(v, 2))


class _Canvas:
    """The page, its pen and the sizes every part of a chart shares."""

    def __init__(self, spec: ChartSpec, look: Look, rng: random.Random, width: int, height: int):
        self.spec, self.look, self.rng = spec, look, rng
        self.image = make_paper(look.paper, width, height, rng)
        self.draw = ImageDraw.Draw(self.image)
        self.paper = paper_color(look.paper)
        scale = min(width, height) / 520
        self.title_size = int(rng.uniform(26, 34) * scale)
        self.label_size = int(rng.uniform(16, 20) * scale)
        self.value_size = int(rng.uniform(15, 19) * scale)
        self.w, self.h = width, height

    def text(self, xy, s, size, color=None, anchor="mm"):
        return d.text(self.draw, xy, s, size, self.look, self.rng, color, anchor)

    def line(self, p0, p1, color=None, width=None):
        d.line(self.draw, p0, p1, self.look, self.rng, color, width)

    def header(self) -> float:
        """Title (and unit note); returns the y where the plot may start."""
        spec, rng = self.spec, self.rng
        size = d.fit_size(spec.title, self.look.font.path, self.title_size, self.w * 0.9)
        x = self.w / 2 if rng.random() < 0.8 else self.w * 0.06
        box = self.text((x, self.h * 0.045), spec.title, size, anchor="mt" if x == self.w / 2 else "lt")
        if self.look.hand and rng.random() < 0.5:   # students underline titles
            self.line((box[0], box[3] + 3), (box[2], box[3] + 3))
        return box[3] + self.h * 0.04

    def unit_note(self, x: float, y: float, anchor: str = "lb") -> None:
        if self.spec.unit:
            note = self.rng.choice((f"(단위: {self.spec.unit})", f"({self.spec.unit})", f"단위: {self.spec.unit}"))
            self.text((x, y), note, self.label_size, anchor=anchor)

    def legend(self, x: float, y: float) -> None:
        if len(self.spec.series) < 2:
            return
        size = self.label_size
        for i, name in enumerate(self.spec.series):
            color = self.look.palette[i]
            yy = y + i * size * 1.5
            d.fill_box(self.draw, (x, yy - size * 0.4, x + size, yy + size * 0.4), color, self.look, self.rng, self.paper)
            self.text((x + size * 1.4, yy), name, size, anchor="lm")

    def category_size(self, slot: float) -> int:
        longest = max(self.spec.categories, key=len)
        return d.fit_size(longest, self.look.font.path, self.label_size, slot * 0.95, min_size=9)


def _render_bars(c: _Canvas, horizontal: bool) -> None:
    spec, rng, look = c.spec, c.rng, c.look
    top = c.header()
    stacked = spec.kind == "stacked_bar"
    n, k = len(spec.categories), len(spec.series)
    peak = max(sum(v[i] for v in spec.values) for i in range(n)) if stacked else max(max(v) for v in spec.values)
    axis_max, step = nice_axis_max(peak * rng.uniform(1.05, 1.2))
    legend_w = c.label_size * 5 if k > 1 else 0
    if horizontal:
        label_w = max(d.text_size(w, look.font.path, c.label_size)[0] for w in spec.categories) + 16
        left, right, bottom = c.w * 0.05 + label_w, c.w * 0.93 - legend_w, c.h * 0.9
        top += c.label_size * 1.2
    else:
        left, right, bottom = c.w * 0.13, c.w * 0.95 - legend_w, c.h * 0.86
        top += c.label_size * 1.3
    c.unit_note(left - (0 if horizontal else c.w * 0.08), top - c.label_size * 0.4)
    c.legend(right + c.label_size, top + c.label_size)
    # axes, ticks and (sometimes) grid lines
    c.line((left, bottom), (right, bottom))
    c.line((left, bottom), (left, top))
    grid = rng.random() < (0.3 if look.hand else 0.6)
    t = 0.0
    while t <= axis_max + 1e-9:
        if horizontal:
            x = left + (right - left) * t / axis_max
            c.line((x, bottom), (x, bottom + 5))
            c.text((x, bottom + 8), _tick_label(t), c.value_size, anchor="mt")
            if grid and t > 0:
                c.draw.line([(x, top), (x, bottom)], fill=(205, 205, 205), width=1)
        else:
            y = bottom - (bottom - top) * t / axis_max
            c.line((left - 5, y), (left, y))
            c.text((left - 8, y), _tick_label(t), c.value_size, anchor="rm")
            if grid and t > 0:
                c.draw.line([(left, y), (right, y)], fill=(205, 205, 205), width=1)
        t += step
    span = (bottom - top) if not horizontal else (right - left)
    slot = ((right - left) if not horizontal else (bottom - top)) / n
    bar_share = rng.uniform(0.45, 0.7)
    cat_size = c.category_size(slot) if not horizontal else c.label_size
    for i, category in enumerate(spec.categories):
        center = (left if not horizontal else top) + slot * (i + 0.5)
        group_w = slot * bar_share
        if horizontal:
            c.text((left - 8, center), category, cat_size, anchor="rm")
        else:
            c.text((center, bottom + 8), category, cat_size, anchor="mt")
        base = 0.0
        for s in range(k):
            value = spec.values[s][i]
            color = look.palette[s]
            if stacked:
                a, b, width, offset = base, base + value, group_w, 0.0
                base += value
            else:
                width = group_w / k
                a, b, offset = 0.0, value, -group_w / 2 + width * (s + 0.5)
            p0, p1 = span * a / axis_max, span * b / axis_max
            if horizontal:
                box = (left + p0, center + offset - width / 2, left + p1, center + offset + width / 2)
            else:
                box = (center + offset - width / 2, bottom - p1, center + offset + width / 2, bottom - p0)
            d.fill_box(c.draw, box, color, look, rng, c.paper)
            label = format_number(value)
            size = c.value_size if k == 1 or stacked else max(9, int(c.value_size * 0.9))
            if stacked:
                inside = (p1 - p0) > size * 1.3 if not horizontal else (p1 - p0) > d.text_size(label, look.font.path, size)[0] + 6
                mid = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
                if inside:
                    c.text(mid, label, size, color=look.ink, anchor="mm")
                elif horizontal:
                    c.text((mid[0], box[1] - 2), label, size, anchor="mb")
                else:
                    c.text((box[2] + 4, mid[1]), label, size, anchor="lm")
            elif horizontal:
                c.text((box[2] + 6, (box[1] + box[3]) / 2), label, size, anchor="lm")
            else:
                c.text(((box[0] + box[2]) / 2, box[1] - 4), label, size, anchor="mb")
    if rng.random() < 0.5:   # axis caption for the categories
        caption = spec.category_label
        if horizontal:
            c.text((left - 8, top - c.label_size * 0.4), caption, c.label_size, anchor="rb")
        else:
            c.text((right, bottom + c.label_size * 2.2), caption, c.label_size, anchor="rt")


def _render_line(c: _Canvas) -> None:
    spec, rng, look = c.spec, c.rng, c.look
    top = c.header() + c.label_size * 1.3
    n, k = len(spec.categories), len(spec.series)
    low, high = min(min(v) for v in spec.values), max(max(v) for v in spec.values)
    axis_max, step = nice_axis_max(high * rng.uniform(1.08, 1.2))
    axis_min = 0.0 if rng.random() < 0.6 or low < step * 2 else math.floor(low * 0.8 / step) * step
    legend_w = c.label_size * 5 if k > 1 else 0
    left, right, bottom = c.w * 0.13, c.w * 0.95 - legend_w, c.h * 0.86
    c.unit_note(left - c.w * 0.08, top - c.label_size * 0.4)
    c.legend(right + c.label_size, top + c.label_size)
    c.line((left, bottom), (right, bottom))
    c.line((left, bottom), (left, top))
    grid = rng.random() < (0.4 if look.hand else 0.7)
    t = axis_min
    while t <= axis_max + 1e-9:
        y = bottom - (bottom - top) * (t - axis_min) / (axis_max - axis_min)
        c.line((left - 5, y), (left, y))
        c.text((left - 8, y), _tick_label(t), c.value_size, anchor="rm")
        if grid and t > axis_min:
            c.draw.line([(left, y), (right, y)], fill=(210, 210, 210), width=1)
        t += step
    slot = (right - left) / n
    cat_size = c.category_size(slot)
    xs = [left + slot * (i + 0.5) for i in range(n)]
    for i, category in enumerate(spec.categories):
        c.line((xs[i], bottom), (xs[i], bottom + 5))
        c.text((xs[i], bottom + 8), category, cat_size, anchor="mt")
    for s in range(k):
        color = look.palette[s] if k > 1 or rng.random() < 0.7 else look.ink
        ys = [bottom - (bottom - top) * (v - axis_min) / (axis_max - axis_min) for v in spec.values[s]]
        for i in range(n - 1):
            c.line((xs[i], ys[i]), (xs[i + 1], ys[i + 1]), color=color, width=look.stroke + 1)
        r = max(3, c.value_size * 0.22)
        for i in range(n):
            c.draw.ellipse((xs[i] - r, ys[i] - r, xs[i] + r, ys[i] + r), fill=color)
            # the lower series writes its values below its points, so two lines never print over each other
            below = k > 1 and s == 1 and spec.values[1][i] < spec.values[0][i] or k > 1 and s == 0 and spec.values[0][i] < spec.values[1][i]
            c.text((xs[i], ys[i] + (r + 4 if below else -r - 4)), format_number(spec.values[s][i]), c.value_size,
                   anchor="mt" if below else "mb")


def _render_pie(c: _Canvas) -> None:
    spec, rng, look = c.spec, c.rng, c.look
    top = c.header()
    radius = min(c.w * 0.28, (c.h - top) * 0.38)
    cx, cy = c.w * rng.uniform(0.4, 0.5), top + (c.h - top) / 2
    start = rng.uniform(-100, -80)   # people start at twelve o'clock
    angle = start
    for i, (category, share) in enumerate(zip(spec.categories, spec.values[0])):
        sweep = 360 * share / 100
        color = look.palette[i % len(look.palette)]
        if look.hand:
            tint = tuple(int(v * 0.55 + p * 0.45) for v, p in zip(color, c.paper))
            c.draw.pieslice((cx - radius, cy - radius, cx + radius, cy + radius), angle, angle + sweep, fill=tint)
        else:
            c.draw.pieslice((cx - radius, cy - radius, cx + radius, cy + radius), angle, angle + sweep, fill=color,
                            outline=(255, 255, 255), width=2)
        mid = math.radians(angle + sweep / 2)
        if look.hand:
            c.line((cx, cy), (cx + radius * math.cos(math.radians(angle)), cy + radius * math.sin(math.radians(angle))))
        label = f"{category} {format_number(share)}%"
        inside = sweep > 40 and d.text_size(label, look.font.path, c.value_size)[0] < radius * 0.9
        dist = radius * (0.62 if inside else 1.12)
        lx, ly = cx + dist * math.cos(mid), cy + dist * math.sin(mid)
        anchor = "mm" if inside else ("lm" if math.cos(mid) >= 0 else "rm")
        c.text((lx, ly), label, c.value_size, color=look.ink, anchor=anchor)
        angle += sweep
    if look.hand:   # a circle drawn freehand as many short wobbly strokes
        points = [(cx + radius * math.cos(a), cy + radius * math.sin(a))
                  for a in (math.tau * j / 48 + rng.gauss(0, 0.01) for j in range(49))]
        c.draw.line([(x + rng.gauss(0, look.wobble * 0.4), y + rng.gauss(0, look.wobble * 0.4)) for x, y in points],
                    fill=look.ink, width=look.stroke, joint="curve")
    else:
        c.draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), outline=(90, 90, 90), width=1)


def _render_table(c: _Canvas) -> None:
    spec, rng, look = c.spec, c.rng, c.look
    top = c.header() + c.label_size * 1.4
    header = [spec.category_label, *spec.series]
    rows = [header] + [[cat, *(format_number(v[i]) for v in spec.values)] for i, cat in enumerate(spec.categories)]
    # categories across the top, as many textbooks print them (only when few, so cells stay legible)
    transpose = len(spec.categories) <= 4 and rng.random() < 0.3
    if transpose:
        rows = [list(col) for col in zip(*rows)]
    n_rows, n_cols = len(rows), len(rows[0])
    left, right = c.w * 0.06, c.w * 0.94
    bottom = min(c.h * 0.94, top + n_rows * c.label_size * 2.6)
    col_w, row_h = (right - left) / n_cols, (bottom - top) / n_rows
    size = min(c.label_size, int(row_h * 0.55))
    longest = max((cell for row in rows for cell in row), key=len)
    size = d.fit_size(longest, look.font.path, size, col_w * 0.92, min_size=9)
    c.unit_note(right, top - c.label_size * 0.4, anchor="rb")
    if not look.hand and rng.random() < 0.7:   # shaded header like a textbook table
        shade = tuple(int(v * 0.25 + 255 * 0.75) for v in look.palette[0])
        c.draw.rectangle((left, top, right, top + row_h), fill=shade)
        if transpose:
            c.draw.rectangle((left, top, left + col_w, bottom), fill=shade)
    for r in range(n_rows + 1):
        y = top + r * row_h
        c.line((left, y), (right, y), width=look.stroke + (1 if r in (0, 1, n_rows) else 0))
    for col in range(n_cols + 1):
        x = left + col * col_w
        c.line((x, top), (x, bottom))
    for r, row in enumerate(rows):
        for col, cell in enumerate(row):
            c.text((left + (col + 0.5) * col_w, top + (r + 0.5) * row_h), cell, size, anchor="mm")


def render_chart(spec: ChartSpec, look: Look, rng: random.Random, size: tuple[int, int] | None = None) -> Image.Image:
    """The chart (or table) of ``spec`` drawn in ``look`` on its paper, before any capture effects."""
    width, height = size or (rng.randint(560, 820), rng.randint(440, 620))
    canvas = _Canvas(spec, look, rng, width, height)
    if spec.kind in ("bar", "grouped_bar", "stacked_bar"):
        _render_bars(canvas, horizontal=False)
    elif spec.kind == "hbar":
        _render_bars(canvas, horizontal=True)
    elif spec.kind == "line":
        _render_line(canvas)
    elif spec.kind == "pie":
        _render_pie(canvas)
    elif spec.kind == "table":
        _render_table(canvas)
    else:
        raise ValueError(f"cannot draw chart kind {spec.kind!r}")
    return canvas.image
