"""``ko-hypervl train``: one subcommand per stage, LoRA on your own data, and the whole pipeline.

Flags come from the stage's settings dataclasses. Every stage resumes when rerun with the same
``--out``; multi-process runs go through ``accelerate launch -m ko_hypervl train …``.
"""

from __future__ import annotations

import argparse

from ..settings import add_settings_arguments, settings_from_args
from .common import add_command_group, add_settings_command

STAGE_HELP = {
    "copy": "0. teach a fresh language model to copy from its context (random spans written twice; optional)",
    "lm": "1. pretrain (or continue pretraining) the language model on the Korean text corpus",
    "read": "1b. reading pretraining: the vision encoders learn to transcribe through a CTC head (optional)",
    "align": "2. alignment: encoders and projectors on reading text and chart-to-table, LM frozen",
    "sft": "3. instruction tuning on chart / exam / OCR / table conversations (loss on answers only)",
    "dcl": "4. dual consistency learning: both branches, cross-entropy + KL(small ‖ large)",
    "vrc": "5. VRC: label scales with the model's own loss, fit the predictor, report the curve",
    "lora": "LoRA fine-tuning (peft) on your own data (LLaVA JSON/JSONL or multiple-choice CSV/TSV/JSON)",
    "pipeline": "every stage end to end into one self-contained checkpoint (resumable; --smoke for minutes)",
}


def _settings_classes(name: str) -> tuple[type, ...]:
    from ..model.lora import LoraSettings
    from ..training import LoraDataSettings, TrainSettings
    from ..training.pipeline import PipelineSettings
    from ..training.copying import CopySettings
    from ..training.reading import ReadSettings
    from ..training.run import VISION_LANGUAGE
    from ..training.stages import LMSettings
    from ..training.vrc import VRCSettings

    return {"copy": (TrainSettings, CopySettings), "lm": (TrainSettings, LMSettings),
            "read": (TrainSettings, ReadSettings), "vrc": (VRCSettings,),
            "lora": (TrainSettings, LoraDataSettings, LoraSettings), "pipeline": (PipelineSettings,),
            **{k: (TrainSettings, cls) for k, cls in VISION_LANGUAGE.items()}}[name]


def register(commands: argparse._SubParsersAction) -> None:
    sub = add_command_group(commands, "train", "run a training stage or the whole pipeline (LM, alignment, SFT, "
                            "DCL, VRC, LoRA)", "Training stages; each resumes from its last checkpoint when rerun.",
                            "stages", "STAGE")
    for name, help_text in STAGE_HELP.items():
        parser = sub.add_parser(name, help=help_text, description=help_text)
        for cls in _settings_classes(name):
            add_settings_arguments(parser, cls)
        parser.set_defaults(func=_run, stage=name)
    from ..training.settings import CompareSettings

    add_settings_command(sub, "compare", "draw several runs' loss curves on one chart and print their means",
                         "Compare runs (ablations, settings): each run's logged metric as a moving mean on one "
                         "chart; prints each run's mean over its first and last --window steps.",
                         CompareSettings, _compare, positional=("runs",))


def _compare(args: argparse.Namespace) -> int:
    from ..training.runlog import compare_runs, read_log
    from ..training.settings import CompareSettings

    settings = settings_from_args(CompareSettings, args)
    runs = {label: read_log(path) for label, path in settings.log_files().items()}
    summary = compare_runs(runs, settings.out, settings.metric, settings.window, settings.title, settings.ymax)
    first, last = f"first_{settings.metric}", f"last_{settings.metric}"
    print(f"| run | steps | seconds | {settings.metric}, first {settings.window} steps | last {settings.window} steps |")
    print("|---|---:|---:|---:|---:|")
    for row in summary:
        print(f"| {row['run']} | {row['steps']} | {row['seconds']} | {row[first]} | {row[last]} |")
    print(f"chart: {settings.out}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from ..training import run

    settings = [settings_from_args(cls, args) for cls in _settings_classes(args.stage)]
    if args.stage == "pipeline":
        from ..training.pipeline import run_pipeline

        final = run_pipeline(*settings)
    elif args.stage == "vrc":
        from ..training.vrc import train_vrc

        final = train_vrc(*settings)
    elif args.stage == "copy":
        final = run.train_copy(*settings)
    elif args.stage == "lm":
        final = run.train_lm(*settings)
    elif args.stage == "read":
        final = run.train_read(*settings)
    elif args.stage == "lora":
        final = run.train_lora(*settings)
    else:
        final = run.train_vision_language(args.stage, *settings)
    print(f"done: {final}")
    return 0
