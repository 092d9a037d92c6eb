"""The trade-off curve: characters per token versus morpheme-cut share over ``join_share``.

Joining whole morphemes into longer tokens removes boundaries that sit ON morpheme cuts, so it raises
characters per token and lowers the share of boundaries on a cut. This trains one tokenizer per knob
value on the same corpus and vocabulary size and measures both on the held-out sets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..settings import setting
from .evaluate import EvalText, TokenizerEvalSettings, TokenizerScore, prepare_eval_text, score
from .train import TokenizerTrainSettings, train_tokenizer


@dataclass
class TokenizerSweepSettings:
    out: Path = setting(help="directory for the swept tokenizers, the table and the plot")
    join_shares: tuple[float, ...] = setting((0.0, 0.1, 0.2, 0.3, 0.4, 0.5), help="values of join_share to train")
    vocab_size: int = setting(32000, help="vocabulary size of every swept tokenizer")
    max_lines: int = setting(0, help="evaluate on at most this many lines per held-out set (0: all)")


def sweep(settings: TokenizerSweepSettings) -> list[tuple[float, TokenizerScore]]:
    from .baselines import HFTokenizerAdapter

    text: EvalText
    text, _ = prepare_eval_text(TokenizerEvalSettings(max_lines=settings.max_lines))
    results = []
    for share in settings.join_shares:
        tok = train_tokenizer(TokenizerTrainSettings(out=settings.out, vocab_size=settings.vocab_size, join_share=share))
        tok.save(str(Path(settings.out) / f"join{share:.2f}.json"))
        results.append((share, score(HFTokenizerAdapter(f"join_share={share:.2f}", tok), text, speed_seconds=0.2)))
    return results


def format_sweep(results) -> str:
    rows = ["| join_share | chars/token | tokens/eojeol | morpheme-cut share (Kiwi) | UD gold cut share |", "|---:|---:|---:|---:|---:|"]
    for share, s in results:
        rows.append(f"| {share:.2f} | {s.chars_per_token:.3f} | {s.tokens_per_eojeol:.3f} | {s.morpheme_cut_share:.1%} | {s.gold_cut_share:.1%} |")
    return "\n".join(rows)


def plot_sweep(results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    xs = [100 * s.morpheme_cut_share for _, s in results]
    ys = [s.chars_per_token for _, s in results]
    ax.plot(xs, ys, "o-", color="#d62728")
    for (share, _), x, y in zip(results, xs, ys):
        ax.annotate(f"{share:.2f}", (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.axhline(2.0, ls=":", color="gray")
    ax.axvline(95, ls=":", color="gray")
    ax.set_xlabel("inner boundaries on a morpheme cut (%)")
    ax.set_ylabel("characters per token")
    ax.set_title("join_share trade-off (32k vocab, held-out text)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
