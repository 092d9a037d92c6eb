"""ko-hypervl: a Korean-first small vision-language model toolkit.

The public surface is re-exported here; everything else is an implementation detail.
"""

__version__ = "0.1.0"

from .textcorpus import CorpusError, SplitSettings, load_eval_text, load_text_corpus  # noqa: E402
from .tokenization import KoHyperVLTokenizer, load_tokenizer, tokenize_dataset  # noqa: E402

__all__ = [
    "CorpusError", "KoHyperVLTokenizer", "SplitSettings", "__version__", "load_eval_text", "load_text_corpus",
    "load_tokenizer", "tokenize_dataset",
]
