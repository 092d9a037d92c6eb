"""Stage script: `python training/sft_train.py --help` is `ko-hypervl train sft --help` (the logic is in ko_hypervl.training)."""

import sys

from ko_hypervl.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", "sft", *sys.argv[1:]]))
