"""A letter n-gram language model over the reading head's units, for decoding what the head reads.

The CTC head (``model/reading.py``) scores each position of a line on its own, so its best path can spell
jamo that make no syllable or words no one writes. A Kneser–Ney n-gram over the same units (jamo, digits,
punctuation, Latin letters), fitted on the text corpus's training split, lets the beam search
(``ctc_decode.py``) prefer readings that are Korean. It is stored ARPA-style: a log-probability for every kept
n-gram and a back-off weight for every context, as arrays in a safetensors file beside the checkpoint
(``reading_lm.safetensors``) together with the units it was fitted for and the decoding settings chosen for it
on validation lines. Everything here is numpy and pure functions, except the file's save and load.

Units are the head's class ids (1 … V−1); id 0, the CTC blank, never a unit, marks a line's start and end.
An n-gram is packed into one int64, 9 bits a unit, first unit highest, so order ≤ 7 and V ≤ 512.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..model.reading import BLANK, reading_units

LM_FILE = "reading_lm.safetensors"
BOUNDARY = BLANK          # a line's start and end
BITS = 9
MAX_ORDER = 7


def pack(ids: Iterable[int]) -> int:
    """One n-gram's code: its ids as base-512 digits, first id highest."""
    code = 0
    for i in ids:
        code = (code << BITS) | i
    return code


def _mask(order: int) -> int:
    return (1 << (BITS * order)) - 1


@dataclass(frozen=True)
class DecodeSettings:
    """How the beam search weighs the LM: score = log P_ctc + alpha · log P_lm + beta · units."""

    alpha: float = 0.5
    beta: float = 1.0
    beam: int = 16


@dataclass
class ReadingLM:
    """Kneser–Ney n-gram tables (per order: sorted codes, log-probabilities, back-off weights)."""

    units: tuple[str, ...]
    grams: list[np.ndarray]          # grams[k - 1]: codes of the kept k-grams, sorted
    log_probs: list[np.ndarray]      # natural log P(last unit | the others)
    backoffs: list[np.ndarray]       # log back-off weight of each k-gram as a context (0 where it is none)
    floor: float                     # log P of a unit never seen in training
    decode: DecodeSettings = field(default_factory=DecodeSettings)
    info: dict = field(default_factory=dict)     # what it was fitted on, and how decoding was chosen

    def __post_init__(self) -> None:
        self._lookup_tables: list[dict] | None = None
        self.log_prob = lru_cache(maxsize=1 << 18)(self._log_prob)

    @property
    def _tables(self) -> list[dict]:
        """Per order, code → (log-probability, back-off): built on first use (a second or so for a million
        n-grams), so loading a checkpoint to answer questions does not pay for it."""
        if self._lookup_tables is None:
            self._lookup_tables = [dict(zip(g.tolist(), zip(p.tolist(), b.tolist())))
                                   for g, p, b in zip(self.grams, self.log_probs, self.backoffs)]
        return self._lookup_tables

    @property
    def order(self) -> int:
        return len(self.grams)

    @property
    def size(self) -> int:
        return sum(len(g) for g in self.grams)

    def _log_prob(self, history: tuple[int, ...], unit: int) -> float:
        """log P(unit | history): the longest kept n-gram, else back off (ARPA semantics).

        ``history``: the ids before, most recent last (BOUNDARY first at a line's start); only the last
        order − 1 count.
        """
        history = history[len(history) - self.order + 1:] if len(history) >= self.order else history
        backoff = 0.0
        for start in range(len(history) + 1):
            context = history[start:]
            hit = self._tables[len(context)].get(pack((*context, unit)))
            if hit is not None:
                return backoff + hit[0]
            if context:
                seen = self._tables[len(context) - 1].get(pack(context))
                backoff += seen[1] if seen is not None else 0.0
        return backoff + self.floor

    def text_log_prob(self, text: str) -> float:
        """log P of a whole line, end included (units the head lacks are an error)."""
        index = {u: i + 1 for i, u in enumerate(self.units)}
        missing = sorted({u for u in reading_units(text) if u not in index})
        if missing:
            raise ValueError(f"the reading LM's units lack {''.join(missing)!r}")
        ids = [BOUNDARY] + [index[u] for u in reading_units(text)] + [BOUNDARY]
        return sum(self.log_prob(tuple(ids[max(0, i - self.order + 1):i]), ids[i]) for i in range(1, len(ids)))


def line_ids(lines: Iterable[str], units: tuple[str, ...]) -> tuple[np.ndarray, int]:
    """All lines' unit ids in one array, each line after a BOUNDARY (and one at the end); the number of lines
    left out because they hold a unit the head cannot read."""
    index = {u: i + 1 for i, u in enumerate(units)}
    chunks, skipped = [np.zeros(1, np.uint16)], 0
    for line in lines:
        letters = reading_units(line)
        if not letters:
            continue
        if any(u not in index for u in letters):
            skipped += 1
            continue
        chunks.append(np.array([index[u] for u in letters] + [BOUNDARY], np.uint16))
    return np.concatenate(chunks), skipped


def ngram_codes(ids: np.ndarray, order: int) -> np.ndarray:
    """Codes of every ``order``-gram inside one line (a BOUNDARY only first or last)."""
    if len(ids) < order:
        return np.zeros(0, np.int64)
    windows = np.lib.stride_tricks.sliding_window_view(ids, order)
    if order > 2:
        inside = (windows[:, 1:-1] != BOUNDARY).all(1)
    elif order == 2:   # the boundary between two lines is no bigram of its own
        inside = (windows[:, 0] != BOUNDARY) | (windows[:, 1] != BOUNDARY)
    else:
        inside = np.ones(len(windows), bool)
    windows = windows[inside]
    codes = np.zeros(len(windows), np.int64)
    for j in range(order):
        codes = (codes << BITS) | windows[:, j].astype(np.int64)
    return codes


def kneser_ney_counts(ids: np.ndarray, order: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per order 1 … ``order``: (sorted codes, counts). The highest order keeps raw counts; lower orders count
    distinct left neighbours (continuation counts), except n-grams that open a line, which have none."""
    raw = [np.unique(ngram_codes(ids, k), return_counts=True) for k in range(1, order + 1)]
    out = [raw[-1]]
    for k in range(order - 1, 0, -1):
        higher = raw[k][0]                                       # distinct (k + 1)-grams
        suffixes, continuation = np.unique(higher & _mask(k), return_counts=True)
        codes, counts = raw[k - 1]
        opens = (codes >> (BITS * (k - 1))) == BOUNDARY if k > 1 else np.zeros(len(codes), bool)
        where = np.searchsorted(suffixes, codes)
        found = (where < len(suffixes)) & (suffixes[np.minimum(where, len(suffixes) - 1)] == codes)
        kn = np.where(found, continuation[np.minimum(where, len(suffixes) - 1)], 0)
        kn = np.where(opens, counts, kn)
        keep = kn > 0
        out.append((codes[keep], kn[keep]))
    return out[::-1]


def _discount(counts: np.ndarray) -> float:
    """The absolute discount n1 / (n1 + 2 n2) (Ney et al.), kept within [0.1, 0.9]."""
    n1, n2 = int((counts == 1).sum()), int((counts == 2).sum())
    return float(np.clip(n1 / (n1 + 2 * n2), 0.1, 0.9)) if n1 + n2 else 0.5


def _lookup(codes: np.ndarray, values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    where = np.minimum(np.searchsorted(codes, wanted), len(codes) - 1)
    if not (codes[where] == wanted).all():
        raise AssertionError("a lower-order n-gram is missing")
    return values[where]


def fit_reading_lm(lines: Iterable[str], units: tuple[str, ...], order: int = 6, min_count: int = 3,
                   decode: DecodeSettings | None = None) -> ReadingLM:
    """Interpolated Kneser–Ney over ``lines`` in the head's ``units``; n-grams of order ≥ 3 whose count is
    under ``min_count`` are dropped (their contexts stay, so every kept n-gram's back-off is there)."""
    if not 1 <= order <= MAX_ORDER:
        raise ValueError(f"the reading LM's order must be 1 … {MAX_ORDER}, got {order}")
    if len(units) + 1 > 1 << BITS:
        raise ValueError(f"the reading LM packs units in {BITS} bits: {len(units)} units are too many")
    ids, skipped = line_ids(lines, units)
    if len(ids) < 2:
        raise ValueError("no line to fit the reading LM on: every line was empty or held a unit the head lacks")
    counts = kneser_ney_counts(ids, order)
    vocab_size = len(units) + 1                                      # the units and the line's end
    codes, c = counts[0]
    d = _discount(c)
    total = c.sum()
    uniform = d * len(codes) / total / vocab_size
    probs = [np.maximum(c - d, 0) / total + uniform]
    gammas = []
    for k in range(2, order + 1):
        codes, c = counts[k - 1]
        d = _discount(c)
        contexts, starts, sizes = np.unique(codes >> BITS, return_index=True, return_counts=True)
        context_total = np.add.reduceat(c, starts)
        gamma = d * sizes / context_total
        group = np.repeat(np.arange(len(contexts)), sizes)
        lower = _lookup(counts[k - 2][0], probs[-1], codes & _mask(k - 1))
        probs.append(np.maximum(c - d, 0) / context_total[group] + gamma[group] * lower)
        gammas.append((contexts, gamma))
    keep = [counts[k][1] >= (min_count if k >= 2 else 0) for k in range(order)]
    for k in range(order, 1, -1):                                    # the contexts of kept n-grams stay
        needed = np.unique(counts[k - 1][0][keep[k - 1]] >> BITS)
        keep[k - 2] |= np.isin(counts[k - 2][0], needed)
    grams, log_probs, backoffs = [], [], []
    for k in range(1, order + 1):
        codes = counts[k - 1][0][keep[k - 1]]
        backoff = np.zeros(len(codes), np.float32)
        if k < order:
            contexts, gamma = gammas[k - 1]
            where = np.minimum(np.searchsorted(contexts, codes), len(contexts) - 1)
            has = contexts[where] == codes
            backoff[has] = np.log(gamma[where[has]])
        grams.append(codes)
        log_probs.append(np.log(probs[k - 1][keep[k - 1]]).astype(np.float32))
        backoffs.append(backoff)
    info = {"order": order, "min_count": min_count, "units_fitted": int((ids != BOUNDARY).sum()),
            "lines_skipped": skipped}
    return ReadingLM(tuple(units), grams, log_probs, backoffs, float(math.log(uniform)),
                     decode or DecodeSettings(), info)


def save_reading_lm(lm: ReadingLM, directory: str | Path) -> Path:
    """Write ``reading_lm.safetensors`` into a checkpoint folder (arrays; units and settings as metadata)."""
    from safetensors.numpy import save_file

    tensors = {}
    for k, (g, p, b) in enumerate(zip(lm.grams, lm.log_probs, lm.backoffs), 1):
        # float16 keeps a log-probability to within 0.01 nats and a quarter of the file
        tensors.update({f"grams.{k}": g, f"log_probs.{k}": p.astype(np.float16), f"backoffs.{k}": b.astype(np.float16)})
    metadata = {"units": json.dumps(list(lm.units), ensure_ascii=False), "floor": repr(lm.floor),
                "decode": json.dumps(lm.decode.__dict__), "info": json.dumps(lm.info, ensure_ascii=False)}
    path = Path(directory) / LM_FILE
    save_file(tensors, str(path), metadata=metadata)
    return path


def load_reading_lm(directory: str | Path) -> ReadingLM | None:
    """The checkpoint folder's reading LM, or None where it has none."""
    from safetensors import SafetensorError, safe_open

    path = Path(directory) / LM_FILE
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), "np") as f:
            meta = f.metadata()
            order = sum(1 for key in f.keys() if key.startswith("grams."))
            arrays = [[f.get_tensor(f"{name}.{k}") for k in range(1, order + 1)]
                      for name in ("grams", "log_probs", "backoffs")]
            arrays[1:] = [[a.astype(np.float32) for a in column] for column in arrays[1:]]
            return ReadingLM(tuple(json.loads(meta["units"])), *arrays, float(meta["floor"]),
                             DecodeSettings(**json.loads(meta["decode"])), json.loads(meta["info"]))
    except (SafetensorError, OSError, KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"could not load the reading LM {path}: {exc}") from None
