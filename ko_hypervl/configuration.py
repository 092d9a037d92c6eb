"""The model configuration registered with transformers' Auto classes.

The vision/text sub-configurations arrive with the model (issue #5); the class exists from the start
so the tokenizer can be registered with ``AutoTokenizer`` under the project's ``model_type``.
"""

from __future__ import annotations

from transformers import PretrainedConfig


class KoHyperVLConfig(PretrainedConfig):
    model_type = "ko_hypervl"
