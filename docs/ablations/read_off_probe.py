"""How well a checkpoint's visual tokens show the text of the image in the LM's embedding space (copying.md §5).

For held-out rows with a one-line text answer (a title, a one-line transcription, a line to read: the turns
the embedding CTC trains on), each visual token of the large or small branch is read as the vocabulary
token whose input embedding it points closest to (cosine), or as blank when none is closer than the
embedding CTC's blank similarity. Repeats merged and blanks dropped, the tokens are decoded to text and
scored against the answer by character error rate. It also prints the embedding CTC loss per target token
with the classes of each batch, as the stage computes it, and the mean best cosine of a visual token.

    python docs/ablations/read_off_probe.py runs/tr6/align/final runs/e1/align/final --data runs/tr6/data
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

from ko_hypervl.checkpoint import load_checkpoint
from ko_hypervl.imagecorpus.records import load_split, rows_spread_over_kinds
from ko_hypervl.imagecorpus.tesseract import character_error_rate
from ko_hypervl.training.losses import embedding_ctc_sum, tile_token_sequences
from ko_hypervl.training.stages import READ_OFF_UNITS, AlignSettings, VisionLanguageStage

BLANK_SIMILARITY = 0.5     # embedding_ctc_sum's default


def read_off(sequence: torch.Tensor, vocab: torch.Tensor, blank: float = BLANK_SIMILARITY) -> list[int]:
    """Greedy reading of one visual token sequence against the whole (normalised) vocabulary."""
    best, token = (nn.functional.normalize(sequence.float(), dim=-1) @ vocab.T).max(dim=-1)
    path = torch.where(best > blank, token, torch.full_like(token, -1)).tolist()
    return [t for i, t in enumerate(path) if t >= 0 and (i == 0 or t != path[i - 1])]


@torch.no_grad()
def probe(checkpoint: str, data: Path, split: str, rows: int, branch: str, batch_size: int,
          unit: str = "token") -> dict:
    model, processor = load_checkpoint(checkpoint)
    model.eval()
    dataset = load_split(data, split)
    settings = AlignSettings(init=Path(checkpoint), data=data, split=split, tasks=[], branches=branch,
                             embedding_ctc_weight=1.0, embedding_ctc_unit=unit,
                             scale_prob=0.0)      # full resolution, every row
    stage = VisionLanguageStage("probe", settings, dataset, processor, seed=0)
    kinds = [dataset[i]["kind"] for i, _ in stage.rows]
    chosen = [i for i in rows_spread_over_kinds(kinds, 10 ** 9)
              if stage.read_off_target(dataset[stage.rows[i][0]])][:rows]
    embeddings = model.get_input_embeddings().weight.float()
    vocab = nn.functional.normalize(embeddings, dim=-1)
    loss = targets = 0.0
    errors, cosines, example = [], [], None
    for start in range(0, len(chosen), batch_size):
        batch = stage.make_batch(chosen[start:start + batch_size], step=0)
        inputs = batch[branch]
        features = model.get_image_features(inputs["pixel_values"], branch)
        sequences = tile_token_sequences(features, inputs["image_grid"])
        loss += float(embedding_ctc_sum(sequences, batch["read_off"], embeddings))
        targets += sum(len(t) for t in batch["read_off"])
        for sequence, target in zip(sequences, batch["read_off"]):
            reference = processor.tokenizer.decode(target)
            reading = processor.tokenizer.decode(read_off(sequence, vocab))
            errors.append(character_error_rate(reference, reading))
            cosines.append(float((nn.functional.normalize(sequence.float(), dim=-1) @ vocab.T).max(-1).values.mean()))
            example = example or (reference, reading)
    return {"rows": len(errors), "ctc_per_token": loss / max(targets, 1), "cer": sum(errors) / len(errors),
            "best_cosine": sum(cosines) / len(cosines), "example": example}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--data", type=Path, required=True, help="the run's rendered image corpus")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--rows", type=int, default=120, help="rows with a one-line text answer, spread over kinds")
    parser.add_argument("--branches", nargs="+", default=["large", "small"])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--unit", choices=READ_OFF_UNITS, default="token",
                        help="read as the answer's tokens or as its characters' (then without spaces)")
    args = parser.parse_args()
    if args.rows < 1 or args.batch_size < 1:
        parser.error("--rows and --batch-size must be at least 1")
    print("| checkpoint | branch | rows | embedding CTC, nats/target token | read-off CER | mean best cosine | example |")
    print("|---|---|---:|---:|---:|---:|---|")
    for checkpoint in args.checkpoints:
        for branch in args.branches:
            r = probe(checkpoint, args.data, args.split, args.rows, branch, args.batch_size, args.unit)
            reference, reading = r["example"]
            print(f"| {checkpoint} | {branch} | {r['rows']} | {r['ctc_per_token']:.3f} | {r['cer']:.3f} | "
                  f"{r['best_cosine']:.3f} | {reference!r} → {reading!r} |")


if __name__ == "__main__":
    main()
