"""Is the copy plateau the tokenizer's 32k vocabulary, the learning rate or the batch? (docs/ablations/copying.md)

Trains a fresh language model of the bundled model's shape (the same LlamaConfig: layers, widths, heads, RoPE)
with a vocabulary of ``--vocab`` tokens on random spans written twice in a row, and prints the loss of each
span's first copy (unpredictable: ln(vocab) at best) and of its second (predictable only by looking back).
A second copy that costs no less than the first means induction (content-based copying) has not formed.

``--smear`` adds a learnt per-channel gate that mixes each position's input embedding with the previous one's
(the "smeared key" shortcut of Olsson et al. 2022, applied to the embeddings as modded-nanogpt does), so one
attention layer can match on the previous token without a previous-token head in the layer before it.

    python docs/ablations/copy_plateau.py --vocab 128 --steps 1200 --batch-size 16
    python docs/ablations/copy_plateau.py --vocab 128 --steps 1200 --batch-size 16 --smear
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM

from ko_hypervl.checkpoint import bundled_model_dir


class SmearedEmbedding(nn.Module):
    """``e_t + gate ⊙ e_{t-1}``; the gate starts at zero, so at step 0 this is the plain embedding."""

    def __init__(self, embedding: nn.Embedding):
        super().__init__()
        self.embedding = embedding
        self.gate = nn.Parameter(torch.zeros(embedding.embedding_dim))

    @property
    def weight(self) -> torch.Tensor:   # tied output embeddings read it
        return self.embedding.weight

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        embeds = self.embedding(input_ids)
        previous = nn.functional.pad(embeds[:, :-1], (0, 0, 1, 0))
        return embeds + self.gate * previous


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, default=128)
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--min-span", type=int, default=16)
    parser.add_argument("--max-span", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--smear", action="store_true")
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.vocab < 2 or min(args.steps, args.batch_size, args.every) < 1:
        parser.error("--vocab must be at least 2 and --steps, --batch-size, --every at least 1")
    if not 2 <= args.min_span <= args.max_span:
        parser.error(f"spans must satisfy 2 <= --min-span <= --max-span, got {args.min_span} and {args.max_span}")
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    config = AutoConfig.from_pretrained(bundled_model_dir()).text_config
    config.vocab_size = args.vocab
    config.bos_token_id = config.eos_token_id = config.pad_token_id = None   # no special tokens in random spans
    model = AutoModelForCausalLM.from_config(config)
    if args.smear:
        model.set_input_embeddings(SmearedEmbedding(model.get_input_embeddings()))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=0.0)
    print(json.dumps({"vocab": args.vocab, "uniform_nats": round(math.log(args.vocab), 3),
                      "parameters": sum(p.numel() for p in model.parameters()), **vars(args)}), flush=True)
    started = time.perf_counter()
    first = second = 0.0
    model.train()
    for step in range(1, args.steps + 1):
        span = int(torch.randint(args.min_span, args.max_span + 1, (1,), generator=generator))
        opening = torch.randint(0, args.vocab, (args.batch_size, span), generator=generator)
        x = torch.cat([opening, opening], dim=1)
        nll = nn.functional.cross_entropy(model(input_ids=x).logits[:, :-1].transpose(1, 2), x[:, 1:],
                                          reduction="none")
        nll.mean().backward()
        optimizer.step()
        optimizer.zero_grad()
        first += nll[:, :span - 1].mean().item()   # targets 1 … span-1 of the first copy
        second += nll[:, span:].mean().item()      # targets 1 … span-1 of the second, after the same token
        if step % args.every == 0:   # means over the last `every` steps: one batch of 16 is noisy
            print(json.dumps({"step": step, "seconds": round(time.perf_counter() - started),
                              "first_copy_nats": round(first / args.every, 3),
                              "second_copy_nats": round(second / args.every, 3),
                              **({"gate": round(model.get_input_embeddings().gate.abs().mean().item(), 4)}
                                 if args.smear else {})}), flush=True)
            first = second = 0.0


if __name__ == "__main__":
    main()
