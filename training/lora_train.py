"""Stage script: `python training/lora_train.py --help` is `ko-hypervl train lora --help` (the logic is in ko_hypervl.training)."""

import sys

from ko_hypervl.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", "lora", *sys.argv[1:]]))
