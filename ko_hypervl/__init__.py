"""ko-hypervl: a Korean-first small vision-language model toolkit.

The public surface is re-exported here; everything else is an implementation detail.
"""

__version__ = "0.1.0"

from .configuration import KoHyperVLConfig, KoViTConfig  # noqa: E402
from .evaluation import EvalReport, EvalSettings, evaluate  # noqa: E402
from .imagecorpus import (  # noqa: E402
    ImageCorpusSettings, ReaderError, build_image_corpus, read_llava, read_multiple_choice, read_user_data,
)
from .inference import Answer, KoHyperVL, VRCDecision, load  # noqa: E402
from .model import (  # noqa: E402
    KoHyperVLForConditionalGeneration, ModelBuildSettings, build_model, transfer_vocabulary,
)
from .model.lora import LoraSettings, attach_lora  # noqa: E402
from .processing import ImageInputError, KoHyperVLImageProcessor, KoHyperVLProcessor, load_image  # noqa: E402
from .checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from .textcorpus import CorpusError, SplitSettings, load_eval_text, load_text_corpus  # noqa: E402
from .tokenization import KoHyperVLTokenizer, load_tokenizer, tokenize_dataset  # noqa: E402
from .training import (  # noqa: E402
    AlignSettings, CopySettings, DCLSettings, LMSettings, LoraDataSettings, ReadSettings, SFTSettings, TrainSettings,
    train_copy, train_lm, train_lora, train_read, train_vision_language,
)
from .training.pipeline import PipelineSettings, run_pipeline  # noqa: E402
from .training.vrc import VRCSettings, train_vrc  # noqa: E402

__all__ = [
    "Answer", "EvalReport", "EvalSettings", "ImageInputError", "KoHyperVL", "KoHyperVLConfig",
    "KoHyperVLForConditionalGeneration", "KoHyperVLImageProcessor", "KoHyperVLProcessor", "KoViTConfig",
    "LoraSettings", "ModelBuildSettings", "VRCDecision", "attach_lora", "build_model", "evaluate", "load",
    "load_checkpoint", "load_image", "save_checkpoint", "transfer_vocabulary", "CorpusError", "ImageCorpusSettings",
    "ReaderError", "build_image_corpus", "read_llava", "read_multiple_choice", "read_user_data", "KoHyperVLTokenizer",
    "SplitSettings", "__version__", "load_eval_text", "load_text_corpus", "load_tokenizer", "tokenize_dataset",
    "AlignSettings", "CopySettings", "DCLSettings", "LMSettings", "LoraDataSettings", "PipelineSettings", "ReadSettings", "SFTSettings",
    "TrainSettings", "VRCSettings", "run_pipeline", "train_copy", "train_lm", "train_lora", "train_read", "train_vision_language",
    "train_vrc",
]
