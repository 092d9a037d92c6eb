"""Stage script: `python training/align_train.py --help` is `ko-hypervl train align --help` (the logic is in ko_hypervl.training)."""

import sys

from ko_hypervl.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", "align", *sys.argv[1:]]))
