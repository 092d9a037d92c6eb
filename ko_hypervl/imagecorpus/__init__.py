"""Korean image-text corpora: rendered charts, tables, exam pages and OCR lines with exact Q/A,
readers for users' own data, and the Tesseract baseline."""

from .build import ImageCorpusSettings, build_image_corpus, render_sample
from .fonts import FontError
from .readers import ReaderError, read_llava, read_multiple_choice, read_user_data
from .records import QA, features

__all__ = [
    "QA", "FontError", "ImageCorpusSettings", "ReaderError", "build_image_corpus", "features", "read_llava",
    "read_multiple_choice", "read_user_data", "render_sample",
]
