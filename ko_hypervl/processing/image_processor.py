"""Images → tensors: tiles for the chosen vision branch, and the thumbnail the VRC looks at.

The model only sees tensors. ``pixel_values`` holds the crops of every image of the batch one after
another, (crops, 3, T, T), in the order their ``<image>`` tokens appear: for each image its tiles row by
row, then its global thumbnail (only when it has more than one tile). ``image_grid`` (images, 2) holds
each image's (rows, cols). Resizing happens on the PIL image before any float tensor exists, so a
12-megapixel photo never becomes a 144 MB float array.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from transformers import BatchFeature
from transformers.image_processing_utils import BaseImageProcessor

from ..configuration import check_branch
from .images import DEFAULT_MAX_PIXELS, load_image
from .tiling import TilePlan, plan_tiles

WHITE = (255, 255, 255)


class KoHyperVLImageProcessor(BaseImageProcessor):
    model_input_names = ["pixel_values", "image_grid"]

    def __init__(self, tile_sizes: dict | None = None, tokens_per_tile: dict | None = None,
                 branch_scales: dict | None = None, max_tiles: int = 16,
                 vrc_image_size: int = 128, image_mean=(0.5, 0.5, 0.5), image_std=(0.5, 0.5, 0.5),
                 pad_color=WHITE, max_pixels: int = DEFAULT_MAX_PIXELS, **kwargs):
        super().__init__(**kwargs)
        self.tile_sizes = dict(tile_sizes or {"large": 224, "small": 224})
        self.tokens_per_tile = dict(tokens_per_tile or {"large": 64, "small": 64})
        # dual resolution: each branch's share of the full resolution (processors saved before it: 1.0 each)
        self.branch_scales = {"large": 1.0, "small": 1.0, **{k: float(v) for k, v in (branch_scales or {}).items()}}
        if set(self.branch_scales) != {"large", "small"} or any(not 0 < s <= 1 for s in self.branch_scales.values()):
            raise ValueError(f"branch_scales must map 'large' and 'small' to values in (0, 1], got {branch_scales}")
        self.max_tiles = int(max_tiles)
        self.vrc_image_size = int(vrc_image_size)
        self.image_mean = list(image_mean)
        self.image_std = list(image_std)
        self.pad_color = list(pad_color)
        self.max_pixels = int(max_pixels)

    @classmethod
    def from_model_config(cls, config, **kwargs) -> "KoHyperVLImageProcessor":
        from ..configuration import tile_size

        return cls(
            tile_sizes={b: tile_size(config.branch_config(b)) for b in ("large", "small")},
            tokens_per_tile={b: config.tokens_per_tile(b) for b in ("large", "small")},
            branch_scales={b: config.branch_image_scale(b) for b in ("large", "small")},
            vrc_image_size=config.vrc_image_size, **kwargs,
        )

    def load(self, image) -> Image.Image:
        return load_image(image, max_pixels=self.max_pixels)

    def plan(self, image: Image.Image, branch: str = "large", scale: float = 1.0) -> TilePlan:
        """The tiling of ``image`` for ``branch`` at VRC scale ``scale`` (times the branch's own image scale)."""
        check_branch(branch)
        if not 0 < scale <= 1:   # checked here too: times a branch scale < 1, a bad one could pass plan_tiles
            raise ValueError(f"scale must be in (0, 1], got {scale}")
        return plan_tiles(image.width, image.height, tile_size=self.tile_sizes[branch],
                          tokens_per_tile=self.tokens_per_tile[branch], max_tiles=self.max_tiles,
                          scale=scale * self.branch_scales[branch])

    def _normalize_(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8-valued float pixels (…, 3, H, W) → the encoder's normalised range, in place."""
        mean = torch.tensor(self.image_mean).view(3, 1, 1)
        std = torch.tensor(self.image_std).view(3, 1, 1)
        return pixels.div_(255).sub_(mean).div_(std)

    def _fit_on_canvas(self, image: Image.Image, width: int, height: int, side: int) -> Image.Image:
        """``image`` resized to ``width``×``height``, pasted top-left on a white ``side``-multiple canvas."""
        resized = image if image.size == (width, height) else image.resize((width, height), Image.BICUBIC,
                                                                            reducing_gap=3.0)
        cols, rows = -(-width // side), -(-height // side)
        canvas = Image.new("RGB", (cols * side, rows * side), tuple(self.pad_color))
        canvas.paste(resized, (0, 0))
        return canvas

    def _fill_crops(self, image: Image.Image, plan: TilePlan, out: torch.Tensor) -> None:
        """Write the plan's crops into ``out`` (plan.num_crops, 3, T, T): tiles row by row, then the thumbnail.

        Pixels stay uint8 until they land in ``out``, so the only float copy of the image is the output itself.
        """
        side = plan.tile_size
        canvas = self._fit_on_canvas(image, plan.resized_width, plan.resized_height, side)
        grid = torch.from_numpy(np.array(canvas, dtype=np.uint8))  # (rows·T, cols·T, 3)
        del canvas
        tiles = grid.view(plan.rows, side, plan.cols, side, 3).permute(0, 2, 4, 1, 3)
        out[:plan.num_tiles].copy_(tiles.reshape(plan.num_tiles, 3, side, side))
        del grid, tiles
        if plan.has_global:
            ratio = side / max(plan.resized_width, plan.resized_height)
            thumb_w, thumb_h = max(1, round(plan.resized_width * ratio)), max(1, round(plan.resized_height * ratio))
            thumbnail = np.array(self._fit_on_canvas(image, thumb_w, thumb_h, side), dtype=np.uint8)
            out[plan.num_tiles].copy_(torch.from_numpy(thumbnail).permute(2, 0, 1))

    def crops(self, image: Image.Image, plan: TilePlan) -> torch.Tensor:
        """(plan.num_crops, 3, T, T) normalised crops of one image."""
        out = torch.empty(plan.num_crops, 3, plan.tile_size, plan.tile_size)
        self._fill_crops(image, plan, out)
        return self._normalize_(out)

    def __call__(self, images, branch: str = "large", scales=None, return_tensors: str = "pt") -> BatchFeature:
        """Tiles of ``images`` (one or a list) for ``branch``, each at its scale (default 1.0: full resolution)."""
        images = [self.load(image) for image in _as_list(images)]
        scales = _per_image(scales, len(images))
        plans = [self.plan(image, branch, scale) for image, scale in zip(images, scales)]
        pixel_values = None
        if images:
            side = self.tile_sizes[branch]
            pixel_values = torch.empty(sum(p.num_crops for p in plans), 3, side, side)
            start = 0
            for image, plan in zip(images, plans):
                self._fill_crops(image, plan, pixel_values[start:start + plan.num_crops])
                start += plan.num_crops
            self._normalize_(pixel_values)
        grid = torch.tensor([[p.rows, p.cols] for p in plans], dtype=torch.long).view(-1, 2)
        feature = BatchFeature({"pixel_values": pixel_values, "image_grid": grid})
        feature.tile_plans = plans
        return feature

    def vrc_inputs(self, images) -> BatchFeature:
        """What the VRC sees: a letterboxed ``vrc_image_size`` thumbnail and the full-resolution size."""
        images = [self.load(image) for image in _as_list(images)]
        side = self.vrc_image_size
        thumbnails, sizes = [], []
        for image in images:
            plan = self.plan(image, "large")
            ratio = side / max(image.width, image.height)
            width, height = max(1, round(image.width * ratio)), max(1, round(image.height * ratio))
            canvas = np.array(self._fit_on_canvas(image, width, height, side), dtype=np.uint8)
            thumbnails.append(self._normalize_(torch.from_numpy(canvas).permute(2, 0, 1).float()))
            sizes.append([plan.full_width, plan.full_height])
        return BatchFeature({"vrc_pixel_values": torch.stack(thumbnails),
                             "vrc_image_sizes": torch.tensor(sizes, dtype=torch.long)})


def _as_list(images) -> list:
    if images is None:
        return []
    return list(images) if isinstance(images, (list, tuple)) else [images]


def _per_image(scales, count: int) -> list[float]:
    if scales is None:
        return [1.0] * count
    if isinstance(scales, (int, float)):
        return [float(scales)] * count
    scales = [float(s) for s in scales]
    if len(scales) != count:
        raise ValueError(f"got {len(scales)} scales for {count} images")
    return scales
