"""Helpers shared by the command modules."""

from __future__ import annotations

import argparse
import importlib
from typing import Callable


class LazyArgumentParser(argparse.ArgumentParser):
    """An argument parser that adds some of its arguments only when it is used (parsed, or its help printed).

    A command's flags come from settings dataclasses whose modules import torch and transformers (seconds), so
    they are added when that command runs: ``ko-hypervl --help`` and ``ko-hypervl tokenizer encode`` do not pay
    for the training code. Subparsers are of this class too (argparse makes them of their parent's class).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._deferred: list[Callable[[argparse.ArgumentParser], None]] = []

    def defer(self, add_arguments: Callable[[argparse.ArgumentParser], None]) -> None:
        """Call ``add_arguments(self)`` before this parser first parses or formats its help."""
        self._deferred.append(add_arguments)

    def populate(self) -> None:
        while self._deferred:
            self._deferred.pop(0)(self)

    def parse_known_args(self, args=None, namespace=None):
        self.populate()
        return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        self.populate()
        return super().format_usage()

    def format_help(self) -> str:
        self.populate()
        return super().format_help()


def settings_class(path: str) -> type:
    """The settings dataclass named ``"module:Class"``, the module relative to the package (``"model.build:…"``)."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(f"ko_hypervl.{module}"), name)


def add_command_group(commands: argparse._SubParsersAction, name: str, help: str, description: str,
                      title: str, metavar: str) -> argparse._SubParsersAction:
    """A command that only holds subcommands; named alone, it prints its own help (see ``cli.main``)."""
    group = commands.add_parser(name, help=help, description=description)
    group.set_defaults(group_parser=group)
    return group.add_subparsers(title=title, metavar=metavar)


def add_settings_command(sub: argparse._SubParsersAction, name: str, help: str, description: str,
                         settings: str, func, positional: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    """A subcommand whose flags are the fields of the settings dataclass named ``settings`` ("module:Class", see
    ``settings_class``; imported when the subcommand is used); ``positional``: fields given without a flag."""
    parser = sub.add_parser(name, help=help, description=description)
    defer_settings_arguments(parser, settings, positional=positional)
    parser.set_defaults(func=func)
    return parser


def defer_settings_arguments(parser: argparse.ArgumentParser, *settings: str,
                             positional: tuple[str, ...] = ()) -> None:
    """Add the flags of the settings dataclasses named ``settings`` when ``parser`` is first used."""
    from ..settings import add_settings_arguments

    def add(p: argparse.ArgumentParser) -> None:
        for path in settings:
            add_settings_arguments(p, settings_class(path), positional)

    parser.defer(add)
