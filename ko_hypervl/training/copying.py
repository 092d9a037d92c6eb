"""Stage 0, copying: teach a fresh language model to look back at its context before it sees any text.

Reading an image is copying from the context (from the visual tokens), and an LM trained on text alone
does not learn it on the CPU's budget: after 3,500 text steps its second reading of a repeated span costs
only 1% less than the first (docs/ablations/copying.md). Random token spans written twice teach it, as they
teach small transformers trained from scratch, but only if the LM sees the same few tokens again and again:
over all 32k tokens, each seen a few times, it stays on the plateau. So the spans are drawn from a pool of
tokens that grows (128, then 1,024, 8,192, then the whole vocabulary); each larger pool is learnt faster
than the last. Each step scores only ``sampled_vocab`` tokens through the output embeddings (a sampled
softmax), which skips the 32k-way head that costs most of the LM's compute.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from ..settings import setting
from .memory import estimate_training_bytes
from .sampling import sample_rng
from .stages import Stage, select_trainable

log = logging.getLogger(__name__)
# spans are made from (seed, step, index) alone; the loop only needs a dataset size to draw indices from
SPAN_SLOTS = 1 << 16


@dataclass
class CopySettings:
    init: Path = setting(help="checkpoint to start from: a fresh one (`ko-hypervl model init`); an LM already "
                              "trained on text learns to copy far more slowly")
    pools: tuple[int, ...] = setting((128, 1024, 8192), help="sizes of the growing token pool the spans are drawn "
                                     "from, smallest first; after them, the whole vocabulary")
    pool_steps: tuple[int, ...] = setting((1000, 500, 600), help="steps spent on each of --pools")
    sampled_vocab: int = setting(128, help="tokens each step's spans are drawn from and scored over (0: score the "
                                           "whole vocabulary, several times slower)")
    min_span: int = setting(16, help="shortest span (it is written twice)")
    max_span: int = setting(64, help="longest span")

    def __post_init__(self) -> None:
        self.pools, self.pool_steps = tuple(self.pools), tuple(self.pool_steps)
        if len(self.pools) != len(self.pool_steps):
            raise ValueError(f"--pools and --pool-steps need one entry each: got {len(self.pools)} pools and "
                             f"{len(self.pool_steps)} step counts")
        if any(b <= a for a, b in zip(self.pools, self.pools[1:])) or any(p < 1 for p in self.pools):
            raise ValueError(f"--pools must grow and be positive, got {list(self.pools)}")
        if any(s < 0 for s in self.pool_steps):
            raise ValueError(f"--pool-steps cannot be negative, got {list(self.pool_steps)}")
        if self.sampled_vocab < 0 or (self.sampled_vocab and self.pools and self.sampled_vocab > self.pools[0]):
            raise ValueError(f"--sampled-vocab must be 0 or at most the first pool ({self.pools[0]}), got "
                             f"{self.sampled_vocab}")
        if not 1 <= self.min_span <= self.max_span:
            raise ValueError(f"spans need 1 <= --min-span <= --max-span, got {self.min_span} and {self.max_span}")


def pool_size_at(step: int, pools: tuple[int, ...], pool_steps: tuple[int, ...], vocab: int) -> int:
    """How many tokens step ``step``'s spans are drawn from: the current pool, or ``vocab`` after the last."""
    end = 0
    for pool, steps in zip(pools, pool_steps):
        end += steps
        if step < end:
            return min(pool, vocab)
    return vocab


def ordinary_token_order(vocab: int, special_ids: list[int], seed: int) -> torch.Tensor:
    """Every non-special token id in a seeded random order; a pool of size P is its first P (pools nest)."""
    special = torch.zeros(vocab, dtype=torch.bool)
    special[[i for i in special_ids if 0 <= i < vocab]] = True
    ordinary = (~special).nonzero().squeeze(1)
    return ordinary[torch.randperm(len(ordinary), generator=torch.Generator().manual_seed(seed))]


def doubled_span(classes: int, span: int, rng) -> torch.Tensor:
    """``span`` random class positions in ``[0, classes)``, written twice: ``2·span`` of them."""
    opening = torch.tensor([rng.randrange(classes) for _ in range(span)])
    return torch.cat([opening, opening])


class CopyStage(Stage):
    """Random spans written twice; the loss covers both copies (only the second is predictable)."""

    name = "copy"

    def __init__(self, settings: CopySettings, tokenizer, model_config, steps: int, seed: int = 0):
        self.settings = settings
        self.seed = seed
        limit = getattr(model_config.text_config, "max_position_embeddings", None)
        if limit and 2 * settings.max_span > limit:
            raise ValueError(f"--max-span {settings.max_span} written twice is longer than the language model's "
                             f"context ({limit} tokens)")
        self.order = ordinary_token_order(model_config.text_config.vocab_size, tokenizer.all_special_ids, seed)
        if settings.sampled_vocab > len(self.order):
            raise ValueError(f"--sampled-vocab {settings.sampled_vocab} is more than the {len(self.order)} "
                             "ordinary tokens of the vocabulary")
        log.info("copy: %d steps; pools %s (then all %d tokens)", steps, list(settings.pools), len(self.order))

    def describe(self) -> dict:
        s = self.settings
        return {"pools": list(s.pools), "pool_steps": list(s.pool_steps), "sampled_vocab": s.sampled_vocab,
                "spans": [s.min_span, s.max_span]}

    def dataset_size(self) -> int:
        return SPAN_SLOTS

    def trainable_parameters(self, model):
        return select_trainable(model, ["language_model"])

    def step_classes(self, step: int) -> tuple[torch.Tensor, int]:
        """The token ids step ``step`` draws its spans from (with ``sampled_vocab`` 0: its whole pool) and its
        span length: the same in every micro-batch and process of the step."""
        s = self.settings
        rng = sample_rng(self.seed, step, -1)
        pool = self.order[:pool_size_at(step, s.pools, s.pool_steps, len(self.order))]
        span = rng.randint(s.min_span, s.max_span)
        if not s.sampled_vocab:
            return pool, span
        chosen = torch.tensor(rng.sample(range(len(pool)), s.sampled_vocab))
        return pool[chosen], span

    def make_batch(self, indices, step):
        classes, span = self.step_classes(step)
        positions = torch.stack([doubled_span(len(classes), span, sample_rng(self.seed, step, i)) for i in indices])
        targets = positions[:, 1:]
        return {"input_ids": classes[positions], "classes": classes if self.settings.sampled_vocab else None,
                "targets": targets if self.settings.sampled_vocab else classes[targets], "span": span,
                "num_targets": targets.numel(), "num_tokens": positions.numel()}

    def loss(self, model, batch, device):
        ids, targets, span = batch["input_ids"].to(device), batch["targets"].to(device), batch["span"]
        language_model = model.language_model
        if batch["classes"] is None:
            logits = language_model(input_ids=ids).logits[:, :-1]
        else:   # a sampled softmax: only this step's classes, through the output embeddings
            hidden = language_model.get_decoder()(input_ids=ids).last_hidden_state[:, :-1]
            logits = hidden @ language_model.get_output_embeddings().weight[batch["classes"].to(device)].T
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
        # nll[:, j] scores token j + 1; from j = span on, each token repeats one ``span`` places back (the second
        # copy's first token does not: nothing marks where the copy starts)
        second = nll[:, span:].mean().item()
        return nll.sum(), {"loss": nll.sum().item(), "second_copy_nats": second * nll.numel()}

    def estimate_memory(self, model, trainable, micro_batch_size):
        length = 2 * self.settings.max_span
        return estimate_training_bytes(model, trainable, micro_batch_size, length, length)
