"""``python demo/app.py [flags]`` is ``ko-hypervl demo [flags]``: the Gradio demo on the bundled model."""

import sys

from ko_hypervl.cli import main

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))
