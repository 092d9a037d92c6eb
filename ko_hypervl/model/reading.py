"""The reading head: a linear CTC head over a vision encoder's patches that reads text in jamo.

The reading stage (``ko-hypervl train read``) fits one head per branch together with the encoders; the model
keeps the large branch's head (``config.reading_head`` describes it, ``reading_head.*`` holds its weights), so
a checkpoint reads a line of handwriting directly (``KoHyperVL.read``, ``ko-hypervl read``) and later stages
can hand what it reads to the LM. Korean is read in jamo (Unicode NFD): about 70 letters instead of thousands
of syllables. A head is valid only for the encoder it was fitted with: the config stores a digest of that
encoder, and reading with an encoder trained since is refused.

The patches are read in one of two orders (tiles stitched back into the image's patch grid; the global
thumbnail is not read). ``rows``: the whole grid row by row, top to bottom, left to right (text of any
number of lines). ``columns``: each patch column's features max-pooled over the height, left to right (as
CRNN reads a line: single lines only). Each patch emits ``positions_per_patch`` CTC positions, since
handwritten Korean packs more than one jamo into a patch column.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass, field

import torch
from torch import nn

BLANK = 0
READING_ORDERS = ("rows", "columns")


def reading_units(text: str) -> list[str]:
    """The letters a transcription is read as: Hangul syllables split into jamo (NFD), line breaks as spaces."""
    return list(unicodedata.normalize("NFD", " ".join(text.split())))


def compose(units: list[str]) -> str:
    """Read units back to text (NFC joins jamo into syllables)."""
    return unicodedata.normalize("NFC", "".join(units))


@dataclass
class ReadingVocab:
    """The CTC head's classes: blank (0), then every unit seen in the training transcriptions."""

    units: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.index = {unit: i + 1 for i, unit in enumerate(self.units)}

    @classmethod
    def from_texts(cls, texts) -> "ReadingVocab":
        return cls(sorted({unit for text in texts for unit in reading_units(text)}))

    def __len__(self) -> int:
        return len(self.units) + 1

    def encode(self, text: str) -> list[int]:
        """Class ids of ``text``; units the vocabulary lacks are left out (they cannot be predicted)."""
        return [self.index[u] for u in reading_units(text) if u in self.index]

    def decode_greedy(self, log_probs: torch.Tensor) -> str:
        """Best path decoding (``best_path``) to text."""
        return compose([self.units[c - 1] for c in best_path(log_probs)])


def best_path(log_probs) -> list[int]:
    """The argmax class per position (positions × classes), repeats merged, blanks dropped."""
    best = log_probs.argmax(-1).tolist()
    return [c for i, c in enumerate(best) if c != BLANK and (i == 0 or c != best[i - 1])]


def check_reading_order(order: str, flag: str = "--order") -> None:
    if order not in READING_ORDERS:
        raise ValueError(f"{flag} must be one of {', '.join(READING_ORDERS)}, got {order!r}")


def patch_sequence(patches: torch.Tensor, rows: int, cols: int, order: str = "rows") -> torch.Tensor:
    """(rows·cols tiles, side², hidden), tiles row by row → the patch features in reading order.

    The tiles are stitched back into the image's patch grid, which is then read row by row, left to right
    (``rows``: rows·side · cols·side patches), or column by column with each column's features max-pooled
    over the height (``columns``: cols·side, one per column, for a single line).
    """
    tiles, length, hidden = patches.shape
    side = int(round(length ** 0.5))
    if tiles != rows * cols or side * side != length:
        raise ValueError(f"expected {rows}×{cols} tiles of a square patch grid, got {tiles} tiles of {length} "
                         "patches (an encoder with a class token cannot be read this way)")
    check_reading_order(order, "order")
    grid = patches.view(rows, cols, side, side, hidden).permute(0, 2, 1, 3, 4)
    grid = grid.reshape(rows * side, cols * side, hidden)
    return grid.reshape(-1, hidden) if order == "rows" else grid.amax(0)


def read_log_probs(encoder: nn.Module, head: nn.Linear, pixel_values: torch.Tensor, image_grid: torch.Tensor,
                   order: str, num_classes: int) -> list[torch.Tensor]:
    """Log-probabilities (positions, classes) per image, from each image's tiles (the thumbnail is skipped)."""
    out, start = [], 0
    dtype = head.weight.dtype
    for rows, cols in image_grid.tolist():
        tiles = rows * cols
        patches = encoder(pixel_values=pixel_values[start:start + tiles].to(dtype)).last_hidden_state
        logits = head(patch_sequence(patches, rows, cols, order)).view(-1, num_classes)
        out.append(logits.float().log_softmax(-1))
        start += tiles + (tiles > 1)
    return out


def encoder_digest(encoder: nn.Module) -> str:
    """A digest of an encoder's weights as float16 (what a bundled checkpoint stores), to tell whether a
    reading head still belongs to it."""
    digest = hashlib.sha1()
    for name, tensor in encoder.state_dict().items():
        digest.update(name.encode())
        if tensor.is_floating_point():
            tensor = tensor.detach().to("cpu", torch.float16)
        digest.update(tensor.contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class ReadingHeadSpec:
    """What ``config.reading_head`` records about the model's head."""

    branch: str
    units: tuple[str, ...]
    positions_per_patch: int
    order: str
    encoder_digest: str
    cer: float | None = None          # on the reading stage's held-out lines, where it measured one

    @classmethod
    def from_config(cls, value: dict) -> "ReadingHeadSpec":
        return cls(value["branch"], tuple(value["units"]), int(value["positions_per_patch"]), value["order"],
                   value["encoder_digest"], value.get("cer"))

    def to_config(self) -> dict:
        return {"branch": self.branch, "units": list(self.units), "positions_per_patch": self.positions_per_patch,
                "order": self.order, "encoder_digest": self.encoder_digest, "cer": self.cer}

    @property
    def vocab(self) -> ReadingVocab:
        return ReadingVocab(list(self.units))

    @property
    def num_classes(self) -> int:
        return len(self.units) + 1


def reading_head_layer(hidden_size: int, spec: ReadingHeadSpec) -> nn.Linear:
    """The head's layer: each patch's features → ``positions_per_patch`` positions × classes."""
    return nn.Linear(hidden_size, spec.positions_per_patch * spec.num_classes)
