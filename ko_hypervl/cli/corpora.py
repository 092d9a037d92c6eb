"""``ko-hypervl corpora``: the Korean text corpus (and, later, the rendered image corpora)."""

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
