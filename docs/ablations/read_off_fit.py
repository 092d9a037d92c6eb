"""Can a projector alone put a fixed encoder's tokens where the LM's embeddings of the shown text are? (copying.md §5)

The alignment stage spends most of a step in the LM; the embedding CTC needs none of it. This script encodes
the one-line-answer rows (titles, one-line transcriptions, lines to read) of a checkpoint's large branch once,
keeps the encoder's patch features, and then fits a projector on the embedding CTC alone, hundreds of steps a
minute. It starts from the checkpoint's own projector and reports, on the training rows it fits and on
held-out validation rows, the CTC per target token and the greedy read-off CER (copying.md §5's measures),
for each unit (the answers' tokens, or each character's token) and blank similarity asked for.

    python docs/ablations/read_off_fit.py ko_hypervl/assets/model/ko-hypervl-tiny --data runs/data
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from ko_hypervl.checkpoint import load_checkpoint
from ko_hypervl.imagecorpus.records import load_split, rows_spread_over_kinds
from ko_hypervl.imagecorpus.tesseract import character_error_rate
from ko_hypervl.training.losses import embedding_ctc_sum, tile_token_sequences
from ko_hypervl.training.stages import READ_OFF_UNITS, AlignSettings, VisionLanguageStage
from read_off_probe import read_off


@torch.no_grad()
def encode_rows(model, processor, data: Path, split: str, rows: int, unit: str) -> list[tuple]:
    """(patch features, image grid, target ids) of up to ``rows`` rows with a one-line text answer."""
    dataset = load_split(data, split)
    settings = AlignSettings(init=Path("."), data=data, split=split, tasks=[], branches="large",
                             embedding_ctc_weight=1.0, embedding_ctc_unit=unit, scale_prob=0.0)
    stage = VisionLanguageStage("fit", settings, dataset, processor, seed=0)
    kinds = [dataset[i]["kind"] for i, _ in stage.rows]
    chosen = [i for i in rows_spread_over_kinds(kinds, 10 ** 9)
              if stage.read_off_target(dataset[stage.rows[i][0]])][:rows]
    encoded = []
    for index in tqdm(chosen, desc=f"encoding {split}"):
        batch = stage.make_batch([index], step=0)
        patches = model.vision_model(pixel_values=batch["large"]["pixel_values"]).last_hidden_state
        encoded.append((patches, batch["large"]["image_grid"], batch["read_off"][0]))
    return encoded


def project(projector, rows: list[tuple]) -> list[torch.Tensor]:
    return [tile_token_sequences(projector(patches).flatten(0, 1), grid)[0] for patches, grid, _ in rows]


@torch.no_grad()
def score(projector, rows, embeddings, tokenizer, blank: float) -> tuple[float, float]:
    """(CTC nats per target token, mean greedy read-off CER) of ``rows``. The CTC's classes are all the rows'
    target tokens at once, so its cost grows with rows × classes: thousands of rows take more than 24 GB
    (``--score-train-rows`` scores fewer)."""
    sequences = project(projector, rows)
    targets = [target for _, _, target in rows]
    loss = float(embedding_ctc_sum(sequences, targets, embeddings, blank_similarity=blank))
    vocab = nn.functional.normalize(embeddings.float(), dim=-1)
    errors = [character_error_rate(tokenizer.decode(target), tokenizer.decode(read_off(sequence, vocab, blank)))
              for sequence, target in zip(sequences, targets)]
    return loss / sum(len(t) for t in targets), sum(errors) / len(errors)


def fit(model, tokenizer, train, held_out, steps: int, batch_size: int, learning_rate: float, blank: float,
        seed: int, score_rows: int | None = None) -> list[dict]:
    """Fit a copy of the projector; every quarter of the steps, score the first ``score_rows`` training rows
    (None: all) and the held-out ones."""
    torch.manual_seed(seed)
    projector = copy.deepcopy(model.projector)
    embeddings = model.get_input_embeddings().weight.detach()
    optimizer = torch.optim.AdamW(projector.parameters(), lr=learning_rate, weight_decay=0.0)
    history = []
    for step in tqdm(range(1, steps + 1), desc=f"fitting (blank {blank})"):
        batch = [train[i] for i in torch.randint(len(train), (batch_size,)).tolist()]
        loss = embedding_ctc_sum(project(projector, batch), [t for _, _, t in batch], embeddings,
                                 blank_similarity=blank) / sum(len(t) for _, _, t in batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step == steps or step % max(1, steps // 4) == 0:
            history.append({"step": step,
                            "train": score(projector, train[:score_rows], embeddings, tokenizer, blank),
                            "held_out": score(projector, held_out, embeddings, tokenizer, blank)})
    return history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--data", type=Path, required=True, help="the run's rendered image corpus")
    parser.add_argument("--train-rows", type=int, default=512)
    parser.add_argument("--held-out-rows", type=int, default=64, help="validation rows, spread over kinds")
    parser.add_argument("--units", nargs="+", choices=READ_OFF_UNITS, default=list(READ_OFF_UNITS))
    parser.add_argument("--blanks", nargs="+", type=float, default=[0.5, 0.2],
                        help="blank similarities: a visual token shows a token only when closer than this")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--score-train-rows", type=int, default=0,
                        help="score only the first N training rows (0: all; thousands take minutes and more "
                             "than 24 GB)")
    args = parser.parse_args()
    if min(args.train_rows, args.held_out_rows, args.steps, args.batch_size) < 1:
        parser.error("--train-rows, --held-out-rows, --steps and --batch-size must be at least 1")
    if args.score_train_rows < 0:
        parser.error("--score-train-rows must be at least 0 (0: all)")
    score_rows = args.score_train_rows or None
    model, processor = load_checkpoint(args.checkpoint)
    model.eval()
    tokenizer = processor.tokenizer
    print("| unit | blank similarity | steps | train CTC/token | train CER | held-out CTC/token | held-out CER |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for unit in args.units:
        train = encode_rows(model, processor, args.data, "train", args.train_rows, unit)
        held_out = encode_rows(model, processor, args.data, "validation", args.held_out_rows, unit)
        embeddings = model.get_input_embeddings().weight.detach()
        for blank in args.blanks:
            (tl, tc), (hl, hc) = (score(model.projector, rows, embeddings, tokenizer, blank)
                                  for rows in (train[:score_rows], held_out))
            print(f"| {unit} | {blank} | 0 | {tl:.3f} | {tc:.3f} | {hl:.3f} | {hc:.3f} |", flush=True)
            start = time.perf_counter()
            for point in fit(model, tokenizer, train, held_out, args.steps, args.batch_size, args.learning_rate,
                             blank, args.seed, score_rows):
                (tl, tc), (hl, hc) = point["train"], point["held_out"]
                print(f"| {unit} | {blank} | {point['step']} | {tl:.3f} | {tc:.3f} | {hl:.3f} | {hc:.3f} |",
                      flush=True)
            print(f"<!-- {unit}, blank {blank}: {time.perf_counter() - start:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
