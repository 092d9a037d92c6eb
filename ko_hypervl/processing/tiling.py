"""Tiling arithmetic, as pure functions: how big an image is encoded, how many tiles and visual tokens.

"Full resolution" is the image's own size, shrunk only as far as needed to fit ``max_tiles`` tiles and
the reserved 8×8 grid of tile markers. A VRC scale α resizes both sides of that to α times; the result is
padded up to whole tiles and cut without overlap. Images needing more than one tile also get a global
thumbnail (the whole image in one tile), as in SmolVLM/InternVL. So the visual tokens of an image are

    (rows · cols + [rows · cols > 1]) · tokens_per_tile,   rows = ⌈α·h_full / T⌉, cols = ⌈α·w_full / T⌉.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..tokenization.specials import MAX_TILE_GRID


@dataclass(frozen=True)
class TilePlan:
    width: int              # the image as given
    height: int
    full_width: int         # full resolution: after the max_tiles cap, before the VRC scale
    full_height: int
    scale: float            # the resize factor applied to the full resolution (VRC scale × branch image scale)
    resized_width: int      # what is tiled: the full resolution times α
    resized_height: int
    rows: int
    cols: int
    tile_size: int
    tokens_per_tile: int

    @property
    def num_tiles(self) -> int:
        return self.rows * self.cols

    @property
    def has_global(self) -> bool:
        return self.num_tiles > 1

    @property
    def num_crops(self) -> int:
        """Tiles the encoder runs on: the grid, plus the global thumbnail when there is more than one tile."""
        return self.num_tiles + int(self.has_global)

    @property
    def visual_tokens(self) -> int:
        return self.num_crops * self.tokens_per_tile

    def to_dict(self) -> dict:
        return {**asdict(self), "num_tiles": self.num_tiles, "visual_tokens": self.visual_tokens}


def full_resolution(width: int, height: int, tile_size: int, max_tiles: int) -> tuple[int, int]:
    """The largest size ≤ the image (same aspect ratio) whose tile grid fits ``max_tiles`` and 8×8."""
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}×{height}")
    if max_tiles < 1:
        raise ValueError(f"max_tiles must be ≥ 1, got {max_tiles}")
    if _grid(width, height, tile_size) is not None and _fits(*_grid(width, height, tile_size), max_tiles):
        return width, height
    best = 0.0
    for rows in range(1, MAX_TILE_GRID + 1):
        for cols in range(1, MAX_TILE_GRID + 1):
            if rows * cols <= max_tiles:
                best = max(best, min(cols * tile_size / width, rows * tile_size / height))
    return max(1, math.floor(width * best)), max(1, math.floor(height * best))


def _grid(width: int, height: int, tile_size: int) -> tuple[int, int]:
    return math.ceil(height / tile_size), math.ceil(width / tile_size)


def _fits(rows: int, cols: int, max_tiles: int) -> bool:
    return rows <= MAX_TILE_GRID and cols <= MAX_TILE_GRID and rows * cols <= max_tiles


def plan_tiles(width: int, height: int, *, tile_size: int, tokens_per_tile: int, max_tiles: int,
               scale: float = 1.0) -> TilePlan:
    """The tiling of a ``width``×``height`` image at VRC scale ``scale``."""
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    full_w, full_h = full_resolution(width, height, tile_size, max_tiles)
    resized_w, resized_h = max(1, round(full_w * scale)), max(1, round(full_h * scale))
    rows, cols = _grid(resized_w, resized_h, tile_size)
    return TilePlan(width, height, full_w, full_h, float(scale), resized_w, resized_h, rows, cols, tile_size,
                    tokens_per_tile)
