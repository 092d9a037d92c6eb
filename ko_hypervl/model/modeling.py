"""KoHyperVLForConditionalGeneration: two vision branches and a VRC in front of one causal LM.

The model only sees tensors (``input_ids``, ``attention_mask``, ``pixel_values``, ``image_grid``,
``labels``, ``past_key_values``), so ``generate``, ``peft`` and the Auto classes work as for any
transformers model. Visual tokens are written over the ``<image>`` positions of the token embeddings
(idefics3's masked merge). ``branch`` picks the encoder + projector pair that made ``pixel_values``.
A model with a copy head (``config.copy_head``, ``model.copy_head``) returns log-probabilities as its logits
(the LM's own distribution mixed with copying from the input); ``generate`` hands it every id so far as
``copy_source_ids``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from torch import nn
from transformers import (
    AutoModelForCausalLM, AutoModelForImageTextToText, GenerationMixin, PreTrainedModel,
)
from transformers.cache_utils import Cache
from transformers.utils import ModelOutput

from ..configuration import KoHyperVLConfig, check_branch, tile_size
from .copy_head import CopyHead, answer_starts
from .projector import PixelShuffleProjector
from .reading import ReadingHeadSpec, encoder_digest, read_log_probs, reading_head_layer
from .vision import build_vision_encoder
from .vrc import VisualResolutionCompressor, choose_scales


@dataclass
class KoHyperVLOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    past_key_values: Cache | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
    image_hidden_states: torch.Tensor | None = None


class KoHyperVLPreTrainedModel(PreTrainedModel):
    config_class = KoHyperVLConfig
    base_model_prefix = ""
    main_input_name = "input_ids"
    input_modalities = ("image", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_attention_backend = True
    _can_compile_fullgraph = False

    def _init_weights(self, module):
        # the encoders and the LM initialise themselves (their own post_init); this covers projectors and the VRC
        if isinstance(module, CopyHead):   # after its layers (apply visits children first)
            module.reset_parameters()
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.LayerNorm, nn.BatchNorm2d)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class KoHyperVLForConditionalGeneration(KoHyperVLPreTrainedModel, GenerationMixin):
    def __init__(self, config: KoHyperVLConfig):
        super().__init__(config)
        text_hidden = config.text_config.hidden_size
        self.vision_model = build_vision_encoder(config.vision_config)
        self.small_vision_model = build_vision_encoder(config.small_vision_config)
        self.projector = PixelShuffleProjector(config.vision_config.hidden_size, text_hidden,
                                               config.pixel_shuffle_factor)
        self.small_projector = PixelShuffleProjector(config.small_vision_config.hidden_size, text_hidden,
                                                     config.small_pixel_shuffle_factor)
        self.vrc = VisualResolutionCompressor(len(config.vrc_scales), config.vrc_channels)
        self.language_model = AutoModelForCausalLM.from_config(config.text_config)
        self.reading_head = None
        if config.reading_head:
            spec = ReadingHeadSpec.from_config(config.reading_head)
            self.reading_head = reading_head_layer(config.branch_config(spec.branch).hidden_size, spec)
        self.copy_head = None
        if config.copy_head:
            self.copy_head = CopyHead(text_hidden, self.language_model.get_input_embeddings().embedding_dim)
        self.post_init()

    # -- the language model's embeddings, so resize_token_embeddings, peft and generate find them
    def get_input_embeddings(self):
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self):
        return self.language_model.get_output_embeddings()

    def set_output_embeddings(self, value):
        self.language_model.set_output_embeddings(value)

    def get_decoder(self):
        return self.language_model.get_decoder()

    # -- vision
    def vision_branch(self, branch: str) -> tuple[nn.Module, PixelShuffleProjector]:
        if check_branch(branch) == "large":
            return self.vision_model, self.projector
        return self.small_vision_model, self.small_projector

    def get_image_features(self, pixel_values: torch.Tensor, branch: str = "large") -> torch.Tensor:
        """Visual tokens (crops · tokens_per_tile, hidden) for crops (crops, 3, T, T), ``vision_chunk_size`` at a time.

        Encoding and projecting chunk by chunk keeps the patch features of only one chunk alive, so peak
        memory does not grow with the number of tiles (the outputs, a few tokens per tile, are small).
        """
        encoder, projector = self.vision_branch(branch)
        if pixel_values.ndim != 4:
            raise ValueError(f"pixel_values must be (crops, 3, height, width), got {tuple(pixel_values.shape)}")
        side = tile_size(self.config.branch_config(branch))
        if tuple(pixel_values.shape[-2:]) != (side, side):
            raise ValueError(f"the {branch} branch encodes {side}×{side} tiles but pixel_values are "
                             f"{tuple(pixel_values.shape[-2:])}; process the images with branch={branch!r}")
        dtype = next(projector.parameters()).dtype
        chunks = []
        for chunk in pixel_values.split(max(1, self.config.vision_chunk_size)):
            patches = encoder(pixel_values=chunk.to(dtype)).last_hidden_state
            chunks.append(projector(patches.to(dtype)))
        return torch.cat(chunks).flatten(0, 1)

    # -- reading
    def install_reading_head(self, head: nn.Linear, spec: ReadingHeadSpec) -> None:
        """Keep a reading stage's head (a copy of its weights) and record it in the config, so it is saved."""
        layer = reading_head_layer(self.config.branch_config(spec.branch).hidden_size, spec)
        if layer.weight.shape != head.weight.shape:
            raise ValueError(f"the head's weights are {tuple(head.weight.shape)}, its spec needs "
                             f"{tuple(layer.weight.shape)}")
        layer.load_state_dict(head.state_dict())
        self.reading_head = layer.to(device=head.weight.device, dtype=head.weight.dtype)
        self.config.reading_head = spec.to_config()

    def reading_head_spec(self) -> ReadingHeadSpec:
        """The model's reading head, or a clear error where it has none or its encoder changed since."""
        if self.reading_head is None or not self.config.reading_head:
            raise ValueError("this checkpoint has no reading head: `ko-hypervl train read` (or a pipeline with a "
                             "reading stage, e.g. --recipe tiny-read) fits one on its encoders and keeps it")
        spec = ReadingHeadSpec.from_config(self.config.reading_head)
        encoder, _ = self.vision_branch(spec.branch)
        if encoder_digest(encoder) != spec.encoder_digest:
            raise ValueError(f"the {spec.branch} encoder was trained after its reading head was fitted, so the "
                             "head no longer reads it; fit it again with `ko-hypervl train read`")
        return spec

    @torch.no_grad()
    def read_log_probs(self, pixel_values: torch.Tensor, image_grid: torch.Tensor,
                       spec: ReadingHeadSpec) -> list[torch.Tensor]:
        """The reading head's log-probabilities (positions, classes) per image (processed for its branch).

        ``spec`` is ``reading_head_spec()``'s, taken once by the caller: its check hashes the whole encoder.
        """
        encoder, _ = self.vision_branch(spec.branch)
        return read_log_probs(encoder, self.reading_head, pixel_values.to(self.device), image_grid, spec.order,
                              spec.num_classes)

    @torch.no_grad()
    def predict_scales(self, vrc_pixel_values: torch.Tensor, vrc_image_sizes: torch.Tensor) -> list[float]:
        """The VRC's scale per image (from ``image_processor.vrc_inputs``)."""
        was_training = self.vrc.training
        self.vrc.eval()
        logits = self.vrc(vrc_pixel_values.to(self.device), vrc_image_sizes.to(self.device))
        self.vrc.train(was_training)
        return choose_scales(logits, self.config.vrc_scales)

    def merge_image_features(self, input_ids: torch.Tensor, inputs_embeds: torch.Tensor,
                             image_features: torch.Tensor) -> torch.Tensor:
        mask = input_ids == self.config.image_token_id
        count = int(mask.sum())
        if count != image_features.shape[0]:
            raise ValueError(
                f"the text has {count} image tokens but the images give {image_features.shape[0]} visual tokens; "
                "build inputs with the processor, with the same branch and scales for text and images"
            )
        return inputs_embeds.masked_scatter(mask.unsqueeze(-1), image_features.to(inputs_embeds.dtype))

    def _check_grid(self, image_grid: torch.Tensor, pixel_values: torch.Tensor) -> None:
        tiles = image_grid.prod(dim=-1)
        crops = int((tiles + (tiles > 1).long()).sum())
        if crops != pixel_values.shape[0]:
            raise ValueError(f"image_grid describes {crops} crops but pixel_values has {pixel_values.shape[0]}")

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values: Cache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        image_grid: torch.LongTensor | None = None,
        branch: str = "large",
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        copy_source_ids: torch.LongTensor | None = None,
        **kwargs,
    ) -> KoHyperVLOutput:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        if inputs_embeds is None:
            self._check_ids(input_ids)
            inputs_embeds = self.get_input_embeddings()(input_ids)
        image_features = None
        # transformers 5.25 renamed the KV cache argument to ``cache`` (``generate`` passes that name; the old one
        # warns on every call), older releases and some backbones know only ``past_key_values``: take either
        cache = kwargs.pop("cache", None)
        cache = past_key_values if cache is None else cache
        prefill = cache is None or cache.get_seq_length() == 0
        if pixel_values is not None:
            if input_ids is None:
                raise ValueError("pixel_values need input_ids, to find the <image> positions")
            if image_grid is not None:
                self._check_grid(image_grid, pixel_values)
            image_features = self.get_image_features(pixel_values, branch)
            inputs_embeds = self.merge_image_features(input_ids, inputs_embeds, image_features)
        elif prefill and input_ids is not None and bool((input_ids == self.config.image_token_id).any()):
            raise ValueError("the input has <image> tokens but no pixel_values; pass the processor's pixel_values")
        if position_ids is None and attention_mask is not None and attention_mask.ndim == 2:
            # positions count real tokens only, so a left-padded row sees the same positions as when alone
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -inputs_embeds.shape[1]:]
        lm_inputs = dict(inputs_embeds=inputs_embeds, attention_mask=attention_mask, position_ids=position_ids,
                         use_cache=use_cache, **{self._cache_argument(): cache}, **kwargs)
        if self.copy_head is None:
            outputs = self.language_model(logits_to_keep=logits_to_keep, **lm_inputs)
            logits = outputs.logits
        else:
            outputs = self.language_model.get_decoder()(**lm_inputs)
            logits = self._copy_logits(outputs.last_hidden_state, input_ids, copy_source_ids, attention_mask,
                                       logits_to_keep)
        loss = None
        if labels is not None:
            loss = causal_lm_loss(logits, labels)
        new_cache = next((outputs[name] for name in ("cache", "past_key_values") if name in outputs), None)
        return KoHyperVLOutput(loss=loss, logits=logits, past_key_values=new_cache,
                               hidden_states=outputs.hidden_states, attentions=outputs.attentions,
                               image_hidden_states=image_features)

    def _copy_logits(self, hidden: torch.Tensor, input_ids: torch.Tensor | None, source_ids: torch.Tensor | None,
                     attention_mask: torch.Tensor | None, logits_to_keep: int | torch.Tensor) -> torch.Tensor:
        """The copy head's log-probabilities (used as logits) for the positions ``logits_to_keep`` keeps: the last
        ``n`` (0: all), or those a tensor of positions names."""
        if source_ids is None:
            if input_ids is None:
                raise ValueError("a model with a copy head needs input_ids (it copies tokens, not embeddings)")
            source_ids = input_ids
        if source_ids.shape[1] < hidden.shape[1]:
            raise ValueError(f"copy_source_ids hold {source_ids.shape[1]} ids but the input is {hidden.shape[1]} "
                             "positions; pass every id so far")
        mask = attention_mask if attention_mask is not None and attention_mask.ndim == 2 else None
        if mask is None or mask.shape[1] != source_ids.shape[1]:
            mask = torch.ones_like(source_ids)
        # hidden holds the current input's positions, the last of the source's
        positions = torch.arange(source_ids.shape[1] - hidden.shape[1], source_ids.shape[1], device=hidden.device)
        if isinstance(logits_to_keep, int):
            selected = slice(-logits_to_keep, None) if logits_to_keep > 0 else slice(None)
        else:   # positions of the current input (training keeps the answer positions only)
            selected = logits_to_keep.to(hidden.device)
        keep, hidden = positions[selected], hidden[:, selected]
        copyable = torch.ones(self.get_input_embeddings().num_embeddings, dtype=torch.bool, device=hidden.device)
        copyable[self.config.image_token_id] = False
        pad_id = getattr(self.config.text_config, "pad_token_id", None)
        if pad_id is not None:
            copyable[pad_id] = False
        source_ids = source_ids.to(hidden.device)
        starts = answer_starts(source_ids, keep, self.config.assistant_token_id)
        return self.copy_head(hidden, keep, source_ids, mask.to(hidden.device), starts,
                              self.get_input_embeddings(), self.get_output_embeddings(), copyable)

    def prepare_inputs_for_generation(self, input_ids, **kwargs):
        """As ``GenerationMixin``'s, plus every id so far for the copy head (the cache keeps only the new ones)."""
        inputs = super().prepare_inputs_for_generation(input_ids, **kwargs)
        if self.copy_head is not None:
            inputs["copy_source_ids"] = input_ids
        return inputs

    def _cache_argument(self) -> str:
        """The name under which the language model takes its KV cache: ``cache`` or ``past_key_values``."""
        parameters = inspect.signature(self.language_model.forward).parameters
        return "cache" if "cache" in parameters else "past_key_values"

    def _check_ids(self, input_ids: torch.Tensor) -> None:
        limit = self.get_input_embeddings().num_embeddings
        if input_ids.numel() and (int(input_ids.max()) >= limit or int(input_ids.min()) < 0):
            raise ValueError(f"input_ids hold ids outside the vocabulary (0..{limit - 1}); "
                             "was the text encoded with this model's tokenizer?")
        max_positions = getattr(self.config.text_config, "max_position_embeddings", None)
        if max_positions and input_ids.shape[-1] > max_positions:
            raise ValueError(f"the input is {input_ids.shape[-1]} tokens but the language model reads at most "
                             f"{max_positions}; shorten the text or use fewer tiles")


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy over positions whose label is not -100."""
    shifted = logits[:, :-1].float()
    targets = labels[:, 1:].to(logits.device)
    return nn.functional.cross_entropy(shifted.reshape(-1, shifted.shape[-1]), targets.reshape(-1), ignore_index=-100)


AutoModelForImageTextToText.register(KoHyperVLConfig, KoHyperVLForConditionalGeneration, exist_ok=True)
