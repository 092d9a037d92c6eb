"""``ko-hypervl model init/info`` and ``ko-hypervl ask`` end to end on a tiny untrained checkpoint."""

import json

import pytest
from PIL import Image

from ko_hypervl.cli import main

TINY_FLAGS = ["--tile-size", "56", "--patch-size", "14", "--vit-hidden-size", "32", "--vit-layers", "1",
              "--small-vit-hidden-size", "16", "--small-vit-layers", "1", "--lm-hidden-size", "32", "--lm-layers", "1",
              "--lm-heads", "2", "--lm-kv-heads", "1", "--lm-intermediate-size", "64", "--max-positions", "512",
              "--max-tiles", "6", "--small-image-scale", "0.5"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt") / "tiny"
    assert main(["model", "init", "--out", str(out), *TINY_FLAGS]) == 0
    return out


@pytest.fixture()
def chart(tmp_path):
    path = tmp_path / "chart.png"
    Image.new("RGB", (150, 90), "white").save(path)
    return path


def test_init_writes_a_checkpoint_and_info_describes_it(checkpoint, capsys):
    assert (checkpoint / "model.safetensors").is_file() and (checkpoint / "tokenizer.json").is_file()
    assert main(["model", "info", str(checkpoint)]) == 0
    out = capsys.readouterr().out
    assert "large branch: 56 px tiles at 1× resolution, 4 visual tokens per tile" in out
    assert "small branch: 56 px tiles at 0.5× resolution, 1 visual tokens per tile" in out


@pytest.mark.parametrize("mode, branch", [("auto", "large"), ("low", "small"), ("high", "large")])
def test_ask_json_reports_answer_and_vrc_decision(checkpoint, chart, mode, branch, capsys):
    code = main(["ask", str(chart), "가장 큰 값은?", "--model", str(checkpoint), "--mode", mode, "--json",
                 "--max-new-tokens", "4"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    decision = result["vrc"][0]
    assert decision["mode"] == mode and decision["branch"] == branch
    assert decision["chosen_by"] == ("vrc" if mode == "auto" else "fixed")
    assert result["visual_tokens"] == decision["visual_tokens"] <= decision["full_visual_tokens"]
    assert isinstance(result["answer"], str) and result["new_tokens"] >= 1


def test_ask_plain_prints_the_decision_on_stderr(checkpoint, chart, capsys):
    assert main(["ask", str(chart), "제목은?", "--model", str(checkpoint), "--scale", "0.5",
                 "--max-new-tokens", "3"]) == 0
    err = capsys.readouterr().err
    assert "[VRC] mode=auto branch=large scale=0.5 (fixed)" in err and "first token" in err


def test_ask_errors_are_clear(checkpoint, chart, tmp_path, capsys):
    assert main(["ask", str(chart), "질문", "--model", str(tmp_path / "none")]) == 1
    assert "model directory not found" in capsys.readouterr().err
    text = tmp_path / "a.txt"
    text.write_text("not an image")
    assert main(["ask", str(text), "질문", "--model", str(checkpoint)]) == 1
    assert "a.txt" in capsys.readouterr().err
    assert main(["ask", str(chart), "  ", "--model", str(checkpoint)]) == 1
    assert "empty" in capsys.readouterr().err
