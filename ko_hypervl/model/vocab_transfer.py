"""Vocabulary transfer: put our Korean tokenizer on a pretrained causal LM without random embeddings.

Swapping the tokenizer of a pretrained model invalidates its embedding matrix: row ``i`` meant the
old token ``i``. Random rows for the new vocabulary throw away everything the model knows about the
text those tokens spell. Fast vocabulary transfer (Gee et al., 2022; FOCUS and WECHSEL refine it)
instead initialises every new token from the old model's own view of the same text:

* copy: the new token's exact string is an old token, so its old row is taken as is;
* average: otherwise the token's surface text is encoded with the OLD tokenizer and the mean of
  the old rows of those pieces is used. A byte-level token that is only part of a UTF-8 character
  has no text: it is cut greedily into the longest old byte-level tokens (old byte tokens, such as
  ``<0xEB>``, for a SentencePiece model with byte fallback);
* specials: bos/eos/pad/unk take the old token of the same role (pad falls back to the old eos);
  other specials (``<image>``, chat roles, tile markers) are copied when the old vocabulary has the
  same string and otherwise get the mean of all old rows, a neutral start the fine-tune moves;
* fallback: anything left also gets the mean of all old rows.

The same recipe is applied to an untied output head, so a new token is predicted where the model
predicted the text it spells. Byte-level BPE (GPT-2, Qwen2/3, Llama 3, ours) is detected from the
backend's decoder or pre-tokenizer being ``ByteLevel``; it spells text as GPT-2's byte→character
table, which is undone here to get the raw bytes of a token.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..tokenization.bytelevel import bytes_to_unicode, unicode_to_byte

_SPACE = "\u2581"  # SentencePiece's visible space


@dataclass
class TransferReport:
    copied: int = 0  # exact string (or same-role special) found in the old vocabulary
    averaged: int = 0  # mean of the old rows of the old tokenizer's pieces
    fallback: int = 0  # mean of all old rows
    specials_mapped: dict[str, str] = field(default_factory=dict)  # new special -> old token used


def _backend_state(tokenizer) -> str:
    """The JSON of the backend's normalizer, pre-tokenizer and decoder (small, unlike to_str())."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    parts = [getattr(backend, name, None) for name in ("normalizer", "pre_tokenizer", "decoder")]
    return " ".join(p.__getstate__().decode("utf-8", "replace") for p in parts if p is not None)


def _is_byte_level(tokenizer, vocab: dict[str, int]) -> bool:
    if getattr(tokenizer, "backend_tokenizer", None) is not None:
        return '"ByteLevel"' in _backend_state(tokenizer)
    # A slow tokenizer has no backend: byte-level iff all 256 byte symbols are tokens.
    return all(ch in vocab for ch in bytes_to_unicode().values())


def _uses_metaspace(tokenizer) -> bool:
    state = _backend_state(tokenizer)
    return _SPACE in state or "\\u2581" in state


def _token_bytes(token: str, byte_level: bool) -> bytes:
    """Raw bytes a non-special token stands for (SentencePiece ``<0xXX>`` byte tokens included)."""
    if byte_level:
        table = unicode_to_byte()
        if all(ch in table for ch in token):
            return bytes(table[ch] for ch in token)
    elif len(token) == 6 and token.startswith("<0x") and token.endswith(">"):
        try:
            return bytes([int(token[3:5], 16)])
        except ValueError:
            pass
    return token.replace(_SPACE, " ").encode("utf-8")


class _OldSide:
    """How text and bytes are spelled in the old vocabulary."""

    def __init__(self, tokenizer, n_rows: int):
        self.tokenizer = tokenizer
        self.vocab = {t: i for t, i in tokenizer.get_vocab().items() if i < n_rows}
        self.byte_level = _is_byte_level(tokenizer, self.vocab)
        self.metaspace = not self.byte_level and _uses_metaspace(tokenizer)
        self.longest = max(map(len, self.vocab), default=1)

    def spell(self, raw: bytes) -> str:
        return "".join(bytes_to_unicode()[b] for b in raw)

    def exact(self, text: str | None, raw: bytes) -> int | None:
        """The old id of exactly this token, if the old vocabulary has it."""
        if self.byte_level:
            return self.vocab.get(self.spell(raw))
        if text is None:
            return self.vocab.get(f"<0x{raw[0]:02X}>") if len(raw) == 1 else None
        return self.vocab.get(text.replace(" ", _SPACE) if self.metaspace else text)

    def byte_pieces(self, raw: bytes) -> list[int]:
        """Old ids covering ``raw``: greedy longest match on a byte-level vocabulary, else byte tokens."""
        if not self.byte_level:
            return [self.vocab[f"<0x{b:02X}>"] for b in raw if f"<0x{b:02X}>" in self.vocab]
        spelled, ids, start = self.spell(raw), [], 0
        while start < len(spelled):
            for end in range(min(len(spelled), start + self.longest), start, -1):
                if spelled[start:end] in self.vocab:
                    ids.append(self.vocab[spelled[start:end]])
                    break
            else:
                end = start + 1  # byte missing from the old vocabulary: skip it
            start = end
        return ids


def _role_map(old_tokenizer, new_tokenizer) -> dict[str, str]:
    """New special token -> old token with the same role (pad borrows eos, as many LMs do)."""
    old = {role: getattr(old_tokenizer, f"{role}_token", None) for role in ("bos", "eos", "pad", "unk")}
    old["pad"] = old["pad"] or old["eos"]
    mapping = {}
    for role, old_token in old.items():
        new_token = getattr(new_tokenizer, f"{role}_token", None)
        if new_token is not None and old_token is not None:
            mapping.setdefault(str(new_token), str(old_token))
    return mapping


def transfer_embeddings(old_embeddings: torch.Tensor, old_tokenizer, new_tokenizer) -> tuple[torch.Tensor, TransferReport]:
    """Rows for every id of ``new_tokenizer`` built from ``old_embeddings`` (old_vocab × hidden).

    Returns a ``(len(new_tokenizer), hidden)`` tensor of the same dtype and device, and the counts.
    Rows of ``old_embeddings`` past ``len(old_tokenizer)`` (vocabulary padding) are never used.
    """
    old_rows = min(len(old_tokenizer), old_embeddings.shape[0])
    pieces, report = _plan(old_tokenizer, new_tokenizer, old_rows)
    return _segment_means(old_embeddings, old_rows, pieces), report


def _plan(old_tokenizer, new_tokenizer, old_rows: int) -> tuple[list[list[int]], TransferReport]:
    """For each new id, the old ids whose rows it averages (one id: a copy; none: the fallback)."""
    old = _OldSide(old_tokenizer, old_rows)
    new_byte_level = _is_byte_level(new_tokenizer, new_tokenizer.get_vocab())
    added = new_tokenizer.added_tokens_decoder
    new_specials = set(new_tokenizer.all_special_tokens)
    roles = _role_map(old_tokenizer, new_tokenizer)
    unk = getattr(old_tokenizer, "unk_token_id", None)

    report = TransferReport()
    n_new = len(new_tokenizer)
    pieces: list[list[int]] = [[] for _ in range(n_new)]  # empty = fallback
    to_encode: list[tuple[int, str]] = []
    for i, token in enumerate(new_tokenizer.convert_ids_to_tokens(list(range(n_new)))):
        if token is None:  # a hole in the id space
            continue
        if token in new_specials or (i in added and added[i].special):
            source = roles.get(token, token)
            if source in old.vocab:
                pieces[i] = [old.vocab[source]]
                report.specials_mapped[token] = source
                report.copied += 1
            continue
        # Added (non-special) tokens are stored as plain text, learned ones in the model's alphabet.
        raw = added[i].content.encode("utf-8") if i in added else _token_bytes(token, new_byte_level)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:  # part of a multi-byte character: only its bytes mean anything
            text = None
        exact = old.exact(text, raw) if raw else None
        if exact is not None:
            pieces[i] = [exact]
            report.copied += 1
        elif text is None:
            pieces[i] = old.byte_pieces(raw)
            report.averaged += bool(pieces[i])
        elif text:
            to_encode.append((i, text))  # keeps a leading space, so old " word" pieces are used

    if to_encode:
        # One batched call: the Rust backend encodes a 32k vocabulary in well under a second.
        encoded = old_tokenizer([t for _, t in to_encode], add_special_tokens=False)["input_ids"]
        for (i, _), ids in zip(to_encode, encoded):
            pieces[i] = [j for j in ids if j != unk and j < old_rows]  # unk carries no meaning
            report.averaged += bool(pieces[i])
    report.fallback = sum(not ids for ids in pieces)
    return pieces, report


def _segment_means(old_embeddings: torch.Tensor, old_rows: int, pieces: list[list[int]]) -> torch.Tensor:
    """Row ``i`` = mean of ``old_embeddings[pieces[i]]``, or of all old rows where ``pieces[i]`` is empty."""
    source = old_embeddings.detach().float()  # sum in float32: bf16 sums of many rows lose digits
    flat = torch.tensor([j for ids in pieces for j in ids], dtype=torch.long, device=source.device)
    segment = torch.tensor([i for i, ids in enumerate(pieces) for _ in ids], dtype=torch.long, device=source.device)
    counts = torch.tensor([len(ids) for ids in pieces], dtype=source.dtype, device=source.device)
    out = source[:old_rows].mean(0).expand(len(pieces), -1).clone()
    sums = torch.zeros_like(out).index_add_(0, segment, source[flat])
    has = counts > 0
    out[has] = sums[has] / counts[has, None]
    return out.to(old_embeddings.dtype)


def _set_token_ids(config, tokenizer) -> None:
    for role in ("bos", "eos", "pad"):
        if hasattr(config, f"{role}_token_id") or getattr(tokenizer, f"{role}_token", None) is not None:
            setattr(config, f"{role}_token_id", getattr(tokenizer, f"{role}_token_id", None))


def transfer_vocabulary(model, old_tokenizer, new_tokenizer) -> TransferReport:
    """Swap ``new_tokenizer`` onto ``model`` (a transformers causal LM) in place; returns the report.

    The input embeddings, and an untied output head separately, get ``transfer_embeddings`` rows; a
    tied head keeps sharing the input matrix. ``vocab_size`` and the bos/eos/pad ids of the config and
    the generation config follow the new tokenizer.
    """
    inputs, outputs = model.get_input_embeddings(), model.get_output_embeddings()
    tied = outputs is not None and outputs.weight is inputs.weight
    old_rows = min(len(old_tokenizer), inputs.weight.shape[0])
    pieces, report = _plan(old_tokenizer, new_tokenizer, old_rows)  # once: the head reuses it
    new_in = _segment_means(inputs.weight, old_rows, pieces)
    # An untied head has its own rows: mean of the pieces' output rows, so a new token scores
    # like the text it spells.
    new_out = None if tied or outputs is None else _segment_means(outputs.weight, old_rows, pieces)
    # mean_resizing=False: its covariance-based init costs time and is overwritten right below.
    model.resize_token_embeddings(len(new_tokenizer), mean_resizing=False)
    inputs, outputs = model.get_input_embeddings(), model.get_output_embeddings()
    with torch.no_grad():
        inputs.weight.copy_(new_in)
        if new_out is not None:
            outputs.weight.copy_(new_out)
    if tied and outputs.weight is not inputs.weight:
        model.tie_weights()  # resizing must not silently untie a tied head
    text_config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    text_config.vocab_size = len(new_tokenizer)
    if hasattr(model.config, "vocab_size"):
        model.config.vocab_size = len(new_tokenizer)
    _set_token_ids(model.config, new_tokenizer)
    if getattr(model, "generation_config", None) is not None:
        _set_token_ids(model.generation_config, new_tokenizer)
    return report
