"""Evaluate tokenizers side by side on the same text in one run: ours against the baselines.

Columns: characters per token, tokens per eojeol, exact round trip (share of lines), inner token
boundaries on a Kiwi morpheme cut, the same against UD Korean's gold morpheme splits, and encode
speed (characters/s on one core, batch).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from ..settings import setting
from .metrics import BoundaryCount, count_eojeol
from .morphology import gold_cuts_of_sentence, morpheme_cuts

if TYPE_CHECKING:  # tradeoff imports this module
    from .tradeoff import Tradeoff

log = logging.getLogger(__name__)


@dataclass
class TokenizerEvalSettings:
    tokenizer: list[Path] = setting([], help="tokenizer directories to evaluate (default: the bundled one)")
    text: list[Path] = setting([], help="UTF-8 text files, one text per line (default: the held-out eval sets)")
    baselines: bool = setting(True, help="also evaluate the baselines that can be loaded or trained offline")
    train_baselines: bool = setting(True, help="train sentencepiece BPE/Unigram and Kiwi SwTokenizer baselines "
                                               "on the corpus (cached after the first run)")
    vocab_size: int = setting(32000, help="vocabulary size of the trained baselines")
    max_lines: int = setting(0, help="evaluate on at most this many lines per text set (0: all)")
    speed_seconds: float = setting(1.0, help="minimum seconds per encode-speed measurement")
    cache_dir: Path = setting(Path.home() / ".cache" / "ko_hypervl", help="cache for trained baselines")
    plot: Path | None = setting(Path("tokenizer_eval.png"), help="bar chart PNG to write")
    json_out: Path | None = setting(None, help="also write the results as JSON here")
    tradeoff: bool = setting(True, help="also train our tokenizer along its join knob (cached) and print chars/token "
                                        "against morpheme-cut share on the same text, with the ceiling of the share")
    join_shares: tuple[float, ...] = setting((0.0, 0.1, 0.2, 0.3, 0.4, 0.5),
                                             help="trade-off points: join_share values with joins of whole morphemes")
    space_join_shares: tuple[float, ...] = setting((0.2, 0.4),
                                                   help="trade-off points: join_share values with space joins only")
    phrase_shares: tuple[float, ...] = setting((0.2, 0.3, 0.4, 0.5),
                                               help="trade-off points: phrase_share values (joins across a space), "
                                                    "each with --phrase-join-share")
    phrase_join_share: float = setting(0.1, help="join_share of the phrase trade-off points")
    tradeoff_train_lines: int = setting(0, help="train the trade-off tokenizers on at most this many corpus lines "
                                                "(0: the whole train split, as the bundled tokenizer)")
    tradeoff_plot: Path | None = setting(Path("tokenizer_tradeoff.png"), help="trade-off curve PNG to write")


@dataclass
class TokenizerScore:
    name: str
    vocab_size: int
    chars_per_token: float
    tokens_per_eojeol: float
    round_trip: float
    morpheme_cut_share: float
    gold_cut_share: float
    encode_chars_per_s: float
    lines: int
    note: str = ""


@dataclass
class EvalText:
    """Lines to evaluate on, with their Kiwi cuts and (UD only) gold cuts."""

    lines: list[str]
    kiwi_cuts: list[list[int]]
    gold_cuts: list[list[int] | None] = field(default_factory=list)


def prepare_eval_text(files: Sequence[Path], max_lines: int = 0) -> tuple[EvalText, str]:
    """The evaluation lines: the given text files' non-blank lines, or every held-out set (UD with gold cuts);
    at most ``max_lines`` per file or set (0: all)."""
    lines: list[str] = []
    gold: list[list[int] | None] = []
    if files:
        for path in files:
            if not Path(path).is_file():
                raise FileNotFoundError(f"text file not found: {path}")
            file_lines = [l for l in Path(path).read_text(encoding="utf-8").split("\n") if l.strip()]
            if max_lines:
                file_lines = file_lines[:max_lines]
            lines += file_lines
            gold += [None] * len(file_lines)
        description = ", ".join(str(p) for p in files)
    else:
        from ..textcorpus import load_eval_text

        sets = load_eval_text()
        names = []
        for name, ds in sets.items():
            rows = ds if not max_lines else ds.select(range(min(max_lines, len(ds))))
            lines += rows["text"]
            if name == "ud_korean":
                gold += [gold_cuts_of_sentence(t, w) for t, w in zip(rows["text"], rows["words"])]
            else:
                gold += [None] * len(rows)
            names.append(f"{name} ({len(rows):,})")
        description = "held-out sets: " + ", ".join(names)
    if not lines:
        raise ValueError("no text to evaluate on")
    log.info("Kiwi morpheme analysis of %d lines", len(lines))
    return EvalText(lines, morpheme_cuts(lines, num_workers=-1), gold), description


def score(adapter, text: EvalText, speed_seconds: float = 1.0, note: str = "") -> TokenizerScore:
    from .baselines import measure_encode_speed

    ids = adapter.encode_batch(text.lines)
    n_tokens = sum(map(len, ids))
    n_chars = sum(map(len, text.lines))
    round_trip = sum(adapter.decode(i) == line for i, line in zip(ids, text.lines)) / len(text.lines)
    kiwi, gold = BoundaryCount(), BoundaryCount()
    for line, cuts, gold_cuts in zip(text.lines, text.kiwi_cuts, text.gold_cuts):
        spans = adapter.byte_spans(line)
        kiwi.add(line, spans, cuts)
        if gold_cuts is not None:
            gold.add(line, spans, gold_cuts)
    speed = measure_encode_speed(adapter, text.lines, min_seconds=speed_seconds)
    return TokenizerScore(
        name=adapter.name, vocab_size=adapter.vocab_size, chars_per_token=n_chars / max(n_tokens, 1),
        tokens_per_eojeol=n_tokens / max(count_eojeol(text.lines), 1), round_trip=round_trip,
        morpheme_cut_share=kiwi.share, gold_cut_share=gold.share, encode_chars_per_s=speed,
        lines=len(text.lines), note=note,
    )


def ours(paths: Sequence[Path]) -> list:
    from .baselines import HFTokenizerAdapter
    from .bundled import bundled_tokenizer_dir
    from .hf import load_tokenizer

    adapters = []
    for path in paths or [bundled_tokenizer_dir()]:
        tok = load_tokenizer(path)
        adapters.append(HFTokenizerAdapter(f"ours: {Path(path).name}", tok.backend_tokenizer))
    return adapters


@dataclass
class EvalResult:
    scores: list[TokenizerScore]
    skipped: list[tuple[str, str]]
    description: str
    tradeoff: Tradeoff | None = None


def evaluate(settings: TokenizerEvalSettings) -> EvalResult:
    """Score our tokenizer(s) and every available baseline on the same lines, and the trade-off curve."""
    # one core: the speed column compares encoders, not thread pools
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    os.environ["RAYON_NUM_THREADS"] = "1"
    text, description = prepare_eval_text(settings.text, settings.max_lines)
    adapters, skipped = ours(settings.tokenizer), []
    if settings.baselines:
        from .baselines import available_baselines

        train_texts = None
        if settings.train_baselines:
            from .train import training_lines

            train_texts = training_lines()
        found, skipped = available_baselines(settings.cache_dir, train_texts=train_texts, vocab_size=settings.vocab_size)
        adapters += found
    scores = []
    for adapter in tqdm(adapters, desc="tokenizers", unit="tokenizer"):
        scores.append(score(adapter, text, settings.speed_seconds, getattr(adapter, "note", "")))
    curve = None
    if settings.tradeoff:
        from .bundled import bundled_tokenizer_dir
        from .tradeoff import KnobPoint, knob_points, tradeoff
        from .train import training_lines

        chosen = KnobPoint.of_tokenizer((settings.tokenizer or [bundled_tokenizer_dir()])[0], settings.vocab_size)
        points = knob_points(settings.join_shares, settings.space_join_shares, settings.phrase_shares,
                             settings.phrase_join_share)
        curve = tradeoff(text, points, settings.vocab_size,
                         training_lines(max_lines=settings.tradeoff_train_lines), settings.cache_dir, chosen)
    return EvalResult(scores, skipped, description, curve)


def pct(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.1%}"


def format_table(scores: Sequence[TokenizerScore]) -> str:
    rows = [
        "| tokenizer | vocab | chars/token ↑ | tokens/eojeol ↓ | exact round trip | inner boundaries on a morpheme cut (Kiwi) | … on UD gold cut | encode chars/s (1 core) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in scores:
        rows.append(
            f"| {s.name} | {s.vocab_size:,} | {s.chars_per_token:.2f} | {s.tokens_per_eojeol:.2f} | {pct(s.round_trip)} | "
            f"{pct(s.morpheme_cut_share)} | {pct(s.gold_cut_share)} | {s.encode_chars_per_s / 1e6:.2f} M |"
        )
    return "\n".join(rows)


def plot_scores(scores: Sequence[TokenizerScore], path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [s.name for s in scores]
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.5 * len(names) + 1.8), sharey=True)
    colors = ["#d62728" if n.startswith("ours") else "#7f7f7f" for n in names]
    for ax, values, label in (
        (axes[0], [s.chars_per_token for s in scores], "characters per token (higher: fewer tokens)"),
        (axes[1], [100 * s.morpheme_cut_share for s in scores], "inner boundaries on a morpheme cut (%)"),
    ):
        ax.barh(names, values, color=colors)
        for y, v in enumerate(values):
            ax.text(v, y, f" {v:.2f}" if v < 10 else f" {v:.0f}", va="center", fontsize=8)
        ax.set_xlabel(label)
        ax.invert_yaxis()
    fig.suptitle(title or "Korean tokenizers on held-out text", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_json(result: EvalResult, path: Path) -> None:
    record = {"text": result.description, "scores": [asdict(s) for s in result.scores],
              "skipped": [{"name": n, "reason": r} for n, r in result.skipped]}
    if result.tradeoff is not None:
        record["tradeoff"] = result.tradeoff.to_dict()
    path.write_text(json.dumps(record, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
