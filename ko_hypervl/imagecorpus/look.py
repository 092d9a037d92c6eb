"""How a sample looks: handwritten or printed, which face, which paper, which inks.

The style name (``handwritten-grid``, ``printed-white``...) is what the splits hold out: styles in
``TEST_STYLES`` are drawn only for test samples.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .fonts import FontFace, faces_for

HAND_PAPERS = ("plain", "lined", "grid", "kraft", "dotted", "sticky")
PRINT_PAPERS = ("white", "panel", "textbook")
TEST_STYLES = frozenset({"handwritten-dotted", "handwritten-sticky", "printed-textbook"})

# pencil / pen / marker inks a student would use, and clean chart palettes for printed charts
HAND_INKS = ((35, 35, 40), (25, 45, 120), (60, 60, 65), (20, 20, 20), (90, 40, 30))
HAND_PALETTES = (
    ((220, 60, 60), (60, 110, 210), (60, 160, 80), (240, 170, 40), (150, 80, 180), (240, 120, 170), (60, 170, 190)),
    ((250, 140, 60), (90, 170, 230), (150, 200, 90), (235, 90, 120), (160, 120, 200), (250, 210, 80), (120, 120, 120)),
    ((200, 40, 40), (30, 80, 180), (30, 130, 60), (120, 70, 40), (230, 150, 0), (110, 50, 150), (0, 140, 140)),
)
PRINT_PALETTES = (
    ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75), (227, 119, 194)),
    ((70, 130, 180), (240, 160, 60), (110, 180, 120), (200, 90, 90), (150, 130, 200), (90, 170, 170), (190, 190, 80)),
    ((52, 73, 94), (231, 76, 60), (46, 204, 113), (241, 196, 15), (155, 89, 182), (26, 188, 156), (230, 126, 34)),
)


@dataclass(frozen=True)
class Look:
    hand: bool
    font: FontFace
    paper: str
    ink: tuple[int, int, int]
    palette: tuple[tuple[int, int, int], ...]
    wobble: float          # how far a hand-drawn line strays, in pixels
    stroke: int            # line width
    fill: str              # bars: scribble | hatch | solid | outline

    @property
    def style(self) -> str:
        return f"{'handwritten' if self.hand else 'printed'}-{self.paper}"


def styles_for(split: str, hand: bool) -> tuple[str, ...]:
    papers = HAND_PAPERS if hand else PRINT_PAPERS
    prefix = "handwritten" if hand else "printed"
    names = tuple(f"{prefix}-{p}" for p in papers)
    return tuple(n for n in names if (n in TEST_STYLES) == (split == "test"))


def sample_look(rng: random.Random, split: str, hand: bool, font_dir=None) -> Look:
    """A random look allowed in ``split``: its font and its paper style are held out as the split says."""
    font = rng.choice(faces_for(split, "handwriting" if hand else "printed", font_dir))
    style = rng.choice(styles_for(split, hand))
    paper = style.split("-", 1)[1]
    if hand:
        return Look(True, font, paper, rng.choice(HAND_INKS), rng.choice(HAND_PALETTES), rng.uniform(0.8, 2.6),
                    rng.choice((2, 2, 3)), rng.choice(("scribble", "scribble", "hatch", "solid", "outline")))
    return Look(False, font, paper, (30, 30, 30), rng.choice(PRINT_PALETTES), 0.0, rng.choice((1, 2)),
                rng.choice(("solid", "solid", "solid", "hatch")))
