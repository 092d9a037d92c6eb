"""LoRA on the language model (and optionally the projectors) through ``peft``.

Targets are found by walking the modules and keeping the ``nn.Linear`` layers inside the language
model's decoder (attention and MLP projections), whatever the LM class calls them; the output head is
left out (it is tied to the embeddings in small models). Nothing depends on the checkpoint's path or name.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from torch import nn

from ..settings import setting


@dataclass
class LoraSettings:
    r: int = setting(16, help="LoRA rank")
    alpha: int = setting(32, help="LoRA scaling numerator (scale = alpha / r)")
    dropout: float = setting(0.05, help="dropout on the LoRA input")
    include_projectors: bool = setting(False, help="also adapt the vision projectors' linear layers")


def lora_target_modules(model, include_projectors: bool = False) -> list[str]:
    """Full names of the linear layers LoRA adapts."""
    head = model.language_model.get_output_embeddings()
    decoder = model.language_model.get_decoder()
    prefix = next(name for name, module in model.named_modules() if module is decoder)
    names = [f"{prefix}.{name}" for name, module in decoder.named_modules()
             if isinstance(module, nn.Linear) and module is not head]
    if include_projectors:
        for projector_name in ("projector", "small_projector"):
            projector = getattr(model, projector_name)
            names += [f"{projector_name}.{name}" for name, module in projector.named_modules()
                      if isinstance(module, nn.Linear)]
    if not names:
        raise ValueError(f"no linear layers found in {type(decoder).__name__} to adapt with LoRA")
    return names


def attach_lora(model, settings: LoraSettings | None = None):
    """``model`` wrapped in a ``peft`` model with LoRA adapters; only the adapters are trainable."""
    from peft import LoraConfig, get_peft_model

    settings = settings or LoraSettings()
    config = LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout, bias="none",
                        target_modules=lora_target_modules(model, settings.include_projectors))
    with warnings.catch_warnings():
        # peft 0.21 reads transformers' deprecated `is_gradient_checkpointing` alias while wrapping: a FutureWarning
        # on every LoRA run that the user can do nothing about
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        return get_peft_model(model, config)
