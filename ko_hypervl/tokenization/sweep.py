"""The knob sweep behind the bundled tokenizer's shares: what each ``join_share + phrase_share`` costs the LM.

The trade-off of ``tokenizer eval`` (tradeoff.py) prices a knob in morpheme-cut share on the held-out eval
sets. The LM target of issue #7 prices it in tokens per character of the LM's own held-out text, against a
plain byte-level BPE twin of the same vocabulary size. ``tokenizer sweep`` measures both for every point, in
one run, from tokenizers it trains (or finds in the cache):

- tokens/char on the LM's held-out text: the stream ``ko-hypervl model bpc`` scores (the first documents of
  a text corpus split, each encoded without specials and followed by EOS), so a point's figure is the one
  the LM ablation (training/recipes/ablation_lm_tokenizer.sh) reports for an LM with that tokenizer;
- tokens/char of the plain-BPE twin on the same stream, and each point's ratio to it (below 1: fewer tokens);
- chars/token, exact round trip, the morpheme-cut share and encode speed on the held-out eval sets, as
  ``tokenizer eval`` scores them.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..settings import setting, settings_dict
from ..textcorpus.load import SPLITS
from .evaluate import TokenizerScore, pct
from .tradeoff import KnobPoint

log = logging.getLogger(__name__)

# the points of docs/ablations/tokenizer_phrases.md: vocabulary left to round 1 of 0.6, 0.5 and 0.4
DEFAULT_POINTS = ("0.40+0.00", "0.00+0.40", "0.30+0.10", "0.20+0.20", "0.10+0.30", "0.00+0.50", "0.10+0.40",
                  "0.00+0.60", "0.30+0.30", "0.40+0.20")
_POINT = re.compile(r"\s*(\d*\.?\d+)\s*\+\s*(\d*\.?\d+)\s*")
TWIN = "plain BPE twin"


def parse_knob_point(text: str) -> KnobPoint:
    """``"0.10+0.40"`` → morpheme joins at join_share 0.10 with phrase_share 0.40, checked as training checks them."""
    from .train import TokenizerTrainSettings

    match = _POINT.fullmatch(text)
    if match is None:
        raise ValueError(f"knob point {text!r} is not JOIN+PHRASE (join_share + phrase_share), e.g. 0.10+0.40")
    join_share, phrase_share = float(match[1]), float(match[2])
    try:
        TokenizerTrainSettings(out=Path("unused"), join_share=join_share, phrase_share=phrase_share)
    except ValueError as exc:
        raise ValueError(f"knob point {text!r}: {exc}") from None
    return KnobPoint("morphemes", join_share, phrase_share)


@dataclass
class TokenizerSweepSettings:
    points: list[str] = setting(list(DEFAULT_POINTS), help="knob points as JOIN+PHRASE (join_share + phrase_share of "
                                                           "our tokenizer, morpheme joins), e.g. 0.10+0.40, the "
                                                           "bundled tokenizer's")
    vocab_size: int = setting(32000, help="vocabulary size of every tokenizer of the sweep")
    twin: bool = setting(True, help="also train the plain byte-level BPE twin (same lines, vocabulary size and "
                                    "special tokens) and give each point's tokens/char as a share of the twin's")
    split: str = setting("test", help="text corpus split whose first documents are the LM's held-out text",
                         choices=SPLITS)
    max_chars: int = setting(200_000, help="the LM text: the split's first documents up to this many characters "
                                           "(0: all; `model bpc`'s default)")
    corpus: Path | None = setting(None, help="text corpus folder of the LM text (default: the bundled corpora/)")
    text: list[Path] = setting([], help="UTF-8 files, one text per line, for chars/token and the morpheme-cut share "
                                        "(default: the held-out eval sets)")
    max_lines: int = setting(0, help="at most this many lines per eval file or set (0: all)")
    train_lines: int = setting(0, help="train every tokenizer on at most this many corpus lines (0: the whole "
                                       "train split, as the bundled tokenizer)")
    speed_seconds: float = setting(1.0, help="minimum seconds per encode-speed measurement")
    cache_dir: Path = setting(Path.home() / ".cache" / "ko_hypervl", help="cache of the trained tokenizers (shared "
                                                                          "with `tokenizer eval`'s trade-off)")
    json_out: Path | None = setting(None, help="also write the rows and these settings to this JSON file")

    def __post_init__(self) -> None:
        if not self.points:
            raise ValueError("give at least one knob point, e.g. --points 0.10+0.40")
        self.knob_points = [parse_knob_point(p) for p in self.points]
        if len(set(self.knob_points)) < len(self.knob_points):
            raise ValueError(f"a knob point is given twice: {' '.join(self.points)}")
        from .train import TokenizerTrainSettings

        TokenizerTrainSettings(out=Path("unused"), vocab_size=self.vocab_size)   # the same size check as training
        if self.split not in SPLITS:
            raise ValueError(f"unknown split {self.split!r}; choose from {', '.join(SPLITS)}")
        for flag, value in (("--max-chars", self.max_chars), ("--max-lines", self.max_lines),
                            ("--train-lines", self.train_lines)):
            if value < 0:
                raise ValueError(f"{flag} cannot be negative (0: all), got {value}")
        self.cache_dir = Path(self.cache_dir)
        self.json_out = Path(self.json_out) if self.json_out is not None else None


def sweep_label(point: KnobPoint | None) -> str:
    return TWIN if point is None else f"{point.join_share:.2f} + {point.phrase_share:.2f}"


@dataclass
class SweepRow:
    """One tokenizer of the sweep: its knob (None: the twin), its LM-text counts and its eval-set score."""

    point: KnobPoint | None
    lm_tokens: int
    lm_chars: int
    score: TokenizerScore

    @property
    def label(self) -> str:
        return sweep_label(self.point)

    @property
    def tokens_per_char(self) -> float:
        return self.lm_tokens / self.lm_chars


@dataclass
class Sweep:
    rows: list[SweepRow]
    text: str                       # what the LM text and the eval lines were
    chosen: KnobPoint | None = None

    @property
    def twin(self) -> SweepRow | None:
        return next((r for r in self.rows if r.point is None), None)

    def to_dict(self) -> dict:
        return {"text": self.text, "chosen": asdict(self.chosen) if self.chosen else None,
                "rows": [{"point": asdict(r.point) if r.point else None, "lm_tokens": r.lm_tokens,
                          "lm_chars": r.lm_chars, "tokens_per_char": r.tokens_per_char, **asdict(r.score)}
                         for r in self.rows]}

    @classmethod
    def from_dict(cls, record: dict) -> Sweep:
        """Back from ``to_dict`` (``tokenizer sweep --json-out``), e.g. to check a table against it."""
        names = {f.name for f in fields(TokenizerScore)}
        rows = [SweepRow(KnobPoint(**r["point"]) if r["point"] else None, r["lm_tokens"], r["lm_chars"],
                         TokenizerScore(**{k: v for k, v in r.items() if k in names})) for r in record["rows"]]
        return cls(rows, record["text"], KnobPoint(**record["chosen"]) if record.get("chosen") else None)


def lm_text_tokens(backend, texts: Sequence[str]) -> int:
    """Tokens of ``texts`` in the stream the LM stage trains on and ``model bpc`` scores (one EOS per document)."""
    from ..training.data import document_token_ids
    from .hf import wrap

    return len(document_token_ids(wrap(backend), texts, progress=False))


def sweep(settings: TokenizerSweepSettings) -> Sweep:
    """Train (or take from the cache) every point's tokenizer and the twin, and score each on the same text."""
    from tqdm.auto import tqdm

    from ..evaluation.language import held_out_texts
    from .baselines import HFTokenizerAdapter
    from .bundled import bundled_tokenizer_dir
    from .evaluate import prepare_eval_text, score
    from .tradeoff import cached_tokenizer, corpus_sha256, knob_tokenizer
    from .train import TokenizerTrainSettings, training_lines

    # one core: the speed column compares encoders, not thread pools (as `tokenizer eval`)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    os.environ["RAYON_NUM_THREADS"] = "1"
    docs = held_out_texts(settings.corpus, settings.split, settings.max_chars)   # non-blank documents only
    chars = sum(map(len, docs))
    eval_text, eval_description = prepare_eval_text(settings.text, settings.max_lines)
    lines = [line for line in training_lines(max_lines=settings.train_lines) if line]
    lines_sha256 = corpus_sha256(lines)
    rows = []
    for point in tqdm([*settings.knob_points, *([None] if settings.twin else [])], desc="sweep", unit="tokenizer"):
        if point is None:
            twin = TokenizerTrainSettings(out=Path("unused"), vocab_size=settings.vocab_size, method="plain")
            tok = cached_tokenizer(twin, lines, settings.cache_dir, lines_sha256)
        else:
            tok = knob_tokenizer(point, settings.vocab_size, lines, settings.cache_dir, lines_sha256)
        adapter = HFTokenizerAdapter(sweep_label(point), tok)
        rows.append(SweepRow(point, lm_text_tokens(tok, docs), chars,
                             score(adapter, eval_text, settings.speed_seconds)))
        log.info("%s: %.4f tokens/char on the LM text", rows[-1].label, rows[-1].tokens_per_char)
    text = (f"LM text: {len(docs)} documents, {chars:,} characters of the {settings.split!r} split; "
            f"eval lines: {eval_description}")
    result = Sweep(rows, text, KnobPoint.of_tokenizer(bundled_tokenizer_dir(), settings.vocab_size))
    if settings.json_out is not None:
        settings.json_out.parent.mkdir(parents=True, exist_ok=True)
        record = {"settings": settings_dict(settings), **result.to_dict()}
        settings.json_out.write_text(json.dumps(record, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return result


def format_sweep(result: Sweep) -> str:
    """The sweep as a markdown table: one row per point (the chosen one in bold), then the twin."""
    twin = result.twin
    rows = ["| join_share + phrase_share | tokens/char (LM text) ↓ | ÷ plain BPE twin | chars/token (eval sets) ↑ "
            "| inner boundaries on a morpheme cut | exact round trip | encode chars/s |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for row in sorted(result.rows, key=lambda r: r.point is None):
        ratio = f"{row.tokens_per_char / twin.tokens_per_char:.4f}" if twin is not None else "–"
        cells = [row.label, f"{row.tokens_per_char:.4f}", ratio, f"{row.score.chars_per_token:.2f}",
                 pct(row.score.morpheme_cut_share), pct(row.score.round_trip),
                 f"{row.score.encode_chars_per_s / 1e6:.2f} M"]
        if row.point is not None and row.point == result.chosen:
            cells = [f"**{c} (chosen)**" if i == 0 else f"**{c}**" for i, c in enumerate(cells)]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def summarize_sweep(result: Sweep) -> str:
    """The points with fewer LM tokens than the twin, and where the bundled tokenizer stands, in words."""
    twin = result.twin
    points = [r for r in result.rows if r.point is not None]
    lines = []
    if twin is not None:
        fewer = [r for r in points if r.tokens_per_char < twin.tokens_per_char]
        lines.append(f"- fewer tokens than the twin ({twin.tokens_per_char:.4f}/char) on the LM text: "
                     + (", ".join(r.label for r in fewer) if fewer else "no point"))
    chosen = next((r for r in points if r.point == result.chosen), None)
    if chosen is not None:
        share = (f", {1 - chosen.tokens_per_char / twin.tokens_per_char:.1%} fewer than the twin"
                 if twin is not None else "")
        lines.append(f"- chosen (bundled): {chosen.label} → {chosen.tokens_per_char:.4f} tokens/char{share}, "
                     f"{chosen.score.morpheme_cut_share:.1%} of inner boundaries on a morpheme cut")
    if points:
        best = min(points, key=lambda r: r.tokens_per_char)
        lines.append(f"- fewest tokens: {best.label} ({best.tokens_per_char:.4f}/char, "
                     f"{best.score.morpheme_cut_share:.1%} on a cut)")
    return "\n".join(lines)
