"""Helpers shared by the command modules."""

from __future__ import annotations

import argparse


def add_command_group(commands: argparse._SubParsersAction, name: str, help: str, description: str,
                      title: str, metavar: str) -> argparse._SubParsersAction:
    """A command that only holds subcommands; named alone, it prints its own help (see ``cli.main``)."""
    group = commands.add_parser(name, help=help, description=description)
    group.set_defaults(group_parser=group)
    return group.add_subparsers(title=title, metavar=metavar)


def add_settings_command(sub: argparse._SubParsersAction, name: str, help: str, description: str,
                         settings_cls: type, func, positional: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    """A subcommand whose flags are the fields of the dataclass ``settings_cls`` (``positional``: given without a flag)."""
    from ..settings import add_settings_arguments

    parser = sub.add_parser(name, help=help, description=description)
    add_settings_arguments(parser, settings_cls, positional)
    parser.set_defaults(func=func)
    return parser
