import argparse
from dataclasses import dataclass
from pathlib import Path

import pytest

from ko_hypervl.settings import add_settings_arguments, parse_setting, setting, settings_from_args


@dataclass
class Example:
    data: Path = setting(help="input")
    steps: int = setting(10, help="how many steps")
    lr: float = setting(3e-4, help="learning rate")
    mode: str = setting("auto", help="branch", choices=("auto", "low", "high"))
    smoke: bool = setting(False, help="tiny run")
    scales: tuple[float, ...] = setting((0.25, 0.5, 1.0), help="scales")
    limit: int | None = setting(None, help="optional cap")


def parse(argv):
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser, Example)
    return settings_from_args(Example, parser.parse_args(argv))


def test_defaults_and_types():
    s = parse(["--data", "x.jsonl"])
    assert s == Example(data=Path("x.jsonl"))
    assert isinstance(s.data, Path)


def test_every_kind_of_flag():
    s = parse(["--data", "d", "--steps", "3", "--lr", "0.1", "--mode", "low", "--smoke", "--scales", "0.5", "1"])
    assert (s.steps, s.lr, s.mode, s.smoke, s.scales) == (3, 0.1, "low", True, (0.5, 1.0))


def test_required_missing_and_bad_choice_exit():
    with pytest.raises(SystemExit):
        parse([])
    with pytest.raises(SystemExit):
        parse(["--data", "d", "--mode", "medium"])


def test_help_shows_setting_help_and_default(capsys):
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser, Example)
    parser.print_help()
    out = capsys.readouterr().out
    assert "--steps" in out and "how many steps (default: 10)" in out
    assert "--no-smoke" in out


def test_positional_settings():
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser, Example, positional=("data", "scales"))
    s = settings_from_args(Example, parser.parse_args(["d", "0.5", "1", "--steps", "3"]))
    assert (s.data, s.scales, s.steps) == (Path("d"), (0.5, 1.0), 3)
    with pytest.raises(SystemExit):
        parser.parse_args(["d"])   # a list takes one value or more
    with pytest.raises(TypeError, match="no setting"):
        add_settings_arguments(argparse.ArgumentParser(), Example, positional=("nope",))


def test_parse_setting_types_text_as_the_flag_would():
    assert parse_setting(Example, "data", "x.jsonl") == Path("x.jsonl")
    assert parse_setting(Example, "steps", "3") == 3 and parse_setting(Example, "lr", "1e-3") == 1e-3
    assert parse_setting(Example, "mode", "low") == "low" and parse_setting(Example, "smoke", "True") is True
    assert parse_setting(Example, "scales", "0.5,1") == (0.5, 1.0)
    assert parse_setting(Example, "limit", "none") is None and parse_setting(Example, "limit", "7") == 7
    for name, text, message in [("steps", "3.5", "not a valid int"), ("smoke", "sure", "not a valid bool"),
                                ("mode", "mid", "not one of"), ("step", "3", "no setting 'step'")]:
        with pytest.raises(ValueError, match=message):
            parse_setting(Example, name, text)
