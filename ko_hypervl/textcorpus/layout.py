"""Where the committed corpus lives."""

from __future__ import annotations

import os
from pathlib import Path

MANIFEST_NAME = "manifest.json"
ENV_VAR = "KO_HYPERVL_CORPORA"


def default_corpora_dir() -> Path:
    """``$KO_HYPERVL_CORPORA`` if set, else the repository's ``corpora/`` beside the package."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "corpora"
