"""The morpheme-aware Korean tokenizer: training, the transformers class, metrics and evaluation."""

from .batch import tokenize_dataset
from .bundled import bundled_tokenizer_dir
from .hf import KoHyperVLTokenizer, load_tokenizer
from .specials import SPECIAL_TOKENS
from .train import TokenizerTrainSettings, train_tokenizer

__all__ = [
    "KoHyperVLTokenizer", "SPECIAL_TOKENS", "TokenizerTrainSettings", "bundled_tokenizer_dir", "load_tokenizer",
    "tokenize_dataset", "train_tokenizer",
]
