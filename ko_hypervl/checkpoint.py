"""Self-contained checkpoint folders: weights (safetensors), config, generation config, tokenizer, processor."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import torch

from .tokenization.specials import ASSISTANT

BUNDLED_MODEL = "ko-hypervl-tiny"
TRAINING_SUMMARY = "training_summary.json"   # written by the training stages, read by eval's model card
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "processor_config.json")


log = logging.getLogger(__name__)


def bundled_model_dir() -> Path:
    return Path(__file__).resolve().parent / "assets" / "model" / BUNDLED_MODEL


def check_checkpoint_dir(path: str | os.PathLike | None) -> Path:
    """The checkpoint directory, or a FileNotFoundError that says what is missing and how to get one."""
    directory = Path(path) if path is not None else bundled_model_dir()
    hint = ("create one with `ko-hypervl model init --out DIR` (random weights) or train one with "
            "`ko-hypervl train`, then pass --model DIR")
    if not directory.is_dir():
        what = "the bundled model is not installed" if path is None else f"model directory not found: {directory}"
        raise FileNotFoundError(f"{what}; {hint}")
    missing = [name for name in REQUIRED_FILES if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{directory} is not a complete ko-hypervl checkpoint: missing {', '.join(missing)}; "
                                f"{hint}")
    try:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"corrupt config: {directory / 'config.json'} ({exc})") from None
    if config.get("model_type") != "ko_hypervl":
        raise ValueError(f"{directory} holds a {config.get('model_type')!r} model, not a ko-hypervl checkpoint")
    return directory


def save_checkpoint(model, processor, directory: str | os.PathLike) -> Path:
    """Write model + processor (tokenizer included) to ``directory``; safetensors only."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory, safe_serialization=True)
    processor.save_pretrained(directory)
    return directory


def load_checkpoint(path: str | os.PathLike | None = None, device: str | None = None,
                    dtype: torch.dtype | None = None):
    """``(model, processor)`` from a checkpoint directory (default: the bundled model), in eval mode.

    Weights are loaded as float32 unless ``dtype`` says otherwise, whatever dtype they were saved in: the
    bundled checkpoint is stored in float16 to halve its size, and float16 matmuls on a CPU are slow.
    """
    from transformers import AutoModelForImageTextToText, AutoProcessor

    # the Auto classes know ko_hypervl once the package is imported (``ko_hypervl.model`` and
    # ``ko_hypervl.processing`` register them), which importing this module has already done
    directory = check_checkpoint_dir(path)
    kwargs = {"use_safetensors": True, "dtype": torch.float32 if dtype is None else dtype}
    try:
        model = AutoModelForImageTextToText.from_pretrained(directory, **kwargs)
        processor = AutoProcessor.from_pretrained(directory)
    except (OSError, json.JSONDecodeError, KeyError) as exc:
        raise ValueError(f"could not load the checkpoint in {directory}: {exc}") from None
    if device is not None:
        model = model.to(device)
    return model.eval(), processor


@contextlib.contextmanager
def staged_directory(target: Path) -> Iterator[Path]:
    """Yields an empty ``<target>.partial`` to fill; it replaces ``target`` only when the block completes.

    A kill inside the block leaves ``target`` as it was (and a ``.partial`` the next attempt clears).
    """
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    yield partial
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)


def export_checkpoint(source: str | os.PathLike, out: str | os.PathLike, dtype: torch.dtype = torch.float16) -> Path:
    """Copy a checkpoint to ``out`` with its floating-point weights stored as ``dtype`` (e.g. float16 for the
    bundled model: half the size); everything else in the folder (processor, tokenizer, training summary,
    model card, plots) is copied as it is, and ``out`` is replaced only once the copy is complete."""
    source = check_checkpoint_dir(source)
    out = Path(out)
    if out.resolve() == source.resolve():
        raise ValueError("export_checkpoint: the output folder must differ from the source checkpoint")
    model, processor = load_checkpoint(source)
    with staged_directory(out) as partial:
        shutil.copytree(source, partial, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("model*.safetensors", "model.safetensors.index.json"))
        save_checkpoint(model.to(dtype), processor, partial)
    return out


def add_copy_head(source: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Copy a checkpoint that has a reading head to ``out`` with an untrained copy head (``model.copy_head``):
    its questions then carry the head's reading of their images, for instruction tuning to teach the copy.
    Everything else in the folder (the reading LM, the training summary) is copied as it is."""
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    source = check_checkpoint_dir(source)
    out = Path(out)
    if out.resolve() == source.resolve():
        raise ValueError("add_copy_head: the output folder must differ from the source checkpoint")
    config = AutoConfig.from_pretrained(source)
    if not config.reading_head:
        raise ValueError(f"{source} has no reading head, so there is no reading to copy: fit one first "
                         "(`ko-hypervl train read`, or a pipeline with a reading stage)")
    if config.copy_head:
        raise ValueError(f"{source} already has a copy head")
    processor = AutoProcessor.from_pretrained(source)
    config.copy_head = True
    config.assistant_token_id = processor.tokenizer.convert_tokens_to_ids(ASSISTANT)
    model = AutoModelForImageTextToText.from_pretrained(source, config=config, use_safetensors=True,
                                                        dtype=torch.float32)
    model.reading_head_spec()    # the head must still read its encoder
    with staged_directory(out) as partial:
        shutil.copytree(source, partial, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("model*.safetensors", "model.safetensors.index.json"))
        save_checkpoint(model, processor, partial)
    return out


def read_training_summary(directory: str | os.PathLike):
    """The checkpoint's ``training_summary.json`` (any JSON), or None when it has none or it is unreadable."""
    path = Path(directory) / TRAINING_SUMMARY
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        # a missing history is not worth failing over; say why it is missing
        log.warning("ignoring unreadable %s: %s", path, exc)
        return None
