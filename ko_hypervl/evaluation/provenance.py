"""What the model card says about where the numbers come from: the checkpoint (parts, parameters, tokenizer),
the machine, and the training run's own summary when the training pipeline left one beside the weights."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def parameter_counts(model) -> dict[str, int]:
    """Parameters per part of a KoHyperVL model, and the total."""
    parts = {"language_model": [model.language_model], "large_encoder": [model.vision_model],
             "small_encoder": [model.small_vision_model], "projectors": [model.projector, model.small_projector],
             "vrc": [model.vrc]}
    if model.reading_head is not None:
        parts["reading_head"] = [model.reading_head]
    counts = {name: sum(p.numel() for m in modules for p in m.parameters()) for name, modules in parts.items()}
    counts["total"] = sum(p.numel() for p in model.parameters())
    return counts


SAFETENSORS_DTYPES = {"F16": "float16", "BF16": "bfloat16", "F32": "float32", "F64": "float64"}


def stored_dtype(weights: Path) -> str | None:
    """The dtype the weights file stores its floating-point tensors in (the bundled model: float16), from its header."""
    from safetensors import safe_open

    if not weights.is_file():
        return None
    with safe_open(str(weights), framework="pt") as handle:
        kinds = {handle.get_slice(name).get_dtype() for name in handle.keys()}
    floats = sorted(SAFETENSORS_DTYPES[k] for k in kinds if k in SAFETENSORS_DTYPES)
    return "+".join(floats) or None


def checkpoint_summary(model, processor, directory: Path) -> dict:
    """The checkpoint's shape: parameters, language model, branches (tile size, visual tokens per tile,
    resolution), tokenizer, and the dtype its weights are stored in."""
    config, image_processor, tokenizer = model.config, processor.image_processor, processor.tokenizer
    text = config.text_config
    return {
        "path": str(directory), "name": directory.name, "parameters": parameter_counts(model),
        "language_model": {"type": text.model_type, "hidden_size": text.hidden_size,
                           "layers": text.num_hidden_layers, "context": getattr(text, "max_position_embeddings", None)},
        "branches": {branch: {"tile_size": image_processor.tile_sizes[branch],
                              "visual_tokens_per_tile": image_processor.tokens_per_tile[branch],
                              "image_scale": image_processor.branch_scales[branch]}
                     for branch in ("large", "small")},
        "max_tiles": image_processor.max_tiles, "vrc_scales": list(config.vrc_scales),
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "stored_dtype": stored_dtype(directory / "model.safetensors"),
        "tokenizer": {"class": type(tokenizer).__name__, "vocabulary": len(tokenizer),
                      "name": tokenizer_name(tokenizer)},
    }


def tokenizer_name(tokenizer) -> str:
    """``ko-hypervl-32k (bundled)`` when the checkpoint carries the bundled vocabulary, else ``custom``.

    A saved tokenizer's ``name_or_path`` is the checkpoint folder, so the vocabulary itself says which it is.
    """
    from ..tokenization import load_tokenizer
    from ..tokenization.bundled import BUNDLED_NAME

    return f"{BUNDLED_NAME} (bundled)" if tokenizer.get_vocab() == load_tokenizer().get_vocab() else "custom"


def hardware_summary(device: torch.device) -> dict:
    """The machine the numbers were measured on (timings mean nothing without it)."""
    summary = {"device": str(device), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
               "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
               "processor": platform.processor() or platform.machine()}
    if device.type == "cuda":
        summary["gpu"] = torch.cuda.get_device_name(device)
    return summary
