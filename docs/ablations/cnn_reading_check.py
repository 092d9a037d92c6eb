"""A control for docs/ablations/reading_pretraining.md: can a plain CNN learn to read the same lines?

Same data (the single-line transcriptions of a rendered OCR corpus), same tiles (the checkpoint's processor,
large branch, stitched back into the image), same CTC in jamo with 4 positions per column and a 0.95 blank
prior, same batch, learning rate, warmup, cosine schedule and gradient clipping as `ko-hypervl train read`.
Only the encoder differs: four 3×3 conv + batch-norm + ReLU + 2×2 max-pool blocks (32, 64, 128, 128
channels, 342 k parameters) over the whole image, each feature column max-pooled over the height.

It is a diagnostic, not part of the library: it prints the mean CTC loss per letter of every 50 steps and the
greedy character error rate on 100 validation lines, and writes every step's loss to ``<out>/log.jsonl`` (the
training loop's format, so `ko-hypervl train compare` draws it beside the ViT runs).

    python docs/ablations/cnn_reading_check.py runs/ocr5k runs/tiny-stem-init 300 runs/cnn-check-300
"""

import json
import random
import sys
import time
from pathlib import Path

import torch
from datasets import load_from_disk
from torch import nn

from ko_hypervl.imagecorpus.tesseract import character_error_rate
from ko_hypervl.processing import KoHyperVLProcessor
from ko_hypervl.imagecorpus.records import transcriptions
from ko_hypervl.training.reading import ReadingVocab, blank_logit
from ko_hypervl.training.settings import TrainSettings, learning_rate_at


def block(channels_in: int, channels_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(channels_in, channels_out, 3, padding=1), nn.BatchNorm2d(channels_out), nn.ReLU(),
                         nn.MaxPool2d(2))


class ColumnCNN(nn.Module):
    def __init__(self, classes: int, positions: int = 4, prior: float = 0.95):
        super().__init__()
        self.body = nn.Sequential(block(3, 32), block(32, 64), block(64, 128), block(128, 128))
        self.head = nn.Linear(128, positions * classes)
        self.classes = classes
        with torch.no_grad():
            self.head.bias.view(positions, classes)[:, 0] = blank_logit(prior, classes)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        columns = self.body(image[None])[0].amax(1).T          # (width / 16, 128)
        return self.head(columns).view(-1, self.classes).log_softmax(-1)


def main(data: str, checkpoint: str, steps: int, out: str, batch: int = 16, lr: float = 1e-3,
         warmup: int = 100) -> None:
    torch.manual_seed(0)
    random.seed(0)
    corpus = load_from_disk(data)
    train, validation = corpus["train"], corpus["validation"]
    rows = transcriptions(train, single_line=True)
    held_out = transcriptions(validation, single_line=True)[:100]
    vocab = ReadingVocab.from_texts(text for _, text in rows)
    processor = KoHyperVLProcessor.from_pretrained(checkpoint)
    side = processor.image_processor.tile_sizes["large"]

    def image(dataset, index: int) -> torch.Tensor:
        tiles = processor.image_processor([dataset[index]["image"]], branch="large")
        r, c = tiles["image_grid"][0].tolist()
        grid = tiles["pixel_values"][:r * c].view(r, c, 3, side, side)
        return grid.permute(2, 0, 3, 1, 4).reshape(3, r * side, c * side)

    model = ColumnCNN(len(vocab))
    print("parameters", sum(p.numel() for p in model.parameters()))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    # the training loop's own schedule (warmup, cosine to its floor), not a copy of it
    loop_settings = TrainSettings(out=Path(out), steps=steps, learning_rate=lr, warmup_steps=warmup)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: learning_rate_at(step, loop_settings) / lr)
    Path(out).mkdir(parents=True, exist_ok=True)
    log = open(Path(out) / "log.jsonl", "w", encoding="utf-8")
    started, losses = time.time(), []
    for step in range(steps):
        chosen = random.sample(rows, batch)
        log_probs = [model(image(train, index)) for index, _ in chosen]
        targets = [vocab.encode(text) for _, text in chosen]
        target_lengths = torch.tensor([len(t) for t in targets])
        flat = torch.tensor([c for t in targets for c in t])
        lengths = torch.tensor([lp.shape[0] for lp in log_probs])
        loss = nn.functional.ctc_loss(nn.utils.rnn.pad_sequence(log_probs), flat, lengths, target_lengths, blank=0,
                                      reduction="sum", zero_infinity=True) / target_lengths.sum()
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        log.write(json.dumps({"stage": "cnn-check", "step": step + 1, "loss": round(losses[-1], 5),
                              "seconds": round(time.time() - started, 2)}) + "\n")
        if (step + 1) % 50 == 0:
            print(f"step {step + 1}: loss per letter {sum(losses[-50:]) / 50:.3f} ({time.time() - started:.0f} s)",
                  flush=True)
    log.close()
    model.eval()
    errors = []
    with torch.no_grad():
        for index, text in held_out:
            reading = vocab.decode_greedy(model(image(validation, index)))
            errors.append(character_error_rate(" ".join(text.split()), reading))
        example = vocab.decode_greedy(model(image(validation, held_out[0][0])))
    print(f"CER {sum(errors) / len(errors):.4f} on {len(errors)} validation lines; e.g. "
          f"{' '.join(held_out[0][1].split())!r} read as {example!r}")


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
