"""The vision encoders: the built-in ViT, and building any encoder from its config.

A branch is any transformers vision model whose output ``last_hidden_state`` holds one vector per
patch (SigLIP, or ``KoViTModel`` here); ``KoHyperVLForConditionalGeneration.get_image_features``
runs tiles through it in bounded chunks.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput

from ..configuration import KoViTConfig


class KoViTBlock(nn.Module):
    def __init__(self, config: KoViTConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(batch, length, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        attended = nn.functional.scaled_dot_product_attention(q, k, v)
        x = x + self.proj(attended.transpose(1, 2).reshape(batch, length, width))
        return x + self.fc2(nn.functional.gelu(self.fc1(self.norm2(x)), approximate="tanh"))


class KoViTConvStem(nn.Sequential):
    """A small CNN in place of the patch projection (Xiao et al., 2021, "Early Convolutions Help Transformers
    See Better"): per width, a 3×3 convolution, group norm and GELU, then a 2×2 max pool while the stride
    left to reach patch_size is even; last, a convolution of kernel and stride the stride left, onto the
    hidden width (a 1×1 one when the pools made the whole patch). For 14-px patches that is one pool, then
    the 7×7 projection; for 16-px patches, four widths are four pools, as a CRNN's feature extractor.

    Why: a single linear map of a 14×14 patch must tell pen strokes apart with no notion of a local edge,
    and from scratch on a few thousand lines it learns slowly (docs/ablations/reading_pretraining.md).
    The output grid is the same as the plain projection's, so nothing after the stem changes.
    """

    def __init__(self, num_channels: int, channels: list[int], hidden_size: int, patch_size: int):
        if not channels or any(int(c) <= 0 for c in channels):
            raise ValueError(f"stem_channels must be positive widths, got {channels}")
        layers, previous, stride_left = [], num_channels, patch_size
        for width in (int(c) for c in channels):
            layers += [nn.Conv2d(previous, width, 3, padding=1), nn.GroupNorm(math.gcd(width, 8), width), nn.GELU()]
            if stride_left % 2 == 0:
                layers.append(nn.MaxPool2d(2))
                stride_left //= 2
            previous = width
        layers.append(nn.Conv2d(previous, hidden_size, stride_left, stride=stride_left))
        super().__init__(*layers)
        convs = [m for m in self if isinstance(m, nn.Conv2d)]
        for conv in convs:     # read by KoViTModel._init_weights, whatever order transformers visits modules in
            conv.he_gain = "linear" if conv is convs[-1] else "relu"


class KoViTModel(PreTrainedModel):
    """A plain pre-norm ViT sized for CPU; ``last_hidden_state`` is (tiles, patches, hidden)."""

    config_class = KoViTConfig
    base_model_prefix = "vit"
    main_input_name = "pixel_values"
    _no_split_modules = ["KoViTBlock"]

    def __init__(self, config: KoViTConfig):
        super().__init__(config)
        if config.image_size % config.patch_size:
            raise ValueError(f"image_size {config.image_size} is not a multiple of patch_size {config.patch_size}")
        if config.stem_channels:
            self.patch_embedding = KoViTConvStem(config.num_channels, list(config.stem_channels),
                                                 config.hidden_size, config.patch_size)
        else:
            self.patch_embedding = nn.Conv2d(config.num_channels, config.hidden_size, config.patch_size,
                                             config.patch_size)
        num_patches = (config.image_size // config.patch_size) ** 2
        self.position_embedding = nn.Parameter(torch.zeros(1, num_patches, config.hidden_size))
        self.blocks = nn.ModuleList(KoViTBlock(config) for _ in range(config.num_hidden_layers))
        self.post_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def _init_weights(self, module):
        std = self.config.initializer_range
        if isinstance(module, nn.Conv2d) and hasattr(module, "he_gain"):
            # a stem convolution: the ViT's std of 0.02 would shrink the signal at each of them
            nn.init.kaiming_normal_(module.weight, nonlinearity=module.he_gain)
            nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.trunc_normal_(module.weight, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.LayerNorm, nn.GroupNorm)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, KoViTModel):
            nn.init.trunc_normal_(module.position_embedding, std=std)

    def forward(self, pixel_values: torch.Tensor, **kwargs) -> BaseModelOutput:
        side = self.config.image_size
        if pixel_values.shape[-2:] != (side, side):
            raise ValueError(f"KoViT expects {side}×{side} tiles, got {tuple(pixel_values.shape[-2:])}")
        dtype = self.position_embedding.dtype
        x = self.patch_embedding(pixel_values.to(dtype)).flatten(2).transpose(1, 2)
        x = x + self.position_embedding
        for block in self.blocks:
            x = block(x)
        return BaseModelOutput(last_hidden_state=self.post_layernorm(x))


AutoModel.register(KoViTConfig, KoViTModel, exist_ok=True)


def build_vision_encoder(config) -> PreTrainedModel:
    """A vision encoder from its config (``ko_vit``, ``siglip_vision_model``, …)."""
    return AutoModel.from_config(config)
