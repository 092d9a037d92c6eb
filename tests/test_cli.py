import subprocess
import sys
from pathlib import Path

import pytest

from ko_hypervl.cli import main


def test_console_script_help_lists_subcommands():
    # the installed console script, the way users call it
    script = Path(sys.executable).parent / "ko-hypervl"  # installed beside this interpreter, even if not on PATH
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True).stdout
    for name in ("corpora", "tokenizer", "model", "ask", "train", "eval", "demo", "serve"):
        assert name in out


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
