"""Fixtures shared by several test modules."""

from __future__ import annotations

import pytest

from ko_hypervl.checkpoint import save_checkpoint
from ko_hypervl.model.build import ModelBuildSettings, build_model
from ko_hypervl.training.pipeline import RECIPES


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny untrained checkpoint folder (the smoke recipe's model), the model and its processor."""
    model, processor = build_model(ModelBuildSettings(**RECIPES["smoke"].model))
    directory = tmp_path_factory.mktemp("tiny") / "init"
    save_checkpoint(model, processor, directory)
    return directory, model, processor
