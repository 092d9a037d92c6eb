"""Bits per character of checkpoints' language models on held-out Korean text, side by side.

Loss per token cannot compare LMs with different tokenizers (a tokenizer with longer tokens has fewer,
harder tokens); loss per *character* of the same text can. The definition is the same for every model:

- the texts are the first documents of a corpus split (default: test, never trained on), the same for
  every model; blank documents are skipped, as in training;
- each document is encoded with ``add_special_tokens=False`` and followed by EOS, and the documents are
  concatenated: exactly the stream the LM stage trains on (``training.data.document_token_ids``);
- the stream is scored in windows of ``block_size`` tokens, each window's first input token being the
  previous window's last target, so every token after the first (EOS included) is predicted exactly
  once, with at most ``block_size - 1`` tokens of context (training sees the same lengths);
- bits per character = the summed negative log-likelihood of all predicted tokens, in bits, divided by
  the number of characters of the scored documents.

Beside it, the *copy gain*: consecutive spans of the same stream are each fed twice in a row, and the
gain is how many fewer nats per token the second copy costs than the first. An LM that can look back and
copy (what transcribing an image, or quoting a number off it, needs) predicts the second copy almost
for free; one that cannot pays the same twice (gain ≈ 0).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ..settings import setting, settings_dict
from ..textcorpus.load import SPLITS
from ..training.data import document_token_ids, is_document
from .errors import checkpoint_list

log = logging.getLogger(__name__)


@dataclass
class LMEvalSettings:
    models: list[str] = setting(help="checkpoint directories; the first (ours) is the reference the others are "
                                     "compared with")
    corpus: Path | None = setting(None, help="text corpus folder (default: the bundled corpora/)")
    split: str = setting("test", help="corpus split to score (the LM stage trains on train only)", choices=SPLITS)
    max_chars: int = setting(200_000, help="score the split's first documents up to this many characters "
                                           "(0: all); the same text for every model")
    block_size: int = setting(256, help="tokens per scored window (the tiny recipe's LM block size is 256)")
    copy_span: int = setting(64, help="tokens per span of the copy-gain measure (each span is fed twice in a "
                                      "row: 2 × span must fit the LM's context; 0: no copy measure)")
    copy_spans: int = setting(64, help="spans of the copy-gain measure, from the start of the scored stream")
    batch_size: int = setting(8, help="windows per forward pass")
    device: str | None = setting(None, help="torch device, e.g. cuda (default: cpu)")
    json_out: Path | None = setting(None, help="also write the rows and these settings to this JSON file")
    progress: bool = setting(True, help="show progress bars")

    def __post_init__(self) -> None:
        self.models = checkpoint_list(self.models)
        self.corpus = Path(self.corpus) if self.corpus is not None else None
        self.json_out = Path(self.json_out) if self.json_out is not None else None
        if self.split not in SPLITS:
            raise ValueError(f"unknown split {self.split!r}; choose from {', '.join(SPLITS)}")
        check_block_size(self.block_size)
        if self.batch_size < 1:
            raise ValueError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.max_chars < 0:
            raise ValueError(f"--max-chars cannot be negative, got {self.max_chars} (0 scores the whole split)")
        if self.copy_span < 0 or self.copy_span == 1 or self.copy_spans < 1:
            raise ValueError("--copy-span must be 0 (off) or at least 2 tokens, and --copy-spans at least 1")


def check_block_size(block_size: int) -> None:
    if block_size < 2:
        raise ValueError(f"the block size must be at least 2 tokens (one input, one target), got {block_size}")


def first_documents(texts: Sequence[str], max_chars: int) -> list[str]:
    """The non-blank documents in order, whole, while their characters total at most ``max_chars`` (0: all).

    When the first document alone is longer, it is cut at ``max_chars`` so there is always some text.
    """
    docs = [t for t in texts if is_document(t)]
    if not max_chars:
        return docs
    out: list[str] = []
    total = 0
    for text in docs:
        if total + len(text) > max_chars:
            if not out:
                out.append(text[:max_chars])
            break
        out.append(text)
        total += len(text)
    return out


def held_out_texts(corpus: Path | None, split: str, max_chars: int) -> list[str]:
    from ..textcorpus import load_text_corpus

    texts = first_documents(load_text_corpus(corpus)[split]["text"], max_chars)
    if not texts:
        raise ValueError(f"the {split!r} split of the text corpus has no text to score")
    return texts


def scoring_windows(num_tokens: int, block_size: int) -> list[tuple[int, int]]:
    """``(start, end)`` per window: input ``ids[start:end]``, targets ``ids[start+1:end]``.

    Consecutive windows share one token (the last target of one is the first input of the next), so
    the targets of all windows are ``ids[1:]``, each once; only the last window may be shorter.
    """
    check_block_size(block_size)
    step = block_size - 1
    return [(start, min(start + block_size, num_tokens)) for start in range(0, num_tokens - 1, step)]


def _check_stream(model, tokenizer, ids: list[int], block_size: int) -> None:
    config = getattr(model, "config", None)
    limit = getattr(getattr(config, "text_config", config), "max_position_embeddings", None)
    if limit and block_size > limit:
        raise ValueError(f"--block-size {block_size} is longer than the language model's context ({limit} tokens); "
                         "lower it")
    image_id = getattr(config, "image_token_id", None)
    if image_id is not None and image_id in ids:
        raise ValueError(f"the text contains the literal string {tokenizer.convert_ids_to_tokens(image_id)!r}, which "
                         "encodes as the image placeholder; remove it from the scored documents")


@torch.no_grad()
def stream_nll(model, ids: Sequence[int], block_size: int, batch_size: int, progress: bool = False) -> float:
    """Summed negative log-likelihood (nats) of ``ids[1:]``, scored in ``scoring_windows`` with ``model(input_ids=…).logits``."""
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"the batch size must be at least 1, got {batch_size}")
    windows = scoring_windows(len(ids), block_size)
    full = [w for w in windows if w[1] - w[0] == block_size]
    batches = [full[i:i + batch_size] for i in range(0, len(full), batch_size)]
    batches += [[w] for w in windows if w[1] - w[0] != block_size]   # the shorter last window, alone
    stream = torch.as_tensor(list(ids), dtype=torch.long)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total = 0.0   # a Python float (double): 10⁵ tokens of ~10 nats would lose digits in float32
    try:
        for batch in tqdm(batches, desc="scoring", unit="batch", disable=not progress):
            x = torch.stack([stream[start:end] for start, end in batch]).to(device)
            logits = model(input_ids=x).logits   # as LanguageModelStage.loss calls it
            total += torch.nn.functional.cross_entropy(
                logits[:, :-1].float().reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="sum").item()
    finally:
        model.train(was_training)
    return total


def language_model_bits_per_char(model, tokenizer, texts: Sequence[str], block_size: int = 256, batch_size: int = 8,
                                 progress: bool = False, copy_span: int = 0, copy_spans: int = 64) -> dict:
    """Bits per character of ``model`` on ``texts`` (see the module docstring for the exact definition).

    Returns ``bits_per_char``, ``nats_per_char``, ``bits_per_token`` (per predicted token), ``tokens`` (the
    stream, one EOS per document included), ``predicted_tokens`` (``tokens - 1``), ``chars``, ``documents``,
    ``tokens_per_char`` and the totals ``nats`` and ``bits``; with ``copy_span`` also ``copy_gain``'s figures
    on the same stream.
    """
    check_block_size(block_size)
    docs = [t for t in texts if is_document(t)]
    chars = sum(map(len, docs))
    if not chars:
        raise ValueError("no text to score: every document is empty or blank")
    ids = document_token_ids(tokenizer, docs, progress=progress)
    _check_stream(model, tokenizer, ids, block_size)
    nats = stream_nll(model, ids, block_size, batch_size, progress)
    bits = nats / math.log(2)
    predicted = len(ids) - 1
    copies = {}
    if copy_span:
        _check_stream(model, tokenizer, [], 2 * copy_span)
        copies = copy_gain(model, ids, copy_span, copy_spans, batch_size)
    return {"bits_per_char": bits / chars, "nats_per_char": nats / chars, "bits_per_token": bits / predicted,
            "tokens": len(ids), "predicted_tokens": predicted, "chars": chars, "documents": len(docs),
            "tokens_per_char": len(ids) / chars, "nats": nats, "bits": bits, **copies}


def repeated_spans(ids: Sequence[int], span: int, count: int) -> torch.Tensor:
    """``(spans, 2 · span)``: the stream's first ``count`` whole spans of ``span`` tokens, each written twice."""
    if span < 2:
        raise ValueError(f"a copy span must be at least 2 tokens, got {span}")
    spans = min(count, len(ids) // span)
    if spans == 0:
        raise ValueError(f"the text gives {len(ids)} tokens, fewer than one copy span of {span}; "
                         "lower --copy-span (0 skips the copy measure)")
    chunks = torch.as_tensor(list(ids[:spans * span]), dtype=torch.long).view(spans, span)
    return torch.cat([chunks, chunks], dim=1)


@torch.no_grad()
def copy_gain(model, ids: Sequence[int], span: int = 64, count: int = 64, batch_size: int = 8) -> dict:
    """Nats per token of each span's first copy and of its second (the same targets after the same previous
    token), and ``copy_gain_nats``: the first minus the second. The span's first token is not scored in
    either copy (the first has nothing before it)."""
    pairs = repeated_spans(ids, span, count)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    first = second = 0.0
    try:
        for batch in pairs.split(batch_size):
            x = batch.to(device)
            nll = torch.nn.functional.cross_entropy(model(input_ids=x).logits[:, :-1].float().transpose(1, 2),
                                                    x[:, 1:], reduction="none")
            first += nll[:, :span - 1].sum().item()
            second += nll[:, span:].sum().item()
    finally:
        model.train(was_training)
    targets = len(pairs) * (span - 1)
    return {"copy_first_nats": first / targets, "copy_second_nats": second / targets,
            "copy_gain_nats": (first - second) / targets, "copy_spans": len(pairs), "copy_span": span}


def evaluate_language_models(settings: LMEvalSettings) -> tuple[list[dict], str]:
    """Score every checkpoint's LM on the same held-out text; ``(rows, markdown table)``, rows in the given order."""
    from ..checkpoint import check_checkpoint_dir, load_checkpoint
    from .run import check_device

    directories = [check_checkpoint_dir(m) for m in settings.models]   # every path checked before any work
    check_device(settings.device)
    texts = held_out_texts(settings.corpus, settings.split, settings.max_chars)
    rows = []
    for name, directory in zip(settings.models, directories):
        model, processor = load_checkpoint(directory, device=settings.device)
        log.info("scoring %s on %d documents", name, len(texts))
        result = language_model_bits_per_char(model, processor.tokenizer, texts, settings.block_size,
                                              settings.batch_size, settings.progress, settings.copy_span,
                                              settings.copy_spans)
        rows.append({"model": name, "path": str(directory), "vocab_size": len(processor.tokenizer), **result})
        del model, processor
    for row in rows:
        row["bits_per_char_ratio"] = row["bits_per_char"] / rows[0]["bits_per_char"]
        row["tokens_per_char_ratio"] = row["tokens_per_char"] / rows[0]["tokens_per_char"]
    table = format_table(rows)
    if settings.json_out is not None:
        write_json(rows, settings, settings.json_out)
    return rows, table


def format_table(rows: list[dict]) -> str:
    copies = all("copy_gain_nats" in r for r in rows)
    lines = ["| model | vocab | tokens | tokens/char | bits/token | bits/char | bits/char ÷ first | tokens/char ÷ first |"
             + (" copy gain, nats/token (first → second copy) |" if copies else ""),
             "|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if copies else "")]
    for r in rows:
        copy = (f" {r['copy_gain_nats']:+.3f} ({r['copy_first_nats']:.2f} → {r['copy_second_nats']:.2f}) |"
                if copies else "")
        lines.append(f"| {r['model']} | {r['vocab_size']:,} | {r['tokens']:,} | {r['tokens_per_char']:.4f} | "
                     f"{r['bits_per_token']:.4f} | {r['bits_per_char']:.4f} | {r['bits_per_char_ratio']:.4f} | "
                     f"{r['tokens_per_char_ratio']:.4f} |{copy}")
    return "\n".join(lines)


def describe_text(rows: list[dict], settings: LMEvalSettings) -> str:
    first = rows[0]
    return (f"{first['documents']} documents, {first['chars']:,} characters of the {settings.split!r} split; "
            f"windows of {settings.block_size} tokens, every token after the first predicted once (EOS included)")


def write_json(rows: list[dict], settings: LMEvalSettings, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"settings": settings_dict(settings), "text": describe_text(rows, settings), "rows": rows}
    path.write_text(json.dumps(record, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
