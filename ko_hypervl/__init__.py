"""ko-hypervl: a Korean-first small vision-language model toolkit.

The public surface is re-exported here; everything else is an implementation detail. Names are imported on
first use (PEP 562), so ``import ko_hypervl`` and the ``ko-hypervl`` command line do not load torch and
transformers until something needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module (relative to this package) that defines it
_EXPORTS = {
    "configuration": ("KoHyperVLConfig", "KoViTConfig"),
    "evaluation": ("EvalReport", "EvalSettings", "evaluate"),
    "imagecorpus": ("ImageCorpusSettings", "ReaderError", "build_image_corpus", "read_llava", "read_multiple_choice",
                    "read_user_data"),
    "inference": ("Answer", "KoHyperVL", "VRCDecision", "load"),
    "model": ("KoHyperVLForConditionalGeneration", "ModelBuildSettings", "build_model", "transfer_vocabulary"),
    "model.lora": ("LoraSettings", "attach_lora"),
    "processing": ("ImageInputError", "KoHyperVLImageProcessor", "KoHyperVLProcessor", "load_image"),
    "checkpoint": ("load_checkpoint", "save_checkpoint"),
    "textcorpus": ("CorpusError", "SplitSettings", "load_eval_text", "load_text_corpus"),
    "tokenization": ("KoHyperVLTokenizer", "load_tokenizer", "tokenize_dataset"),
    "training": ("AlignSettings", "DCLSettings", "LMSettings", "LoraDataSettings", "ReadSettings", "SFTSettings",
                 "TrainSettings", "train_lm", "train_lora", "train_read", "train_vision_language"),
    "training.pipeline": ("PipelineSettings", "run_pipeline"),
    "training.vrc": ("VRCSettings", "train_vrc"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = ["__version__", *sorted(_MODULE_OF)]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'ko_hypervl' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value          # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODULE_OF))


if TYPE_CHECKING:   # for type checkers and IDEs, which do not run __getattr__
    from .checkpoint import load_checkpoint, save_checkpoint
    from .configuration import KoHyperVLConfig, KoViTConfig
    from .evaluation import EvalReport, EvalSettings, evaluate
    from .imagecorpus import (
        ImageCorpusSettings, ReaderError, build_image_corpus, read_llava, read_multiple_choice, read_user_data,
    )
    from .inference import Answer, KoHyperVL, VRCDecision, load
    from .model import KoHyperVLForConditionalGeneration, ModelBuildSettings, build_model, transfer_vocabulary
    from .model.lora import LoraSettings, attach_lora
    from .processing import ImageInputError, KoHyperVLImageProcessor, KoHyperVLProcessor, load_image
    from .textcorpus import CorpusError, SplitSettings, load_eval_text, load_text_corpus
    from .tokenization import KoHyperVLTokenizer, load_tokenizer, tokenize_dataset
    from .training import (
        AlignSettings, DCLSettings, LMSettings, LoraDataSettings, ReadSettings, SFTSettings, TrainSettings, train_lm,
        train_lora, train_read, train_vision_language,
    )
    from .training.pipeline import PipelineSettings, run_pipeline
    from .training.vrc import VRCSettings, train_vrc
