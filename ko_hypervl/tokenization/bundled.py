"""Where the bundled tokenizer ships inside the package."""

from pathlib import Path

BUNDLED_NAME = "ko-hypervl-32k"


def bundled_tokenizer_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "assets" / "tokenizer" / BUNDLED_NAME
