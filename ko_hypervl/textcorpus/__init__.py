"""The Korean text corpus: licensed sources, cleaned and deduplicated, with document-level splits."""

from .load import CorpusError, SplitSettings, load_eval_text, load_text_corpus, split_of

__all__ = ["CorpusError", "SplitSettings", "load_eval_text", "load_text_corpus", "split_of"]
