"""Model configurations, registered with transformers' Auto classes.

``KoHyperVLConfig`` nests three sub-configurations, as idefics3/smolvlm do:

- ``vision_config``: the large vision branch (``high`` mode, the DCL teacher),
- ``small_vision_config``: the small vision branch (``low`` mode, the DCL student),
- ``text_config``: the shared causal language model.

Each sub-config may be any transformers config whose model builds with ``AutoModel`` (vision: e.g.
``siglip_vision_model``) or ``AutoModelForCausalLM`` (text: ``llama``, ``qwen2``, ``qwen3``), or the
built-in ``ko_vit`` below. The tile a branch encodes is its vision config's ``image_size``.
"""

from __future__ import annotations

from transformers import CONFIG_MAPPING, AutoConfig, PreTrainedConfig

# VRC scales: the share of the full-resolution side lengths an image is resized to before tiling.
DEFAULT_VRC_SCALES = [0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0]


class KoViTConfig(PreTrainedConfig):
    """The built-in ViT: pre-norm transformer over non-overlapping patches, no class token.

    ``stem_channels`` (e.g. ``[32, 64, 128, 128]``) replaces the single patch projection with a small convolutional
    stem of those widths (``KoViTConvStem``); empty or None keeps the plain projection.
    """

    model_type = "ko_vit"
    base_config_key = "vision_config"

    hidden_size: int = 192
    intermediate_size: int = 768
    num_hidden_layers: int = 4
    num_attention_heads: int = 3
    num_channels: int = 3
    image_size: int = 224
    patch_size: int = 14
    layer_norm_eps: float = 1e-6
    initializer_range: float = 0.02
    stem_channels: list | None = None


AutoConfig.register(KoViTConfig.model_type, KoViTConfig, exist_ok=True)


# the small branch's ViT when a config names none: half the large default's width and depth
SMALL_VISION_DEFAULTS = {"hidden_size": 96, "intermediate_size": 384, "num_hidden_layers": 2, "num_attention_heads": 2}


def sub_config(value: dict | PreTrainedConfig | None, model_type: str, **defaults) -> PreTrainedConfig:
    """A nested config from what a caller or config.json gave: a config as it is, a dict by its own
    ``model_type`` (else ``model_type``), nothing as ``model_type``'s defaults updated by ``defaults``."""
    if isinstance(value, PreTrainedConfig):
        return value
    if value is None:
        return CONFIG_MAPPING[model_type](**defaults)
    if not isinstance(value, dict):
        raise TypeError(f"a sub-config must be a dict or a transformers config, got {type(value).__name__}")
    fields = dict(value)
    kind = fields.pop("model_type", None) or model_type
    if kind not in CONFIG_MAPPING:
        raise ValueError(f"unknown sub-config model_type {kind!r}: transformers has no config of that name")
    return CONFIG_MAPPING[kind](**fields)


class KoHyperVLConfig(PreTrainedConfig):
    """Two vision branches, one language model, the projectors and the visual resolution compressor."""

    model_type = "ko_hypervl"
    # the plain ``sub_configs`` mapping, filled in ``__post_init__``, rather than transformers 5.20's
    # ``sub_configs_defaults``: the same code then runs on the transformers a GPU image ships (5.17 there)
    sub_configs = {"vision_config": AutoConfig, "small_vision_config": AutoConfig, "text_config": AutoConfig}

    vision_config: dict | PreTrainedConfig | None = None
    small_vision_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    # pixel shuffle folds factor×factor neighbouring patches into one token (SmolVLM's ``scale_factor``)
    pixel_shuffle_factor: int = 2
    small_pixel_shuffle_factor: int = 2
    # dual resolution: the small branch sees the image at this share of the large branch's side lengths
    # (0.5: a quarter of the tiles), so it answers faster than a smaller encoder alone would make it
    small_image_scale: float = 1.0
    image_token_id: int = 8
    # tiles are encoded this many at a time so peak memory does not grow with the image
    vision_chunk_size: int = 4
    # VRC: a small CNN on a ``vrc_image_size`` thumbnail picks one of ``vrc_scales``
    vrc_scales: list[float] | None = None
    vrc_image_size: int = 128
    vrc_channels: int = 32
    # the CTC reading head the reading stage leaves (``model.reading.ReadingHeadSpec.to_config``), or None
    reading_head: dict | None = None
    # a copy head (``model.copy_head``) mixes the LM's next token with a copy of one from earlier in the input,
    # and the reading head's reading of each image goes into the question as text (``processing.reading_prompt``)
    # for it to copy from; needs a reading head
    copy_head: bool = False
    # the token that opens an assistant turn: the copy head copies from before the answer being written
    assistant_token_id: int | None = None
    use_cache: bool = True
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        self.vision_config = sub_config(self.vision_config, "ko_vit")
        self.small_vision_config = sub_config(self.small_vision_config, "ko_vit", **SMALL_VISION_DEFAULTS)
        self.text_config = sub_config(self.text_config, "llama")
        if self.vrc_scales is None:
            self.vrc_scales = list(DEFAULT_VRC_SCALES)
        super().__post_init__(**kwargs)
        scales = [float(s) for s in self.vrc_scales]
        if not scales or sorted(scales) != scales or not (0 < scales[0] and scales[-1] == 1.0):
            raise ValueError(f"vrc_scales must be increasing, in (0, 1] and end at 1.0; got {self.vrc_scales}")
        self.vrc_scales = scales
        for name in ("pixel_shuffle_factor", "small_pixel_shuffle_factor"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1")
        self.small_image_scale = float(self.small_image_scale)
        if not 0 < self.small_image_scale <= 1:
            raise ValueError(f"small_image_scale must be in (0, 1], got {self.small_image_scale}")

    def branch_config(self, branch: str) -> PreTrainedConfig:
        """The vision config of ``branch`` ('large' or 'small')."""
        return {"large": self.vision_config, "small": self.small_vision_config}[check_branch(branch)]

    def branch_image_scale(self, branch: str) -> float:
        """The share of the full-resolution side lengths ``branch`` encodes before any VRC scale."""
        return {"large": 1.0, "small": self.small_image_scale}[check_branch(branch)]

    def branch_shuffle_factor(self, branch: str) -> int:
        return {"large": self.pixel_shuffle_factor, "small": self.small_pixel_shuffle_factor}[check_branch(branch)]

    def tokens_per_tile(self, branch: str) -> int:
        """Visual tokens one tile becomes: (tile / patch / shuffle)²."""
        vision = self.branch_config(branch)
        side = tile_size(vision) // patch_size(vision)
        factor = self.branch_shuffle_factor(branch)
        if side % factor:
            raise ValueError(f"{branch} branch: {side} patches per side is not divisible by pixel shuffle {factor}")
        return (side // factor) ** 2


BRANCHES = ("large", "small")


def check_branch(branch: str) -> str:
    if branch not in BRANCHES:
        raise ValueError(f"unknown vision branch {branch!r}; choose 'large' or 'small'")
    return branch


def _as_int(value) -> int:
    # some vision configs store image_size/patch_size as (h, w); tiles here are square
    if isinstance(value, (list, tuple)):
        if value[0] != value[-1]:
            raise ValueError(f"non-square tile or patch size {value} is not supported")
        return int(value[0])
    return int(value)


def tile_size(config: PreTrainedConfig) -> int:
    """The side length in pixels of the square tile a vision config encodes."""
    return _as_int(config.image_size)


def patch_size(config: PreTrainedConfig) -> int:
    return _as_int(config.patch_size)


AutoConfig.register(KoHyperVLConfig.model_type, KoHyperVLConfig, exist_ok=True)
