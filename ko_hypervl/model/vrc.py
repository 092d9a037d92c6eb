"""The Visual Resolution Compressor: a small CNN that picks, per image, the scale to encode it at.

As in HyperVL: a MobileNet-style stack of depthwise-separable convolutions over a thumbnail, weighted
(attention) pooling, and an MLP that also sees the full-resolution size (a thumbnail alone cannot tell a
poster from a receipt). It classifies over the config's discrete ``vrc_scales``; the label for training is
the smallest scale whose answer loss stays within a tolerance of full resolution (issue #6).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _separable(channels_in: int, channels_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_in, 3, stride, 1, groups=channels_in, bias=False),
        nn.BatchNorm2d(channels_in), nn.ReLU6(inplace=True),
        nn.Conv2d(channels_in, channels_out, 1, bias=False),
        nn.BatchNorm2d(channels_out), nn.ReLU6(inplace=True),
    )


def size_features(image_sizes: torch.Tensor) -> torch.Tensor:
    """(N, 2) full-resolution (width, height) → log-area and log-aspect, roughly centred on a 1-megapixel page."""
    sizes = image_sizes.to(torch.float32).clamp(min=1)
    log_area = (sizes[:, 0].log() + sizes[:, 1].log() - 2 * math.log(1000.0)) / 2
    log_aspect = sizes[:, 0].log() - sizes[:, 1].log()
    return torch.stack([log_area, log_aspect], dim=1)


class VisualResolutionCompressor(nn.Module):
    def __init__(self, num_scales: int, channels: int = 32):
        super().__init__()
        c = channels
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU6(inplace=True))
        self.features = nn.Sequential(
            _separable(c, c, 1), _separable(c, 2 * c, 2), _separable(2 * c, 2 * c, 1),
            _separable(2 * c, 4 * c, 2), _separable(4 * c, 4 * c, 1), _separable(4 * c, 4 * c, 2),
        )
        # weighted pooling: a 1×1 conv scores each position; text-dense regions can outweigh blank paper
        self.pool_score = nn.Conv2d(4 * c, 1, 1)
        self.head = nn.Sequential(nn.Linear(4 * c + 2, 4 * c), nn.ReLU(inplace=True), nn.Linear(4 * c, num_scales))

    def pooled_features(self, vrc_pixel_values: torch.Tensor) -> torch.Tensor:
        """(N, C) image features after weighted pooling, the input of the head (with the size features)."""
        x = self.features(self.stem(vrc_pixel_values.to(self.pool_score.weight.dtype)))
        weights = self.pool_score(x).flatten(2).softmax(dim=-1)            # (N, 1, HW)
        return (x.flatten(2) * weights).sum(dim=-1)

    def classify(self, pooled: torch.Tensor, image_sizes: torch.Tensor) -> torch.Tensor:
        extra = size_features(image_sizes).to(pooled.dtype)
        return self.head(torch.cat([pooled, extra], dim=1))

    def forward(self, vrc_pixel_values: torch.Tensor, image_sizes: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_scales) for thumbnails (N, 3, S, S) of images whose full size is ``image_sizes`` (N, 2)."""
        return self.classify(self.pooled_features(vrc_pixel_values), image_sizes)


def choose_scales(logits: torch.Tensor, scales: list[float]) -> list[float]:
    """The scale each image gets: the most likely class."""
    return [scales[i] for i in logits.argmax(dim=-1).tolist()]
