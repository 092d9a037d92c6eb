"""Can the recipe's language model learn to copy from its context on the 2-core CPU? (docs/ablations/copying.md)

Trains only the LM of a checkpoint on random token spans written twice in a row (the loss covers both copies;
only the second is predictable, and only by looking back), then saves the checkpoint. Every ``--every`` steps
it prints the second copy's loss on fresh random spans and the copy gain on held-out Korean text
(``ko_hypervl.evaluation.language.copy_gain``: does the skill carry over to text?). First it prints what the
checkpoint's LM costs per held-out token against a table of unigram counts of the first ``--unigram-docs``
training documents (add-0.1 smoothing): an LM near that number has learnt which tokens are common, not context.

    python docs/ablations/copy_probe.py runs/tr5/read/final runs/tr5p/copy-read --steps 500
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import time

import torch

from ko_hypervl.checkpoint import load_checkpoint, save_checkpoint
from ko_hypervl.evaluation.language import copy_gain, held_out_texts, stream_nll
from ko_hypervl.textcorpus import load_text_corpus
from ko_hypervl.training.data import document_token_ids


def unigram_nats_per_token(train_ids: list[int], test_ids: list[int], vocab: int, smoothing: float = 0.1) -> float:
    """Cross-entropy of ``test_ids`` under add-``smoothing`` unigram counts of ``train_ids`` (nats per token)."""
    counts = collections.Counter(train_ids)
    total = len(train_ids) + smoothing * vocab
    return -sum(math.log((counts[t] + smoothing) / total) for t in test_ids) / len(test_ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("init")
    parser.add_argument("out")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--min-span", type=int, default=16)
    parser.add_argument("--max-span", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--unigram-docs", type=int, default=20_000)
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(args.seed)
    model, processor = load_checkpoint(args.init)
    vocab = model.config.text_config.vocab_size
    first_word = len(processor.tokenizer.all_special_ids) + 100   # random ordinary tokens, no specials
    text_ids = document_token_ids(processor.tokenizer, held_out_texts(None, "test", 50_000), progress=False)
    train_ids = document_token_ids(processor.tokenizer, load_text_corpus()["train"]["text"][:args.unigram_docs],
                                   progress=False)
    lm_nats = stream_nll(model, text_ids, 256, 8) / (len(text_ids) - 1)
    print(json.dumps({"held_out_tokens": len(text_ids), "lm_nats_per_token": round(lm_nats, 3),
                      "unigram_nats_per_token": round(unigram_nats_per_token(train_ids, text_ids[1:], vocab), 3),
                      "unigram_train_tokens": len(train_ids), "copy": copy_gain(model, text_ids, 64, 32)}), flush=True)
    optimizer = torch.optim.AdamW(model.language_model.parameters(), lr=args.learning_rate, weight_decay=0.0)
    started = time.perf_counter()
    model.train()
    for step in range(1, args.steps + 1):
        span = int(torch.randint(args.min_span, args.max_span + 1, (1,), generator=generator))
        opening = torch.randint(first_word, vocab, (args.batch_size, span), generator=generator)
        x = torch.cat([opening, opening], dim=1)
        nll = torch.nn.functional.cross_entropy(model(input_ids=x).logits[:, :-1].transpose(1, 2), x[:, 1:],
                                                reduction="none")
        nll.mean().backward()
        optimizer.step()
        optimizer.zero_grad()
        if step % args.every == 0 or step == args.steps:
            text = copy_gain(model, text_ids, 64, 32)   # scores in eval mode and puts training mode back
            print(json.dumps({"step": step, "seconds": round(time.perf_counter() - started), "span": span,
                              "random_second_copy_nats": round(nll[:, span:].mean().item(), 3),
                              "random_first_copy_nats": round(nll[:, :span - 1].mean().item(), 3),
                              "text_copy_gain_nats": round(text["copy_gain_nats"], 3)}), flush=True)
    if args.steps:
        save_checkpoint(model.eval(), processor, args.out)


if __name__ == "__main__":
    main()
