"""Stage script: `python training/vrc_train.py --help` is `ko-hypervl train vrc --help` (the logic is in ko_hypervl.training)."""

import sys

from ko_hypervl.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", "vrc", *sys.argv[1:]]))
