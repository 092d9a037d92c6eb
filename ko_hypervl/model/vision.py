"""The vision encoders: the built-in ViT, and building any encoder from its config.

A branch is any transformers vision model whose output ``last_hidden_state`` holds one vector per
patch (SigLIP, or ``KoViTModel`` here); ``KoHyperVLForConditionalGeneration.get_image_features``
runs tiles through it in bounded chunks.
"""

from __future__ import annotations

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
        self.patch_embedding = nn.Conv2d(config.num_channels, config.hidden_size, config.patch_size, config.patch_size)
        num_patches = (config.image_size // config.patch_size) ** 2
        self.position_embedding = nn.Parameter(torch.zeros(1, num_patches, config.hidden_size))
        self.blocks = nn.ModuleList(KoViTBlock(config) for _ in range(config.num_hidden_layers))
        self.post_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def _init_weights(self, module):
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.trunc_normal_(module.weight, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, KoViTModel):
            nn.init.trunc_normal_(module.position_embedding, std=std)

    def forward(self, pixel_values: torch.Tensor, **kwargs) -> BaseModelOutput:
        side = self.config.image_size
        if pixel_values.shape[-2:] != (side, side):
            raise ValueError(f"KoViT expects {side}×{side} tiles, got {tuple(pixel_values.shape[-2:])}")
        x = self.patch_embedding(pixel_values.to(self.patch_embedding.weight.dtype)).flatten(2).transpose(1, 2)
        x = x + self.position_embedding
        for block in self.blocks:
            x = block(x)
        return BaseModelOutput(last_hidden_state=self.post_layernorm(x))


AutoModel.register(KoViTConfig, KoViTModel, exist_ok=True)


def build_vision_encoder(config) -> PreTrainedModel:
    """A vision encoder from its config (``ko_vit``, ``siglip_vision_model``, …)."""
    return AutoModel.from_config(config)
