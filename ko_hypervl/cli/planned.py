"""Command groups whose implementation arrives with a later issue.

They are listed so that ``ko-hypervl --help`` shows the whole shape of the tool; running one says
plainly that it is not available yet instead of failing somewhere inside.
"""

from __future__ import annotations

import argparse
import sys

PLANNED = {
    "demo": ("start the Gradio demo in the browser", 8),
    "serve": ("serve an OpenAI-compatible /v1/chat/completions API", 8),
}


def _not_yet(issue: int):
    def run(args: argparse.Namespace) -> int:
        print(f"ko-hypervl {args.command}: not available yet (planned in issue #{issue}).", file=sys.stderr)
        return 2

    return run


def register(commands: argparse._SubParsersAction, only: tuple[str, ...] | None = None) -> None:
    for name, (summary, issue) in PLANNED.items():
        if only is not None and name not in only:
            continue
        p = commands.add_parser(name, help=f"{summary} [not yet: issue #{issue}]", description=summary)
        p.set_defaults(func=_not_yet(issue))
