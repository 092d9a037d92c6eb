"""What each stage trains on and how it scores: the data, the trainable parts and the loss.

Stages are small classes with one shape (``Stage``); their settings are dataclasses whose defaults
make the stage (alignment, instruction tuning and DCL are one vision-language stage with different
defaults), so the CLI, the recipes and the tests configure them the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from ..imagecorpus.records import qa_pairs
from ..settings import setting, settings_dict
from ..tokenization.jamo import syllable_jamo_features
from .data import (
    ConversationEncoder, asked_messages, collate, pack_text_blocks, repeat_opening, select_turns,
)
from .losses import (ANSWER_WEIGHTINGS, answer_token_weights, cross_entropy_sum, distillation_kl_sum,
                     embedding_ctc_sum, gather_target_logits, gather_target_weights, jamo_residual_share,
                     predicting_positions, tile_token_sequences)
from .memory import estimate_training_bytes
from .sampling import sample_rng

log = logging.getLogger(__name__)
BRANCH_CHOICES = ("large", "small", "both")
ALIGN_TASKS = ["transcribe", "read_line", "to_table", "title"]
# turns whose answer is text shown in the image as one line, which the embedding CTC reads off the visual tokens
READ_OFF_TASKS = ["transcribe", "read_line", "title"]
# what the embedding CTC reads a visual token as: one of the answer's own tokens (morphemes, 1.85 characters each
# in the corpus's titles and lines, up to 4 syllables: more than one 32-px visual token sees), or one character's
# token (every Hangul syllable is one token of the tokenizer), the unit an encoder of tiles can see
READ_OFF_UNITS = ("token", "character")
# (encoder, projector) of each branch, by attribute name on KoHyperVLForConditionalGeneration
BRANCH_MODULES = {"large": ("vision_model", "projector"), "small": ("small_vision_model", "small_projector")}


def branch_names(choice: str) -> tuple[str, ...]:
    """The branches a ``--branches`` choice trains (``both``: large, then small)."""
    if choice not in BRANCH_CHOICES:
        raise ValueError(f"--branches must be one of {', '.join(BRANCH_CHOICES)}, got {choice!r}")
    return ("large", "small") if choice == "both" else (choice,)


def select_trainable(model, modules: list[str]) -> list[tuple[str, torch.nn.Parameter]]:
    """Freeze everything but the named top-level ``modules``; returns the trainable (name, parameter) pairs."""
    prefixes = tuple(f"{module}." for module in modules)
    chosen = []
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith(prefixes))
        if param.requires_grad:
            chosen.append((name, param))
    return chosen


class Stage:
    """The interface the loop drives."""

    name = "stage"

    def describe(self) -> dict:
        return {}

    def dataset_size(self) -> int:
        raise NotImplementedError

    def trainable_parameters(self, model) -> list[tuple[str, torch.nn.Parameter]]:
        raise NotImplementedError

    def learning_rate_scale(self, name: str) -> float:
        """Share of the schedule's learning rate that the parameter ``name`` trains at."""
        return 1.0

    def make_batch(self, indices: list[int], step: int) -> dict:
        raise NotImplementedError

    def loss(self, model, batch: dict, device) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def estimate_memory(self, model, trainable: list, micro_batch_size: int) -> int:
        raise NotImplementedError


# -- 1. language model pretraining ------------------------------------------------------------------------------

@dataclass
class LMSettings:
    init: Path = setting(help="checkpoint to start from (`ko-hypervl model init`, e.g. with --language DIR for a "
                              "user's LM; its vocabulary is moved onto our tokenizer there)")
    block_size: int = setting(512, help="tokens per training sequence (documents packed, EOS between them)")
    max_tokens: int = setting(0, help="use at most this many corpus tokens (0: the whole training split)")
    corpus: Path | None = setting(None, help="text corpus folder (default: the bundled corpora/)")
    copy_share: float = setting(0.0, help="share of the blocks whose opening (an eighth to half a block) is "
                                "written twice in a row, so the LM learns to copy from its context, which "
                                "reading text and numbers off an image needs: trained on plain text for the "
                                "tiny recipe's 100 steps it copies nothing (a repeated span costs as much the "
                                "second time; `ko-hypervl model bpc` prints this as copy gain)")
    jamo_weight: float = setting(0.0, help="weight of a loss that makes each one-syllable token's input embedding "
                                 "a sum of its jamo's (the share of their variance a linear map of initial, "
                                 "medial and final does not explain), so a projector that reads jamo can show "
                                 "the LM syllables no training image had; off by default (docs/ablations/"
                                 "copying.md §6)")
    jamo_ridge: float = setting(1.0, help="ridge of the jamo fit --jamo-weight scores against")

    def __post_init__(self) -> None:
        if not 0 <= self.copy_share <= 1:
            raise ValueError(f"--copy-share must be in [0, 1], got {self.copy_share}")
        if self.jamo_weight < 0 or self.jamo_ridge <= 0:
            raise ValueError(f"--jamo-weight must be ≥ 0 and --jamo-ridge > 0, got {self.jamo_weight} and "
                             f"{self.jamo_ridge}")


class LanguageModelStage(Stage):
    name = "lm"

    def __init__(self, settings: LMSettings, tokenizer, model_config, progress: bool = True, seed: int = 0):
        from ..textcorpus.load import load_text_corpus

        self.settings = settings
        self.seed = seed
        limit = getattr(model_config.text_config, "max_position_embeddings", None)
        if limit and settings.block_size > limit:
            raise ValueError(f"--block-size {settings.block_size} is longer than the language model's context "
                             f"({limit} tokens); lower it")
        texts = load_text_corpus(settings.corpus)["train"]["text"]
        self.blocks = pack_text_blocks(tokenizer, texts, settings.block_size, settings.max_tokens or None, progress)
        log.info("lm: %d blocks of %d tokens", len(self.blocks), settings.block_size)
        if settings.jamo_weight:      # decoding the whole vocabulary takes a third of a second: only when used
            self.syllable_ids, self.syllable_jamo = syllable_jamo_features(tokenizer)
            if len(self.syllable_ids) <= self.syllable_jamo.shape[1]:
                raise ValueError(f"--jamo-weight: the tokenizer has {len(self.syllable_ids)} one-syllable tokens, "
                                 f"too few to fit their embeddings from {self.syllable_jamo.shape[1]} jamo features")

    def describe(self) -> dict:
        return {"block_size": self.settings.block_size, "max_tokens": self.settings.max_tokens,
                "blocks": len(self.blocks), "copy_share": self.settings.copy_share,
                "jamo_weight": self.settings.jamo_weight, "jamo_ridge": self.settings.jamo_ridge}

    def dataset_size(self) -> int:
        return len(self.blocks)

    def trainable_parameters(self, model):
        return select_trainable(model, ["language_model"])

    def make_batch(self, indices, step):
        ids = self.blocks[indices]
        if self.settings.copy_share:
            ids = torch.stack([self._maybe_repeated(block, step, index) for block, index in zip(ids, indices)])
        return {"input_ids": ids, "num_targets": ids.numel() - ids.shape[0], "num_tokens": ids.numel()}

    def _maybe_repeated(self, block: torch.Tensor, step: int, index: int) -> torch.Tensor:
        rng = sample_rng(self.seed, step, index)
        if rng.random() >= self.settings.copy_share:
            return block
        size = block.shape[-1]
        return repeat_opening(block, rng.randint(max(1, size // 8), size // 2))

    def loss(self, model, batch, device):
        ids = batch["input_ids"].to(device)
        logits = model(input_ids=ids).logits
        loss = cross_entropy_sum(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
        parts = {"loss": loss.item()}
        if self.settings.jamo_weight:
            embeddings = model.get_input_embeddings().weight[self.syllable_ids.to(device)]
            share = jamo_residual_share(embeddings, self.syllable_jamo, self.settings.jamo_ridge)
            # the loop divides the summed loss by the step's target tokens: scale by this micro-batch's so the
            # step's total is jamo_weight · share whatever the batch and accumulation
            loss = loss + self.settings.jamo_weight * share * batch["num_targets"]
            parts["jamo_residual"] = share.item() * batch["num_targets"]   # the loop reports it per target token
        return loss, parts

    def estimate_memory(self, model, trainable, micro_batch_size):
        return estimate_training_bytes(model, trainable, micro_batch_size, self.settings.block_size,
                                       self.settings.block_size)


# -- 2-4. alignment, instruction tuning, dual consistency learning ------------------------------------------------

@dataclass
class VisionLanguageSettings:
    init: Path = setting(help="checkpoint to start from (the previous stage's final model)")
    data: Path = setting(help="image-text dataset folder (`ko-hypervl corpora images build`)")
    split: str = setting("train", help="split of the dataset to train on")
    kinds: list[str] = setting([], help="only these kinds (charts, exams, ocr, tables; default all)")
    tasks: list[str] = setting([], help="only turns of these tasks (default all)")
    branches: str = setting("large", help="vision branches trained: large, small or both", choices=BRANCH_CHOICES)
    small_weight: float = setting(1.0, help="weight of the small branch's cross-entropy")
    kl_weight: float = setting(0.0, help="weight of the KL pulling the small branch toward the large (DCL)")
    temperature: float = setting(2.0, help="softmax temperature of the DCL KL")
    train_vision: bool = setting(True, help="train the vision encoders of the branches used")
    train_projector: bool = setting(True, help="train the projectors of the branches used")
    train_lm: bool = setting(True, help="train the language model")
    vision_lr_scale: float = setting(1.0, help="the vision encoders' learning rate as a share of --learning-rate: "
                                     "below 1 keeps a pretrained (or already reading) encoder from drifting or "
                                     "collapsing while the projector and LM adapt")
    max_length: int = setting(2048, help="longest training sequence in tokens (later turns are dropped to fit)")
    scales: list[float] = setting([0.5, 0.625, 0.75, 0.875], help="VRC scales sampled for training images, so "
                                  "the model answers at the scales the VRC may choose")
    scale_prob: float = setting(0.5, help="share of samples shown at one of --scales instead of full resolution")
    answer_weighting: str = setting("token", help="weight of an answer's tokens in the loss: token (each the same) "
                                    "or sqrt (1/√ of the answer's length, so long tables and transcriptions do not "
                                    "drown the short answers)", choices=ANSWER_WEIGHTINGS)
    embedding_ctc_weight: float = setting(0.0, help="weight of a CTC loss that reads each image's one-line text "
                                          "answer (--embedding-ctc-tasks) off its visual tokens, scored by cosine "
                                          "against the LM's input embeddings of the text's tokens: it puts the "
                                          "visual tokens where the LM's embeddings of the text they show are, which "
                                          "an LM that copies can copy (docs/ablations/copying.md); 0: off")
    embedding_ctc_tasks: list[str] = setting(READ_OFF_TASKS, help="turns whose one-line answer the embedding CTC "
                                             "reads off the image (the first such turn of each image)")
    embedding_ctc_unit: str = setting("token", help="what the embedding CTC reads each visual token as: token (the "
                                      "answer's own tokens) or character (each character's token, spaces "
                                      "dropped)", choices=READ_OFF_UNITS)

    def __post_init__(self) -> None:
        branch_names(self.branches)
        if self.embedding_ctc_weight < 0:
            raise ValueError(f"--embedding-ctc-weight must be ≥ 0, got {self.embedding_ctc_weight}")
        if self.embedding_ctc_weight and not self.embedding_ctc_tasks:
            raise ValueError("--embedding-ctc-weight needs at least one task in --embedding-ctc-tasks")
        if self.embedding_ctc_unit not in READ_OFF_UNITS:
            raise ValueError(f"--embedding-ctc-unit must be one of {', '.join(READ_OFF_UNITS)}, "
                             f"got {self.embedding_ctc_unit!r}")
        if self.answer_weighting not in ANSWER_WEIGHTINGS:
            raise ValueError(f"--answer-weighting must be one of {', '.join(ANSWER_WEIGHTINGS)}, "
                             f"got {self.answer_weighting!r}")
        if self.kl_weight and self.branches != "both":
            raise ValueError("--kl-weight (DCL) needs --branches both: the KL compares the two branches")
        if self.kl_weight < 0 or self.small_weight < 0 or self.temperature <= 0:
            raise ValueError("--kl-weight and --small-weight must be ≥ 0 and --temperature > 0")
        if not 0 <= self.scale_prob <= 1 or any(not 0 < s <= 1 for s in self.scales):
            raise ValueError("--scale-prob must be in [0, 1] and every --scales value in (0, 1]")
        if not 0 < self.vision_lr_scale <= 1:
            raise ValueError(f"--vision-lr-scale must be in (0, 1], got {self.vision_lr_scale}; "
                             "to freeze the encoders use --no-train-vision")
        if not (self.train_vision or self.train_projector or self.train_lm):
            raise ValueError("nothing to train: enable at least one of --train-vision, --train-projector, --train-lm")


@dataclass
class AlignSettings(VisionLanguageSettings):
    tasks: list[str] = setting(ALIGN_TASKS, help="only turns of these tasks (reading text, chart-to-table)")
    branches: str = setting("both", help="vision branches trained: large, small or both", choices=BRANCH_CHOICES)
    train_lm: bool = setting(False, help="train the language model (alignment keeps it frozen)")


@dataclass
class SFTSettings(VisionLanguageSettings):
    pass


@dataclass
class DCLSettings(VisionLanguageSettings):
    branches: str = setting("both", help="vision branches trained: large, small or both", choices=BRANCH_CHOICES)
    kl_weight: float = setting(1.0, help="weight of the KL pulling the small branch toward the large (DCL)")


# visual tokens whose spread falls below this are (nearly) one vector: the image no longer reaches the LM
COLLAPSED_SPREAD = 0.05
# ...for this many micro-batches in a row: one batch of near-blank images dips below it and recovers (the tiny
# recipe's align stage did at step 9 with the encoders at 0.1× rate), a collapse stays there
COLLAPSE_PATIENCE = 8


@torch.no_grad()
def visual_spread(features: torch.Tensor) -> float:
    """How different a batch's visual tokens (tokens, hidden) are: mean distance to their mean over mean norm.

    About 1 for unrelated vectors and 0 when the encoder or projector has collapsed to one output whatever
    the image (a failure that leaves the loss looking healthy: the LM answers from the question alone).
    """
    features = features.float()
    norm = features.norm(dim=-1).mean()
    if norm == 0:
        return 0.0
    return float((features - features.mean(dim=0)).norm(dim=-1).mean() / norm)


def conversation_rows(dataset, tasks: list[str]) -> list[tuple[int, list[dict]]]:
    """(row index, conversation) for every row with at least one turn of ``tasks``; images stay undecoded."""
    keep = set(tasks) or None
    columns = dataset.select_columns(["messages", "tasks"])
    rows = []
    for index, row in enumerate(columns):
        messages = select_turns(row["messages"], row["tasks"], keep)
        if messages:
            rows.append((index, messages))
    return rows


class VisionLanguageStage(Stage):
    """Image conversations, loss on the answers only; one or both branches, optionally with the DCL KL."""

    def __init__(self, name: str, settings: VisionLanguageSettings, dataset, processor, seed: int):
        self.name = name
        self.settings = settings
        self.dataset = dataset
        self.rows = conversation_rows(dataset, settings.tasks)
        self.encoder = ConversationEncoder(processor, settings.max_length)
        self.pad_id = processor.tokenizer.pad_token_id
        self.seed = seed
        self.branches = branch_names(settings.branches)
        self.collapse_warned: set[str] = set()
        self.collapsed_run: dict[str, int] = {}   # per branch: micro-batches in a row below the line

    def describe(self) -> dict:
        return settings_dict(self.settings) | {"rows": len(self.rows)}

    def dataset_size(self) -> int:
        return len(self.rows)

    def trainable_parameters(self, model):
        # the copy head (where the model has one) is part of the LM's next-token distribution
        modules = ["language_model", "copy_head"] if self.settings.train_lm else []
        for branch in self.branches:
            encoder, projector = BRANCH_MODULES[branch]
            modules += [encoder] * self.settings.train_vision + [projector] * self.settings.train_projector
        return select_trainable(model, modules)

    def learning_rate_scale(self, name: str) -> float:
        encoders = tuple(f"{BRANCH_MODULES[branch][0]}." for branch in self.branches)
        return self.settings.vision_lr_scale if name.startswith(encoders) else 1.0

    def scale_for(self, step: int, index: int) -> float:
        rng = sample_rng(self.seed, step, index)
        if self.settings.scales and rng.random() < self.settings.scale_prob:
            return rng.choice(self.settings.scales)
        return 1.0

    def make_batch(self, indices, step):
        per_branch: dict[str, list] = {b: [] for b in self.branches}
        read_off: list[list[int]] = []
        for index in indices:
            row_index, messages = self.rows[index]
            row = self.dataset[row_index]
            messages = asked_messages(row, messages)
            if self.settings.embedding_ctc_weight:
                read_off.append(self.read_off_target(row))
            scale = self.scale_for(step, index)
            encoded = self.encoder.encode_variants(row["image"], messages, [(b, scale) for b in self.branches],
                                                   row.get("id", "?"))
            for branch, sample in zip(self.branches, encoded):
                per_branch[branch].append(sample)
        batch = {branch: collate(samples, self.pad_id) for branch, samples in per_branch.items()}
        first = batch[self.branches[0]]
        batch["num_targets"] = int((first["labels"][:, 1:] != -100).sum())
        batch["target_weight"] = float(answer_token_weights(first["labels"], self.settings.answer_weighting).sum())
        batch["num_tokens"] = sum(int(b["attention_mask"].sum()) for b in batch.values() if isinstance(b, dict))
        if self.settings.embedding_ctc_weight:
            batch["read_off"] = read_off
        return batch

    def read_off_target(self, row: dict) -> list[int]:
        """Token ids of the row's first one-line answer of an ``embedding_ctc_tasks`` turn ([] when it has none), as
        its tokens or its characters' (``embedding_ctc_unit``); any turn of the row counts, kept by ``tasks`` or
        not: it is the same image."""
        for (_, answer), task in zip(qa_pairs(row["messages"]), row["tasks"]):
            text = answer.strip()
            if task in self.settings.embedding_ctc_tasks and text and "\n" not in text:
                if self.settings.embedding_ctc_unit == "character":
                    return [i for c in text if not c.isspace()
                            for i in self.encoder.tokenizer(c, add_special_tokens=False)["input_ids"]]
                return self.encoder.tokenizer(text, add_special_tokens=False)["input_ids"]
        return []

    def branch_logits(self, model, inputs: dict, branch: str, device):
        """(answer logits, their targets, their weights or None when all weigh 1, the visual tokens) of one
        branch's forward pass."""
        positions = predicting_positions(inputs["labels"]).to(device)
        labels = inputs["labels"].to(device)
        out = model(input_ids=inputs["input_ids"].to(device), attention_mask=inputs["attention_mask"].to(device),
                    pixel_values=inputs["pixel_values"].to(device), image_grid=inputs["image_grid"].to(device),
                    branch=branch, logits_to_keep=positions)
        logits, targets = gather_target_logits(out.logits, labels, positions)
        weights = None
        if self.settings.answer_weighting != "token":
            weights = gather_target_weights(answer_token_weights(labels, self.settings.answer_weighting), labels,
                                            positions)
        return logits, targets, weights, out.image_hidden_states

    def loss(self, model, batch, device):
        logits = {}
        parts: dict[str, float] = {}
        total = 0.0
        for branch in self.branches:
            logits[branch], targets, weights, visual = self.branch_logits(model, batch[branch], branch, device)
            ce = cross_entropy_sum(logits[branch], targets, weights)
            parts[f"loss_{branch}"] = ce.item()
            # the loop sums parts over micro-batches and divides by the step's target weight, so a mean is logged
            # weighted by this micro-batch's
            spread = visual_spread(visual)
            parts[f"visual_spread_{branch}"] = spread * batch["target_weight"]
            self.warn_on_collapse(branch, spread)
            total = total + (self.settings.small_weight if branch == "small" else 1.0) * ce
            if self.settings.embedding_ctc_weight:
                read_off = embedding_ctc_sum(tile_token_sequences(visual, batch[branch]["image_grid"].to(device)),
                                             batch["read_off"], model.get_input_embeddings().weight)
                parts[f"loss_embed_ctc_{branch}"] = read_off.item()
                total = total + self.settings.embedding_ctc_weight * read_off
        if self.settings.kl_weight:
            kl = distillation_kl_sum(logits["small"], logits["large"], self.settings.temperature, weights)
            parts["loss_kl"] = kl.item()
            total = total + self.settings.kl_weight * kl
        parts["loss"] = float(total.detach())
        return total, parts

    def warn_on_collapse(self, branch: str, spread: float) -> None:
        """Say once per branch when its visual tokens stay (nearly) one vector for ``COLLAPSE_PATIENCE``
        micro-batches in a row, with the remedy this stage has not tried yet."""
        self.collapsed_run[branch] = self.collapsed_run.get(branch, 0) + 1 if spread < COLLAPSED_SPREAD else 0
        if self.collapsed_run[branch] < COLLAPSE_PATIENCE or branch in self.collapse_warned:
            return
        self.collapse_warned.add(branch)
        if not self.settings.train_vision:
            remedy = "the encoders are frozen, so look at the projector's learning rate (--learning-rate)"
        elif self.settings.vision_lr_scale > 0.1:
            remedy = "train the encoders slower (--vision-lr-scale 0.1) or freeze them (--no-train-vision)"
        else:
            remedy = (f"the encoders already train at {self.settings.vision_lr_scale:g}× the rate: freeze them "
                      "(--no-train-vision) or lower --learning-rate")
        log.warning("%s: the %s branch's visual tokens have collapsed (spread %.3f < %g for %d micro-batches in a "
                    "row: every token nearly the same vector), so the answers cannot depend on the image; %s",
                    self.name, branch, spread, COLLAPSED_SPREAD, COLLAPSE_PATIENCE, remedy)

    def estimate_memory(self, model, trainable, micro_batch_size):
        answer_tokens = 256   # logits are computed at answer positions only
        return len(self.branches) * estimate_training_bytes(model, trainable, micro_batch_size,
                                                            self.settings.max_length, answer_tokens)


class LoraStage(VisionLanguageStage):
    """Instruction tuning of a ``peft``-wrapped model: only the LoRA adapters train."""

    def trainable_parameters(self, model):
        return [(n, p) for n, p in model.named_parameters() if p.requires_grad]
