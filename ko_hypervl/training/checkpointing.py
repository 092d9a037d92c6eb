"""Resumable training checkpoints, written atomically, in safetensors and JSON only (no pickle).

A checkpoint is a folder ``step-NNNNNNN`` with the model weights, the optimizer moments and a JSON
state (step, counters, the settings that must not change on resume). Given the processor, it also holds the
model's config and the processor (tokenizer included), so every command loads it as a model: a long run can be
scored while it trains (``ko-hypervl model bpc RUN/checkpoints/step-0001000``). It is written under a
``.partial`` name and renamed when complete, then ``latest.json`` is replaced atomically to point at it,
so a run killed at any moment leaves either the previous checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors.torch import load_file, load_model, save_file, save_model

from ..checkpoint import staged_directory

LATEST = "latest.json"


def write_json_atomic(path: Path, data) -> None:
    """Write JSON next to ``path`` and rename it over ``path`` (readers never see a half-written file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, path)


def optimizer_tensors(optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """An optimizer's state as flat tensors (``"<param>.<name>"``) plus the JSON-able rest."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for param, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{param}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{param}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def restore_optimizer(optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict] = {}
    for key, value in [*tensors.items(), *meta["scalars"].items()]:
        param, name = key.split(".", 1)
        state.setdefault(int(param), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_training_checkpoint(directory: Path, model, optimizer, state: dict, keep: int, processor=None) -> Path:
    """Write step ``state["step"]`` under ``directory`` and point ``latest.json`` at it; prune old ones.

    With ``processor`` the folder is also a complete model checkpoint (config, generation config, processor)."""
    directory.mkdir(parents=True, exist_ok=True)
    name = f"step-{state['step']:07d}"
    final = directory / name
    with staged_directory(final) as partial:
        save_model(model, str(partial / "model.safetensors"))   # save_model copes with tied weights
        tensors, meta = optimizer_tensors(optimizer)
        save_file(tensors, str(partial / "optimizer.safetensors"))
        (partial / "optimizer.json").write_text(json.dumps(meta), encoding="utf-8")
        (partial / "state.json").write_text(json.dumps(state, ensure_ascii=False, indent=1, default=str),
                                            encoding="utf-8")
        if processor is not None:
            model.config.save_pretrained(partial)
            if getattr(model, "generation_config", None) is not None:
                model.generation_config.save_pretrained(partial)
            processor.save_pretrained(partial)
    write_json_atomic(directory / LATEST, {"step": state["step"], "checkpoint": name})
    _prune(directory, keep)
    return final


def _prune(directory: Path, keep: int) -> None:
    done = sorted(p for p in directory.glob("step-*") if p.is_dir() and not p.name.endswith(".partial"))
    for old in done[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    for partial in directory.glob("step-*.partial"):   # left by a run killed while writing
        shutil.rmtree(partial, ignore_errors=True)


def latest_checkpoint(directory: Path) -> Path | None:
    """The checkpoint ``latest.json`` names, or None for a fresh run; a dangling pointer is an error."""
    pointer = directory / LATEST
    if not pointer.is_file():
        return None
    try:
        name = json.loads(pointer.read_text(encoding="utf-8"))["checkpoint"]
    except (json.JSONDecodeError, KeyError) as exc:
        raise ValueError(f"corrupt checkpoint pointer {pointer} ({exc}); delete it to start the run over") from None
    path = directory / name
    if not (path / "state.json").is_file():
        raise FileNotFoundError(f"{pointer} names {name}, which is missing or incomplete; delete {pointer} to "
                                "start over, or point it at another step-* folder")
    return path


def load_training_checkpoint(path: Path, model, optimizer) -> dict:
    """Restore model and optimizer from ``path``; returns its state dict."""
    missing, unexpected = load_model(model, str(path / "model.safetensors"), strict=False)
    if unexpected or missing:
        raise ValueError(f"checkpoint {path} does not fit this model (missing {len(missing)} tensors, e.g. "
                         f"{missing[:3]}; unexpected {unexpected[:3]}): was the run started with other settings?")
    meta = json.loads((path / "optimizer.json").read_text(encoding="utf-8"))
    restore_optimizer(optimizer, load_file(str(path / "optimizer.safetensors")), meta)
    return json.loads((path / "state.json").read_text(encoding="utf-8"))
