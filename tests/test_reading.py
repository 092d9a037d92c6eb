"""Reading pretraining: jamo units, the CTC vocabulary and its greedy decoding, the patch order, and a run that
learns to read its lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from ko_hypervl.checkpoint import save_checkpoint
from ko_hypervl.cli import main
from ko_hypervl.imagecorpus.records import transcriptions
from ko_hypervl.model.build import ModelBuildSettings, build_model
from ko_hypervl.training.pipeline import RECIPES
from ko_hypervl.training.reading import (
    ReadingModel, ReadingVocab, ReadSettings, blank_logit, compose, patch_sequence, reading_units,
)

HARD = ["값이 3,400원\n늘었다", "읽었다 않았다 꿇었다", "뷁 똠방각하 ㅋㅋ", "Ｈello 12.5%!"]


@pytest.mark.parametrize("text", HARD)
def test_jamo_units_compose_back_to_the_text_with_line_breaks_as_spaces(text):
    units = reading_units(text)
    assert compose(units) == " ".join(text.split())
    assert "\n" not in units


def test_hangul_is_read_in_jamo_so_the_classes_stay_few():
    assert reading_units("값") == ["ᄀ", "ᅡ", "ᆹ"]
    vocab = ReadingVocab.from_texts(["가나다라마바사", "각낙닥락"])
    assert len(vocab) == 1 + len(set(reading_units("가나다라마바사각낙닥락")))    # blank + 7 + 7 + 1 letters


def test_greedy_decoding_merges_repeats_and_drops_blanks():
    vocab = ReadingVocab.from_texts(["값이 늘었다"])
    ids = vocab.encode("값이")
    assert vocab.encode("값이 X") == vocab.encode("값이 늘")[:6]     # a unit the vocabulary lacks is left out
    path = [0, ids[0], ids[0], 0, ids[1], ids[2], 0, 0, ids[3], ids[4], ids[4], 0]
    log_probs = torch.full((len(path), len(vocab)), -10.0)
    log_probs[torch.arange(len(path)), torch.tensor(path)] = 0.0
    assert vocab.decode_greedy(log_probs) == "값이"
    doubled = [ids[0], 0, ids[0]]                                 # a blank between two equal letters keeps both
    log_probs = torch.full((3, len(vocab)), -10.0)
    log_probs[torch.arange(3), torch.tensor(doubled)] = 0.0
    assert vocab.decode_greedy(log_probs) == compose([vocab.units[ids[0] - 1]] * 2)


def test_tiles_are_stitched_back_and_read_row_by_row():
    rows, cols, side = 2, 3, 2
    grid_rows, grid_cols = rows * side, cols * side
    tiles = torch.zeros(rows * cols, side * side, 2)
    for t in range(rows * cols):
        for p in range(side * side):
            r, c = (t // cols) * side + p // side, (t % cols) * side + p % side
            tiles[t, p] = torch.tensor([r, c], dtype=torch.float)
    sequence = patch_sequence(tiles, rows, cols)
    expected = [[r, c] for r in range(grid_rows) for c in range(grid_cols)]
    assert sequence.tolist() == expected
    assert patch_sequence(tiles, rows, cols, "rows").tolist() == expected
    with pytest.raises(ValueError, match="class token"):
        patch_sequence(torch.zeros(6, 5, 2), rows, cols)          # 5 patches: 4 + a class token
    with pytest.raises(ValueError, match="order must be one of rows, columns, got 'diagonal'"):
        patch_sequence(tiles, rows, cols, "diagonal")


def test_a_line_is_read_column_by_column_each_pooled_over_the_height():
    rows, cols, side = 2, 3, 2
    grid = torch.randn(rows * side, cols * side, 5)                   # the image's patch grid
    tiles = grid.view(rows, side, cols, side, 5).permute(0, 2, 1, 3, 4).reshape(rows * cols, side * side, 5)
    sequence = patch_sequence(tiles, rows, cols, "columns")
    assert sequence.shape == (cols * side, 5)                           # one per column, left to right
    for c in range(cols * side):
        assert torch.equal(sequence[c], grid[:, c].max(0).values)
    # a mark in one patch shows in its column only, wherever it is in the height
    marked = torch.zeros(rows * side, cols * side, 1)
    marked[3, 4] = 1.0
    tiles = marked.view(rows, side, cols, side, 1).permute(0, 2, 1, 3, 4).reshape(rows * cols, side * side, 1)
    assert patch_sequence(tiles, rows, cols, "columns")[:, 0].tolist() == [0, 0, 0, 0, 1, 0]


def test_reading_by_columns_keeps_single_line_transcriptions_only(tmp_path):
    from datasets import load_from_disk

    dataset = load_from_disk(str(_lines_dataset(tmp_path, ["가나", "다라\n나가", "라다 가", "가\n"])))["train"]
    assert [text for _, text in transcriptions(dataset)] == ["가나", "다라\n나가", "라다 가", "가\n"]
    assert transcriptions(dataset, single_line=True) == [(0, "가나"), (2, "라다 가"), (3, "가\n")]
    with pytest.raises(ValueError, match="--order must be one of rows, columns"):
        ReadSettings(init=Path("i"), data=Path("d"), order="diagonal")
    model, _ = build_model(ModelBuildSettings(**RECIPES["smoke"].model))
    with pytest.raises(ValueError, match="order must be one of"):
        ReadingModel(model, ("large",), 5, seed=0, order="diagonal")


def test_each_patch_emits_its_positions_next_to_each_other():
    model, _ = build_model(ModelBuildSettings(**RECIPES["smoke"].model))
    classes, positions = 5, 3
    reader = ReadingModel(model, ("large",), classes, seed=0, positions_per_patch=positions)
    head = reader.heads["large"]
    assert head.out_features == positions * classes
    # a head whose k-th position of every patch is sure of class k + 1, whatever the patch shows
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(-20.0)
        for k in range(positions):
            head.bias[k * classes + k + 1] = 20.0
    side = model.config.vision_config.image_size // model.config.vision_config.patch_size
    tiles = torch.zeros(2 * 3 + 1, 3, model.config.vision_config.image_size, model.config.vision_config.image_size)
    (log_probs,) = reader(tiles, torch.tensor([[2, 3]]), "large")
    assert log_probs.shape == (2 * 3 * side * side * positions, classes)     # the thumbnail is not read
    assert log_probs.argmax(-1).tolist() == [1, 2, 3] * (2 * 3 * side * side)
    with pytest.raises(ValueError, match="positions-per-patch"):
        ReadSettings(init=Path("i"), data=Path("d"), positions_per_patch=0)


@pytest.mark.parametrize("prior", [0.0, 0.5, 0.95, 0.99])
def test_a_new_head_starts_every_position_at_the_blank_prior(prior):
    classes, positions = 40, 4
    logits = torch.zeros(classes)
    logits[0] = blank_logit(prior, classes) if prior else 0.0
    assert float(logits.softmax(-1)[0]) == pytest.approx(prior or 1 / classes, rel=1e-6)
    model, processor = build_model(ModelBuildSettings(**RECIPES["smoke"].model))
    reader = ReadingModel(model, ("large", "small"), classes, seed=0, positions_per_patch=positions, blank_prior=prior)
    side = model.config.vision_config.image_size
    tiles = torch.rand(2 * 2 + 1, 3, side, side)
    for branch in ("large", "small"):
        (log_probs,) = reader(tiles, torch.tensor([[2, 2]]), branch)
        blank = log_probs.detach().exp()[:, 0]
        # on average at the prior, and every position near it: the head's weights are small
        assert float(blank.mean()) == pytest.approx(prior or 1 / classes, abs=0.02)
        assert float((blank - (prior or 1 / classes)).abs().max()) < 0.1
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="blank-prior"):
            ReadSettings(init=Path("i"), data=Path("d"), blank_prior=bad)


def _lines_dataset(folder: Path, texts=("가나", "다라", "나가", "라다")) -> Path:
    """A few short printed lines, each with its transcription turn (train and validation are the same lines)."""
    from datasets import Dataset, DatasetDict
    from PIL import Image, ImageDraw, ImageFont

    from ko_hypervl.imagecorpus.fonts import load_font_catalog

    gothic = next(f.path for f in load_font_catalog() if f.name == "nanum-gothic")
    font = ImageFont.truetype(str(gothic), 30)
    rows = []
    for i, text in enumerate(texts):
        image = Image.new("RGB", (112, 56), "white")
        ImageDraw.Draw(image).text((8, 10), text, fill="black", font=font)
        messages = [{"role": "user", "content": [{"type": "image", "text": None},
                                                 {"type": "text", "text": "글을 옮겨 주세요."}]},
                    {"role": "assistant", "content": [{"type": "text", "text": text}]}]
        rows.append({"id": f"l{i}", "kind": "ocr", "image": image, "messages": messages, "tasks": ["transcribe"]})
    DatasetDict({"train": Dataset.from_list(rows), "validation": Dataset.from_list(rows)}).save_to_disk(
        str(folder / "lines"))
    return folder / "lines"


@pytest.mark.parametrize("order", ["rows", "columns"])
def test_the_encoders_learn_to_read_their_lines(tmp_path, order):
    model, processor = build_model(ModelBuildSettings(**RECIPES["smoke"].model))
    init = save_checkpoint(model, processor, tmp_path / "init")
    out = tmp_path / "read"
    assert main(["train", "read", "--init", str(init), "--data", str(_lines_dataset(tmp_path)), "--out", str(out),
                 "--steps", "400", "--batch-size", "4", "--micro-batch-size", "4", "--learning-rate", "3e-3",
                 "--warmup-steps", "10", "--save-every", "400", "--order", order, "--no-progress"]) == 0
    summary = json.loads((out / "final" / "training_summary.json").read_text(encoding="utf-8"))
    assert summary["stages"][-1]["settings"]["ReadSettings"]["order"] == order
    scores = summary["stages"][-1]["reading_cer"]
    # every line read right by both branches; a head on frozen random encoders misreads some (0.125 / 0.625)
    assert scores["large"]["cer"] < 0.1 and scores["small"]["cer"] < 0.1, scores
    # the final checkpoint is the VLM with encoders that changed, and it keeps the large branch's head
    from safetensors.torch import load_file

    before, after = load_file(init / "model.safetensors"), load_file(out / "final" / "model.safetensors")
    assert set(after) == set(before) | {"reading_head.weight", "reading_head.bias"}
    assert not torch.equal(before["vision_model.patch_embedding.weight"], after["vision_model.patch_embedding.weight"])
    assert torch.equal(before["projector.fc1.weight"], after["projector.fc1.weight"])
    head = json.loads((out / "final" / "config.json").read_text(encoding="utf-8"))["reading_head"]
    assert (head["branch"], head["order"], head["cer"]) == ("large", order, scores["large"]["cer"])
    # ... and reads with it: the same lines, the same text the stage scored
    from ko_hypervl import load
    from ko_hypervl.imagecorpus.records import load_split

    lines = load_split(_lines_dataset(tmp_path / "again"), "validation")
    readings = load(out / "final").read([row["image"] for row in lines])
    from ko_hypervl.imagecorpus.tesseract import character_error_rate

    texts = [row["messages"][1]["content"][0]["text"] for row in lines]
    cer = sum(character_error_rate(t, r.text) for t, r in zip(texts, readings)) / len(texts)
    assert cer == pytest.approx(scores["large"]["cer"], abs=1e-3)
    assert all(r.branch == "large" and r.lines == 1 and r.seconds > 0 for r in readings)


def test_a_dataset_without_transcriptions_is_refused(tmp_path, capsys):
    from datasets import Dataset, DatasetDict

    model, processor = build_model(ModelBuildSettings(**RECIPES["smoke"].model))
    init = save_checkpoint(model, processor, tmp_path / "init")
    messages = [{"role": "user", "content": [{"type": "image", "text": None}, {"type": "text", "text": "색은?"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "빨강"}]}]
    from PIL import Image

    rows = [{"id": "x", "kind": "charts", "image": Image.new("RGB", (60, 60)), "messages": messages,
             "tasks": ["colour"]}]
    DatasetDict({"train": Dataset.from_list(rows)}).save_to_disk(str(tmp_path / "d"))
    assert main(["train", "read", "--init", str(init), "--data", str(tmp_path / "d"), "--out", str(tmp_path / "o"),
                 "--no-progress"]) == 1
    assert "no rows with a transcription turn" in capsys.readouterr().err
    # reading by columns needs single lines: a corpus of paragraphs only is refused, and says why
    paragraphs = _lines_dataset(tmp_path / "paragraphs", ["가나\n다라", "나가\n라다"])
    assert main(["train", "read", "--init", str(init), "--data", str(paragraphs), "--out", str(tmp_path / "p"),
                 "--order", "columns", "--no-progress"]) == 1
    assert "no rows with a transcription turn of one line to read" in capsys.readouterr().err
    # a dataset without the held-out split stops before any training (and says how to go on)
    lines = _lines_dataset(tmp_path)
    out = tmp_path / "no-eval"
    assert main(["train", "read", "--init", str(init), "--data", str(lines), "--out", str(out), "--eval-split", "test",
                 "--no-progress"]) == 1
    assert "split 'test' not in" in capsys.readouterr().err and not (out / "checkpoints").exists()


def test_a_reading_head_is_kept_only_for_the_encoder_it_was_fitted_with(tmp_path, capsys):
    from ko_hypervl import load
    from ko_hypervl.model.reading import ReadingHeadSpec, encoder_digest, reading_head_layer

    model, processor = build_model(ModelBuildSettings(**RECIPES["smoke"].model))
    plain = save_checkpoint(model, processor, tmp_path / "plain")
    image = Image.new("RGB", (112, 40), "white")
    with pytest.raises(ValueError, match="no reading head"):
        load(plain).read(image)
    image.save(tmp_path / "line.png")
    assert main(["read", str(tmp_path / "line.png"), "--model", str(plain)]) == 1
    assert "no reading head" in capsys.readouterr().err

    spec = ReadingHeadSpec("large", ("ᄀ", "ᅡ"), 2, "columns", encoder_digest(model.vision_model), cer=0.5)
    head = reading_head_layer(model.config.vision_config.hidden_size, spec)
    model.install_reading_head(head, spec)
    kept = save_checkpoint(model, processor, tmp_path / "kept")
    vlm = load(kept)
    assert torch.equal(vlm.model.reading_head.weight, head.weight) and vlm.model.reading_head_spec() == spec
    assert main(["read", str(tmp_path / "line.png"), "--model", str(kept), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["branch"] == "large" and set(printed["text"]) <= {"가", "ᄀ", "ᅡ"} and printed["lines"] == 1
    assert main(["read", str(tmp_path / "line.png"), "--model", str(kept)]) == 0
    assert capsys.readouterr().out.startswith(f"# {tmp_path / 'line.png'} (1 line)\n")
    assert main(["model", "info", str(kept)]) == 0 and "reading head: large branch, 3 classes" in capsys.readouterr().out
    # the digest is of the weights as float16, so the bundle's float16 export keeps a head that fits
    assert main(["model", "export", str(kept), "--out", str(tmp_path / "f16")]) == 0
    assert load(tmp_path / "f16").read(image)[0].text == vlm.read(image)[0].text
    with torch.no_grad():           # a later stage that trains the encoder leaves the head behind it
        vlm.model.vision_model.patch_embedding.weight.add_(0.01)
    with pytest.raises(ValueError, match="trained after its reading head was fitted"):
        vlm.read(image)
    with pytest.raises(ValueError, match="weights are"):
        model.install_reading_head(torch.nn.Linear(4, 4), spec)
