"""``ko-hypervl ask`` and ``ko-hypervl model``: ask a checkpoint about an image; create, inspect, benchmark models."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from ..settings import add_settings_arguments, setting, settings_from_args
from .common import add_command_group, add_settings_command


@dataclass
class AskSettings:
    model: str | None = setting(None, help="checkpoint directory (default: the bundled model)")
    mode: str = setting("auto", help="auto: VRC picks the scale; high: large branch, full resolution; "
                                      "low: small branch", choices=("auto", "low", "high"))
    scale: float | None = setting(None, help="fixed scale in (0, 1] instead of the VRC's choice")
    max_new_tokens: int = setting(128, help="longest answer in tokens")
    json: bool = setting(False, help="print one JSON object (answer, VRC decision, timings)")
    stream: bool = setting(True, help="print the answer while it is generated")


def register(commands: argparse._SubParsersAction) -> None:
    from ..model.build import ModelBuildSettings

    ask = commands.add_parser("ask", help="ask the model a question about an image",
                              description="Answer a Korean question about an image and show the VRC decision "
                                          "(scale, tiles, visual tokens, tokens saved) and timings.")
    ask.add_argument("image", help="image file (PNG, JPEG, WebP, …)")
    ask.add_argument("question", help="the question, e.g. \"가장 큰 값은?\"")
    add_settings_arguments(ask, AskSettings)
    ask.set_defaults(func=_ask)

    read = commands.add_parser("read", help="transcribe the text in images with the model's reading head",
                               description="Transcribe (handwritten) Korean text with the CTC reading head a reading "
                                           "stage (`ko-hypervl train read`) left in the checkpoint: no question, and "
                                           "the VLM's language model takes no part. A head that reads one line at a "
                                           "time (the recipes') gets each page levelled and cut into its lines first; "
                                           "the lines come out one per line. Where the checkpoint has a reading LM "
                                           "(`ko-hypervl model reading-lm`), each line is decoded by beam search with "
                                           "it.")
    read.add_argument("images", nargs="+", help="image files")
    read.add_argument("--model", default=None, help="checkpoint directory (default: the bundled model)")
    read.add_argument("--json", action="store_true", help="print one JSON object per image")
    read.add_argument("--no-split-lines", dest="split_lines", action="store_false",
                      help="read each image as one line, without cutting it into lines")
    read.add_argument("--greedy", action="store_true",
                      help="decode by best path even where the checkpoint has a reading LM (`model reading-lm`)")
    read.set_defaults(func=_read)

    sub = add_command_group(commands, "model", "create, inspect and benchmark checkpoints",
                            "Model checkpoints: build one from parts, show what is inside, run the benchmarks.",
                            "model commands", "ACTION")
    init = add_settings_command(sub, "init", "build a new checkpoint from built-in or local parts (untrained)",
                                "Assemble encoders, projectors, VRC and LM (built-in configs or local transformers "
                                "checkpoints such as SigLIP, Qwen2/3, Llama) and save a self-contained folder.",
                                ModelBuildSettings, _init)
    init.add_argument("--out", type=Path, required=True, help="output checkpoint directory")
    info = sub.add_parser("info", help="parameters, branches and visual tokens of a checkpoint")
    info.add_argument("model", nargs="?", default=None, help="checkpoint directory (default: the bundled model)")
    info.set_defaults(func=_info)

    export = sub.add_parser("export", help="copy a checkpoint with its weights stored in a smaller dtype",
                            description="Copy a checkpoint folder (processor, tokenizer, training summary, model "
                                        "card included) with its floating-point weights stored as float16 or "
                                        "bfloat16: half the size on disk. Loading casts them back to float32.")
    export.add_argument("model", help="checkpoint directory to copy")
    export.add_argument("--out", type=Path, required=True, help="output checkpoint directory (replaced)")
    export.add_argument("--dtype", default="float16", choices=("float16", "bfloat16", "float32"),
                        help="storage dtype of the weights")
    export.set_defaults(func=_export)

    copy = sub.add_parser("copy-head", help="add an untrained copy head to a checkpoint with a reading head",
                          description="Copy a checkpoint with a reading head and give it a copy head: its questions "
                                      "then carry the head's reading of their images as text, and the LM's next "
                                      "token mixes generating with copying from it. Instruction tuning on a corpus "
                                      "with readings (`ko-hypervl corpora read`) then teaches the copy.")
    copy.add_argument("model", help="checkpoint directory with a reading head")
    copy.add_argument("--out", type=Path, required=True, help="output checkpoint directory (replaced)")
    copy.set_defaults(func=_copy_head)

    from ..model.bench import ModelBenchSettings

    add_settings_command(sub, "bench", "memory, visual tokens, prefill and KV-cache benchmarks",
                         "Measure the model-issue targets side by side with their baselines in one run.",
                         ModelBenchSettings, _bench)

    from ..evaluation.language import LMEvalSettings

    add_settings_command(sub, "bpc", "bits per character of checkpoints' language models on held-out text",
                         "Score each checkpoint's LM on the same held-out Korean text (documents + EOS, as the LM "
                         "stage trains) and compare bits per character, which is fair across tokenizers; the first "
                         "checkpoint is the reference.", LMEvalSettings, _bpc, positional=("models",))

    from ..training.reading_lm import ReadingLMSettings

    add_settings_command(sub, "reading-lm", "fit the reading head's letter LM; choose its decoding on validation rows",
                         "Fit a Kneser-Ney n-gram over the reading head's units (jamo, digits, punctuation) on the "
                         "text corpus's training lines, choose the beam search's LM weight and length bonus on "
                         "validation OCR rows (never the test rows), and write reading_lm.safetensors into the "
                         "checkpoint: `ko-hypervl read` and `ko-hypervl eval` then decode with it.",
                         ReadingLMSettings, _reading_lm, positional=("model",))

    from ..evaluation.image_use import ImageUseSettings

    add_settings_command(sub, "image-use", "how much checkpoints' answers depend on the image",
                         "For each checkpoint and mode, on the held-out test questions: the exact answers' loss "
                         "(teacher-forced, nats per token) with the images and with white ones of the same size, "
                         "what the images save per kind (± 2 SE), and the visual tokens' norm and spread within "
                         "and between images (near 0: the encoder or projector has collapsed to one output).",
                         ImageUseSettings, _image_use, positional=("models",))


def _ask(args: argparse.Namespace) -> int:
    from ..inference import Answer, load

    settings = settings_from_args(AskSettings, args)
    vlm = load(settings.model)
    answer = None
    for piece in vlm.stream(args.image, args.question, mode=settings.mode, scale=settings.scale,
                            max_new_tokens=settings.max_new_tokens):
        if isinstance(piece, Answer):
            answer = piece
        elif settings.stream and not settings.json:
            print(piece, end="", flush=True)
    if settings.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return 0
    if not settings.stream:
        print(answer.text, end="")
    print()
    for d in answer.decisions:
        print(f"[VRC] mode={d.mode} branch={d.branch} scale={d.scale:g} ({d.chosen_by}) "
              f"{d.width}×{d.height} → {d.resized_width}×{d.resized_height}, tiles {d.rows}×{d.cols}, "
              f"visual tokens {d.visual_tokens} / full {d.full_visual_tokens} (saved {d.tokens_saved})",
              file=sys.stderr)
    print(f"[time] first token {answer.time_to_first_token_s * 1000:.0f} ms, {answer.tokens_per_s:.1f} tokens/s, "
          f"{answer.new_tokens} tokens", file=sys.stderr)
    return 0


def _read(args: argparse.Namespace) -> int:
    from ..inference import load

    vlm = load(args.model)
    for path, reading in zip(args.images, vlm.read(args.images, split_lines=args.split_lines, greedy=args.greedy)):
        if args.json:
            print(json.dumps({"image": path, **reading.to_dict()}, ensure_ascii=False))
        else:
            print(f"# {path} ({reading.lines} line{'s' * (reading.lines != 1)})\n{reading.text}")
    return 0


def _reading_lm(args: argparse.Namespace) -> int:
    from ..training.reading_lm import ReadingLMSettings, fit_and_tune, print_record

    print_record(fit_and_tune(settings_from_args(ReadingLMSettings, args)))
    return 0


def _init(args: argparse.Namespace) -> int:
    from ..checkpoint import save_checkpoint
    from ..model.build import ModelBuildSettings, build_model

    settings = settings_from_args(ModelBuildSettings, args)
    model, processor = build_model(settings)
    out = save_checkpoint(model, processor, args.out)
    print(f"saved an untrained checkpoint ({sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters) "
          f"to {out}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from ..checkpoint import load_checkpoint

    model, processor = load_checkpoint(args.model)
    config = model.config
    rows = [("language model", model.language_model), ("large encoder", model.vision_model),
            ("small encoder", model.small_vision_model), ("projectors", [model.projector, model.small_projector]),
            ("VRC", model.vrc)] + [("reading head", model.reading_head)] * (model.reading_head is not None) + \
        [("copy head", model.copy_head)] * (model.copy_head is not None)
    for name, modules in rows:
        modules = modules if isinstance(modules, list) else [modules]
        count = sum(p.numel() for m in modules for p in m.parameters())
        print(f"{name:15s} {count / 1e6:8.2f} M  {type(modules[0]).__name__}")
    ip = processor.image_processor
    for branch in ("large", "small"):
        print(f"{branch} branch: {ip.tile_sizes[branch]} px tiles at {ip.branch_scales[branch]:g}× resolution, "
              f"{ip.tokens_per_tile[branch]} visual tokens per tile")
    print(f"max tiles {ip.max_tiles}, VRC scales {config.vrc_scales}, vocabulary {len(processor.tokenizer):,}")
    if config.reading_head:
        head = config.reading_head
        cer = f", CER {head['cer']} on its held-out lines" if head.get("cer") is not None else ""
        print(f"reading head: {head['branch']} branch, {len(head['units']) + 1} classes, {head['order']} order"
              f"{cer} (`ko-hypervl read`)")
    if config.copy_head:
        print("copy head: each question carries the reading head's reading of its images, and the LM's next token "
              "mixes generating with copying from its input")
    from ..checkpoint import check_checkpoint_dir
    from ..processing.reading_lm import load_reading_lm

    if lm := load_reading_lm(check_checkpoint_dir(args.model)):
        chosen = f", validation CER {lm.info['greedy_cer']} → {lm.info['cer']}" if "cer" in lm.info else ""
        print(f"reading LM: order {lm.order}, {lm.size:,} n-grams, alpha {lm.decode.alpha:g}, beta "
              f"{lm.decode.beta:g}, beam {lm.decode.beam}{chosen}")
    return 0


def _bpc(args: argparse.Namespace) -> int:
    from ..evaluation.language import LMEvalSettings, describe_text, evaluate_language_models

    settings = settings_from_args(LMEvalSettings, args)
    rows, table = evaluate_language_models(settings)
    print(f"\n{describe_text(rows, settings)}\n")
    print(table)
    if settings.json_out is not None:
        print(f"\nJSON: {settings.json_out}")
    return 0


def _image_use(args: argparse.Namespace) -> int:
    from ..evaluation import EvalInputError
    from ..evaluation.image_use import ImageUseSettings, measure_image_use

    try:
        settings = settings_from_args(ImageUseSettings, args)
        _, table = measure_image_use(settings)
    except EvalInputError as exc:   # bad input, like a usage error: exit 2, as `ko-hypervl eval` does
        print(f"ko-hypervl model image-use: error: {exc}", file=sys.stderr)
        return 2
    print(table)
    if settings.json_out is not None:
        print(f"\nJSON: {settings.json_out}")
    return 0


def _export(args: argparse.Namespace) -> int:
    import torch

    from ..checkpoint import export_checkpoint

    out = export_checkpoint(args.model, args.out, getattr(torch, args.dtype))
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"exported {args.model} as {args.dtype} to {out} ({size / 2**20:.1f} MiB)")
    return 0


def _copy_head(args: argparse.Namespace) -> int:
    from ..checkpoint import add_copy_head

    print(f"wrote {add_copy_head(args.model, args.out)}: {args.model} with an untrained copy head")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from ..model.bench import ModelBenchSettings, run_benchmarks

    run_benchmarks(settings_from_args(ModelBenchSettings, args))
    return 0
