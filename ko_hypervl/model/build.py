"""Assemble a KoHyperVL model from parts: built-in configs or local transformers checkpoints.

Each of the three parts (large encoder, small encoder, language model) is either ``builtin`` (sized by
the settings below, random weights, for training from scratch) or a local directory of a transformers
model (SigLIP, Qwen2/Qwen3, Llama …), loaded with safetensors only. When the language model comes with
a tokenizer other than ours, its embeddings are moved onto our vocabulary by vocabulary transfer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer, LlamaConfig

from ..configuration import KoHyperVLConfig, KoViTConfig
from ..settings import setting
from ..tokenization import load_tokenizer, specials
from .modeling import KoHyperVLForConditionalGeneration
from .vocab_transfer import transfer_vocabulary

log = logging.getLogger(__name__)

BUILTIN = "builtin"


@dataclass
class ModelBuildSettings:
    large_vision: str = setting(BUILTIN, help="large branch: 'builtin' ViT or a local vision model directory (SigLIP …)")
    small_vision: str = setting(BUILTIN, help="small branch: 'builtin' ViT or a local vision model directory")
    language: str = setting(BUILTIN, help="language model: 'builtin' Llama-class config or a local causal LM directory")
    tokenizer: str | None = setting(None, help="tokenizer directory (default: the bundled Korean tokenizer)")
    tile_size: int = setting(224, help="tile side in pixels for built-in encoders")
    patch_size: int = setting(14, help="ViT patch side for built-in encoders")
    vit_hidden_size: int = setting(192, help="built-in large ViT width")
    vit_layers: int = setting(6, help="built-in large ViT depth")
    small_vit_hidden_size: int = setting(96, help="built-in small ViT width")
    small_vit_layers: int = setting(2, help="built-in small ViT depth")
    vit_stem_channels: tuple[int, ...] = setting((), help="built-in large ViT: widths of a convolutional stem "
                                                 "in place of the patch projection (e.g. 32 64 128 128 with "
                                                 "16-px patches; none: plain)")
    small_vit_stem_channels: tuple[int, ...] = setting((), help="built-in small ViT: widths of a convolutional "
                                                       "stem (none: plain patch projection)")
    pixel_shuffle_factor: int = setting(2, help="large branch: patches folded per side into one visual token")
    small_pixel_shuffle_factor: int = setting(4, help="small branch: patches folded per side into one visual token")
    small_image_scale: float = setting(1.0, help="small branch: share of the large branch's resolution it encodes "
                                            "(dual resolution; 0.5 = a quarter of the tiles)")
    lm_hidden_size: int = setting(256, help="built-in LM width")
    lm_layers: int = setting(6, help="built-in LM depth")
    lm_heads: int = setting(4, help="built-in LM attention heads")
    lm_kv_heads: int = setting(2, help="built-in LM key/value heads (grouped-query attention)")
    lm_intermediate_size: int = setting(704, help="built-in LM MLP width")
    max_positions: int = setting(2048, help="built-in LM context length in tokens")
    max_tiles: int = setting(16, help="most tiles per image at full resolution (≤ 64)")
    vision_chunk_size: int = setting(4, help="tiles encoded at once")
    seed: int = setting(0, help="random seed for the initial weights")


def builtin_vit_config(settings: ModelBuildSettings, small: bool) -> KoViTConfig:
    hidden = settings.small_vit_hidden_size if small else settings.vit_hidden_size
    stem = settings.small_vit_stem_channels if small else settings.vit_stem_channels
    return KoViTConfig(hidden_size=hidden, intermediate_size=4 * hidden, num_attention_heads=max(1, hidden // 64),
                       num_hidden_layers=settings.small_vit_layers if small else settings.vit_layers,
                       image_size=settings.tile_size, patch_size=settings.patch_size,
                       stem_channels=list(stem) or None)


def builtin_lm_config(settings: ModelBuildSettings, tokenizer) -> LlamaConfig:
    """The built-in Korean LM: a Llama-class decoder sized for CPU, with tied embeddings to keep it small."""
    return LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=settings.lm_hidden_size, intermediate_size=settings.lm_intermediate_size,
        num_hidden_layers=settings.lm_layers, num_attention_heads=settings.lm_heads,
        num_key_value_heads=settings.lm_kv_heads, max_position_embeddings=settings.max_positions,
        tie_word_embeddings=True, rms_norm_eps=1e-5, rope_theta=10000.0,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )


def _local_dir(path: str, what: str) -> Path:
    directory = Path(path)
    if not directory.is_dir() or not (directory / "config.json").is_file():
        raise FileNotFoundError(f"{what}: {path!r} is neither 'builtin' nor a model directory with a config.json")
    if not any(directory.glob("*.safetensors")):
        raise FileNotFoundError(f"{what}: no .safetensors weights in {directory} (pickle checkpoints are not loaded)")
    return directory


def load_vision_encoder(path: str):
    """A local vision model; a full SigLIP/CLIP checkpoint gives its vision tower."""
    directory = _local_dir(path, "vision model")
    config = AutoConfig.from_pretrained(directory)
    model = AutoModel.from_pretrained(directory, use_safetensors=True)
    if hasattr(config, "vision_config") and hasattr(model, "vision_model"):
        tower = model.vision_model
        tower.config = config.vision_config
        return tower
    return model


def _vision_part(spec: str, settings: ModelBuildSettings, small: bool):
    if spec == BUILTIN:
        return builtin_vit_config(settings, small), None
    encoder = load_vision_encoder(spec)
    return encoder.config, encoder


def build_model(settings: ModelBuildSettings | None = None):
    """A new model and its processor, from ``settings``. Returns ``(model, processor)``."""
    from ..processing import KoHyperVLImageProcessor, KoHyperVLProcessor

    settings = settings or ModelBuildSettings()
    torch.manual_seed(settings.seed)
    tokenizer = load_tokenizer(settings.tokenizer)
    large_config, large = _vision_part(settings.large_vision, settings, small=False)
    small_config, small = _vision_part(settings.small_vision, settings, small=True)
    language = None
    if settings.language == BUILTIN:
        text_config = builtin_lm_config(settings, tokenizer)
    else:
        directory = _local_dir(settings.language, "language model")
        language = AutoModelForCausalLM.from_pretrained(directory, use_safetensors=True)
        old_tokenizer = AutoTokenizer.from_pretrained(directory)
        if old_tokenizer.get_vocab() != tokenizer.get_vocab():
            report = transfer_vocabulary(language, old_tokenizer, tokenizer)
            log.info("vocabulary transfer onto %d tokens: %s", len(tokenizer), report)
        text_config = language.config
    config = KoHyperVLConfig(
        vision_config=large_config, small_vision_config=small_config, text_config=text_config,
        pixel_shuffle_factor=settings.pixel_shuffle_factor, small_pixel_shuffle_factor=settings.small_pixel_shuffle_factor,
        small_image_scale=settings.small_image_scale,
        image_token_id=tokenizer.image_token_id, vision_chunk_size=settings.vision_chunk_size,
    )
    model = KoHyperVLForConditionalGeneration(config)
    for part, module in ((large, model.vision_model), (small, model.small_vision_model), (language, model.language_model)):
        if part is not None:
            module.load_state_dict(part.state_dict())
    set_generation_defaults(model, tokenizer)
    image_processor = KoHyperVLImageProcessor.from_model_config(config, max_tiles=settings.max_tiles)
    processor = KoHyperVLProcessor(image_processor, tokenizer, max_length=max_positions(config))
    return model, processor


def max_positions(config: KoHyperVLConfig) -> int | None:
    return getattr(config.text_config, "max_position_embeddings", None)


def set_generation_defaults(model, tokenizer) -> None:
    """Stop at the end of the assistant turn (or EOS); never generate image or tile tokens."""
    end_ids = [tokenizer.convert_tokens_to_ids(specials.END), tokenizer.eos_token_id]
    generation = model.generation_config
    generation.eos_token_id = end_ids
    generation.pad_token_id = tokenizer.pad_token_id
    generation.bos_token_id = tokenizer.bos_token_id
    generation.do_sample = False
    banned = [specials.IMAGE, specials.IMAGE_START, specials.IMAGE_END, specials.GLOBAL_IMAGE, specials.PAD]
    banned += [specials.tile_token(r, c) for r in range(1, specials.MAX_TILE_GRID + 1)
               for c in range(1, specials.MAX_TILE_GRID + 1)]
    generation.suppress_tokens = tokenizer.convert_tokens_to_ids(banned)
