"""Can the recipe's language model learn to copy from its context on the 2-core CPU? (docs/ablations/copying.md)

Trains only the LM of a checkpoint on random token spans written twice in a row (the loss covers both copies;
only the second is predictable, and only by looking back), then saves the checkpoint. Every ``--every`` steps
it prints the second copy's loss on fresh random spans and the copy gain on held-out Korean text
(``ko_hypervl.evaluation.language.copy_gain``: does the skill carry over to text?). First it prints what the
checkpoint's LM costs per held-out token against a table of unigram counts of the first ``--unigram-docs``
training documents (add-0.1 smoothing): an LM near that number has learnt which tokens are common, not context.

    python docs/ablations/copy_probe.py runs/tr5/read/final runs/tr5p/copy-read --steps 500
    python docs/ablations/copy_probe.py runs/tr4/init runs/plateau/init-sampled128 --steps 1000 --batch-size 64 \
        --sampled-vocab 128 --every 100
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
    parser.add_argument("--sampled-vocab", type=int, default=0, metavar="N",
                        help="draw each step's spans from N random ordinary tokens and score only those N "
                             "(a sampled softmax over the tied output embeddings: with the 32k head costing "
                             "most of the LM's compute, a step is several times cheaper); 0: the full vocabulary")
    parser.add_argument("--token-pool", type=int, default=0, metavar="P",
                        help="with --sampled-vocab: draw each step's N tokens from one fixed random pool of P "
                             "ordinary tokens (P = N: always the same N tokens); 0: from all of them")
    args = parser.parse_args()
    if args.sampled_vocab < 0 or args.token_pool < 0:
        parser.error("--sampled-vocab and --token-pool must be at least 0")
    if args.token_pool and not 0 < args.sampled_vocab <= args.token_pool:
        parser.error("--token-pool P needs --sampled-vocab N with 0 < N <= P")
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
    decoder, head = model.language_model.get_decoder(), model.language_model.get_output_embeddings()
    if args.sampled_vocab:   # only then: the documented full-vocabulary runs keep their random spans
        pool = first_word + torch.randperm(vocab - first_word, generator=generator)[:args.token_pool or None]
    started = time.perf_counter()
    model.train()
    for step in range(1, args.steps + 1):
        span = int(torch.randint(args.min_span, args.max_span + 1, (1,), generator=generator))
        if args.sampled_vocab:
            subset = pool[torch.randperm(len(pool), generator=generator)[:args.sampled_vocab]]
            local = torch.randint(0, len(subset), (args.batch_size, span), generator=generator)
            pair = torch.cat([local, local], dim=1)   # positions in `subset`, which are the sampled classes
            x = subset[pair]
            logits = decoder(input_ids=x).last_hidden_state[:, :-1] @ head.weight[subset].T
            targets = pair[:, 1:]
        else:
            opening = torch.randint(first_word, vocab, (args.batch_size, span), generator=generator)
            x = torch.cat([opening, opening], dim=1)
            logits, targets = model(input_ids=x).logits[:, :-1], x[:, 1:]
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
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
