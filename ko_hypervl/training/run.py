"""Run one stage from a checkpoint folder to a new self-contained checkpoint folder.

``<out>/final`` is written only when the stage is done (under a temporary name, then renamed), with a
``training_summary.json`` that carries the history of every stage that led to it.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from ..checkpoint import (TRAINING_SUMMARY, check_checkpoint_dir, load_checkpoint, read_training_summary, save_checkpoint,
                          staged_directory)
from ..evaluation.provenance import hardware_summary
from ..imagecorpus.records import transcriptions
from ..model.lora import LoraSettings, attach_lora
from ..settings import setting, settings_dict
from . import loop
from .copying import CopySettings, CopyStage
from .reading import ReadingModel, ReadSettings, ReadStage, reading_cer
from .settings import TrainSettings
from .stages import (AlignSettings, DCLSettings, LanguageModelStage, LMSettings, LoraStage, SFTSettings,
                     VisionLanguageSettings, VisionLanguageStage)

log = logging.getLogger(__name__)
FINAL = "final"
VISION_LANGUAGE = {"align": AlignSettings, "sft": SFTSettings, "dcl": DCLSettings}


def hardware() -> dict:
    return hardware_summary(torch.device("cuda" if torch.cuda.is_available() else "cpu"))


def stage_history(init: Path) -> list[dict]:
    return (read_training_summary(init) or {}).get("stages", [])


def write_final(model, processor, out: Path, result: loop.TrainResult, settings: list, init: Path | None,
                extra: dict | None = None) -> Path:
    """Save the trained model as ``<out>/final`` atomically, with the stage history."""
    entry = {**result.to_dict(), "settings": {type(s).__name__: settings_dict(s) for s in settings},
             "hardware": hardware(), **(extra or {})}
    history = (stage_history(init) if init else []) + [entry]
    with staged_directory(out / FINAL) as partial:
        save_checkpoint(model, processor, partial)
        if init:
            carry_reading_lm(init, model, partial)
        (partial / TRAINING_SUMMARY).write_text(json.dumps({"stages": history}, ensure_ascii=False, indent=1),
                                                encoding="utf-8")
    return out / FINAL


def carry_reading_lm(init: Path, model, directory: Path) -> bool:
    """Copy ``init``'s reading LM (``model reading-lm``) into ``directory`` where the model's reading head still
    reads its encoder: the LM decodes that head, so it goes where the head goes."""
    from ..processing.reading_lm import LM_FILE

    if not (Path(init) / LM_FILE).is_file() or model.reading_head is None:
        return False
    try:
        model.reading_head_spec()
    except ValueError as exc:
        log.info("the reading LM stays behind: %s", exc)
        return False
    shutil.copy2(Path(init) / LM_FILE, directory / LM_FILE)
    return True


def _load_for_training(init: Path):
    check_checkpoint_dir(init)
    model, processor = load_checkpoint(init, dtype=torch.float32)
    return model.train(), processor


def train_lm(train: TrainSettings, settings: LMSettings) -> Path:
    """Stage 1: next-token prediction on the Korean text corpus (the language model only)."""
    model, processor = _load_for_training(settings.init)
    stage = LanguageModelStage(settings, processor.tokenizer, model.config, progress=train.progress,
                               seed=train.seed)
    result = loop.train(stage, model, train, processor=processor)   # checkpoints that load as models
    return _finish(result, model, processor, train.out, [train, settings], settings.init)


def train_copy(train: TrainSettings, settings: CopySettings) -> Path:
    """Stage 0: random spans written twice, from a growing token pool (the language model only)."""
    model, processor = _load_for_training(settings.init)
    stage = CopyStage(settings, processor.tokenizer, model.config, train.steps, seed=train.seed)
    result = loop.train(stage, model, train, processor=processor)   # checkpoints that load as models
    return _finish(result, model, processor, train.out, [train, settings], settings.init)


def _vision_language_dataset(settings: VisionLanguageSettings):
    from ..imagecorpus.records import load_split

    return load_split(settings.data, settings.split, settings.kinds or None)


def train_vision_language(name: str, train: TrainSettings, settings: VisionLanguageSettings) -> Path:
    """Stages 2-4 (align, sft, dcl): image conversations, answers as targets."""
    model, processor = _load_for_training(settings.init)
    stage = VisionLanguageStage(name, settings, _vision_language_dataset(settings), processor, train.seed)
    result = loop.train(stage, model, train, processor=processor)   # checkpoints that load as models
    return _finish(result, model, processor, train.out, [train, settings], settings.init)


def train_read(train: TrainSettings, settings: ReadSettings) -> Path:
    """Reading pretraining: the vision encoders with a CTC head on transcriptions (see ``reading``)."""
    from ..imagecorpus.records import load_split

    model, processor = _load_for_training(settings.init)
    dataset = load_split(settings.data, settings.split, settings.kinds or None)
    stage = ReadStage(settings, dataset, processor)
    if not stage.rows:
        lines = " of one line" if settings.single_lines else ""
        raise ValueError(f"{settings.data} ({settings.split}) has no rows with a transcription turn{lines} to read")
    # the held-out split is loaded first, so a missing one stops the run before training, not after it
    held_out = load_split(settings.data, settings.eval_split, settings.kinds or None) if settings.eval_rows else None
    reader = ReadingModel(model, stage.branches, len(stage.vocab), train.seed, settings.positions_per_patch,
                          settings.blank_prior, settings.order)
    result = loop.train(stage, reader, train)
    scores = {}
    if held_out is not None:
        held_rows = transcriptions(held_out, single_line=settings.single_lines)[:settings.eval_rows]
        for branch in stage.branches:
            scores[branch] = reading_cer(reader, processor, held_out, held_rows, stage.vocab, branch, train.progress)
            log.info("read: %s branch, CER %s on %d %s lines; e.g. %s", branch, scores[branch]["cer"],
                     scores[branch]["rows"], settings.eval_split, scores[branch]["example"])
    kept = "large" if "large" in stage.branches else stage.branches[0]
    model.install_reading_head(reader.heads[kept], reader.head_spec(kept, stage.vocab, settings.positions_per_patch,
                                                                    scores.get(kept, {}).get("cer")))
    return _finish(result, model, processor, train.out, [train, settings], settings.init,
                   extra={"reading_cer": scores, "reading_classes": len(stage.vocab)})


@dataclass
class LoraDataSettings:
    data: Path = setting(help="your data: LLaVA-style JSON/JSONL or multiple-choice CSV/TSV/JSON(L)")
    model: Path | None = setting(None, help="checkpoint to adapt (default: the bundled model)")
    format: str = setting("auto", help="data layout", choices=("auto", "llava", "multiple_choice"))
    image_dir: Path | None = setting(None, help="folder the image paths are relative to (default: the data file's)")
    skip_bad: bool = setting(False, help="skip malformed records (listed in the log) instead of stopping")
    branch: str = setting("large", help="vision branch to adapt for", choices=("large", "small"))
    max_length: int = setting(2048, help="longest training sequence in tokens")
    merge: bool = setting(True, help="also write <out>/final: the adapters merged into a full checkpoint")


def train_lora(train: TrainSettings, data: LoraDataSettings, lora: LoraSettings) -> Path:
    """LoRA fine-tuning on a user's own data; writes ``<out>/adapter`` (peft) and, with merge, ``<out>/final``."""
    from ..imagecorpus.readers import read_user_data

    result = read_user_data(data.data, format=data.format, image_dir=data.image_dir,
                            on_error="skip" if data.skip_bad else "stop")
    for problem in result.problems:
        log.warning("skipped: %s", problem)
    if len(result.dataset) == 0:
        raise ValueError(f"{data.data}: no usable records")
    model, processor = _load_for_training(data.model)
    model = attach_lora(model, lora)
    settings = VisionLanguageSettings(init=data.model or Path("bundled"), data=data.data, branches=data.branch,
                                      max_length=data.max_length, scale_prob=0.0)
    stage = LoraStage("lora", settings, result.dataset, processor, train.seed)
    outcome = loop.train(stage, model, train)
    adapter = train.out / "adapter"
    model.save_pretrained(adapter, safe_serialization=True)
    log.info("LoRA adapter written to %s", adapter)
    if not data.merge:
        return adapter
    merged = model.merge_and_unload()
    return _finish(outcome, merged, processor, train.out, [train, data, lora], data.model,
                   extra={"lora": settings_dict(lora), "records": len(result.dataset), "skipped": len(result.problems)})


def _finish(result: loop.TrainResult, model, processor, out: Path, settings: list, init, extra=None) -> Path:
    from accelerate import PartialState

    state = PartialState()
    final = Path(out) / FINAL
    if state.is_main_process:
        final = write_final(model, processor, Path(out), result, settings, init, extra)
        log.info("%s done in %.0f s (%.2f samples/s, %.0f tokens/s); model in %s", result.stage, result.seconds,
                 result.samples_per_second, result.tokens_per_second, final)
    state.wait_for_everyone()
    return final
