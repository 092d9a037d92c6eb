"""The reading head's letter LM (Kneser–Ney n-grams over its units) and the CTC beam search that uses it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from ko_hypervl.model.reading import ReadingVocab, best_path, reading_units
from ko_hypervl.processing.ctc_decode import beam_search, decode_reading
from ko_hypervl.processing.reading_lm import (
    BITS, BOUNDARY, DecodeSettings, fit_reading_lm, line_ids, load_reading_lm, ngram_codes, pack, save_reading_lm,
)

LINES = ["안녕하세요 반갑습니다", "오늘은 날씨가 좋습니다", "안녕히 가세요", "학교에 갑니다", "계산기 12,500원",
         "ㅋㅋ 정말요?"] * 3


def _vocab(lines=LINES) -> ReadingVocab:
    return ReadingVocab.from_texts(lines)


@pytest.mark.parametrize("history_text", ["", "안녕", "학교에 ", "없는 글자 뒤"])
def test_unpruned_kneser_ney_sums_to_one_after_any_history(history_text):
    vocab = _vocab([*LINES, "없는 글자 뒤"])
    lm = fit_reading_lm(LINES, tuple(vocab.units), order=4, min_count=1)
    history = (BOUNDARY, *vocab.encode(history_text))
    total = sum(math.exp(lm.log_prob(history, unit)) for unit in range(len(vocab)))   # units + the line's end
    assert total == pytest.approx(1.0, abs=1e-6)


def test_the_lm_prefers_korean_and_pruning_keeps_every_context():
    vocab = _vocab()
    lm = fit_reading_lm(LINES, tuple(vocab.units), order=5, min_count=3)
    assert lm.text_log_prob("안녕하세요") > lm.text_log_prob("안녕하셰요") + 5
    assert lm.text_log_prob("안녕하세요") > lm.text_log_prob("요세하녕안") + 5
    full = fit_reading_lm(LINES, tuple(vocab.units), order=5, min_count=1)
    assert lm.size < full.size
    for k in range(2, lm.order + 1):          # a kept n-gram's context is kept, so its back-off weight is there
        contexts = set((lm.grams[k - 1] >> BITS).tolist())
        assert contexts <= set(lm.grams[k - 2].tolist())
    with pytest.raises(ValueError, match="lack"):
        lm.text_log_prob("漢字")
    with pytest.raises(ValueError, match="order"):
        fit_reading_lm(LINES, tuple(vocab.units), order=8)
    with pytest.raises(ValueError, match="no line"):
        fit_reading_lm(["漢字"], tuple(vocab.units))


def test_n_grams_stay_inside_their_line():
    units = ("a", "b")
    ids, skipped = line_ids(["ab", "ba", "c"], units)
    assert ids.tolist() == [0, 1, 2, 0, 2, 1, 0] and skipped == 1
    assert sorted(ngram_codes(ids, 3).tolist()) == sorted([pack((0, 1, 2)), pack((1, 2, 0)), pack((0, 2, 1)),
                                                            pack((2, 1, 0))])
    # "a b | b a": no bigram joins the lines through their boundary, but each line starts and ends
    assert pack((2, 0)) in ngram_codes(ids, 2).tolist() and pack((0, 0)) not in ngram_codes(ids, 2).tolist()


def test_saved_and_loaded_it_scores_the_same(tmp_path):
    vocab = _vocab()
    lm = fit_reading_lm(LINES, tuple(vocab.units), order=4, min_count=2, decode=DecodeSettings(0.7, 1.5, 8))
    lm.info["cer"] = 0.25
    assert load_reading_lm(tmp_path) is None
    save_reading_lm(lm, tmp_path)
    again = load_reading_lm(tmp_path)
    assert again.units == lm.units and again.decode == lm.decode and again.info == lm.info
    for text in ("안녕하세요", "계산기 12,500원", "ㅋㅋ"):
        assert again.text_log_prob(text) == pytest.approx(lm.text_log_prob(text), abs=0.05)   # stored as float16
    (tmp_path / "reading_lm.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="could not load the reading LM"):
        load_reading_lm(tmp_path)


def _frames(vocab: ReadingVocab, frames: list[dict[str, float]]) -> np.ndarray:
    """Log-probabilities from per-position probabilities of a few units ("" is the blank); the rest share 1e-6."""
    out = np.full((len(frames), len(vocab)), 1e-6)
    for t, probs in enumerate(frames):
        for unit, p in probs.items():
            out[t, 0 if unit == "" else vocab.index[unit]] = p
    return np.log(out / out.sum(1, keepdims=True))


def test_beam_search_without_an_lm_finds_the_best_path_and_keeps_doubled_letters():
    vocab = _vocab()
    k = reading_units("ㅋ")[0]
    doubled = _frames(vocab, [{k: 0.9}, {"": 0.9}, {k: 0.9}])
    held = _frames(vocab, [{k: 0.9}, {k: 0.9}, {"": 0.9}])
    plain = DecodeSettings(alpha=0.0, beta=0.0, beam=8)
    assert beam_search(doubled, None, plain) == [vocab.index[k]] * 2
    assert beam_search(held, None, plain) == [vocab.index[k]]
    rng = np.random.default_rng(0)
    for _ in range(5):     # peaked random positions: the best labelling is the best path's
        logits = rng.normal(size=(30, len(vocab))) * 6
        log_probs = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
        assert beam_search(log_probs, None, plain) == best_path(torch.from_numpy(log_probs))


def test_the_lm_settles_a_letter_the_head_is_unsure_of():
    vocab = _vocab()
    lm = fit_reading_lm(LINES, tuple(vocab.units), order=4, min_count=1, decode=DecodeSettings(0.5, 0.5, 8))
    frames = []
    for unit in reading_units("안녕하세요"):
        frames += [{"ᅨ": 0.55, "ᅦ": 0.45} if unit == "ᅦ" else {unit: 0.95}, {"": 0.95}]
    log_probs = _frames(vocab, frames)
    assert decode_reading(log_probs, tuple(vocab.units), greedy=True) == "안녕하셰요"
    assert decode_reading(torch.from_numpy(log_probs), tuple(vocab.units), lm) == "안녕하세요"
    with pytest.raises(ValueError, match="another head's units"):
        decode_reading(log_probs, ("ᄀ",) + tuple(vocab.units[1:]), lm)


def test_a_checkpoint_reads_with_its_fitted_lm(tmp_path, capsys):
    from ko_hypervl import load
    from ko_hypervl.checkpoint import save_checkpoint
    from ko_hypervl.cli import main
    from ko_hypervl.model.build import ModelBuildSettings, build_model
    from ko_hypervl.model.reading import ReadingHeadSpec, encoder_digest, reading_head_layer
    from ko_hypervl.training.pipeline import RECIPES
    from test_reading import _lines_dataset

    model, processor = build_model(ModelBuildSettings(**RECIPES["smoke"].model))
    units = tuple(ReadingVocab.from_texts(["가나다라마바사 아자차카타파하 .,?!"]).units)
    spec = ReadingHeadSpec("large", units, 2, "columns", encoder_digest(model.vision_model))
    torch.manual_seed(0)
    model.install_reading_head(reading_head_layer(model.config.vision_config.hidden_size, spec), spec)
    kept = save_checkpoint(model, processor, tmp_path / "kept")
    data = _lines_dataset(tmp_path)
    assert main(["model", "reading-lm", str(kept), "--data", str(data), "--order", "3", "--rows", "4",
                 "--alphas", "0", "0.5", "--betas", "0", "1", "--beam", "4"]) == 0
    out = capsys.readouterr().out
    assert "best path (no LM)" in out and "alpha \\ beta" in out
    record = json.loads(out.strip().splitlines()[-1])
    vlm = load(kept)
    grid = vlm.reading_lm.info["grid"]      # every (alpha, beta) tried, kept with the LM
    assert record["rows"] == 4 and len(grid) == 4 and record["cer"] <= record["greedy_cer"]
    assert record["cer"] == min(g["cer"] for g in grid)
    assert (record["alpha"], record["beta"]) == (vlm.reading_lm.decode.alpha, vlm.reading_lm.decode.beta)
    assert vlm.reading_lm is not None and vlm.reading_lm.decode.beam == 4
    image = Image.new("RGB", (112, 40), "white")
    assert vlm.read(image)[0].decoder == "beam search + reading LM"
    assert vlm.read(image, greedy=True)[0].decoder == "best path"
    assert main(["model", "info", str(kept)]) == 0 and "reading LM: order 3" in capsys.readouterr().out
    # the float16 export carries it along
    assert main(["model", "export", str(kept), "--out", str(tmp_path / "f16")]) == 0
    assert load(tmp_path / "f16").reading_lm.units == units
    image.save(tmp_path / "line.png")
    assert main(["read", str(tmp_path / "line.png"), "--model", str(kept), "--json", "--greedy"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["decoder"] == "best path"


def test_the_pipeline_fits_the_reading_lm_once_and_copies_it_into_the_final_model(tmp_path, monkeypatch):
    import ko_hypervl.training.reading_lm as reading_lm
    from ko_hypervl.training.pipeline import PipelineSettings, _add_reading_lm

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps({"reading_head": None}))
    settings = PipelineSettings(out=tmp_path / "run", smoke=True)
    fitted = []

    def fake_fit(chosen):      # stands in for fit_and_tune (tested above): records the call, writes the file
        fitted.append(chosen)
        vocab = _vocab()
        save_reading_lm(fit_reading_lm(LINES, tuple(vocab.units), order=3), chosen.model)
        return {"greedy_cer": 0.5, "cer": 0.4, "alpha": 0.5, "beta": 1.0, "seconds": 12.5}

    monkeypatch.setattr(reading_lm, "fit_and_tune", fake_fit)
    _add_reading_lm(model_dir, tmp_path / "data", settings)           # no head: nothing to decode
    assert not fitted and not (model_dir / "reading_lm.safetensors").exists()
    (model_dir / "config.json").write_text(json.dumps({"reading_head": {"branch": "large"}}))
    _add_reading_lm(model_dir, tmp_path / "data", settings)
    assert [(f.model, f.data, f.seed) for f in fitted] == [(str(model_dir), tmp_path / "data", 0)]
    kept = tmp_path / "run" / "reading_lm" / "reading_lm.safetensors"
    assert kept.read_bytes() == (model_dir / "reading_lm.safetensors").read_bytes()
    (model_dir / "reading_lm.safetensors").unlink()                    # a rerun restages the model: copied again
    _add_reading_lm(model_dir, tmp_path / "data", settings)
    assert len(fitted) == 1 and (model_dir / "reading_lm.safetensors").is_file()
    # its time counts in the run's, however many reruns copy it
    from ko_hypervl.training.pipeline import preparation_steps

    assert [step["seconds"] for step in preparation_steps(tmp_path / "run")] == [12.5]

    def refuses(chosen):
        raise ValueError("the large encoder was trained after its reading head was fitted")

    monkeypatch.setattr(reading_lm, "fit_and_tune", refuses)
    _add_reading_lm(model_dir, tmp_path / "data", PipelineSettings(out=tmp_path / "other", smoke=True))
    assert not (tmp_path / "other" / "reading_lm").exists()
