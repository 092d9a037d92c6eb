"""``ko-hypervl eval``: evaluate a checkpoint on the held-out image test rows and write its model card."""

from __future__ import annotations

import argparse
import json
import sys

from ..settings import settings_from_args
from .common import add_settings_command


def register(commands: argparse._SubParsersAction) -> None:
    from ..evaluation import EvalSettings

    parser = add_settings_command(
        commands, "eval", "evaluate a checkpoint on the held-out test splits and write its model card",
        "Answer the held-out image test questions (charts, tables, exam pages, OCR) in each mode (auto/high/low), "
        "score exact match, OCR CER and exam accuracy, count visual tokens, time single requests, compare with "
        "Tesseract, and write model_card.md, eval.json, predictions.jsonl and plots to --out.",
        EvalSettings, _eval)
    parser.add_argument("--json", action="store_true", help="print the whole report as JSON instead of tables")


def _eval(args: argparse.Namespace) -> int:
    from ..evaluation import EvalInputError, EvalSettings, evaluate
    from ..evaluation.card import results_markdown, targets_markdown

    try:
        report = evaluate(settings_from_args(EvalSettings, args))
    except EvalInputError as exc:   # bad input, like a usage error: exit 2, as argparse does
        print(f"ko-hypervl eval: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=1))
        return 0
    result = report.to_dict()
    print(results_markdown(result))
    print()
    print("\n".join(targets_markdown(result)))
    print()
    for path in report.files:
        print(f"wrote {path}")
    return 0
