"""The processor: chat text and images → ``input_ids``, ``attention_mask``, ``pixel_values``, ``image_grid``.

Each ``<image>`` placeholder in the text is expanded to the tokens of that image's tiles:

    <|image_start|> <row_1_col_1> <image>×n … <row_r_col_c> <image>×n <|global_image|> <image>×n <|image_end|>

(an image that fits one tile has only the global part). The model writes the visual tokens over those
``<image>`` positions, so the count here and the features there must agree; ``image_grid`` lets the
model check it.
"""

from __future__ import annotations

import torch
from transformers import BatchFeature
from transformers.processing_utils import ProcessorMixin

from ..configuration import check_branch
from ..tokenization import specials
from .image_processor import _as_list
from .tiling import TilePlan


def image_prompt(plan: TilePlan) -> str:
    """The token string that stands for one image in the prompt."""
    tokens = specials.IMAGE * plan.tokens_per_tile
    parts = [specials.IMAGE_START]
    if plan.has_global:
        for row in range(1, plan.rows + 1):
            for col in range(1, plan.cols + 1):
                parts.append(specials.tile_token(row, col) + tokens)
    parts.append(specials.GLOBAL_IMAGE + tokens)
    parts.append(specials.IMAGE_END)
    return "".join(parts)


class KoHyperVLProcessor(ProcessorMixin):
    """Image processor + tokenizer. ``max_length``: the longest prompt the language model can read."""

    attributes = ["image_processor", "tokenizer"]

    def __init__(self, image_processor=None, tokenizer=None, chat_template: str | None = None,
                 max_length: int | None = None, **kwargs):
        self.max_length = max_length
        super().__init__(image_processor, tokenizer, chat_template=chat_template or specials.CHAT_TEMPLATE)

    @property
    def image_token_id(self) -> int:
        return self.tokenizer.convert_tokens_to_ids(specials.IMAGE)

    def __call__(self, images=None, text=None, *, branch: str = "large", scales=None, padding: bool = True,
                 padding_side: str = "left", return_tensors: str = "pt", **kwargs) -> BatchFeature:
        """Tensors for ``text`` (one string or a batch) with ``images`` in placeholder order.

        ``images`` is flat (one image per ``<image>`` across the batch, in order) or one list per text.
        ``scales``: one VRC scale per image (default 1.0); ``branch``: the vision branch the tiles are for.
        Left padding by default, so a batch can ``generate`` at once.
        """
        check_branch(branch)
        if text is None:
            raise ValueError("text is required: the question, with one <image> per image (or use apply_chat_template)")
        texts = [text] if isinstance(text, str) else list(text)
        per_text = _images_per_text(images, texts)
        flat_images = [image for group in per_text for image in group]
        vision = self.image_processor(flat_images, branch=branch, scales=scales) if flat_images else None
        plans = list(vision.tile_plans) if vision is not None else []
        expanded = []
        for sample in texts:
            pieces = sample.split(specials.IMAGE)
            out = [pieces[0]]
            for piece in pieces[1:]:
                out.append(image_prompt(plans.pop(0)))
                out.append(piece)
            expanded.append("".join(out))
        encoded = self.tokenizer(expanded, padding=padding, padding_side=padding_side, return_tensors=return_tensors,
                                 **kwargs)
        self._check_length(encoded["input_ids"], vision)
        data = dict(encoded)
        if vision is not None:
            data.update(pixel_values=vision["pixel_values"], image_grid=vision["image_grid"])
            data["branch"] = branch
        feature = BatchFeature(data)
        feature.tile_plans = list(vision.tile_plans) if vision is not None else []
        return feature

    def _check_length(self, input_ids, vision) -> None:
        if self.max_length is None:
            return
        lengths = [len(ids) for ids in input_ids] if not isinstance(input_ids, torch.Tensor) else [input_ids.shape[-1]]
        longest = max(lengths, default=0)
        if longest > self.max_length:
            visual = sum(p.visual_tokens for p in vision.tile_plans) if vision is not None else 0
            raise ValueError(
                f"the prompt is {longest} tokens ({visual} of them visual) but the model reads at most "
                f"{self.max_length}; shorten the text, or use fewer tiles (a lower scale, --mode auto/low)"
            )

    def batch_decode(self, *args, **kwargs):
        return self.tokenizer.batch_decode(*args, **kwargs)

    def decode(self, *args, **kwargs):
        return self.tokenizer.decode(*args, **kwargs)

    @property
    def model_input_names(self):
        return ["input_ids", "attention_mask", "pixel_values", "image_grid"]


def _images_per_text(images, texts: list[str]) -> list[list]:
    """Group ``images`` by text and check each text has exactly one image per ``<image>``."""
    counts = [t.count(specials.IMAGE) for t in texts]
    images = _as_list(images)
    nested = bool(images) and all(isinstance(group, (list, tuple)) for group in images)
    if nested:
        if len(images) != len(texts):
            raise ValueError(f"got image lists for {len(images)} texts but {len(texts)} texts")
        groups = [list(group) for group in images]
    else:
        groups, start = [], 0
        if len(images) != sum(counts):
            raise ValueError(
                f"the text has {sum(counts)} {specials.IMAGE} placeholder(s) but {len(images)} image(s) were given; "
                f"put one {specials.IMAGE} where each image belongs (apply_chat_template does this for image parts)"
            )
        for count in counts:
            groups.append(images[start:start + count])
            start += count
    for i, (group, count) in enumerate(zip(groups, counts)):
        if len(group) != count:
            raise ValueError(f"text {i} has {count} {specials.IMAGE} placeholder(s) but {len(group)} image(s)")
    return groups
