"""ko-hypervl: a Korean-first small vision-language model toolkit.

The public surface is re-exported here; everything else is an implementation detail.
"""

__version__ = "0.1.0"

from .imagecorpus import (  # noqa: E402
    ImageCorpusSettings, ReaderError, build_image_corpus, read_llava, read_multiple_choice, read_user_data,
)
from .textcorpus import CorpusError, SplitSettings, load_eval_text, load_text_corpus  # noqa: E402
from .tokenization import KoHyperVLTokenizer, load_tokenizer, tokenize_dataset  # noqa: E402

__all__ = [
    "CorpusError", "ImageCorpusSettings", "ReaderError", "build_image_corpus", "read_llava", "read_multiple_choice",
    "read_user_data", "KoHyperVLTokenizer", "SplitSettings", "__version__", "load_eval_text", "load_text_corpus",
    "load_tokenizer", "tokenize_dataset",
]
