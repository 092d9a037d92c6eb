"""Pixel shuffle + MLP: patch features of one tile → a few visual tokens in the LM's hidden size."""

from __future__ import annotations

import torch
from torch import nn


def pixel_shuffle(features: torch.Tensor, factor: int) -> torch.Tensor:
    """(tiles, side², hidden) → (tiles, (side/factor)², hidden·factor²): each factor×factor patch block becomes one token.

    Blocks are gathered in row-major order within the tile, so a token still covers a compact square of the
    image (SmolVLM's space-to-depth, written for square patch grids).
    """
    tiles, length, hidden = features.shape
    side = int(round(length ** 0.5))
    if side * side != length or side % factor:
        raise ValueError(f"pixel shuffle needs a square patch grid divisible by {factor}; got {length} patches")
    out = side // factor
    x = features.view(tiles, out, factor, out, factor, hidden)
    x = x.permute(0, 1, 3, 2, 4, 5)
    return x.reshape(tiles, out * out, factor * factor * hidden)


class PixelShuffleProjector(nn.Module):
    """Folds ``factor``×``factor`` patches into one token, then a two-layer MLP into the LM's width."""

    def __init__(self, vision_hidden: int, text_hidden: int, factor: int):
        super().__init__()
        self.factor = factor
        self.norm = nn.LayerNorm(vision_hidden * factor * factor)
        self.fc1 = nn.Linear(vision_hidden * factor * factor, text_hidden)
        self.fc2 = nn.Linear(text_hidden, text_hidden)

    def forward(self, patch_features: torch.Tensor) -> torch.Tensor:
        x = self.norm(pixel_shuffle(patch_features, self.factor))
        return self.fc2(nn.functional.gelu(self.fc1(x)))
