"""A reading run's CTC head against Tesseract on the same held-out lines (reading_pretraining.md, last section).

The reading stage scores its heads on validation lines (the training fonts). A checkpoint that kept its head
(the reading stage keeps the large branch's; RUN may also be such a checkpoint folder) is read with it; for an
older run, whose final checkpoint has none, the head is rebuilt from the run's last resumable checkpoint (the
vocabulary from the run's training lines, as the stage builds it). Either way it reads the first ``--rows``
single lines of ``--split`` (test: held-out fonts and words) and runs Tesseract on the very same images.

    python docs/ablations/read_head_vs_tesseract.py runs/r1 --data runs/read-data --split test
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image
from safetensors.torch import load_file

from ko_hypervl.checkpoint import load_checkpoint
from ko_hypervl.imagecorpus.records import load_split
from ko_hypervl.imagecorpus.tesseract import character_error_rate, ocr_image
from ko_hypervl.imagecorpus.records import transcriptions
from ko_hypervl.training.reading import ReadingModel, ReadingVocab, reading_cer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a `ko-hypervl train read` output folder")
    parser.add_argument("--data", type=Path, required=True, help="the image corpus the run read")
    parser.add_argument("--lines", type=Path, default=None,
                        help="read the single lines of this image corpus instead (default: --data), e.g. the main "
                             "corpus, whose OCR images the model card scores")
    parser.add_argument("--split", default="test")
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--upscale", type=float, default=1.0,
                        help="with a kept head: enlarge every image this many times first (a phone photo of a page)")
    parser.add_argument("--pages", action="store_true",
                        help="with a kept head: read pages of several lines (cut into lines, and whole) instead")
    args = parser.parse_args()

    checkpoint = args.run if (args.run / "config.json").is_file() else args.run / "final"
    if (checkpoint / "config.json").is_file() and json.loads((checkpoint / "config.json").read_text())["reading_head"]:
        return compare_kept_head(checkpoint, args)
    for needed in (args.run / "final" / "training_summary.json", args.run / "checkpoints" / "latest.json"):
        if not needed.is_file():
            raise SystemExit(f"{args.run} is no finished `ko-hypervl train read` run: {needed} is missing")
    summary = json.loads((args.run / "final" / "training_summary.json").read_text())
    stage = next(stage for stage in reversed(summary["stages"]) if stage.get("stage") == "read")
    read = stage["settings"]["ReadSettings"]
    latest = json.loads((args.run / "checkpoints" / "latest.json").read_text())["checkpoint"]
    weights = load_file(args.run / "checkpoints" / latest / "model.safetensors")
    heads = {k: v for k, v in weights.items() if k.startswith("heads.")}
    model, processor = load_checkpoint(args.run / "final")
    single = read["order"] == "columns"
    vocab = ReadingVocab.from_texts(text for _, text in transcriptions(load_split(args.data, read["split"]), single))
    if len(vocab) != stage["reading_classes"]:
        raise SystemExit(f"the rebuilt vocabulary has {len(vocab)} classes, the run's head {stage['reading_classes']}")
    branches = tuple(sorted({key.split(".")[1] for key in heads}))
    reader = ReadingModel(model, branches, len(vocab), 0, read["positions_per_patch"], 0.0, read["order"])
    reader.heads.load_state_dict({k.removeprefix("heads."): v for k, v in heads.items()})
    lines = load_split(args.lines or args.data, args.split)
    rows = transcriptions(lines, single)[:args.rows]
    tesseract = [character_error_rate(" ".join(text.split()), ocr_image(lines[i]["image"])) for i, text in rows]
    print(f"| reader | {args.split} lines | CER |\n|---|---:|---:|")
    for branch in branches:
        score = reading_cer(reader, processor, lines, rows, vocab, branch)
        print(f"| {args.run} head ({branch}) | {score['rows']} | {score['cer']:.3f} |", flush=True)
    print(f"| Tesseract (kor, psm 6) | {len(tesseract)} | {sum(tesseract) / len(tesseract):.3f} |")


def compare_kept_head(checkpoint: Path, args) -> None:
    """A checkpoint that kept its reading head (every reading stage since the head is kept) reads with it; with
    ``--pages`` it reads the first ``--rows`` pages of several lines instead, cut into lines and whole."""
    from ko_hypervl import load

    vlm = load(checkpoint)
    lines = load_split(args.lines or args.data, args.split)
    if args.pages:
        rows = [(i, text) for i, text in transcriptions(lines) if len(text.strip().splitlines()) > 1][:args.rows]
    else:
        rows = transcriptions(lines, vlm.model.reading_head_spec().order == "columns")[:args.rows]
    images = [lines[i]["image"] for i, _ in rows]
    if args.upscale != 1:
        images = [image.resize((round(image.width * args.upscale), round(image.height * args.upscale)),
                               Image.BICUBIC) for image in images]

    def mean_cer(texts) -> float:
        rates = [character_error_rate(" ".join(ref.split()), " ".join(t.split())) for (_, ref), t in zip(rows, texts)]
        return sum(rates) / len(rates)

    kind = "pages of several lines" if args.pages else "lines"
    print(f"| reader | {args.split} {kind} | CER (mean of rows) |\n|---|---:|---:|")
    readings = vlm.read(images)
    cut = f", cut into {sum(r.lines for r in readings)} lines" if args.pages else ""
    print(f"| {checkpoint} kept head ({readings[0].branch}{cut}; {readings[0].decoder}) | {len(rows)} | "
          f"{mean_cer([r.text for r in readings]):.3f} |", flush=True)
    if vlm.reading_lm is not None:
        print(f"| the same head, best path (no reading LM) | {len(rows)} | "
              f"{mean_cer([r.text for r in vlm.read(images, greedy=True)]):.3f} |", flush=True)
    if args.pages:
        whole = vlm.read(images, split_lines=False, greedy=True)
        print(f"| the same head, each page read as one line (best path) | {len(rows)} | "
              f"{mean_cer([r.text for r in whole]):.3f} |", flush=True)
    print(f"| Tesseract (kor, psm 6) | {len(rows)} | {mean_cer([ocr_image(image) for image in images]):.3f} |")


if __name__ == "__main__":
    main()
