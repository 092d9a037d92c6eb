"""``ko-hypervl corpora``: the Korean text corpus, the rendered image-text corpora and readers for users' data."""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from ..settings import add_settings_arguments, settings_from_args
from .common import add_command_group, add_settings_command
from ..textcorpus.load import SplitSettings


def register(commands: argparse._SubParsersAction) -> None:
    groups = add_command_group(commands, "corpora", "Korean text corpus and image-text corpora",
                               "Korean text corpus and image-text corpora", "corpora commands", "KIND")
    sub = add_command_group(groups, "text", "the Korean text corpus (tokenizer and LM training, held-out eval sets)",
                            "The committed Korean text corpus: see corpora/README.md.", "text corpus commands", "ACTION")

    from ..textcorpus.build import TextCorpusBuildSettings

    add_settings_command(sub, "build", "rebuild corpora/ from the licensed release (maintainers)",
                         "Clean, deduplicate, balance and write the corpus files and manifest.",
                         TextCorpusBuildSettings, _build)

    stats = sub.add_parser("stats", help="print documents/characters/eojeol per source and split",
                           description="Counts per source and split, from what the loader returns.")
    _corpus_dir_argument(stats)
    add_settings_arguments(stats, SplitSettings)
    stats.add_argument("--write", action="store_true", help="also write the table into corpora/README.md")
    stats.set_defaults(func=_stats)

    sample = sub.add_parser("sample", help="print random documents of a split",
                            description="Print the first lines of random documents, to see what the corpus holds.")
    _corpus_dir_argument(sample)
    sample.add_argument("--split", default="train", choices=("train", "validation", "test"))
    sample.add_argument("--source", default=None, help="only this source (default: any)")
    sample.add_argument("-n", type=int, default=3, help="how many documents (default: 3)")
    sample.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    sample.set_defaults(func=_sample)
    _register_image_commands(groups)


def _register_image_commands(groups: argparse._SubParsersAction) -> None:
    from ..imagecorpus.build import ImageCorpusSettings

    add_settings_command(groups, "build", "render an image-text corpus (charts, tables, exam pages, OCR lines)",
                         "Render charts, tables, exam pages and OCR lines with Korean questions and exact answers, "
                         "as a datasets.DatasetDict saved to --out. The test split holds out fonts, category words "
                         "and styles.", ImageCorpusSettings, _build_images)

    from ..training.readings import ReadingsSettings

    add_settings_command(groups, "read", "add the reading head's reading of every image (for a copy head)",
                         "Read every image of a corpus with a checkpoint's reading head (and its reading LM) and "
                         "save the corpus with a `reading` column: instruction tuning then puts each image's "
                         "reading into its first question, as `ask` does for a model with a copy head "
                         "(`ko-hypervl model copy-head`).", ReadingsSettings, _read_images)

    show = groups.add_parser("show", help="write a contact sheet PNG of random samples with their Q/A",
                             description="Write a contact sheet of random samples of a rendered or imported dataset.")
    show.add_argument("dataset", type=Path, help="a folder written by `corpora build` or `corpora import`")
    show.add_argument("--out", type=Path, default=None, help="PNG path (default: DATASET/contact_sheet_SPLIT.png)")
    show.add_argument("--split", default="train", help="which split (default: train)")
    show.add_argument("--kind", default=None, help="only samples of this kind")
    show.add_argument("-n", "--count", type=int, default=12, help="how many samples (default: 12)")
    show.add_argument("--columns", type=int, default=4, help="samples per row (default: 4)")
    show.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    show.add_argument("--cell-width", type=int, default=420, help="width of one sample in pixels (default: 420)")
    show.set_defaults(func=_show)

    read = groups.add_parser("import", help="read your own data (LLaVA JSON/JSONL or multiple-choice VQA tables)",
                             description="Read a LLaVA-style conversation file or a multiple-choice VQA table "
                                         "(CSV/TSV/JSON/JSONL: image, question, choices, answer) into the project's "
                                         "dataset format and save it.")
    read.add_argument("path", type=Path, help="the record file")
    read.add_argument("--out", type=Path, required=True, help="output folder (datasets.save_to_disk)")
    read.add_argument("--format", default="auto", choices=("auto", "llava", "multiple_choice"),
                      help="record format (default: auto: sniffed from the records)")
    read.add_argument("--image-dir", type=Path, default=None, help="where image paths are relative to "
                                                                  "(default: the record file's folder)")
    read.add_argument("--on-error", default="stop", choices=("stop", "skip"),
                      help="stop at the first bad record, or skip bad records and report them (default: stop)")
    read.add_argument("--split", default="train", help="the split name to save the records as (default: train)")
    read.set_defaults(func=_import)

    ocr = groups.add_parser("tesseract", help="Tesseract OCR baseline: CER and how many answers OCR can read",
                            description="Run tesseract (kor) over a split of a rendered dataset: character error "
                                        "rate on transcriptions, and the share of answers found in the OCR text.")
    ocr.add_argument("dataset", type=Path, help="a folder written by `corpora build`")
    ocr.add_argument("--split", default="test", help="which split (default: test)")
    ocr.add_argument("--kind", nargs="+", default=["ocr", "charts", "tables"], help="kinds to include "
                                                                                  "(default: ocr charts tables)")
    ocr.add_argument("--limit", type=int, default=None, help="at most this many images")
    ocr.add_argument("--workers", type=int, default=2, help="parallel tesseract processes (default: 2)")
    ocr.add_argument("--json", type=Path, default=None, help="also write the report as JSON here")
    ocr.set_defaults(func=_tesseract)

    bench = groups.add_parser("bench", help="rendering speed per kind beside a matplotlib baseline",
                              description="Samples per second on one core for every kind, and for plain matplotlib "
                                          "bar charts of the same specs, measured in the same run.")
    bench.add_argument("--num", type=int, default=100, help="samples per kind (default: 100)")
    bench.add_argument("--seed", type=int, default=0)
    bench.set_defaults(func=_bench)


def _corpus_dir_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus-dir", type=Path, default=None,
                   help="the corpora/ folder (default: $KO_HYPERVL_CORPORA or the repository's corpora/)")


def _build(args: argparse.Namespace) -> int:
    from ..textcorpus.build import TextCorpusBuildSettings, build_text_corpus, summarize_genres

    manifest = build_text_corpus(settings_from_args(TextCorpusBuildSettings, args))
    total = sum(summarize_genres(manifest).values())
    for genre, chars in sorted(summarize_genres(manifest).items(), key=lambda kv: -kv[1]):
        print(f"{genre:20s} {chars:>12,} chars  {chars / total:6.1%}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    from ..textcorpus.card import render_card, write_card
    from ..textcorpus.load import read_manifest

    table = render_card(args.corpus_dir, settings_from_args(SplitSettings, args))
    print(table)
    if args.write:
        root, _ = read_manifest(args.corpus_dir)
        write_card(root / "README.md", table)
        print(f"written to {root / 'README.md'}")
    return 0


def _sample(args: argparse.Namespace) -> int:
    from ..textcorpus import load_text_corpus

    ds = load_text_corpus(args.corpus_dir)[args.split]
    if args.source:
        ds = ds.filter(lambda s: s == args.source, input_columns="source")
    if len(ds) == 0:
        raise ValueError(f"no documents in split {args.split!r}" + (f" from source {args.source!r}" if args.source else ""))
    rng = random.Random(args.seed)
    for i in rng.sample(range(len(ds)), min(args.n, len(ds))):
        row = ds[i]
        lines = row["text"].split("\n")
        print(f"── {row['source']} / {row['id']} ({row['genre']}, {len(lines)} lines)")
        for line in lines[:5]:
            print("   " + (line if len(line) <= 120 else line[:119] + "…"))
    return 0


def _build_images(args: argparse.Namespace) -> int:
    from ..imagecorpus.build import ImageCorpusSettings, build_image_corpus

    settings = settings_from_args(ImageCorpusSettings, args)
    _, info = build_image_corpus(settings)
    rows = ", ".join(f"{split} {n:,}" for split, n in info["rows"].items())
    print(f"wrote {settings.out}: {rows} ({info['samples_per_second']:.1f} samples/s with {settings.workers} workers)")
    return 0


def _read_images(args: argparse.Namespace) -> int:
    from ..training.readings import ReadingsSettings, add_readings

    summary = add_readings(settings_from_args(ReadingsSettings, args))
    rows = ", ".join(f"{split} {n:,}" for split, n in summary["rows"].items())
    print(f"wrote {args.out}: {rows} read in {summary['seconds']:.0f} s ({summary['decoder']})")
    return 0


def _show(args: argparse.Namespace) -> int:
    from ..imagecorpus.show import write_contact_sheet

    if args.count <= 0:
        raise ValueError("--count must be at least 1")
    out = write_contact_sheet(args.dataset, args.out, split=args.split, count=args.count, seed=args.seed,
                              kind=args.kind, columns=args.columns, cell_width=args.cell_width)
    print(f"wrote {out}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from datasets import DatasetDict

    from ..imagecorpus.readers import read_user_data

    dataset, problems = read_user_data(args.path, format=args.format, image_dir=args.image_dir, on_error=args.on_error)
    for problem in problems:
        print(f"skipped {problem}")
    DatasetDict({args.split: dataset}).save_to_disk(str(args.out))
    print(f"wrote {args.out}: {len(dataset):,} records" + (f", {len(problems)} skipped" if problems else ""))
    return 0


def _tesseract(args: argparse.Namespace) -> int:
    import json

    from ..imagecorpus.records import load_split
    from ..imagecorpus.tesseract import run_tesseract_baseline

    ds = load_split(args.dataset, args.split, args.kind)
    report = run_tesseract_baseline(ds, limit=args.limit, workers=args.workers)
    print(report.to_markdown())
    if args.json:
        args.json.write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from ..imagecorpus.bench import measure_rendering

    if args.num <= 0:
        raise ValueError("--num must be at least 1")
    rows = measure_rendering(args.num, args.seed)
    baseline = rows[-1].per_second
    print(f"{'renderer':36s} {'samples':>8s} {'samples/s':>10s} {'vs baseline':>12s}")
    for row in rows:
        print(f"{row.name:36s} {row.samples:8d} {row.per_second:10.1f} {row.per_second / baseline:11.2f}x")
    mean = sum(r.samples for r in rows[:-1]) / sum(r.seconds for r in rows[:-1])
    print(f"{'ko-hypervl, all kinds (one core)':36s} {sum(r.samples for r in rows[:-1]):8d} {mean:10.1f} "
          f"{mean / baseline:11.2f}x")
    return 0
