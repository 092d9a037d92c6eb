"""Rendering speed, beside a baseline measured in the same run: the same chart specs drawn by a plain
matplotlib bar chart saved as JPEG (what most synthetic-chart pipelines do), on one core."""

from __future__ import annotations

import io
import random
import time
from dataclasses import dataclass

from .build import render_sample
from .chartspec import sample_chart_spec
from .fonts import load_font_catalog
from .ocr import corpus_lines
from .records import KINDS


@dataclass(frozen=True)
class SpeedRow:
    name: str
    samples: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.samples / self.seconds


def _matplotlib_chart(spec, font_path) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import font_manager, pyplot as plt

    font_manager.fontManager.addfont(str(font_path))
    family = font_manager.FontProperties(fname=str(font_path)).get_name()
    plt.rcParams.update({"font.family": family, "axes.unicode_minus": False})
    fig, ax = plt.subplots(figsize=(7, 5), dpi=100)
    bars = ax.bar(spec.categories, spec.values[0])
    ax.bar_label(bars)
    ax.set_title(spec.title)
    ax.set_ylabel(spec.unit)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="jpeg")
    plt.close(fig)
    return buffer.getvalue()


def measure_rendering(num: int, seed: int = 0) -> list[SpeedRow]:
    """Samples per second on one core for each kind, and for the matplotlib baseline on the same specs."""
    corpus_lines("train")   # loading the text corpus is start-up cost, not rendering
    rows = []
    for kind in KINDS:
        render_sample(kind, -1, seed, "train", 4)   # warm the font caches
        start = time.perf_counter()
        for i in range(num):
            render_sample(kind, i, seed, "train", 4)
        rows.append(SpeedRow(f"ko-hypervl {kind}", num, time.perf_counter() - start))
    rng = random.Random(seed)
    specs = [sample_chart_spec(rng, "train", "bar") for _ in range(num)]
    font = next(f.path for f in load_font_catalog() if f.name == "nanum-pen")
    _matplotlib_chart(specs[0], font)
    start = time.perf_counter()
    for spec in specs:
        _matplotlib_chart(spec, font)
    rows.append(SpeedRow("matplotlib bar chart (baseline)", num, time.perf_counter() - start))
    return rows
