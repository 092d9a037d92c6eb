"""Inputs to the model: image loading, tiling arithmetic, the image processor and the processor."""

from transformers import AutoImageProcessor, AutoProcessor

from ..configuration import KoHyperVLConfig
from .image_processor import KoHyperVLImageProcessor
from .images import ImageInputError, load_image
from .processor import KoHyperVLProcessor, image_prompt
from .tiling import TilePlan, full_resolution, plan_tiles

AutoImageProcessor.register(KoHyperVLConfig, slow_image_processor_class=KoHyperVLImageProcessor, exist_ok=True)
AutoProcessor.register(KoHyperVLConfig, KoHyperVLProcessor, exist_ok=True)

__all__ = [
    "ImageInputError", "KoHyperVLImageProcessor", "KoHyperVLProcessor", "TilePlan", "full_resolution", "image_prompt",
    "load_image", "plan_tiles",
]
