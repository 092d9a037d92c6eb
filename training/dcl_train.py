"""Stage script: `python training/dcl_train.py --help` is `ko-hypervl train dcl --help` (the logic is in ko_hypervl.training)."""

import sys

from ko_hypervl.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", "dcl", *sys.argv[1:]]))
