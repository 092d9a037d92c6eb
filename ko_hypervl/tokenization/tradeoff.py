"""The trade-off behind the morpheme-cut target: chars/token against morpheme-cut share, with a ceiling.

Joining whole morphemes into longer tokens (학교+에 → 학교에) is what gets a 32k vocabulary past 2
characters per token, and every such join removes a boundary that sat ON a morpheme cut, so the share
of boundaries on a cut falls as chars/token rises. ``tokenizer eval`` trains one tokenizer per knob
value on the same corpus and vocabulary size (cached), scores each on the same held-out text in the
same run, and adds the ceiling of ``ceiling.py``: what no knob value of any whole-morpheme vocabulary of
this size could beat on that text.

Three knobs: ``morphemes`` joins at several ``join_share`` values (any run of whole morphemes and a
leading space), ``space`` joins (only a leading space with one morpheme, which adds no boundary
inside a word), and phrase joins at several ``phrase_share`` values (whole morphemes joined across a
space, train.py round 3), which buy chars/token with fewer joins inside words.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .ceiling import CutShareCeiling, cut_share_ceilings, piece_counts
from .evaluate import EvalText, TokenizerScore, pct, score
from .specials import SPECIAL_TOKENS
from .train import TokenizerTrainSettings

log = logging.getLogger(__name__)

CHARS_PER_TOKEN_TARGET = 2.0
CUT_SHARE_TARGET = 0.95


@dataclass(frozen=True)
class KnobPoint:
    joins: str
    join_share: float
    phrase_share: float = 0.0

    @property
    def label(self) -> str:
        label = f"{'morpheme' if self.joins == 'morphemes' else self.joins} joins {self.join_share:.2f}"
        return f"{label} + phrases {self.phrase_share:.2f}" if self.phrase_share else label

    @property
    def series(self) -> str:
        """The curve a point belongs to on the plot: its join kind, or phrases at a fixed join_share."""
        return f"phrases (join_share {self.join_share:.2f})" if self.phrase_share else self.joins

    @classmethod
    def of_tokenizer(cls, directory: Path, vocab_size: int) -> KnobPoint | None:
        """The knob a trained tokenizer of ``vocab_size`` was made with (its ``training_args.json``), if it says."""
        try:
            args = json.loads((Path(directory) / "training_args.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if (args.get("method", "morpheme") != "morpheme" or "join_share" not in args
                or args.get("vocab_size") != vocab_size):
            return None
        return cls(args.get("joins", "morphemes"), float(args["join_share"]), float(args.get("phrase_share", 0.0)))


@dataclass
class Tradeoff:
    points: list[tuple[KnobPoint, TokenizerScore]]
    ceilings: list[CutShareCeiling]
    chosen: KnobPoint | None = None

    def to_dict(self) -> dict:
        return {
            "points": [{**asdict(p), **asdict(s)} for p, s in self.points],
            "ceilings": [asdict(c) for c in self.ceilings],
            "chosen": asdict(self.chosen) if self.chosen else None,
        }

    @classmethod
    def from_dict(cls, record: dict) -> Tradeoff:
        """Back from ``to_dict`` (the ``tradeoff`` of ``tokenizer eval --json-out``), e.g. to redraw the plot."""
        names = {f.name for f in fields(TokenizerScore)}
        points = [(KnobPoint(p["joins"], p["join_share"], p.get("phrase_share", 0.0)),
                   TokenizerScore(**{k: v for k, v in p.items() if k in names})) for p in record["points"]]
        chosen = KnobPoint(**record["chosen"]) if record.get("chosen") else None
        return cls(points, [CutShareCeiling(**c) for c in record["ceilings"]], chosen)


def knob_points(join_shares: Sequence[float], space_join_shares: Sequence[float],
                phrase_shares: Sequence[float] = (), phrase_join_share: float = 0.1) -> list[KnobPoint]:
    return ([KnobPoint("morphemes", s) for s in join_shares] + [KnobPoint("space", s) for s in space_join_shares]
            + [KnobPoint("morphemes", phrase_join_share, s) for s in phrase_shares])


def corpus_sha256(lines: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8", "surrogatepass") + b"\n")
    return digest.hexdigest()


def knob_tokenizer(point: KnobPoint, vocab_size: int, lines: Sequence[str], cache_dir: Path | None,
                   lines_sha256: str):
    """Our tokenizer trained at ``point`` (see ``cached_tokenizer``)."""
    settings = TokenizerTrainSettings(out=Path("unused"), vocab_size=vocab_size, joins=point.joins,
                                      join_share=point.join_share, phrase_share=point.phrase_share,
                                      cache_dir=cache_dir)
    return cached_tokenizer(settings, lines, cache_dir, lines_sha256)


def cached_tokenizer(settings: TokenizerTrainSettings, lines: Sequence[str], cache_dir: Path | None,
                     lines_sha256: str):
    """The tokenizer that ``settings`` train on ``lines``, from ``cache_dir`` when one was trained there with the
    same settings on the same lines by the same training code.

    ``lines_sha256`` is ``corpus_sha256(lines)``, computed once by the caller for every tokenizer it asks for.
    """
    from tokenizers import Tokenizer, __version__ as tokenizers_version

    from . import train
    from .baselines import read_stamp, write_stamp
    from .train import train_tokenizer

    if cache_dir is None:
        return train_tokenizer(settings, lines)
    if settings.method == "plain":
        path = Path(cache_dir) / f"knob-plain-{settings.vocab_size}.json"
    else:
        phrases = f"-phrases-{settings.phrase_share:.2f}" if settings.phrase_share else ""
        path = Path(cache_dir) / f"knob-{settings.joins}-{settings.join_share:.2f}{phrases}-{settings.vocab_size}.json"
    stamp = {"kind": "ko-hypervl knob", "method": settings.method, "joins": settings.joins,
             "join_share": settings.join_share, "phrase_share": settings.phrase_share,
             "vocab_size": settings.vocab_size, "min_frequency": settings.min_frequency,
             "corpus_sha256": lines_sha256, "tokenizers": tokenizers_version,
             # a change to the training code retrains rather than reusing a tokenizer it would no longer make
             "trainer_sha256": hashlib.sha256(Path(train.__file__).read_bytes()).hexdigest()}
    if read_stamp(path) == stamp:
        return Tokenizer.from_file(str(path))
    tok = train_tokenizer(settings, lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    write_stamp(path, stamp)
    return tok


def tradeoff(text: EvalText, points: Sequence[KnobPoint], vocab_size: int, lines: Sequence[str],
             cache_dir: Path | None, chosen: KnobPoint | None = None, speed_seconds: float = 0.2) -> Tradeoff:
    """Score one tokenizer per knob point on ``text``, and the cut-share ceilings for ``vocab_size``."""
    from tqdm.auto import tqdm

    from .baselines import HFTokenizerAdapter
    from .train import cached_morpheme_cuts

    lines = [line for line in lines if line]
    lines_sha256 = corpus_sha256(lines) if cache_dir is not None else ""
    scored = []
    for point in tqdm(points, desc="trade-off", unit="tokenizer"):
        tok = knob_tokenizer(point, vocab_size, lines, cache_dir, lines_sha256)
        scored.append((point, score(HFTokenizerAdapter(point.label, tok), text, speed_seconds=speed_seconds)))
    train_pieces = piece_counts(lines, cached_morpheme_cuts(lines, -1, cache_dir))
    learned = vocab_size - len(SPECIAL_TOKENS) - 256
    ceilings = cut_share_ceilings(train_pieces, text.lines, text.kiwi_cuts, [learned, 0])
    return Tradeoff(scored, ceilings, chosen)


def format_tradeoff(result: Tradeoff) -> str:
    rows = ["| knob | chars/token ↑ | tokens/eojeol ↓ | inner boundaries on a morpheme cut (Kiwi) | … on UD gold cut |",
            "|---|---:|---:|---:|---:|"]
    for point, s in result.points:
        name = f"**{point.label} (chosen)**" if point == result.chosen else point.label
        rows.append(f"| {name} | {s.chars_per_token:.3f} | {s.tokens_per_eojeol:.3f} | {pct(s.morpheme_cut_share)} | "
                    f"{pct(s.gold_cut_share)} |")
    for c in result.ceilings:
        what = (f"ceiling: {c.vocab_pieces:,} most frequent whole morphemes" if c.vocab_pieces
                else "ceiling: every morpheme of the training text")
        rows.append(f"| {what}, cut exactly at Kiwi's points | – | – | ≤ {c.share:.1%} | – |")
    return "\n".join(rows)


def summarize_tradeoff(result: Tradeoff) -> str:
    """The choice the curve forces, in words, from the measured numbers."""
    if not result.points:
        return ""
    lines = []
    best = max(result.points, key=lambda ps: ps[1].morpheme_cut_share)
    lines.append(f"- highest share on the curve: {best[1].morpheme_cut_share:.1%} ({best[0].label}, "
                 f"{best[1].chars_per_token:.2f} chars/token)")
    short = [ps for ps in result.points if ps[1].chars_per_token >= CHARS_PER_TOKEN_TARGET]
    if short:
        top = max(short, key=lambda ps: ps[1].morpheme_cut_share)
        lines.append(f"- highest share with ≥ {CHARS_PER_TOKEN_TARGET} chars/token: "
                     f"{top[1].morpheme_cut_share:.1%} ({top[0].label})")
    for c in result.ceilings:
        size = f"{c.vocab_pieces:,} whole morphemes" if c.vocab_pieces else "every training morpheme"
        lines.append(f"- ceiling with {size}: ≤ {c.share:.1%} (they cover {c.coverage:.1%} of the held-out "
                     f"morpheme occurrences; {c.off_cut:,} are missing)")
    reach = [ps for ps in result.points if ps[1].morpheme_cut_share >= CUT_SHARE_TARGET]
    ceiling = max((c.share for c in result.ceilings), default=float("nan"))
    if not reach:
        lines.append(f"- no knob value reaches {CUT_SHARE_TARGET:.0%}"
                     + (f", and the ceiling ({ceiling:.1%}) is below it" if ceiling < CUT_SHARE_TARGET else ""))
    chosen = next((s for p, s in result.points if p == result.chosen), None)
    if chosen is not None:
        lines.append(f"- chosen: {result.chosen.label} → {chosen.chars_per_token:.2f} chars/token, "
                     f"{chosen.morpheme_cut_share:.1%} of boundaries on a cut")
    return "\n".join(lines)


def plot_tradeoff(result: Tradeoff, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    palette = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e"]
    series = list(dict.fromkeys(p.series for p, _ in result.points))
    for name, color in zip(series, palette):
        pts = sorted(((p, s) for p, s in result.points if p.series == name),
                     key=lambda ps: (ps[0].phrase_share, ps[0].join_share))
        knob = "phrase_share" if pts[0][0].phrase_share else "join_share"
        label = name if pts[0][0].phrase_share else f"{pts[0][0].label.rsplit(' ', 1)[0]} ({knob})"
        xs = [100 * s.morpheme_cut_share for _, s in pts]
        ys = [s.chars_per_token for _, s in pts]
        ax.plot(xs, ys, "o-", color=color, label=label)
        for (p, _), x, y in zip(pts, xs, ys):
            value = p.phrase_share if p.phrase_share else p.join_share
            ax.annotate(f"{value:.2f}", (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    for p, s in result.points:
        if p == result.chosen:
            ax.plot([100 * s.morpheme_cut_share], [s.chars_per_token], "*", ms=16, color="gold", mec="black",
                    label="chosen (bundled)")
    for c, ls in zip(result.ceilings, ("--", "-.")):
        what = f"{c.vocab_pieces // 1000}k whole morphemes" if c.vocab_pieces else "all training morphemes"
        ax.axvline(100 * c.share, ls=ls, color="black", lw=1, label=f"ceiling, {what}: {c.share:.1%}")
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    x1, y1 = max(x1, 100 * CUT_SHARE_TARGET + 2), max(y1, CHARS_PER_TOKEN_TARGET + 0.05)
    ax.fill_between([100 * CUT_SHARE_TARGET, x1], CHARS_PER_TOKEN_TARGET, y1, color="#2ca02c", alpha=0.15, lw=0)
    ax.text(100 * CUT_SHARE_TARGET + 0.3, y1, "both\ntargets", fontsize=7, color="#2ca02c", va="top")
    ax.axhline(CHARS_PER_TOKEN_TARGET, ls=":", color="gray")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("inner boundaries on a morpheme cut (%)")
    ax.set_ylabel("characters per token")
    ax.set_title("chars/token against morpheme-cut share (held-out text, same vocab size)", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
