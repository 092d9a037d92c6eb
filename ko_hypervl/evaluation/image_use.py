"""How much the model's answers depend on the image: the loss of each exact answer with its image and with a
white one of the same size.

Why: exact match stays at its floor long after a model has started to look at the image, so it cannot tell
a model that ignores the image from one that has begun to use it. Teacher-forced, the loss of the exact
answer moves as soon as the image tells the model anything about it. The blank image gives the same tiles
and visual tokens, so the gap, in nats per answer token, is what the model takes from the image's content.

``ko-hypervl model image-use`` puts checkpoints side by side (say, each stage's final one): that gap per
mode and kind, and the visual tokens' size and spread, which show where a run's encoder or projector
collapsed to one output whatever the image.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..imagecorpus.records import KINDS, QA, conversation
from ..inference import MODES, KoHyperVL, VRCDecision
from ..settings import setting, settings_dict
from ..training.data import ConversationEncoder, collate
from ..training.losses import gather_target_logits, next_token_targets, predicting_positions
from ..training.stages import visual_spread
from .data import EvalQuestion, LazyImages, load_eval_data
from .errors import EvalInputError, checkpoint_list
from .generate import asked_questions, batches_by_size, decide_all

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnswerLoss:
    """The summed loss of one exact answer (its end-of-turn token included) and its token count."""

    nats: float
    tokens: int


@torch.inference_mode()
def answer_losses(vlm: KoHyperVL, images: Sequence, questions: list[EvalQuestion], decisions: list[VRCDecision],
                  batch_size: int, desc: str = "answer loss", progress: bool = True,
                  asked: list[str] | None = None) -> list[AnswerLoss]:
    """Teacher-forced loss of every question's exact answer, each asked alone about its image as in ``ask``."""
    from tqdm.auto import tqdm

    encoder = ConversationEncoder(vlm.processor, vlm.model.config.text_config.max_position_embeddings)
    pad_id = vlm.processor.tokenizer.pad_token_id
    device = vlm.model.device
    asked = asked or asked_questions(vlm, images, questions, progress)
    losses: list[AnswerLoss | None] = [None] * len(questions)
    with tqdm(total=len(questions), desc=desc, unit="q", disable=not progress) as bar:
        for branch in sorted({d.branch for d in decisions}):
            # one branch per forward pass; the other questions are dropped from this branch's batches
            keep = [i for i, q in enumerate(questions) if decisions[q.image_index].branch == branch]
            kept_questions = [questions[i] for i in keep]
            for batch in batches_by_size(kept_questions, decisions, batch_size):
                picked = [keep[i] for i in batch]
                samples = [encoder.encode(images[questions[i].image_index],
                                          conversation([QA(asked[i], questions[i].answer,
                                                           questions[i].task)]),
                                          branch, decisions[questions[i].image_index].scale, questions[i].row_id)
                           for i in picked]
                for i, loss in zip(picked, _batch_losses(vlm.model, collate(samples, pad_id), branch, device)):
                    losses[i] = loss
                bar.update(len(picked))
    return losses


def _batch_losses(model, inputs: dict, branch: str, device) -> list[AnswerLoss]:
    labels = inputs["labels"].to(device)
    positions = predicting_positions(labels)
    out = model(input_ids=inputs["input_ids"].to(device), attention_mask=inputs["attention_mask"].to(device),
                pixel_values=inputs["pixel_values"].to(device), image_grid=inputs["image_grid"].to(device),
                branch=branch, logits_to_keep=positions)
    # the target tokens as training gathers them, row after row, so each row's are the next ``counts[row]``
    logits, targets = gather_target_logits(out.logits, labels, positions)
    nats = nn.functional.cross_entropy(logits.float(), targets, reduction="none")
    counts = next_token_targets(labels).sum(dim=1).tolist()
    return [AnswerLoss(float(row.sum()), len(row)) for row in nats.split(counts)]


@dataclass(frozen=True)
class ImageUse:
    """Answer loss with the images and with blank ones, in nats per answer token, over ``n`` questions.

    ``gain`` is how many nats per token the images save (positive: the model uses them); ``gain_se`` is its
    standard error from the questions' paired differences, so a gain within 2 SE of 0 is not evidence of use.
    """

    n: int
    tokens: int
    seen: float
    blank: float
    gain: float
    gain_se: float

    def to_dict(self) -> dict:
        return {"n": self.n, "tokens": self.tokens, "nats_per_token_seen": round(self.seen, 4),
                "nats_per_token_blank": round(self.blank, 4), "gain": round(self.gain, 4),
                "gain_se": round(self.gain_se, 4)}


def image_use(seen: list[AnswerLoss], blank: list[AnswerLoss]) -> ImageUse:
    """Pool paired answer losses (question ``i`` with its image and blank) into nats per answer token.

    The gain is a ratio of sums (every token weighs the same); its standard error is the delta method's over
    questions: the spread of each question's gain in nats, scaled by the mean tokens per question.
    """
    if len(seen) != len(blank) or not seen:
        raise ValueError(f"need the same questions, at least one, with and without the image "
                         f"(got {len(seen)} and {len(blank)})")
    if any(a.tokens != b.tokens for a, b in zip(seen, blank)):
        raise ValueError("an answer has a different number of tokens with the blank image")
    n = len(seen)
    tokens = sum(a.tokens for a in seen)
    differences = [b.nats - a.nats for a, b in zip(seen, blank)]
    gain = sum(differences) / tokens
    # residuals of each question's saving from the pooled rate: the delta-method variance of a ratio of sums
    residuals = [d - gain * a.tokens for d, a in zip(differences, seen)]
    variance = sum(r * r for r in residuals) / (n - 1) if n > 1 else math.nan
    gain_se = math.sqrt(variance / n) / (tokens / n) if n > 1 else math.nan
    return ImageUse(n, tokens, sum(a.nats for a in seen) / tokens, sum(b.nats for b in blank) / tokens, gain, gain_se)


def image_use_by_kind(questions: list[EvalQuestion], seen: list[AnswerLoss],
                      blank: list[AnswerLoss]) -> dict[str, ImageUse]:
    """``image_use`` over all questions (key ``all``) and over each kind's."""
    out = {"all": image_use(seen, blank)}
    for kind in sorted({q.kind for q in questions}):
        rows = [i for i, q in enumerate(questions) if q.kind == kind]
        out[kind] = image_use([seen[i] for i in rows], [blank[i] for i in rows])
    return out


@dataclass(frozen=True)
class VisualTokenStats:
    """The visual tokens the LM gets: their mean norm, ``within`` (the spread of one image's tokens, averaged
    over images) and ``between`` (the spread of the images' mean tokens). Spread is the training log's
    ``visual_spread``: about 1 for unrelated vectors, near 0 when every image gives the same tokens."""

    norm: float
    within: float
    between: float

    def to_dict(self) -> dict:
        return {"norm": round(self.norm, 4), "within": round(self.within, 4), "between": round(self.between, 4)}


@torch.no_grad()
def visual_token_stats(vlm: KoHyperVL, images: Sequence, decisions: list[VRCDecision]) -> VisualTokenStats:
    """``VisualTokenStats`` of ``images``, each encoded with its decision's branch and scale (at least two images)."""
    if len(images) < 2:
        raise ValueError("the spread between images needs at least two images")
    per_image = []
    for image, decision in zip(images, decisions):
        inputs = vlm.image_processor([image], branch=decision.branch, scales=[decision.scale])
        per_image.append(vlm.model.get_image_features(inputs["pixel_values"].to(vlm.model.device),
                                                      branch=decision.branch).float())
    norm = float(torch.cat(per_image).norm(dim=-1).mean())
    within = sum(visual_spread(tokens) for tokens in per_image) / len(per_image)
    between = visual_spread(torch.stack([tokens.mean(dim=0) for tokens in per_image]))
    return VisualTokenStats(norm, within, between)


def blank_like(image):
    """A white image of ``image``'s size: the same tiles and visual tokens, nothing to read."""
    from PIL import Image

    return Image.new("RGB", image.size, "white")


@dataclass
class ImageUseSettings:
    models: list[str] = setting(help="checkpoint directories to compare, e.g. each stage's final checkpoint")
    num: int = setting(25, help="held-out test rows per kind (the rows `ko-hypervl eval` uses)")
    kinds: list[str] | None = setting(None, help="only rows of these kinds (default: all)", choices=KINDS)
    modes: list[str] = setting(["high", "low"], help="modes to measure (each mode's branch and scale, chosen for "
                                                    "the real image, are used for its blank twin too)",
                               choices=MODES)
    batch_size: int = setting(8, help="questions per forward pass")
    seed: int = setting(0, help="seed of the rendered rows (as `ko-hypervl eval --seed`)")
    device: str | None = setting(None, help="torch device, e.g. cuda (default: cpu)")
    json_out: Path | None = setting(None, help="also write the rows and these settings to this JSON file")
    progress: bool = setting(True, help="show progress bars")

    def __post_init__(self) -> None:
        from .run import check_device

        self.models = checkpoint_list(self.models)
        if self.num < 1 or self.batch_size < 1:
            raise EvalInputError(f"--num and --batch-size must be at least 1, got {self.num} and {self.batch_size}")
        unknown = [m for m in self.modes if m not in MODES]
        if not self.modes or unknown:
            raise EvalInputError(f"--modes must name some of {', '.join(MODES)}, got {', '.join(self.modes) or 'none'}")
        self.modes = list(dict.fromkeys(self.modes))
        check_device(self.device)
        self.json_out = Path(self.json_out) if self.json_out is not None else None


def measure_image_use(settings: ImageUseSettings) -> tuple[list[dict], str]:
    """Every checkpoint, every mode: what the images save and what the visual tokens look like.

    Returns ``(rows, markdown table)``, one row per (model, mode) in the given order.
    """
    from .run import resolve_model_dir

    directories = [resolve_model_dir(m) for m in settings.models]   # every path checked before any work
    data = load_eval_data(None, settings.kinds, settings.num, settings.seed, settings.progress)
    rows = []
    for name, directory in zip(settings.models, directories):
        vlm = KoHyperVL.load(directory, device=settings.device)
        images = LazyImages(data.dataset, vlm.image_processor.load)
        blanks = LazyImages(data.dataset, lambda image: blank_like(vlm.image_processor.load(image)))
        for mode in settings.modes:
            decisions = decide_all(vlm, images, mode, settings.batch_size)
            seen = answer_losses(vlm, images, data.questions, decisions, settings.batch_size,
                                 desc=f"{name} {mode}: images", progress=settings.progress)
            unseen = answer_losses(vlm, blanks, data.questions, decisions, settings.batch_size,
                                   desc=f"{name} {mode}: blank images", progress=settings.progress)
            use = image_use_by_kind(data.questions, seen, unseen)
            rows.append({"model": name, "path": str(directory), "mode": mode,
                         "branches": sorted({d.branch for d in decisions}),
                         "visual_tokens": visual_token_stats(vlm, images, decisions).to_dict(),
                         "answer_loss": {kind: result.to_dict() for kind, result in use.items()}})
            log.info("%s %s: the images save %.3f ± %.3f nats per answer token", name, mode, use["all"].gain,
                     2 * use["all"].gain_se)
        del vlm
    if settings.json_out is not None:
        settings.json_out.parent.mkdir(parents=True, exist_ok=True)
        record = {"settings": settings_dict(settings), "rows": rows}
        settings.json_out.write_text(json.dumps(record, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return rows, format_image_use(rows)


def _saved(use: dict | None) -> str:
    return "—" if use is None else f"{use['gain']:+.3f} ± {2 * use['gain_se']:.3f}"


def format_image_use(rows: list[dict]) -> str:
    """The rows as a Markdown table: visual tokens, answer loss with and without the images, saving per kind."""
    kinds = sorted({kind for row in rows for kind in row["answer_loss"] if kind != "all"})
    lines = ["| model | mode | token norm | spread within an image | spread between images | nats/token "
             "| blank | saved (± 2 SE) | " + " | ".join(kinds) + " |",
             "|---|---|" + "---:|" * (6 + len(kinds))]
    for row in rows:
        tokens, use = row["visual_tokens"], row["answer_loss"]
        lines.append(f"| {row['model']} | {row['mode']} | {tokens['norm']:.3g} | {tokens['within']:.3f} | "
                     f"{tokens['between']:.3f} | {use['all']['nats_per_token_seen']:.3f} | "
                     f"{use['all']['nats_per_token_blank']:.3f} | {_saved(use['all'])} | "
                     + " | ".join(_saved(use.get(kind)) for kind in kinds) + " |")
    return "\n".join(lines)
