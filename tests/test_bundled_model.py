"""The bundled ko-hypervl-tiny (issue #7): committed, small, self-contained, documented and usable by default."""

from __future__ import annotations

import io
import json

import pytest
import torch
from PIL import Image

from ko_hypervl import KoHyperVL
from ko_hypervl.checkpoint import bundled_model_dir, read_training_summary
from ko_hypervl.imagecorpus.build import render_sample
from ko_hypervl.training.pipeline import RECIPES

BUNDLED = bundled_model_dir()


def test_the_bundled_model_is_committed_small_and_safetensors_only():
    assert (BUNDLED / "config.json").is_file(), "the bundled model is missing: bash training/recipes/bundle.sh"
    files = [p for p in BUNDLED.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 40 * 2**20        # well under the 60 MB limit
    assert not [p.name for p in files if p.suffix in (".bin", ".pt", ".pth", ".pkl", ".ckpt")]
    for name in ("model.safetensors", "tokenizer.json", "processor_config.json", "chat_template.jinja",
                 "training_summary.json", "model_card.md", "eval.json"):
        assert (BUNDLED / name).is_file(), name


def test_the_card_and_summary_describe_this_checkpoint_and_its_recipe():
    summary = read_training_summary(BUNDLED)
    assert summary["recipe"] in RECIPES                            # a named recipe anyone can run again
    reads = "read" in RECIPES[summary["recipe"]].train
    assert [s["stage"] for s in summary["stages"]] == ["lm", *(["read"] if reads else []), "align", "sft", "dcl",
                                                       "vrc"]
    report = json.loads((BUNDLED / "eval.json").read_text(encoding="utf-8"))
    assert set(report["modes"]) == {"auto", "high", "low"}
    assert report["training_summary"] == summary                   # evaluated from this very folder
    card = (BUNDLED / "model_card.md").read_text(encoding="utf-8")
    assert "ko-hypervl eval" in card and "Targets" in card
    assert card.startswith("# Model card: ko-hypervl-tiny")
    assert "weights stored as float16, evaluated in float32" in card
    assert f"### Why this size\n\n{RECIPES[summary['recipe']].sizing}" in card   # the recipe's measured reasons
    config = json.loads((BUNDLED / "config.json").read_text(encoding="utf-8"))
    recipe = RECIPES[summary["recipe"]].model
    assert config["text_config"]["hidden_size"] == recipe["lm_hidden_size"]
    assert config["vision_config"]["image_size"] == recipe["tile_size"]
    assert config.get("small_image_scale", 1.0) == recipe.get("small_image_scale", 1.0)   # dual resolution


@pytest.fixture(scope="module")
def vlm():
    return KoHyperVL.load()                                         # no path: the bundled model


def test_it_loads_by_default_in_float32_and_answers_with_a_vrc_decision(vlm):
    assert {p.dtype for p in vlm.model.parameters()} == {torch.float32}
    row = render_sample("charts", 7, seed=123, split="test", n_questions=1)
    question = row["messages"][0]["content"][1]["text"]
    image = Image.open(io.BytesIO(row["image"]["bytes"]))
    answers = {mode: vlm.ask(image, question, mode=mode, max_new_tokens=24) for mode in ("auto", "low")}
    for mode, answer in answers.items():
        assert answer.new_tokens >= 1 and answer.decisions[0].mode == mode
    auto, low = answers["auto"].decisions[0], answers["low"].decisions[0]
    assert auto.chosen_by == "vrc" and auto.visual_tokens <= auto.full_visual_tokens
    assert low.branch == "small" and low.visual_tokens < auto.full_visual_tokens


def test_the_readme_says_what_the_card_measured_about_the_images():
    # the README's front-door table tells users whether the bundled model's answers depend on the image; that
    # number must be the card's, from the same eval run
    from pathlib import Path

    report = json.loads((BUNDLED / "eval.json").read_text(encoding="utf-8"))
    use = report["blank_image"]["answer_loss"]["all"]
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    if abs(use["gain"]) < 5e-4:       # the README says the answers do not depend on the image: still true?
        assert "흰 이미지와 손실 차 0.000" in readme and "번들 모델은 정확히 0.000" in readme
    else:                              # a new bundle that uses its images: the README must say so
        assert f"{use['gain']:+.3f}" in readme
    assert "What the images are worth" in (BUNDLED / "model_card.md").read_text(encoding="utf-8")
