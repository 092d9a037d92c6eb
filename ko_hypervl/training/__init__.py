"""Training: one loop (accelerate, resumable), the stages (copying, LM, reading, alignment, SFT, DCL, VRC, LoRA) and the recipe."""

from .copying import CopySettings
from .loop import TrainResult, train
from .reading import ReadSettings
from .run import LoraDataSettings, train_copy, train_lm, train_lora, train_read, train_vision_language
from .settings import TrainSettings, learning_rate_at
from .stages import AlignSettings, DCLSettings, LMSettings, SFTSettings, VisionLanguageSettings

__all__ = [
    "AlignSettings", "CopySettings", "DCLSettings", "LMSettings", "LoraDataSettings", "ReadSettings", "SFTSettings", "TrainResult",
    "TrainSettings", "VisionLanguageSettings", "learning_rate_at", "train", "train_copy", "train_lm", "train_lora", "train_read",
    "train_vision_language",
]
