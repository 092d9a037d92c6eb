"""Join the training splits of corpora read by `ko-hypervl corpora read` into one corpus to instruction-tune on.

The first corpus gives the validation and test splits (they stay those of the corpus the card evaluates);
every corpus gives its training rows. Used for the copy-head runs of docs/ablations/copying.md §8:

    python docs/ablations/merge_read_corpora.py runs/cp-mix runs/data-ocr-read runs/read-data-read
"""

import argparse
from pathlib import Path

from datasets import DatasetDict, concatenate_datasets, load_from_disk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="folder for the joined corpus")
    parser.add_argument("corpora", type=Path, nargs="+", help="read corpora; the first gives validation and test")
    args = parser.parse_args()
    if args.out.exists():
        raise SystemExit(f"{args.out} exists; choose a new folder")
    loaded = [load_from_disk(str(path)) for path in args.corpora]
    missing = [str(path) for path, corpus in zip(args.corpora, loaded) if "reading" not in corpus["train"].column_names]
    if missing:
        raise SystemExit(f"not read by `ko-hypervl corpora read` (no reading column): {', '.join(missing)}")
    joined = {"train": concatenate_datasets([corpus["train"] for corpus in loaded])}
    joined.update({split: rows for split, rows in loaded[0].items() if split != "train"})
    DatasetDict(joined).save_to_disk(str(args.out))
    print(f"wrote {args.out}: " + ", ".join(f"{split} {len(rows):,}" for split, rows in joined.items()))


if __name__ == "__main__":
    main()
