"""Drawing primitives that look hand-made when the look is handwritten: wobbly strokes, scribbled fills,
letters that do not sit on one baseline. Printed looks get the same calls drawn straight."""

from __future__ import annotations

import math
import random

from PIL import ImageDraw

from .fonts import scaled
from .look import Look

Point = tuple[float, float]


def wobbly(p0: Point, p1: Point, rng: random.Random, amp: float) -> list[Point]:
    """Points along p0→p1 that drift sideways smoothly (a slow bend plus a little tremor), like a hand line."""
    (x0, y0), (x1, y1) = p0, p1
    length = math.hypot(x1 - x0, y1 - y0)
    if amp <= 0 or length < 4:
        return [p0, p1]
    n = max(2, int(length / 12))
    nx, ny = -(y1 - y0) / length, (x1 - x0) / length
    bend, phase, freq = rng.uniform(-1, 1) * amp * 1.5, rng.uniform(0, math.tau), rng.uniform(0.5, 2.0)
    points = []
    for i in range(n + 1):
        t = i / n
        off = bend * math.sin(math.pi * t) + amp * 0.5 * math.sin(phase + freq * math.tau * t) + rng.gauss(0, amp * 0.15)
        points.append((x0 + (x1 - x0) * t + nx * off, y0 + (y1 - y0) * t + ny * off))
    return points


def line(draw: ImageDraw.ImageDraw, p0: Point, p1: Point, look: Look, rng: random.Random,
         color=None, width: int | None = None) -> None:
    color = color or look.ink
    width = width or look.stroke
    if not look.hand:
        draw.line([p0, p1], fill=color, width=width)
        return
    # a hand overshoots or stops short of where it aims
    (x0, y0), (x1, y1) = p0, p1
    length = math.hypot(x1 - x0, y1 - y0) or 1
    over0, over1 = rng.uniform(-2, 4), rng.uniform(-2, 5)
    ux, uy = (x1 - x0) / length, (y1 - y0) / length
    draw.line(wobbly((x0 - ux * over0, y0 - uy * over0), (x1 + ux * over1, y1 + uy * over1), rng, look.wobble),
              fill=color, width=width, joint="curve")


def rectangle(draw: ImageDraw.ImageDraw, box: tuple[float, float, float, float], look: Look, rng: random.Random,
              color=None, width: int | None = None) -> None:
    x0, y0, x1, y1 = box
    for a, b in (((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)), ((x1, y1), (x0, y1)), ((x0, y1), (x0, y0))):
        line(draw, a, b, look, rng, color, width)


def fill_box(draw: ImageDraw.ImageDraw, box: tuple[float, float, float, float], color, look: Look,
             rng: random.Random, paper=(255, 255, 255)) -> None:
    """Fill a bar: colored-pencil zigzag, hatching, solid colour or nothing, then its outline."""
    x0, y0, x1, y1 = (min(box[0], box[2]), min(box[1], box[3]), max(box[0], box[2]), max(box[1], box[3]))
    if x1 - x0 < 1 or y1 - y0 < 1:
        return
    if look.fill == "solid":
        tint = color if not look.hand else tuple(int(c * 0.75 + p * 0.25) for c, p in zip(color, paper))
        draw.rectangle((x0, y0, x1, y1), fill=tint)
    elif look.fill == "scribble":
        gap = rng.uniform(3.0, 6.0)
        vertical = (y1 - y0) >= (x1 - x0)
        pts, k = [], 0
        span = (x1 - x0) if vertical else (y1 - y0)
        while k * gap <= span:
            j = rng.uniform(-1.5, 1.5)
            if vertical:
                x = x0 + k * gap
                pts.append((x + j, y0 + 1 if k % 2 == 0 else y1 - 1))
            else:
                y = y0 + k * gap
                pts.append((x0 + 1 if k % 2 == 0 else x1 - 1, y + j))
            k += 1
        if len(pts) > 1:
            draw.line(pts, fill=color, width=2, joint="curve")
    elif look.fill == "hatch":
        gap = rng.uniform(5, 9) if look.hand else 6
        h = y1 - y0
        x = x0 - h
        while x < x1:
            a, b = (x, y1), (x + h, y0)
            # clip the 45° stroke to the box
            ax, ay = max(a[0], x0), y1 - (max(a[0], x0) - a[0])
            bx, by = min(b[0], x1), y0 + (b[0] - min(b[0], x1))
            if bx > ax:
                line(draw, (ax, ay), (bx, by), look, rng, color, 2)
            x += gap
    rectangle(draw, (x0, y0, x1, y1), look, rng, color if look.fill != "outline" else look.ink)


def text_size(text: str, font_path, size: int) -> tuple[float, float]:
    font = scaled(font_path, size)
    left, top, right, bottom = font.getbbox(text or " ")
    return font.getlength(text), bottom - min(top, 0)


def fit_size(text: str, font_path, size: int, max_width: float, min_size: int = 10) -> int:
    """The largest size ≤ ``size`` at which ``text`` fits in ``max_width``."""
    width = scaled(font_path, size).getlength(text)
    if width <= max_width:
        return size
    return max(min_size, int(size * max_width / max(width, 1)))


def text(draw: ImageDraw.ImageDraw, xy: Point, s: str, size: int, look: Look, rng: random.Random,
         color=None, anchor: str = "mm") -> tuple[float, float, float, float]:
    """Write ``s`` at ``xy`` (anchor as in PIL: first letter l/m/r, second t/m/b) and return its box.

    Handwriting: each letter moves a little off the baseline and leans by its own size jitter."""
    color = color or look.ink
    font = scaled(look.font.path, size)
    width = font.getlength(s)
    ascent, descent = font.getmetrics()
    x, y = xy
    x0 = x - {"l": 0, "m": width / 2, "r": width}[anchor[0]]
    top = y - {"t": 0, "m": (ascent + descent) / 2, "b": ascent + descent}[anchor[1]]
    if not look.hand:
        draw.text((x0, top), s, font=font, fill=color)
        return (x0, top, x0 + width, top + ascent + descent)
    cx = x0
    drift = rng.uniform(-0.04, 0.04) * size   # the whole word slopes up or down a little
    n = max(len(s) - 1, 1)
    for i, ch in enumerate(s):
        jitter_size = max(8, int(size * rng.uniform(0.92, 1.08)))
        f = scaled(look.font.path, jitter_size)
        dy = drift * i / n + rng.gauss(0, size * 0.035) + (size - jitter_size) * 0.6
        draw.text((cx + rng.gauss(0, size * 0.02), top + dy), ch, font=f, fill=color)
        cx += f.getlength(ch) * rng.uniform(0.96, 1.06)
    return (x0, top, cx, top + ascent + descent)


def wrap(s: str, font_path, size: int, width: float) -> list[str]:
    """Greedy line breaking at spaces (Korean breaks between eojeol), splitting a word only if it alone is too wide.

    Joining the lines with single spaces gives back ``s`` with its whitespace runs collapsed."""
    font = scaled(font_path, size)
    lines: list[str] = []
    current = ""
    for word in s.split():
        candidate = f"{current} {word}" if current else word
        if font.getlength(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        while font.getlength(word) > width and len(word) > 1:
            cut = max(1, next((i for i in range(len(word), 0, -1) if font.getlength(word[:i]) <= width), 1))
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    if current:
        lines.append(current)
    return lines
