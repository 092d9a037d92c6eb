import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from ko_hypervl.cli import build_parser, main


def test_console_script_help_lists_subcommands():
    # the installed console script, the way users call it
    script = Path(sys.executable).parent / "ko-hypervl"  # installed beside this interpreter, even if not on PATH
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True).stdout
    for name in ("corpora", "tokenizer", "model", "ask", "train", "eval", "demo", "serve"):
        assert name in out


def _leaf_parsers(parser, path=()):
    """Every runnable command's parser, with its words (``("train", "pipeline")``)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
    for action in subs:
        for name, child in action.choices.items():
            yield from _leaf_parsers(child, (*path, name))


def test_every_command_has_help_with_its_settings_flags():
    leaves = dict(_leaf_parsers(build_parser()))
    assert len(leaves) >= 25
    for path, parser in leaves.items():
        assert parser.format_help().startswith("usage: ko-hypervl " + " ".join(path)), path
    flags = {("train", "pipeline"): "--read-order", ("train", "sft"): "--vision-lr-scale",
             ("model", "init"): "--vit-stem-channels", ("eval",): "--modes",
             ("corpora", "text", "stats"): "--test-fraction", ("corpora", "build"): "--num", ("demo",): "--port",
             ("train", "compare"): "--ymax"}
    for path, flag in flags.items():
        assert flag in leaves[path].format_help(), path


def test_import_registers_the_auto_classes():
    # README: after `import ko_hypervl`, a checkpoint folder opens with the transformers Auto classes (this is why
    # the package imports its model eagerly, and `ko-hypervl --help` takes seconds)
    code = ("import ko_hypervl\n"
            "from transformers import AutoConfig, AutoModelForImageTextToText\n"
            "config = AutoConfig.for_model('ko_hypervl')\n"
            "print(type(config).__name__, AutoModelForImageTextToText._model_mapping[type(config)].__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["KoHyperVLConfig", "KoHyperVLForConditionalGeneration"]


def test_module_entry_point_version():
    out = subprocess.run([sys.executable, "-m", "ko_hypervl", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("ko-hypervl ")


@pytest.mark.parametrize("name", ["demo", "serve"])
def test_server_commands_refuse_bad_limits_before_loading(name, capsys):
    # settings are checked when they are built, before the model loads or a port is taken
    assert main([name, "--max-new-tokens", "0"]) == 1
    assert "--max-new-tokens must be at least 1" in capsys.readouterr().err
    assert main([name, "--port", "70000"]) == 1
    assert "--port" in capsys.readouterr().err


def test_group_without_action_prints_its_help(capsys):
    assert main(["corpora", "text"]) == 2
    assert "stats" in capsys.readouterr().out


def test_unknown_command_exits_with_usage():
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2


def test_corpus_stats_and_sample(capsys):
    assert main(["corpora", "text", "stats"]) == 0
    out = capsys.readouterr().out
    assert "| nsmc |" in out and "held-out" in out
    assert main(["corpora", "text", "sample", "--source", "wikinews", "-n", "2"]) == 0
    assert capsys.readouterr().out.count("── wikinews / ") == 2
    assert main(["corpora", "text", "sample", "--source", "nope"]) == 1


def test_missing_corpus_is_a_clear_cli_error(tmp_path, capsys):
    assert main(["corpora", "text", "stats", "--corpus-dir", str(tmp_path)]) == 1
    assert "corpus manifest not found" in capsys.readouterr().err
