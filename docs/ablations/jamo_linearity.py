"""Are the LM's syllable embeddings a function of their jamo? (copying.md §6)

The encoders read jamo; the LM's vocabulary has one token per Hangul syllable (and longer morphemes). A
projector can only show the LM a syllable no training image had if that syllable's input embedding follows
from its jamo. For every token that is one Hangul syllable (word-start tokens ` 가` and tokens inside a word
`가` apart), this script prints the share of their embeddings' variance that a linear map of their jamo does
not explain (``jamo_residual_share``, the loss `--jamo-weight` trains with). It then fits that map on a
random 80% of the syllables and reports, on the other 20%, the cosine of prediction and truth (both less the
fitted syllables' mean, which every embedding shares a large part of) and how often the prediction's nearest
syllable embedding is the right one (top-1 / top-10 among the group), by how often the syllable occurs in
the training text.

    python docs/ablations/jamo_linearity.py ko_hypervl/assets/model/ko-hypervl-tiny
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import torch
from torch.nn.functional import cosine_similarity, normalize

from ko_hypervl.checkpoint import load_checkpoint
from ko_hypervl.tokenization.jamo import jamo_features, syllable_tokens
from ko_hypervl.textcorpus.load import load_text_corpus
from ko_hypervl.training.losses import jamo_residual_share, ridge_weights


def fit_and_score(features, targets, train, held_out, ridge: float) -> torch.Tensor:
    """Predicted embeddings of ``held_out`` from a ridge fit on ``train``."""
    return features[held_out] @ ridge_weights(features[train], targets[train], ridge)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--ridge", type=float, default=1.0)
    parser.add_argument("--held-out-share", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    model, processor = load_checkpoint(args.checkpoint)
    tokenizer = processor.tokenizer
    embeddings = model.get_input_embeddings().weight.detach().float()
    counts = Counter()
    for text in load_text_corpus(verify=False)["train"]["text"]:
        counts.update(text)
    bins = [(0, 10), (10, 100), (100, 1000), (1000, 10 ** 12)]

    print("| tokens | syllables | residual share (all) | occurrences in training text | held out "
          "| centred cosine, predicted vs true | the same on the fitted syllables | top-1 | top-10 "
          "| top-10 by chance |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    generator = torch.Generator().manual_seed(args.seed)
    tokens = syllable_tokens(tokenizer)
    for word_start in (True, False):
        syllables = {syllable: token_id for token_id, syllable, start in tokens if start == word_start}
        names = sorted(syllables)
        ids = torch.tensor([syllables[s] for s in names])
        features = torch.stack([jamo_features(s, word_start) for s in names])
        share = float(jamo_residual_share(embeddings[ids], features, args.ridge))
        order = torch.randperm(len(names), generator=generator)
        cut = int(len(names) * (1 - args.held_out_share))
        train, held_out = order[:cut], order[cut:]
        # every embedding shares a large common part (cosine 0.6-0.96 to the mean): take it out, or any
        # prediction near the mean would look good
        targets = embeddings[ids] - embeddings[ids][train].mean(0, keepdim=True)
        predicted = fit_and_score(features, targets, train, held_out, args.ridge)
        fitted = fit_and_score(features, targets, train, train, args.ridge)
        similarity = normalize(predicted, dim=-1) @ normalize(targets, dim=-1).T
        rank = (similarity > similarity[torch.arange(len(held_out)), held_out].unsqueeze(1)).sum(1)
        cosine = cosine_similarity(predicted, targets[held_out], dim=-1)
        in_sample = cosine_similarity(fitted, targets[train], dim=-1)
        frequency = torch.tensor([counts[names[i]] for i in held_out])
        train_frequency = torch.tensor([counts[names[i]] for i in train])
        label = "word-start (` 가`)" if word_start else "inside a word (`가`)"
        for low, high in bins:
            mask = (frequency >= low) & (frequency < high)
            train_mask = (train_frequency >= low) & (train_frequency < high)
            if not mask.any():
                continue
            span = f"{low:,}–{high:,}" if high < 10 ** 12 else f"≥ {low:,}"
            print(f"| {label} | {len(names):,} | {share:.3f} | {span} | {int(mask.sum())} | {cosine[mask].mean():.3f} "
                  f"| {in_sample[train_mask].mean():.3f} | {(rank[mask] == 0).float().mean():.3f} "
                  f"| {(rank[mask] < 10).float().mean():.3f} | {10 / len(names):.3f} |")


if __name__ == "__main__":
    main()
