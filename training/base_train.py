"""Stage script: `python training/base_train.py --help` is `ko-hypervl train lm --help` (the logic is in ko_hypervl.training)."""

import sys

from ko_hypervl.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", "lm", *sys.argv[1:]]))
