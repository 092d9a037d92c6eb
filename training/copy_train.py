"""Stage script: `python training/copy_train.py --help` is `ko-hypervl train copy --help` (the logic is in ko_hypervl.training)."""

import sys

from ko_hypervl.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", "copy", *sys.argv[1:]]))
