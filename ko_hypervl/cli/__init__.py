"""The ``ko-hypervl`` command line: one entry point, one module per command group."""

from __future__ import annotations

import argparse
import logging
import sys

from .. import __version__
from . import corpora, evaluation, model, serve, tokenizer, train

DESCRIPTION = """\
ko-hypervl: 한국어 우선 소형 비전-언어 모델 툴킷 (Korean-first small vision-language model toolkit).

Run `ko-hypervl COMMAND --help` for the options of each command."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ko-hypervl", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    corpora.register(commands)
    tokenizer.register(commands)
    model.register(commands)
    train.register(commands)
    evaluation.register(commands)
    serve.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not hasattr(args, "func"):
        # a group named without its subcommand prints that group's help
        (getattr(args, "group_parser", None) or parser).print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"ko-hypervl: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
