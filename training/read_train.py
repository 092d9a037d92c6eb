"""Stage script: `python training/read_train.py --help` is `ko-hypervl train read --help` (the logic is in ko_hypervl.training)."""

import sys

from ko_hypervl.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", "read", *sys.argv[1:]]))
