"""The model: vision encoders, projector, VRC, the VLM that merges them into a causal LM, and its assembly."""

from .build import ModelBuildSettings, build_model
from .modeling import KoHyperVLForConditionalGeneration, KoHyperVLOutput
from .vision import KoViTModel
from .vocab_transfer import TransferReport, transfer_embeddings, transfer_vocabulary

__all__ = [
    "KoHyperVLForConditionalGeneration", "KoHyperVLOutput", "KoViTModel", "ModelBuildSettings", "TransferReport",
    "build_model", "transfer_embeddings", "transfer_vocabulary",
]
