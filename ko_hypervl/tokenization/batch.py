"""Tokenizing whole corpora fast: batched encoding and ``datasets.map`` over several processes."""

from __future__ import annotations


def tokenize_dataset(dataset, tokenizer, text_column: str = "text", num_proc: int | None = None,
                     batch_size: int = 1000, add_eos: bool = True, desc: str = "tokenizing"):
    """Add ``input_ids`` (and ``num_tokens``) to a ``datasets.Dataset``, batched, with a progress bar.

    ``tokenizer`` is a ``KoHyperVLTokenizer`` (or any fast tokenizer); ``add_eos`` ends every text with
    the end-of-sequence token so documents can be packed without running into each other.
    """
    eos = [tokenizer.eos_token_id] if add_eos and tokenizer.eos_token_id is not None else []

    def encode(batch):
        ids = tokenizer(batch[text_column], add_special_tokens=False)["input_ids"]
        ids = [x + eos for x in ids]
        return {"input_ids": ids, "num_tokens": [len(x) for x in ids]}

    return dataset.map(encode, batched=True, batch_size=batch_size, num_proc=num_proc, desc=desc)
