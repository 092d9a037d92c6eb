"""``ko-hypervl tokenizer``: train, evaluate and try the morpheme-aware Korean tokenizer."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..settings import settings_from_args
from .common import add_command_group, add_settings_command

SAMPLE = "학교에 갔었다고 했잖아요. 오늘 서울의 최고 기온은 27도입니다 ㅋㅋ"


def register(commands: argparse._SubParsersAction) -> None:
    from ..tokenization.evaluate import TokenizerEvalSettings
    from ..tokenization.sweep import TokenizerSweepSettings
    from ..tokenization.train import TokenizerTrainSettings

    sub = add_command_group(commands, "tokenizer", "train, evaluate and use the morpheme-aware Korean tokenizer",
                            "The morpheme-aware, lossless Korean tokenizer.", "tokenizer commands", "ACTION")

    add_settings_command(sub, "train", "train a tokenizer on the corpus train split",
                         "Kiwi morpheme cuts at training time; a plain byte-level BPE at encode time.",
                         TokenizerTrainSettings, _train)
    add_settings_command(sub, "eval", "compare tokenizers on the same text (table + bar chart)",
                         "Ours against offline baselines: chars/token, tokens/eojeol, round trip, "
                         "morpheme-cut share, encode speed; then the trade-off of chars/token against "
                         "morpheme-cut share along our join knob, with the ceiling of the share.",
                         TokenizerEvalSettings, _eval)
    add_settings_command(sub, "sweep", "what each join_share + phrase_share costs the LM in tokens (table)",
                         "Train our tokenizer at each knob point and the plain-BPE twin (cached), and score each on "
                         "the LM's held-out text (tokens/char, the stream `model bpc` scores) and on the held-out "
                         "eval sets (chars/token, morpheme-cut share, round trip, encode speed), in one run.",
                         TokenizerSweepSettings, _sweep)

    enc = sub.add_parser("encode", help="show how a text is tokenized",
                         description="Print the tokens of a text (| marks token boundaries) and the counts.")
    enc.add_argument("text", nargs="?", default=SAMPLE, help=f"Korean text (default: {SAMPLE!r})")
    enc.add_argument("--tokenizer", type=Path, default=None, help="tokenizer directory (default: the bundled one)")
    enc.add_argument("--ids", action="store_true", help="also print the token ids")
    enc.set_defaults(func=_encode)


def _train(args: argparse.Namespace) -> int:
    from ..tokenization.hf import wrap
    from ..tokenization.train import TokenizerTrainSettings, save_training_settings, train_tokenizer

    settings = settings_from_args(TokenizerTrainSettings, args)
    tok = wrap(train_tokenizer(settings))
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(str(out))
    save_training_settings(settings, out, {"vocab_size_trained": len(tok)})
    print(f"saved {len(tok):,}-token tokenizer to {out}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from ..tokenization.evaluate import TokenizerEvalSettings, evaluate, format_table, plot_scores, write_json
    from ..tokenization.tradeoff import format_tradeoff, plot_tradeoff, summarize_tradeoff

    settings = settings_from_args(TokenizerEvalSettings, args)
    result = evaluate(settings)
    print(f"\nText: {result.description}\n")
    print(format_table(result.scores))
    for name, reason in result.skipped:
        print(f"skipped {name}: {reason}")
    if settings.plot:
        plot_scores(result.scores, settings.plot)
        print(f"bar chart: {settings.plot}")
    if result.tradeoff is not None:
        print(f"\nTrade-off along our join knob ({settings.vocab_size:,} vocab, same text, same run):\n")
        print(format_tradeoff(result.tradeoff))
        print()
        print(summarize_tradeoff(result.tradeoff))
        if settings.tradeoff_plot:
            plot_tradeoff(result.tradeoff, settings.tradeoff_plot)
            print(f"trade-off curve: {settings.tradeoff_plot}")
    if settings.json_out:
        write_json(result, settings.json_out)
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from ..tokenization.sweep import TokenizerSweepSettings, format_sweep, summarize_sweep, sweep

    settings = settings_from_args(TokenizerSweepSettings, args)
    result = sweep(settings)
    print(f"\n{result.text}; {settings.vocab_size:,} tokens each\n")
    print(format_sweep(result))
    print()
    print(summarize_sweep(result))
    if settings.json_out:
        print(f"rows: {settings.json_out}")
    return 0


def _encode(args: argparse.Namespace) -> int:
    from ..tokenization.hf import load_tokenizer

    tok = load_tokenizer(args.tokenizer)
    ids = tok.encode(args.text, add_special_tokens=False)
    pieces = [tok.decode([i]) for i in ids]
    print("|".join(pieces).replace("\n", "⏎"))
    if args.ids:
        print(ids)
    n_eojeol = max(len(args.text.split()), 1)
    print(f"{len(ids)} tokens, {len(args.text)} characters ({len(args.text) / max(len(ids), 1):.2f} chars/token, "
          f"{len(ids) / n_eojeol:.2f} tokens/eojeol); round trip exact: {tok.decode(ids) == args.text}")
    try:
        from ..tokenization.baselines import BaselineUnavailable, o200k_base

        n = len(o200k_base().encode_batch([args.text])[0])
        ratio = f" → ours uses {len(ids) / n:.0%} of that" if n else ""
        print(f"GPT-4o (o200k_base): {n} tokens{ratio}")
    except BaselineUnavailable as exc:
        print(f"(GPT-4o comparison skipped: {exc})", file=sys.stderr)
    return 0
