"""Reading pretraining of the vision encoders: a CTC head over each encoder's patches learns to transcribe.

Why: the VLM stages teach reading only through the LM, one answer token at a time, and from-scratch
encoders never got there on the CPU budget (the bundled model's answers are the same with a blank image).
A linear CTC head on the patch features gives every patch a direct reading target, as OCR models (CRNN)
are trained. Korean is read in jamo (Unicode NFD): about 70 letters instead of thousands of syllables,
so each letter is seen far more often. The final checkpoint holds the VLM with its encoders updated and
keeps one head, the large branch's (else the only one trained), as ``reading_head`` with its vocabulary
(``ko_hypervl.model.reading``); each head's character error rate on held-out lines is in the stage history.

The patches are read in one of two orders (tiles stitched back into the image's patch grid; the global
thumbnail is not read). ``rows``: the whole grid row by row, so text of any number of lines is read top
to bottom, left to right; but a letter can then be emitted by any of the thousands of patches of the
page, and CTC learns slowly where the letters are. ``columns``: the grid's columns, each patch column's
features max-pooled over the height (as CRNN reads a line), so only single-line transcriptions are used
and a letter can only be emitted by the few columns it spans. Each patch
emits ``positions_per_patch`` CTC positions: the corpus's handwritten lines hold about 1.5 jamo per
14-px patch column of the image's width (more where the text is), and CTC cannot align more letters
than it has positions where the letters are, so with one position per patch the head would have to put
letters on patches that do not show them (docs/ablations/reading_pretraining.md: with 4 positions the
loss falls 0.5 nats per letter lower in the same 1,500 steps).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..imagecorpus.records import transcriptions
from ..imagecorpus.tesseract import character_error_rate
from ..model.reading import (BLANK, READING_ORDERS, ReadingHeadSpec, ReadingVocab, check_reading_order,  # noqa: F401
                             compose, encoder_digest, patch_sequence, read_log_probs, reading_units)
from ..settings import setting, settings_dict
from .stages import BRANCH_CHOICES, BRANCH_MODULES, Stage, branch_names

log = logging.getLogger(__name__)


@dataclass
class ReadSettings:
    init: Path = setting(help="checkpoint whose vision encoders learn to read (e.g. `ko-hypervl model init`'s)")
    data: Path = setting(help="image-text dataset folder (`ko-hypervl corpora build`); rows with a transcription")
    split: str = setting("train", help="split of the dataset to train on")
    eval_split: str = setting("validation", help="split whose transcriptions the head is scored on at the end")
    eval_rows: int = setting(100, help="held-out images scored at the end (character error rate; 0: none)")
    kinds: list[str] = setting([], help="only these kinds (default: every kind with a transcription turn)")
    branches: str = setting("both", help="vision branches that learn to read: large, small or both",
                            choices=BRANCH_CHOICES)
    positions_per_patch: int = setting(4, help="CTC positions each patch emits (letters it can read); "
                                               "Korean handwriting packs more than one jamo into a patch")
    blank_prior: float = setting(0.0, help="the new head's starting probability of blank at every position "
                                           "(0: a uniform head; e.g. 0.95, since most positions show no letter)")
    order: str = setting("rows", help="rows: the patch grid row by row (text of any number of lines); "
                                      "columns: each patch column pooled over the height (single lines only, "
                                      "the other rows are skipped)", choices=READING_ORDERS)

    def __post_init__(self) -> None:
        branch_names(self.branches)
        if self.positions_per_patch < 1:
            raise ValueError("--positions-per-patch must be at least 1")
        check_blank_prior(self.blank_prior)
        check_reading_order(self.order)
        if self.eval_rows < 0:
            raise ValueError("--eval-rows cannot be negative")

    @property
    def single_lines(self) -> bool:
        """Whether only single-line transcriptions can be read (a column is pooled over the whole height)."""
        return self.order == "columns"


def check_blank_prior(prior: float, flag: str = "--blank-prior") -> None:
    if not 0 <= prior < 1:
        raise ValueError(f"{flag} must be in [0, 1), got {prior}")


def blank_logit(prior: float, num_classes: int) -> float:
    """The blank's logit that gives it probability ``prior`` when every other class has logit 0."""
    return math.log(prior * (num_classes - 1) / (1 - prior))


class ReadingModel(nn.Module):
    """The VLM's encoders (shared, not copied) with one linear CTC head each, initialised from ``seed``.

    A head maps each patch to ``positions_per_patch`` consecutive CTC positions over ``num_classes``.
    """

    def __init__(self, vlm, branches: tuple[str, ...], num_classes: int, seed: int, positions_per_patch: int = 1,
                 blank_prior: float = 0.0, order: str = "rows"):
        super().__init__()
        check_reading_order(order, "order")
        self.num_classes = num_classes
        self.order = order
        self.encoders = nn.ModuleDict({b: getattr(vlm, BRANCH_MODULES[b][0]) for b in branches})
        self.heads = nn.ModuleDict({b: nn.Linear(self.encoders[b].config.hidden_size,
                                                 positions_per_patch * num_classes)
                                    for b in branches})
        generator = torch.Generator().manual_seed(seed)     # a rerun or a resume starts from the same heads
        for head in self.heads.values():
            nn.init.normal_(head.weight, std=0.02, generator=generator)
            nn.init.zeros_(head.bias)
            if blank_prior > 0:
                # Why: a uniform head spends its first hundreds of steps learning that most positions are
                # blank, at 30-60 nats per letter, and may stall there (the ablation's runs); starting each
                # position at P(blank) = blank_prior skips that phase
                with torch.no_grad():
                    head.bias.view(positions_per_patch, num_classes)[:, BLANK] = blank_logit(blank_prior,
                                                                                             num_classes)

    def forward(self, pixel_values: torch.Tensor, image_grid: torch.Tensor, branch: str) -> list[torch.Tensor]:
        """Log-probabilities (patch positions, classes) per image, from the tiles (not the thumbnails)."""
        return read_log_probs(self.encoders[branch], self.heads[branch], pixel_values, image_grid, self.order,
                              self.num_classes)

    def head_spec(self, branch: str, vocab: ReadingVocab, positions_per_patch: int,
                  cer: float | None = None) -> ReadingHeadSpec:
        """What the VLM's config records of ``branch``'s head, its encoder's digest taken now."""
        return ReadingHeadSpec(branch, tuple(vocab.units), positions_per_patch, self.order,
                               encoder_digest(self.encoders[branch]), cer)


class ReadStage(Stage):
    name = "read"

    def __init__(self, settings: ReadSettings, dataset, processor):
        self.settings = settings
        self.dataset = dataset
        self.rows = transcriptions(dataset, single_line=settings.single_lines)
        self.processor = processor
        self.vocab = ReadingVocab.from_texts(text for _, text in self.rows)
        self.branches = branch_names(settings.branches)

    def describe(self) -> dict:
        return settings_dict(self.settings) | {"rows": len(self.rows), "classes": len(self.vocab)}

    def dataset_size(self) -> int:
        return len(self.rows)

    def trainable_parameters(self, model):
        for param in model.parameters():
            param.requires_grad_(True)
        return list(model.named_parameters())

    def make_batch(self, indices, step):
        images, targets = [], []
        for index in indices:
            row_index, text = self.rows[index]
            images.append(self.dataset[row_index]["image"])
            targets.append(self.vocab.encode(text))
        batch = {}
        for branch in self.branches:
            tiles = self.processor.image_processor(images, branch=branch)
            batch[branch] = {"pixel_values": tiles["pixel_values"], "image_grid": tiles["image_grid"]}
        batch["targets"] = targets
        batch["num_targets"] = sum(len(t) for t in targets)
        # the throughput log's tokens/s counts the crops encoded here (there is no text)
        batch["num_tokens"] = sum(int(batch[b]["pixel_values"].shape[0]) for b in self.branches)
        return batch

    def loss(self, model, batch, device):
        targets = batch["targets"]
        flat = torch.tensor([c for t in targets for c in t], dtype=torch.long)
        target_lengths = torch.tensor([len(t) for t in targets], dtype=torch.long)
        total, parts = 0.0, {}
        for branch in self.branches:
            inputs = batch[branch]
            log_probs = model(inputs["pixel_values"].to(device), inputs["image_grid"], branch)
            lengths = torch.tensor([lp.shape[0] for lp in log_probs], dtype=torch.long)
            padded = nn.utils.rnn.pad_sequence(log_probs)          # (positions, images, classes)
            # zero_infinity: a line longer than its image has patches cannot be aligned; it adds nothing
            ctc = nn.functional.ctc_loss(padded, flat.to(device), lengths, target_lengths, blank=BLANK,
                                         reduction="sum", zero_infinity=True)
            parts[f"loss_{branch}"] = ctc.item()
            total = total + ctc
        parts["loss"] = float(total.detach())
        return total, parts

    def estimate_memory(self, model, trainable, micro_batch_size):
        weights = sum(p.numel() * p.element_size() for p in model.parameters())
        largest = max(self.processor.image_processor.max_tiles, 1) + 1
        activations = 0
        for encoder in model.encoders.values():
            config = encoder.config
            patches = (config.image_size // config.patch_size) ** 2
            # about 34 · hidden bytes per token per layer (as for the LM), per tile of the micro-batch
            activations += micro_batch_size * largest * patches * 34 * config.hidden_size * config.num_hidden_layers
            # the head's float32 logits, log-probabilities and both gradients: positions × classes per patch
            activations += micro_batch_size * largest * patches * self.settings.positions_per_patch * len(self.vocab) * 16
        return weights * 4 + activations


@torch.no_grad()
def reading_cer(reader: ReadingModel, processor, dataset, rows: list[tuple[int, str]], vocab: ReadingVocab,
                branch: str, progress: bool = False) -> dict:
    """Character error rate of the head's greedy reading of held-out ``rows`` ((row index, transcription))."""
    from tqdm.auto import tqdm

    was_training = reader.training
    reader.eval()
    errors, example = [], None
    device = next(reader.parameters()).device
    for row_index, text in tqdm(rows, desc=f"read CER ({branch})", disable=not progress):
        inputs = processor.image_processor([dataset[row_index]["image"]], branch=branch)
        log_probs = reader(inputs["pixel_values"].to(device), inputs["image_grid"], branch)[0]
        reading = vocab.decode_greedy(log_probs)
        reference = " ".join(text.split())
        errors.append(character_error_rate(reference, reading))
        example = example or {"reference": reference, "reading": reading}
    reader.train(was_training)
    return {"cer": round(sum(errors) / len(errors), 4) if errors else None, "rows": len(errors), "example": example}

