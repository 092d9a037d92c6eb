"""The tokenizer as a transformers fast tokenizer, registered with ``AutoTokenizer``.

Encoding is plain ``tokenizers`` byte-level BPE (no Kiwi, no custom code at encode time), so the same
``tokenizer.json`` also runs in ``tokenizers.Tokenizer.from_file`` and other runtimes. This class adds
what a demanding caller expects from a library: clear errors for non-string input and lone surrogates,
and bounded-memory encoding of very long text.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from transformers import AutoConfig, AutoTokenizer
from transformers.tokenization_utils_tokenizers import TokenizersBackend

from ..configuration import KoHyperVLConfig
from . import specials


def _check_text(value, what: str = "text") -> None:
    """Raise TypeError for non-strings and ValueError for strings that are not valid Unicode text."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(
                f"{what} contains a lone surrogate {value[exc.start]!r} at position {exc.start}; "
                "it is not valid Unicode text (decode bytes with errors='replace' or fix the source)"
            ) from None
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_text(item, f"{what}[{i}]")
    elif value is not None:
        raise TypeError(f"{what} must be str or a list of str, not {type(value).__name__}")


def is_safe_cut(text: str, cut: int, spans_words: bool = False) -> bool:
    """Whether splitting ``text`` at ``cut`` leaves byte-level pre-tokenization unchanged.

    The pre-tokenizer attaches one leading space to the following word and keeps a newline apart from
    the word before it, so a cut right before a single space between two non-spaces, or right before a
    newline that follows a non-space, separates the same pre-tokens the whole text has. With phrase
    joins (``spans_words``) a pre-token runs across single spaces, so only the newline cut is safe.
    """
    if not 0 < cut < len(text) or text[cut - 1].isspace():
        return False
    if text[cut] == "\n":
        return True
    return not spans_words and text[cut] == " " and cut + 1 < len(text) and not text[cut + 1].isspace()


def chunk_boundaries(text: str, chunk_chars: int, spans_words: bool = False) -> Iterator[tuple[int, int]]:
    """``(start, end)`` chunks of at most ``chunk_chars`` characters, cut at safe positions.

    The ids of the chunks, concatenated, equal the ids of the whole text wherever every cut is safe.
    Only a window of ``chunk_chars // 2`` with no safe cut at all (e.g. a long digit run; for a phrase
    tokenizer, a long paragraph without a line break) is cut hard; decoding still gives the text back
    exactly.
    """
    start, n = 0, len(text)
    while n - start > chunk_chars:
        cut = start + chunk_chars
        lo = start + chunk_chars // 2
        while cut > lo and not is_safe_cut(text, cut, spans_words):
            cut -= 1
        if cut == lo:
            cut = start + chunk_chars
        yield start, cut
        start = cut
    yield start, n


class KoHyperVLTokenizer(TokenizersBackend):
    """Morpheme-aware Korean byte-level BPE (see ``ko_hypervl.tokenization.train``)."""

    # No __init__ on purpose: transformers loads tokenizer.json verbatim only for subclasses without one
    # (otherwise it rebuilds the backend from vocab and merges). Special tokens and the chat template
    # come from tokenizer_config.json, written by ``wrap`` + ``save_pretrained``.
    model_input_names = ["input_ids", "attention_mask"]

    @property
    def image_token_id(self) -> int:
        return self.convert_tokens_to_ids(specials.IMAGE)

    def _encode_plus(self, text, text_pair=None, *args, **kwargs):
        _check_text(text)
        _check_text(text_pair, "text_pair")
        return super()._encode_plus(text, text_pair, *args, **kwargs)

    def encode_long(self, text: str, chunk_chars: int = 1 << 20) -> list[int]:
        """Ids of arbitrarily long text, encoded chunk by chunk so memory stays bounded by the chunk.

        Equal to ``encode(text, add_special_tokens=False)`` whenever the text has a safe cut (a space or
        newline; a newline for a phrase tokenizer) in every half-chunk window (see ``chunk_boundaries``);
        exact round trip always.
        """
        from .train import spans_words

        _check_text(text)
        ids: list[int] = []
        for start, end in chunk_boundaries(text, chunk_chars, spans_words(self._tokenizer)):
            ids.extend(self._tokenizer.encode(text[start:end], add_special_tokens=False).ids)
        return ids


AutoConfig.register(KoHyperVLConfig.model_type, KoHyperVLConfig, exist_ok=True)
AutoTokenizer.register(KoHyperVLConfig, tokenizer_class=KoHyperVLTokenizer, exist_ok=True)


def wrap(backend, name_or_path: str = "") -> KoHyperVLTokenizer:
    """A ``KoHyperVLTokenizer`` around a trained ``tokenizers.Tokenizer``."""
    return KoHyperVLTokenizer(
        tokenizer_object=backend, name_or_path=name_or_path,
        bos_token=specials.BOS, eos_token=specials.EOS, pad_token=specials.PAD, unk_token=specials.UNK,
        chat_template=specials.CHAT_TEMPLATE, extra_special_tokens={"image_token": specials.IMAGE},
    )


def load_tokenizer(path: str | os.PathLike | None = None) -> KoHyperVLTokenizer:
    """Load a tokenizer directory (default: the bundled one), with errors that name the bad file."""
    from .bundled import bundled_tokenizer_dir

    directory = Path(path) if path is not None else bundled_tokenizer_dir()
    if not directory.is_dir():
        raise FileNotFoundError(f"tokenizer directory not found: {directory}")
    tokenizer_json = directory / "tokenizer.json"
    if not tokenizer_json.is_file():
        raise FileNotFoundError(f"tokenizer file missing: {tokenizer_json}")
    try:
        return KoHyperVLTokenizer.from_pretrained(str(directory))
    except Exception as exc:
        _raise_naming_the_broken_file(directory, exc)


def _raise_naming_the_broken_file(directory: Path, exc: Exception) -> None:
    """transformers' load errors rarely say which file is wrong: find it, or re-raise as it was."""
    from tokenizers import Tokenizer

    tokenizer_json = directory / "tokenizer.json"
    try:
        Tokenizer.from_file(str(tokenizer_json))
    except Exception as broken:  # tokenizers raises a bare Exception for malformed JSON
        raise ValueError(f"tokenizer file is corrupt: {tokenizer_json} ({broken})") from None
    config = directory / "tokenizer_config.json"
    if config.exists():
        try:
            json.loads(config.read_text(encoding="utf-8"))
        except json.JSONDecodeError as broken:
            raise ValueError(f"tokenizer config is corrupt: {config} ({broken})") from None
    raise exc
