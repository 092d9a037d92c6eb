"""Issue #7 targets in the model card: each target met, not met and not measurable on hand-made eval.json /
bpc.json dicts (no model runs), ``--ablations`` validation, and the card's Targets and Ablations sections."""

from __future__ import annotations

import copy
import json
import shlex

import pytest

from ko_hypervl import EvalSettings
from ko_hypervl.cli import build_parser, main
from ko_hypervl.evaluation import EvalInputError
from ko_hypervl.evaluation.card import card_markdown
from ko_hypervl.evaluation.run import settings_command
from ko_hypervl.evaluation.targets import (LM_TOKENIZER, NO_DCL, TargetRow, kl_weights, load_ablations,
                                           parse_ablations, target_rows, targets_table)
from ko_hypervl.settings import settings_from_args

DATA = {"origin": "rendered held-out test rows (seed 0, first 25 per kind)", "rows": 100, "questions": 200,
        "rows_per_kind": {"charts": 25, "exams": 25, "ocr": 25, "tables": 25}}


def _tally(correct, n=100, **extra):
    return {"n": n, "correct": correct, "accuracy": round(correct / n, 4), **extra}


def _mode(em, *, tokens=100.0, full=100.0, ttft=0.2, charts=90, exams=90, cer=0.05, kobest=(7, 10, 0.45),
          speed=20.0):
    return {"mode": "?", "exact_match": _tally(em),
            "exact_match_by_task": {"lookup": _tally(em)},
            "exact_match_by_kind": {"charts": _tally(charts), "exams": _tally(exams)},
            "transcription_cer": {"n": 20, "reference_chars": 400, "cer": cer, "row_mean_cer": cer},
            "exam_accuracy_by_source": {"all": _tally(kobest[0], kobest[1], chance=kobest[2]),
                                        "kobest": _tally(kobest[0], kobest[1], chance=kobest[2]),
                                        "kobest/copa": _tally(kobest[0], kobest[1], chance=0.5)},
            "visual_tokens": {"images": 100, "mean_visual_tokens": tokens, "mean_full_visual_tokens": full,
                              "saved_share": round(1 - tokens / full, 4), "mean_scale": tokens / full},
            "latency": {"samples": 5, "mean_time_to_first_token_s": ttft, "median_time_to_first_token_s": ttft,
                        "mean_tokens_per_s": speed, "mean_total_s": 1.0, "mean_new_tokens": 10.0},
            "answer_seconds": 10.0}


def _report(auto=None, high=None, low=None, tesseract_cer=0.2, dcl=1.0, hours=2.5, train_device="cpu", cores=2):
    """An eval.json dict whose every target is met, unless the arguments say otherwise."""
    modes = {"auto": auto or _mode(80, tokens=40.0, full=100.0, ttft=0.25),
             "high": high or _mode(80, ttft=0.3),
             "low": low or _mode(76, tokens=20.0, full=20.0, ttft=0.1, charts=80, exams=70)}
    tess = ({"ran": True, "note": None, "transcription_cer": {"n": 20, "cer": tesseract_cer}, "readable_by_kind": {}}
            if tesseract_cer is not None else {"ran": False, "note": "Tesseract baseline turned off (--no-tesseract)"})
    return {"command": "ko-hypervl eval", "date": "2026-01-01T00:00:00+00:00",
            "settings": {"num": 25, "ablations": []},
            "model": {"name": "ko-hypervl-tiny", "path": "/m", "parameters": {"language_model": 1_000_000,
                                                                              "total": 2_000_000},
                      "language_model": {"type": "llama", "layers": 4, "hidden_size": 256, "context": 2048},
                      "branches": {"large": {"tile_size": 112, "visual_tokens_per_tile": 16},
                                   "small": {"tile_size": 112, "visual_tokens_per_tile": 4}},
                      "max_tiles": 20, "vrc_scales": [0.5, 1.0], "dtype": "float32",
                      "tokenizer": {"name": "ko-hypervl-32k (bundled)", "class": "PreTrainedTokenizerFast",
                                    "vocabulary": 32000}},
            "hardware": {"device": "cpu", "torch_threads": 2}, "data": copy.deepcopy(DATA), "modes": modes,
            "tesseract": tess,
            "training_summary": {"recipe": "tiny", "total_seconds": hours * 3600,
                                 "hardware": {"device": train_device, "cpu_count": cores},
                                 "stages": [{"stage": "dcl", "settings": {"DCLSettings": {"kl_weight": dcl}}}]},
            "files": []}


def _twin(high_em=80, low_em=60):
    """The no-DCL twin's eval.json: the same rows, a larger small-branch gap by default (20 pts vs our 4)."""
    return _report(high=_mode(high_em), low=_mode(low_em), dcl=0.0)


def _bpc(ours=(1.20, 0.50), twin=(1.25, 0.60)):
    def row(name, bpc, tpc):
        return {"model": name, "path": name, "vocab_size": 32000, "bits_per_char": bpc, "nats_per_char": bpc * 0.69,
                "bits_per_token": bpc / tpc, "tokens": int(1000 * tpc), "predicted_tokens": int(1000 * tpc) - 1,
                "chars": 1000, "documents": 3, "tokens_per_char": tpc, "nats": 1.0, "bits": 1.0,
                "bits_per_char_ratio": bpc / ours[0], "tokens_per_char_ratio": tpc / ours[1]}

    return {"settings": {"models": ["ours/final", "bpe/final"]}, "text": "3 documents, 1,000 characters",
            "rows": [row("ours/final", *ours), row("bpe/final", *twin)]}


def _rows(report, ablations=None) -> dict[str, TargetRow]:
    rows = target_rows(report, ablations)
    keys = ["tokens", "kept", "dcl", "ttft", "cpu", "recipe", "charts", "exams", "ocr", "kobest", "bpc", "tpc"]
    assert len(rows) == len(keys)
    return dict(zip(keys, rows))


ALL_ABLATIONS = {NO_DCL: _twin(), LM_TOKENIZER: _bpc()}


# ---------------------------------------------------------------- each target: met, not met, not measurable

def test_every_target_met():
    rows = _rows(_report(), ALL_ABLATIONS)
    assert {name: row.met for name, row in rows.items()} == dict.fromkeys(rows, True)
    assert rows["tokens"].measured.startswith("60.0% fewer")
    assert rows["kept"].measured.startswith("100.0% kept")
    assert rows["dcl"].measured.startswith("gap 4.0 pts") and "gap 20.0 pts" in rows["dcl"].reference
    assert "ratio 0.20" in rows["dcl"].reference
    assert rows["ttft"].measured.startswith("3.00×")
    assert rows["cpu"].measured == "250 ms to first token, 20.0 tokens/s (mean of 5 answers)"
    assert rows["cpu"].reference == "cpu, 2 threads"
    assert rows["recipe"].measured.startswith("2.50 h: recipe tiny, stages dcl")
    assert rows["charts"].measured == "90.0% (90/100)" and rows["charts"].reference == "high 90.0%, low 80.0%"
    assert rows["ocr"].reference == "Tesseract CER 0.200"
    assert rows["kobest"].measured == "70.0% (7/10)" and "chance 45.0%" in rows["kobest"].reference
    assert "copa 70.0% (chance 50.0%" in rows["kobest"].reference
    assert rows["bpc"].measured.startswith("1.2000 bits/char") and "bpe/final: 1.2500" in rows["bpc"].reference


def test_a_constant_answer_is_not_above_chance_however_the_items_fall():
    report = _report(auto=_mode(80, kobest=(7, 10, 0.45)))
    kobest = report["modes"]["auto"]["exam_accuracy_by_source"]["kobest"]
    kobest.update(most_named_choice=2, most_named_share=0.8)          # varied enough answers: scored as before
    assert _rows(report)["kobest"].met
    kobest.update(most_named_share=0.95)                              # ② for 19 items of 20: luck of the draw
    row = _rows(report)["kobest"]
    assert row.met is False and "the answers name ② for 95.0% of the items: a constant answer" in row.reference


@pytest.mark.parametrize("target, report, ablations", [
    ("tokens", _report(auto=_mode(80, tokens=51.0, full=100.0)), {}),                # 49 % saved
    ("kept", _report(auto=_mode(78, tokens=40.0)), {}),                              # 97.5 % kept
    ("dcl", _report(low=_mode(68, tokens=20.0, full=20.0, ttft=0.1)), {NO_DCL: _twin(80, 60)}),   # 12 > 20 / 2
    ("ttft", _report(low=_mode(76, tokens=20.0, full=20.0, ttft=0.2)), {}),          # 1.5×
    ("cpu", _report(auto=_mode(80, tokens=40.0, ttft=1.0)), {}),                     # 1 s is not under 1 s
    ("cpu", _report(auto=_mode(80, tokens=40.0, speed=19.9)), {}),
    ("recipe", _report(hours=3.0), {}),
    ("charts", _report(auto=_mode(80, tokens=40.0, charts=84)), {}),
    ("exams", _report(auto=_mode(80, tokens=40.0, exams=80)), {}),
    ("ocr", _report(auto=_mode(80, tokens=40.0, cer=0.25)), {}),
    ("kobest", _report(auto=_mode(80, tokens=40.0, kobest=(4, 10, 0.45))), {}),
    ("bpc", _report(), {LM_TOKENIZER: _bpc(ours=(1.30, 0.50))}),
    ("tpc", _report(), {LM_TOKENIZER: _bpc(ours=(1.20, 0.60))}),                     # equal tokens: not fewer
])
def test_each_target_can_fail(target, report, ablations):
    rows = _rows(report, ablations)
    assert rows[target].met is False, rows[target]


def test_a_no_dcl_gap_within_noise_leaves_the_dcl_target_unmeasured():
    # the bundled model's first such run: 26 vs 25 of 347 right without DCL; a 0.3-pt gap is chance
    def em(correct):
        return _mode(0) | {"exact_match": _tally(correct, n=347)}

    ours = _report(high=em(26), low=em(26))
    row = _rows(ours, {NO_DCL: _report(high=em(26), low=em(25), dcl=0.0)})["dcl"]
    assert row.met is None and "within noise (2 standard errors: 4.0 pts)" in row.reference
    assert row.measured.startswith("gap 0.0 pts")
    # a 1-pt gap (7.5% vs 6.5%) on 100 times more questions is real (2 standard errors: 0.4 pts)
    def many(correct):
        return _mode(0) | {"exact_match": _tally(correct, n=34700)}

    twin = _report(high=many(2600), low=many(2255), dcl=0.0)
    assert _rows(_report(high=many(2600), low=many(2600)), {NO_DCL: twin})["dcl"].met is True
    assert _rows(_report(high=many(2600), low=many(2255)), {NO_DCL: twin})["dcl"].met is False


def test_a_validation_eval_measures_no_target_that_depends_on_its_rows():
    report = _report()
    report["data"] = DATA | {"split": "validation"}
    rows = _rows(report, ALL_ABLATIONS)
    on_rows = {"tokens", "kept", "dcl", "charts", "exams", "ocr", "kobest"}
    for name in on_rows:
        assert rows[name].met is None and "measured on the validation split" in rows[name].reference, name
        assert rows[name].measured == _rows(_report(), ALL_ABLATIONS)[name].measured   # the figure is still shown
    # speed, training time and the tokenizer ablation do not depend on which rows were answered
    assert {name: row.met for name, row in rows.items() if name not in on_rows} == dict.fromkeys(
        set(rows) - on_rows, True)
    # a report from before --split answered the test rows
    assert "split" not in _report()["data"] and _rows(_report(), ALL_ABLATIONS)["charts"].met is True


def test_the_vrc_accuracy_row_says_when_a_few_questions_decided_it():
    # 27 against 30 of 347 right: not met by the point estimate, and the card says it is within noise
    def em(correct, n=347):
        return _mode(0, tokens=48.0, full=300.0) | {"exact_match": _tally(correct, n=n)}

    row = _rows(_report(auto=em(27), high=em(30)))["kept"]
    assert row.met is False and row.measured.startswith("90.0% kept")
    assert row.reference.endswith("; auto − high -0.9 pts is within noise (2 standard errors: 4.2 pts)")
    # the same noise note when the point estimate is met: it is no proof either way
    assert _rows(_report(auto=em(31), high=em(30)))["kept"].met is True
    assert "within noise" in _rows(_report(auto=em(31), high=em(30)))["kept"].reference
    # a 10-pt loss on 34,700 questions is real: no note
    row = _rows(_report(auto=em(2430, 34700), high=em(2777, 34700)))["kept"]
    assert row.met is False and "noise" not in row.reference


def test_boundaries_count_as_met():
    rows = _rows(_report(auto=_mode(79, tokens=50.0, full=100.0), high=_mode(80, ttft=0.2),
                         low=_mode(70, tokens=20.0, full=20.0, ttft=0.1)), {NO_DCL: _twin(80, 60)})
    assert rows["tokens"].met is True                  # exactly 50 % fewer
    assert rows["kept"].met is False                   # 79 / 80 = 98.75 %
    assert rows["dcl"].met is True                     # 10 pts = ½ × 20 pts
    assert rows["ttft"].met is True                    # exactly 2×
    assert rows["cpu"].met is True                     # exactly 20 tokens/s


def test_speed_and_training_time_count_only_on_the_cpu_they_are_about():
    gpu = _report()
    gpu["hardware"] = {"device": "cuda", "torch_threads": 16}
    row = _rows(gpu)["cpu"]
    assert row.met is None and row.reference == "measured on cuda, 16 threads, not on a CPU"
    for report in (_report(train_device="cuda", hours=0.5), _report(cores=16, hours=0.5)):
        row = _rows(report)["recipe"]
        assert row.met is None and "not the 2-core CPU" in row.reference
    untrained = _report()
    untrained["training_summary"] = None
    assert _rows(untrained)["recipe"].met is None
    # what the run did between its stages with a trained model is named where it is counted
    prepared = _report(hours=2.9)
    prepared["training_summary"]["preparation"] = [{"step": "reading the corpus (40 images)", "seconds": 60.0}]
    row = _rows(prepared)["recipe"]
    assert row.met and "stages dcl, reading the corpus (40 images) (rendering" in row.measured


def test_targets_not_measurable_without_modes_baselines_or_ablations():
    only_low = _report()
    only_low["modes"] = {"low": only_low["modes"]["low"]}
    rows = _rows(only_low)
    assert rows.pop("recipe").met is True              # the training time needs no mode
    assert all(row.met is None for row in rows.values())
    for name in ("tokens", "kept", "dcl", "ttft", "cpu", "charts", "exams", "ocr", "kobest"):
        assert rows[name].measured == "not evaluated", name
    assert "needs mode(s) auto, high" in rows["kept"].reference
    assert rows["bpc"].measured == "not measured" and "--ablations lm-tokenizer=PATH" in rows["bpc"].reference

    rows = _rows(_report(tesseract_cer=None))          # every mode, but no twin and no Tesseract
    assert rows["dcl"].met is None and rows["dcl"].measured.startswith("gap 4.0 pts")
    assert "--ablations no-dcl=PATH" in rows["dcl"].reference
    assert rows["ocr"].met is None and "--no-tesseract" in rows["ocr"].reference
    assert rows["tokens"].met is True                  # what is measurable still is


def test_missing_latency_kinds_and_twin_modes_are_not_measurable():
    report = _report()
    for mode in report["modes"].values():
        mode["latency"] = None
        mode["exact_match_by_kind"].pop("charts")
        mode["transcription_cer"] = None
        mode["exam_accuracy_by_source"] = {}
    twin = _twin()
    twin["modes"].pop("low")
    rows = _rows(report, {NO_DCL: twin})
    assert rows["ttft"].met is None and "--latency-samples 0" in rows["ttft"].reference
    assert rows["cpu"].met is None and "--latency-samples 0" in rows["cpu"].reference
    assert rows["charts"].met is None and "no charts rows" in rows["charts"].reference
    assert rows["ocr"].met is None and rows["kobest"].met is None
    assert rows["dcl"].met is None and "not evaluated in mode(s) low" in rows["dcl"].reference


def test_dcl_twin_on_other_rows_is_not_comparable():
    twin = _twin()
    twin["data"]["origin"] = "rendered held-out test rows (seed 1, first 25 per kind)"
    row = _rows(_report(), {NO_DCL: twin})["dcl"]
    assert row.met is None and "not comparable" in row.reference


def test_targets_table_markdown():
    table = targets_table([TargetRow("a | b", "1", "", True), TargetRow("c", "2", "x", False),
                           TargetRow("d", "not evaluated", "y", None)])
    lines = table.splitlines()
    assert lines[0] == "| target | measured | baseline / reference | met |"
    assert lines[2] == "| a \\| b | 1 | — | ✅ met |"
    assert lines[3].endswith("| ❌ not met |") and lines[4].endswith("| — not measurable |")


def test_kl_weights_from_training_summary():
    assert kl_weights(_twin()["training_summary"]) == {"dcl": 0.0}
    assert kl_weights(None) == {} and kl_weights({"total_hours": 1}) == {}


# ---------------------------------------------------------------- --ablations

def _files(tmp_path):
    twin, bpc = tmp_path / "twin eval.json", tmp_path / "bpc.json"
    twin.write_text(json.dumps(_twin()), encoding="utf-8")
    bpc.write_text(json.dumps(_bpc()), encoding="utf-8")
    return twin, bpc


def test_ablations_setting_round_trips_through_the_command(tmp_path):
    twin, bpc = _files(tmp_path)
    settings = EvalSettings(model="m", ablations=[f"no-dcl={twin}", f"lm-tokenizer={bpc}"])
    assert parse_ablations(settings.ablations) == {NO_DCL: twin, LM_TOKENIZER: bpc}
    command = settings_command(settings)
    assert command.endswith(" --ablations " + shlex.join([f"no-dcl={twin}", f"lm-tokenizer={bpc}"]))
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert settings_from_args(EvalSettings, args) == settings
    plain = settings_command(EvalSettings(model="m"))   # no ablations: no bare --ablations that would not parse
    assert "--ablations" not in plain
    assert settings_from_args(EvalSettings, build_parser().parse_args(shlex.split(plain)[1:])).ablations == []
    loaded = load_ablations(parse_ablations(settings.ablations))
    assert loaded[LM_TOKENIZER]["rows"][0]["model"] == "ours/final" and loaded[NO_DCL]["modes"]


@pytest.mark.parametrize("item, message", [
    ("no-dcl", "NAME=PATH"),
    ("=x.json", "NAME=PATH"),
    ("no-dcl=", "NAME=PATH"),
    ("dcl=TWIN", "unknown ablation 'dcl'; known: no-dcl, lm-tokenizer"),
    ("no-dcl=/nonexistent/eval.json", "file not found"),
])
def test_bad_ablations_are_rejected(tmp_path, item, message):
    twin, _ = _files(tmp_path)
    with pytest.raises(EvalInputError, match=message):
        EvalSettings(ablations=[item.replace("TWIN", str(twin))])


def test_repeated_and_malformed_ablation_files_are_rejected(tmp_path):
    twin, bpc = _files(tmp_path)
    with pytest.raises(EvalInputError, match="given twice"):
        EvalSettings(ablations=[f"no-dcl={twin}", f"no-dcl={twin}"])
    with pytest.raises(EvalInputError, match="no 'modes'"):
        load_ablations({NO_DCL: bpc})                    # the files swapped
    with pytest.raises(EvalInputError, match="at least two models"):
        load_ablations({LM_TOKENIZER: twin})
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(EvalInputError, match="cannot read it as JSON"):
        load_ablations({LM_TOKENIZER: broken})


def test_cli_bad_ablations_exit_2(tmp_path, capsys):
    assert main(["eval", "--out", str(tmp_path), "--ablations", "bogus=1"]) == 2
    assert "unknown ablation 'bogus'" in capsys.readouterr().err


# ---------------------------------------------------------------- the card

def _card_report(ablations: dict[str, str]):
    report = _report()
    loaded = {name: ALL_ABLATIONS[name] for name in ablations}
    report["targets"] = [row.to_dict() for row in target_rows(report, loaded)]
    report["ablations"] = ablations
    return report, loaded


def test_card_has_targets_and_ablations():
    report, loaded = _card_report({NO_DCL: "runs/ablation-dcl/eval/eval.json",
                                   LM_TOKENIZER: "runs/ablation-lm/bpc.json"})
    card = card_markdown(report, [], loaded)
    assert "## Targets" in card and "| target | measured | baseline / reference | met |" in card
    assert card.count("✅ met") == 12
    assert "## Ablations" in card and "### no-dcl" in card and "`runs/ablation-dcl/eval/eval.json`" in card
    assert "| exact match: low | 76.0% | 60.0% |" in card and "| gap high − low | 4.0 pts | 20.0 pts |" in card
    assert "| DCL KL weight by stage (training summary) | dcl 1.0 | dcl 0.0 |" in card
    assert "### lm-tokenizer" in card and "| ours/final | 32,000 |" in card and "| bpe/final | 32,000 |" in card
    assert card.index("## Targets") < card.index("## Ablations") < card.index("## Checkpoint")


def test_card_without_ablations_still_has_targets():
    report, _ = _card_report({})
    card = card_markdown(report, [])
    assert "## Targets" in card and card.count("— not measurable") == 3   # DCL and the two tokenizer rows
    assert "No ablation results were given" in card and "--ablations no-dcl=" in card
    del report["targets"]                               # an older eval.json: the card computes the rows itself
    assert card_markdown(report, []) == card
