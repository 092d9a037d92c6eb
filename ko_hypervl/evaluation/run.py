"""``evaluate(EvalSettings(...))``: answer every held-out test question in each mode, score it, time it, compare
it with Tesseract, and write the model card.

Accuracy comes from greedy, left-padded batches (fast and identical to single requests); latency from
single streamed ``ask`` calls, because that is what a user waits for.
"""

from __future__ import annotations

import dataclasses
import logging
import shlex
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import check_checkpoint_dir, read_training_summary
from ..inference import MODES, KoHyperVL
from ..settings import setting, settings_dict
from .baseline import tesseract_on_rows
from .reading_head import reading_head_on_rows
from .data import EVAL_SPLITS, EvalData, EvalQuestion, LazyImages, check_eval_split, load_eval_data
from .errors import EvalInputError
from .generate import asked_questions, decide_all, generate_answers
from .image_use import answer_losses, blank_like, image_use_by_kind
from .latency import LatencySummary, measure_latency
from .provenance import checkpoint_summary, hardware_summary
from .scoring import ModeScores, VisualTokenSummary, score_answers, summarize_visual_tokens
from .targets import load_ablations, parse_ablations, target_rows

log = logging.getLogger(__name__)
DEFAULT_OUT_ROOT = Path("eval_results")
BLANK_IMAGE = "blank_image"      # its name in predictions.jsonl
BLANK_IMAGE_MODE = "high"        # the mode the blank-image baseline answers in


@dataclass
class EvalSettings:
    model: str | None = setting(None, help="checkpoint directory (default: the bundled model)")
    data: Path | None = setting(None, help="a saved image corpus (`ko-hypervl corpora build --out DIR`) whose "
                                           "--split is evaluated (default: render that split's rows now)")
    split: str = setting("test", help="the rows to answer: test (held-out fonts, words and styles; the card's "
                                      "targets) or validation (to choose settings without looking at the test "
                                      "rows; the targets are then not measured)", choices=EVAL_SPLITS)
    num: int = setting(25, help="rows per kind: the first NUM rows of the split of each kind")
    kinds: list[str] | None = setting(None, help="only rows of these kinds, e.g. charts ocr (default: all)")
    modes: list[str] = setting(list(MODES), help="modes to evaluate: auto (VRC scale), high (large branch, full "
                                                 "resolution), low (small branch)", choices=MODES)
    max_new_tokens: int = setting(128, help="longest answer in tokens")
    batch_size: int = setting(8, help="questions answered at once (left-padded batches)")
    latency_samples: int = setting(20, help="single `ask` calls timed per mode (0: no latency measurement)")
    tesseract: bool = setting(True, help="run the Tesseract OCR baseline on the same rows when it is installed")
    blank_image: bool = setting(True, help="also answer every question in high mode with each image replaced by a "
                                           "white one of the same size: what the model gets from the question "
                                           "alone, so the gap to high is what seeing the image adds; and the "
                                           "exact answers' loss both ways (nats per token the image saves)")
    out: Path | None = setting(None, help="folder for model_card.md, eval.json, predictions.jsonl and plots "
                                          "(default: eval_results/<model folder name>)")
    seed: int = setting(0, help="seed of the rendered rows (the corpus build seed) and of torch")
    device: str | None = setting(None, help="torch device, e.g. cuda (default: cpu)")
    ablations: list[str] = setting([], help="ablation results shown in the model card's Targets and Ablations "
                                            "sections, as NAME=PATH items: no-dcl=runs/ablation-dcl/eval/eval.json "
                                            "(the eval.json of the twin trained without DCL, --kl-weight 0, "
                                            "evaluated with the same settings), lm-tokenizer=runs/ablation-lm/"
                                            "bpc.json (the `ko-hypervl model bpc --json-out` file of the tokenizer "
                                            "ablation, our LM first)")

    def __post_init__(self) -> None:
        for name in ("num", "max_new_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise EvalInputError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        check_eval_split(self.split)
        if self.latency_samples < 0:
            raise EvalInputError(f"--latency-samples must be 0 or more, got {self.latency_samples}")
        unknown = [m for m in self.modes if m not in MODES]
        if not self.modes or unknown:
            raise EvalInputError(f"--modes must name some of {', '.join(MODES)}, got {', '.join(self.modes) or 'none'}")
        self.modes = list(dict.fromkeys(self.modes))   # asking twice for a mode evaluates it once
        check_device(self.device)
        self.ablations = [str(item) for item in self.ablations]
        parse_ablations(self.ablations)   # NAME=PATH, known names, files that exist


def settings_command(settings: EvalSettings) -> str:
    """The ``ko-hypervl eval`` command line that repeats a run with ``settings`` (every setting spelled out)."""
    words = ["ko-hypervl", "eval"]
    for f in dataclasses.fields(settings):
        value, flag = getattr(settings, f.name), "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            words.append(flag if value else "--no-" + f.name.replace("_", "-"))
        elif isinstance(value, (list, tuple)):
            if value:   # an empty list is the default (`--flag` with no values would not parse)
                words += [flag, *map(str, value)]
        elif value is not None:
            words += [flag, str(value)]
    return shlex.join(words)


@dataclass
class ModeResult:
    mode: str
    scores: ModeScores
    visual_tokens: VisualTokenSummary
    latency: LatencySummary | None
    answer_seconds: float            # answering every question in batches

    def to_dict(self) -> dict:
        return {"mode": self.mode, **self.scores.to_dict(), "visual_tokens": self.visual_tokens.to_dict(),
                "latency": self.latency.to_dict() if self.latency else None,
                "answer_seconds": round(self.answer_seconds, 2)}


@dataclass
class EvalReport:
    settings: EvalSettings
    command: str
    date: str
    model: dict
    hardware: dict
    data: dict
    modes: dict[str, ModeResult]
    tesseract: dict
    blank_image: dict                # the blank-image baseline: {"ran": False} or its scores
    training_summary: Any
    questions: list[EvalQuestion] = field(repr=False)
    predictions: dict[str, list[str]] = field(repr=False)   # mode (or "blank_image") -> answer per question
    files: list[Path] = field(default_factory=list)
    ablations: dict[str, dict] = field(default_factory=dict, repr=False)   # name -> the loaded ablation JSON
    # the model's reading head on the same rows (``reading_head.reading_head_on_rows``), or why not
    reading_head: dict = field(default_factory=lambda: {"ran": False, "note": "not measured"})

    def to_dict(self) -> dict:
        """Everything but the per-question answers (those go to predictions.jsonl), JSON-ready.

        ``targets`` are the issue #7 targets measured from this report and the loaded ablations;
        ``ablations`` maps each ablation name to the file it was read from.
        """
        settings = settings_dict(self.settings)
        out = {"command": self.command, "date": self.date, "settings": settings, "model": self.model,
               "hardware": self.hardware, "data": self.data,
               "modes": {mode: result.to_dict() for mode, result in self.modes.items()},
               "tesseract": self.tesseract, "blank_image": self.blank_image, "reading_head": self.reading_head,
               "training_summary": self.training_summary}     # the training-time target reads it
        out["targets"] = [row.to_dict() for row in target_rows(out, self.ablations)]
        out["ablations"] = {name: str(path) for name, path in
                            parse_ablations(self.settings.ablations, must_exist=False).items()}
        return {**out, "files": [str(p) for p in self.files]}

    def prediction_records(self) -> list[dict]:
        """One record per (mode, question): the question, the exact answer and the model's."""
        return [{"mode": mode, "id": q.row_id, "kind": q.kind, "task": q.task, "question": q.question,
                 "answer": q.answer, "prediction": answers[i],
                 "exam_source": q.exam_item.source if q.exam_item else None}
                for mode, answers in self.predictions.items() for i, q in enumerate(self.questions)]


def resolve_model_dir(model: str | None) -> Path:
    """The checkpoint folder, or an EvalInputError that says what is missing."""
    try:
        return check_checkpoint_dir(model)
    except (FileNotFoundError, ValueError) as exc:
        raise EvalInputError(str(exc)) from None


def check_device(device: str | None) -> None:
    """An EvalInputError for a device string torch does not know or a device this machine does not have."""
    if device is None:
        return
    try:
        kind = torch.device(device).type
    except RuntimeError as exc:
        raise EvalInputError(f"--device {device!r} is not a torch device ({exc})") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise EvalInputError(f"--device {device!r}: no CUDA GPU is available here; leave --device out to use the CPU")


def default_out_dir(model_dir: Path) -> Path:
    """``eval_results/<model folder name>``: never inside the checkpoint (it may be the installed bundled model)."""
    return DEFAULT_OUT_ROOT / model_dir.name


def prepare_out_dir(out: Path) -> None:
    """Create ``out`` (files in it are replaced), or an EvalInputError when it cannot be a folder."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:   # a file in the way, no permission …
        raise EvalInputError(f"cannot use {out} as the output folder: {exc}") from None


def evaluate_mode(vlm: KoHyperVL, data: EvalData, images: LazyImages, mode: str, settings: EvalSettings,
                  progress: bool, asked: list[str] | None = None) -> tuple[ModeResult, list[str]]:
    """One mode: decisions for every image, batched answers, scores, single-call latency (``asked``: the questions
    as ``asked_questions`` gives them, shared by the modes)."""
    decisions = decide_all(vlm, images, mode, settings.batch_size)
    started = time.perf_counter()
    answers = generate_answers(vlm, images, data.questions, decisions, settings.max_new_tokens, settings.batch_size,
                               desc=f"answering ({mode})", progress=progress, asked=asked)
    seconds = time.perf_counter() - started
    latency = measure_latency(vlm, images, data.questions, mode, settings.latency_samples, settings.max_new_tokens,
                              progress)
    result = ModeResult(mode, score_answers(data.questions, answers), summarize_visual_tokens(decisions), latency,
                        seconds)
    log.info("%s: exact match %.1f%% over %d questions in %.1f s", mode, 100 * result.scores.exact_match.accuracy,
             result.scores.exact_match.n, seconds)
    return result, answers


def evaluate_blank_image(vlm: KoHyperVL, data: EvalData, images: LazyImages, settings: EvalSettings,
                         progress: bool, asked: list[str] | None = None) -> tuple[dict, list[str]]:
    """The blank-image baseline: high mode, every image replaced by ``blank_like`` it."""
    blanks = LazyImages(data.dataset, lambda image: blank_like(vlm.image_processor.load(image)))
    decisions = decide_all(vlm, blanks, BLANK_IMAGE_MODE, settings.batch_size)
    answers = generate_answers(vlm, blanks, data.questions, decisions, settings.max_new_tokens, settings.batch_size,
                               desc="answering (blank image)", progress=progress)
    scores = score_answers(data.questions, answers)
    log.info("blank image: exact match %.1f%%", 100 * scores.exact_match.accuracy)
    # the same tiles for both (in high mode they do not depend on the content), so only the content differs
    seen = answer_losses(vlm, images, data.questions, decisions, settings.batch_size, desc="answer loss (images)",
                         progress=progress, asked=asked)
    unseen = answer_losses(vlm, blanks, data.questions, decisions, settings.batch_size,
                           desc="answer loss (blank images)", progress=progress)
    use = image_use_by_kind(data.questions, seen, unseen)
    log.info("the images save %.3f ± %.3f (2 SE) nats per answer token", use["all"].gain, 2 * use["all"].gain_se)
    return {"ran": True, "mode": BLANK_IMAGE_MODE, **scores.to_dict(),
            "answer_loss": {kind: result.to_dict() for kind, result in use.items()}}, answers


def run_evaluation(settings: EvalSettings, progress: bool = True) -> EvalReport:
    """Evaluate the checkpoint of ``settings`` in each mode; nothing is written (see ``evaluate``)."""
    model_dir = resolve_model_dir(settings.model)
    ablations = load_ablations(parse_ablations(settings.ablations))   # bad files fail before the long run
    data = load_eval_data(settings.data, settings.kinds, settings.num, settings.seed, progress, settings.split)
    torch.manual_seed(settings.seed)
    vlm = KoHyperVL.load(model_dir, device=settings.device)
    images = LazyImages(data.dataset, vlm.image_processor.load)
    asked = asked_questions(vlm, images, data.questions, progress)   # read once, for every mode
    results, predictions = {}, {}
    for mode in settings.modes:
        results[mode], predictions[mode] = evaluate_mode(vlm, data, images, mode, settings, progress, asked)
    blank = {"ran": False}
    if settings.blank_image:
        blank, predictions[BLANK_IMAGE] = evaluate_blank_image(vlm, data, images, settings, progress, asked)
        if seen := predictions.get(BLANK_IMAGE_MODE):   # how many answers the image did not change at all
            blank["same_answers"] = sum(a == b for a, b in zip(seen, predictions[BLANK_IMAGE]))
    return EvalReport(
        settings=settings, command=settings_command(settings),
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        model=checkpoint_summary(vlm.model, vlm.processor, model_dir), hardware=hardware_summary(vlm.model.device),
        data={"origin": data.origin, "split": settings.split, "rows": len(data.images),
              "questions": len(data.questions), "rows_per_kind": data.rows_per_kind()},
        modes=results, tesseract=tesseract_on_rows(data, settings.tesseract, progress), blank_image=blank,
        training_summary=read_training_summary(model_dir), questions=data.questions, predictions=predictions,
        ablations=ablations, reading_head=reading_head_on_rows(vlm, data, settings.tesseract))


def evaluate(settings: EvalSettings | None = None, progress: bool = True) -> EvalReport:
    """Evaluate a checkpoint and write its model card, eval.json, predictions.jsonl and plots to ``settings.out``."""
    from .card import write_eval_outputs

    settings = settings or EvalSettings()
    model_dir = resolve_model_dir(settings.model)
    out = settings.out if settings.out is not None else default_out_dir(model_dir)
    prepare_out_dir(out)   # before the long run, not after it
    report = run_evaluation(settings, progress)
    report.files = write_eval_outputs(report, out)
    return report
