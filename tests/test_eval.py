"""``ko-hypervl eval``: scoring rules on exact cases, exam question → item mapping, the held-out row selection,
and end-to-end runs on a tiny checkpoint (Python API and CLI), including the card files and bad inputs."""

from __future__ import annotations

import json
import shlex
import unicodedata

import pytest
import torch
from PIL import Image

from ko_hypervl import EvalSettings, KoHyperVL, ModelBuildSettings, build_model, evaluate, save_checkpoint
from ko_hypervl.checkpoint import bundled_model_dir, check_checkpoint_dir
from ko_hypervl.cli import build_parser, main
from ko_hypervl.evaluation import EvalInputError, chosen_option, exact_match, normalize_answer, score_answers
from ko_hypervl.evaluation import transcription_cer
from ko_hypervl.evaluation.baseline import tesseract_on_rows
from ko_hypervl.evaluation.card import _image_use_verdict, card_markdown, json_markdown, results_markdown
from ko_hypervl.evaluation.data import EvalQuestion, first_rows_per_kind, held_out_indices, load_eval_data
from ko_hypervl.evaluation.exams import ExamItemRef, exam_item_for, item_number, row_metadata, source_groups
from ko_hypervl.evaluation.generate import decide_all, generate_answers
from ko_hypervl.evaluation.image_use import (AnswerLoss, ImageUseSettings, answer_losses, image_use, image_use_by_kind,
                                             visual_token_stats)
from ko_hypervl.evaluation.latency import spread_sample
from ko_hypervl.evaluation.run import settings_command
from ko_hypervl.imagecorpus.records import load_split
from ko_hypervl.evaluation.scoring import summarize_visual_tokens
from ko_hypervl.imagecorpus.build import ImageCorpusSettings, build_image_corpus, render_sample, split_of_sample
from ko_hypervl.imagecorpus.examitems import CIRCLED
from ko_hypervl.imagecorpus.records import QA, conversation, qa_pairs
from ko_hypervl.imagecorpus.tesseract import tesseract_available
from ko_hypervl.inference import VRCDecision
from ko_hypervl.settings import settings_from_args
from ko_hypervl.training.data import ConversationEncoder, collate

TINY = dict(tile_size=56, patch_size=14, vit_hidden_size=32, vit_layers=1, small_vit_hidden_size=16,
            small_vit_layers=1, lm_hidden_size=32, lm_layers=1, lm_heads=2, lm_kv_heads=1, lm_intermediate_size=64,
            max_positions=512, max_tiles=6)
TRAINING_SUMMARY = {"recipe": "tiny", "total_seconds": 5400.0, "hardware": {"device": "cpu", "cpu_count": 2},
                    "stages": [{"stage": "lm", "steps": 100, "tokens_per_s": 5400.0},
                               {"stage": "sft", "steps": 40, "tokens_per_s": 1200.5}]}
FAST = dict(num=1, max_new_tokens=3, batch_size=4, latency_samples=1, tesseract=False)


# ---------------------------------------------------------------- metrics

def test_normalize_answer_nfc_whitespace_and_thousands():
    assert normalize_answer("  3,400원 ") == "3400원"
    assert normalize_answer("가  나\n\t다") == "가 나 다"
    assert normalize_answer(unicodedata.normalize("NFD", "한국어")) == "한국어"
    assert normalize_answer("1,234,567명") == "1234567명"
    assert normalize_answer("3,40") == "3,40"          # not a thousands separator: kept


@pytest.mark.parametrize("reference, prediction, expected", [
    ("3,400원", "3400원", True),
    ("안개", unicodedata.normalize("NFD", "안개"), True),
    ("② 12", "②   12", True),
    ("| a | b |\n|---|---|", "| a | b | |---|---|", True),
    ("12명", "12 명", False),                           # a word boundary is part of the answer
    ("안개", "안개.", False),
    ("서울", "부산", False),
])
def test_exact_match(reference, prediction, expected):
    assert exact_match(reference, prediction) is expected


def test_transcription_cer_values():
    assert transcription_cer("안녕하세요", "안넝하세요") == pytest.approx(0.2)
    assert transcription_cer("가나다", "") == 1.0
    assert transcription_cer("오늘은\n맑다", "오늘은 맑다") == 0.0   # line breaks are layout, not reading
    assert transcription_cer("가나", "가나다라") == 1.0            # two insertions on two characters


@pytest.mark.parametrize("answer, choice", [
    ("② 12", 1), ("정답은 ④ 입니다", 3), ("3번", 2), ("3 번입니다", 2), ("1)", 0), ("5", 4), ("12", None),
    ("2024년", None), ("", None), ("모르겠어요", None),
])
def test_chosen_option(answer, choice):
    assert chosen_option(answer) == choice


# ---------------------------------------------------------------- exams

def test_item_number_and_source_groups():
    assert item_number("13번 문제의 ②번 선택지를 그대로 읽어 주세요.") == 13
    assert item_number("5번의 답은 몇 번인가요?") == 5
    assert item_number("가장 큰 값은?") is None
    assert source_groups("kobest/copa/test/786") == ("kobest", "kobest/copa")
    assert source_groups("math/average") == ("math", "math/average")
    assert source_groups("chart") == ("chart", "chart")


def test_exam_item_for_uses_first_number_and_item_order():
    items = [{"source": "math/area", "choices": ["1", "2", "3", "4"], "answer": 2},
             {"source": "kobest/boolq/test/9", "choices": ["예", "아니요"], "answer": 1}]
    meta = {"items": items, "layout": {"first_number": 7}}
    assert exam_item_for("8번 문제의 정답은 무엇인가요?", meta) == ExamItemRef(8, "kobest/boolq/test/9", 2, 1)
    assert exam_item_for("7번의 답은 몇 번인가요?", meta) == ExamItemRef(7, "math/area", 4, 2)
    assert exam_item_for("9번의 답은 몇 번인가요?", meta) is None     # past the last item
    assert exam_item_for("6번의 답은 몇 번인가요?", meta) is None     # before the first
    assert exam_item_for("8번의 답은?", {}) is None
    assert row_metadata("not json") == {} and row_metadata("[1]") == {} and row_metadata("") == {}


def test_rendered_exam_questions_map_to_the_item_they_ask_about():
    """Independent check on real rows: the mapped item's own answer/choices reproduce the gold answer."""
    checked = 0
    for index in range(4):
        row = render_sample("exams", index, 0, "test", 8)
        meta = row_metadata(row["metadata"])
        for (question, answer), task in zip(qa_pairs(row["messages"]), row["tasks"]):
            ref = exam_item_for(question, meta)
            assert ref is not None, question
            item = meta["items"][ref.number - meta["layout"]["first_number"]]
            assert ref.source == item["source"] and ref.n_choices == len(item["choices"])
            if task == "exam_answer":
                assert answer == f"{CIRCLED[ref.answer]} {item['choices'][ref.answer]}"
                assert chosen_option(answer) == ref.answer
                checked += 1
            elif task == "read_choice":
                named = CIRCLED.index(question.split("번 문제의 ")[1][0])
                assert answer == item["choices"][named]
    assert checked >= 4


# ---------------------------------------------------------------- scoring on fake predictions

def _q(kind, task, answer, item=None):
    return EvalQuestion(0, f"{kind}-0", kind, task, "질문", answer, item)


def test_score_answers_exact_numbers():
    copa = ExamItemRef(1, "kobest/copa/test/1", 2, 0)
    average = ExamItemRef(2, "math/average", 4, 2)
    boolq = ExamItemRef(3, "kobest/boolq/test/5", 2, 1)
    questions = [_q("charts", "lookup", "3,400원"), _q("charts", "max", "서울"),
                 _q("ocr", "transcribe", "안녕하세요"), _q("ocr", "transcribe", "가나"),
                 _q("exams", "exam_answer", "① 가", copa), _q("exams", "exam_answer", "③ 80점", average),
                 _q("exams", "exam_answer", "② 아니요", boolq), _q("exams", "read_choice", "80점", average)]
    predictions = ["3400원", "부산", "안넝하세요", "가나", "①", "③ 80점", "1번", "80점"]
    scores = score_answers(questions, predictions).to_dict()
    assert scores["exact_match"] == {"n": 8, "correct": 4, "accuracy": 0.5}
    by_task = {task: (v["n"], v["correct"]) for task, v in scores["exact_match_by_task"].items()}
    assert by_task == {"lookup": (1, 1), "max": (1, 0), "transcribe": (2, 1), "exam_answer": (3, 1),
                       "read_choice": (1, 1)}
    by_kind = {kind: (v["n"], v["correct"]) for kind, v in scores["exact_match_by_kind"].items()}
    assert by_kind == {"charts": (2, 1), "ocr": (2, 1), "exams": (4, 2)}
    # one substitution over 5 + 2 reference characters; per-answer mean of 0.2 and 0
    assert scores["transcription_cer"] == {"n": 2, "reference_chars": 7, "cer": round(1 / 7, 4), "row_mean_cer": 0.1}
    exam = scores["exam_accuracy_by_source"]
    assert list(exam)[0] == "all"
    # the answers name ① twice ("①", "1번") and ③ once
    assert exam["all"] == {"n": 3, "correct": 2, "accuracy": round(2 / 3, 4), "chance": round(1.25 / 3, 4),
                           "most_named_choice": 1, "most_named_share": round(2 / 3, 4)}
    assert exam["kobest"] == {"n": 2, "correct": 1, "accuracy": 0.5, "chance": 0.5, "most_named_choice": 1,
                              "most_named_share": 1.0}
    assert exam["kobest/copa"]["correct"] == 1 and exam["kobest/boolq"]["correct"] == 0
    assert exam["math"] == exam["math/average"] == {"n": 1, "correct": 1, "accuracy": 1.0, "chance": 0.25,
                                                    "most_named_choice": 3, "most_named_share": 1.0}
    with pytest.raises(ValueError):
        score_answers(questions, predictions[:-1])


def test_visual_token_summary():
    def decision(tokens, full, scale):
        return VRCDecision("auto", "large", scale, "vrc", 100, 100, 50, 50, 1, 1, tokens, full)

    summary = summarize_visual_tokens([decision(10, 40, 0.5), decision(30, 40, 1.0)])
    assert summary.to_dict() == {"images": 2, "mean_visual_tokens": 20.0, "mean_full_visual_tokens": 40.0,
                                 "saved_share": 0.5, "mean_scale": 0.75}
    assert summarize_visual_tokens([]).saved_share == 0.0


def test_spread_sample_covers_the_range():
    assert spread_sample(3, 12) == [0, 4, 8]
    assert spread_sample(5, 2) == [0, 1]
    assert spread_sample(0, 9) == []


# ---------------------------------------------------------------- rows and settings

def test_held_out_indices_are_the_first_test_samples():
    indices = held_out_indices("charts", 3, 0)
    brute = [i for i in range(200) if split_of_sample(0, "charts", i, 0.1, 0.1) == "test"][:3]
    assert indices == brute
    assert first_rows_per_kind(["a", "b", "a", "a", "b", "c"], 2) == [0, 1, 2, 4, 5]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A default-settings build of 30 charts: its test split is what ``--data`` reads."""
    out = tmp_path_factory.mktemp("corpus") / "images"
    dataset, _ = build_image_corpus(ImageCorpusSettings(out=out, kind="charts", num=30, workers=1))
    assert len(dataset["test"]) >= 2
    return out, dataset["test"]


def test_rendered_rows_are_the_test_rows_of_a_default_build(corpus):
    _, test_split = corpus
    n = len(test_split)
    rendered = load_eval_data(None, ["charts"], n, seed=0, progress=False)
    assert list(rendered.dataset["id"]) == list(test_split["id"])
    assert list(rendered.dataset["messages"]) == list(test_split["messages"])


def test_the_validation_split_renders_and_loads_the_validation_rows(corpus):
    out, test_split = corpus
    saved = load_split(out, "validation", None)
    assert len(saved) >= 1
    rendered = load_eval_data(None, ["charts"], len(saved), seed=0, progress=False, split="validation")
    assert list(rendered.dataset["id"]) == list(saved["id"])           # the same rows as a default build's
    assert not set(rendered.dataset["id"]) & set(test_split["id"])     # never a test row
    assert rendered.origin.startswith("rendered held-out validation rows")
    from_disk = load_eval_data(out, None, 1, seed=0, progress=False, split="validation")
    assert list(from_disk.dataset["id"]) == [saved[0]["id"]] and from_disk.origin.startswith("validation split of")
    with pytest.raises(EvalInputError, match="--split"):
        load_eval_data(None, ["charts"], 1, seed=0, progress=False, split="train")
    with pytest.raises(EvalInputError, match="--split"):
        EvalSettings(split="train")


def test_saved_data_selects_the_first_rows_per_kind(corpus):
    out, test_split = corpus
    data = load_eval_data(out, None, 1, seed=0, progress=False)
    assert list(data.dataset["id"]) == [test_split[0]["id"]]
    assert len(data.questions) == len(test_split[0]["tasks"]) and len(data.images) == 1
    assert [q.task for q in data.questions] == test_split[0]["tasks"]


def test_settings_validation():
    with pytest.raises(EvalInputError, match="--num"):
        EvalSettings(num=0)
    with pytest.raises(EvalInputError, match="--batch-size"):
        EvalSettings(batch_size=0)
    with pytest.raises(EvalInputError, match="--modes"):
        EvalSettings(modes=["fast"])
    assert EvalSettings(modes=["low", "high", "low"]).modes == ["low", "high"]


def test_settings_command_reproduces_the_settings(tmp_path):
    settings = EvalSettings(model="ckpt dir", data=tmp_path, num=3, kinds=["ocr", "charts"], modes=["low"],
                            tesseract=False, out=tmp_path / "out")
    command = settings_command(settings)
    assert command.startswith("ko-hypervl eval --model 'ckpt dir' ")
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert settings_from_args(EvalSettings, args) == settings


def test_json_markdown_renders_any_training_summary():
    lines = json_markdown(TRAINING_SUMMARY)
    assert "| total_seconds | 5400.0 |" in lines and "| recipe | tiny |" in lines
    assert "| stage | steps | tokens_per_s |" in lines and "| sft | 40 | 1200.5 |" in lines
    assert json_markdown([1, 2]) == ["```json", "[\n 1,\n 2\n]", "```"]


# ---------------------------------------------------------------- end to end

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt") / "tiny-vlm"
    model, processor = build_model(ModelBuildSettings(**TINY))
    # an untrained LM answers every prompt with newlines (empty answers), which would make "batched answers
    # equal single answers" vacuous; random O(1) weights give varied Korean text instead
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in model.language_model.parameters():
            parameter.normal_(0, 1)
    save_checkpoint(model, processor, out)
    (out / "training_summary.json").write_text(json.dumps(TRAINING_SUMMARY), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def report(checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "card"
    return evaluate(EvalSettings(model=str(checkpoint), out=out, **FAST), progress=False)


def test_batched_answers_equal_single_ask_answers(checkpoint):
    vlm = KoHyperVL.load(checkpoint)
    data = load_eval_data(None, ["charts", "exams"], 1, seed=0, progress=False)
    images = [vlm.image_processor.load(image) for image in data.images]
    for mode in ("auto", "low"):
        decisions = decide_all(vlm, images, mode, batch_size=3)
        batched = generate_answers(vlm, images, data.questions, decisions, 4, batch_size=3, progress=False)
        single = [vlm.ask(images[q.image_index], q.question, mode=mode, max_new_tokens=4).text
                  for q in data.questions]
        assert batched == single
        assert len(set(batched)) > 1 and all(batched)


def test_image_use_pools_paired_losses_per_token():
    seen = [AnswerLoss(2.0, 2), AnswerLoss(3.0, 1)]
    blank = [AnswerLoss(4.0, 2), AnswerLoss(3.0, 1)]
    use = image_use(seen, blank)
    assert (use.n, use.tokens) == (2, 3)
    assert use.seen == pytest.approx(5 / 3) and use.blank == pytest.approx(7 / 3) and use.gain == pytest.approx(2 / 3)
    # delta method: residuals 2 − (2/3)·2 and 0 − (2/3)·1, variance 8/9, SE sqrt(8/9 / 2) / (3/2) = 4/9
    assert use.gain_se == pytest.approx(4 / 9)
    assert image_use(seen, seen).gain == 0.0
    single = image_use(seen[:1], blank[:1])
    assert single.gain == 1.0 and single.gain_se != single.gain_se    # one question: no standard error (NaN)
    assert _image_use_verdict(single.to_dict()) == "no evidence that the model uses the images"
    assert _image_use_verdict({"gain": 0.5, "gain_se": 0.1}) == "the model uses the images"
    assert _image_use_verdict({"gain": 0.15, "gain_se": 0.1}) == "no evidence that the model uses the images"
    assert _image_use_verdict({"gain": -0.5, "gain_se": 0.1}) == "no evidence that the model uses the images"
    for bad_seen, bad_blank in (([], []), (seen, blank[:1]), (seen, [AnswerLoss(4.0, 3), AnswerLoss(3.0, 1)])):
        with pytest.raises(ValueError):
            image_use(bad_seen, bad_blank)
    questions = [_q("charts", "max", "a"), _q("ocr", "transcribe", "b")]
    by_kind = image_use_by_kind(questions, seen, blank)
    assert list(by_kind) == ["all", "charts", "ocr"]
    assert by_kind["charts"].gain == 1.0 and by_kind["ocr"].gain == 0.0 and by_kind["all"] == use


def test_answer_losses_are_the_models_own_loss_batched_or_alone(checkpoint):
    vlm = KoHyperVL.load(checkpoint)
    data = load_eval_data(None, ["charts", "ocr"], 1, seed=0, progress=False)
    images = [vlm.image_processor.load(image) for image in data.images]
    decisions = decide_all(vlm, images, "high", batch_size=4)
    batched = answer_losses(vlm, images, data.questions, decisions, batch_size=4, progress=False)
    alone = [answer_losses(vlm, images, [q], decisions, batch_size=1, progress=False)[0] for q in data.questions]
    assert [a.tokens for a in batched] == [a.tokens for a in alone]
    assert [a.nats for a in batched] == pytest.approx([a.nats for a in alone], rel=1e-4)   # padding changes nothing
    encoder = ConversationEncoder(vlm.processor, 512)
    for q, loss in zip(data.questions, batched):
        # every answer token and the end-of-turn token after it, nothing of the prompt
        assert loss.tokens == len(vlm.processor.tokenizer(q.answer, add_special_tokens=False)["input_ids"]) + 1
        decision = decisions[q.image_index]
        sample = encoder.encode(images[q.image_index], conversation([QA(q.question, q.answer, q.task)]),
                                decision.branch, decision.scale)
        with torch.no_grad():
            mean = vlm.model(**collate([sample], vlm.processor.tokenizer.pad_token_id), branch=decision.branch).loss
        assert loss.nats / loss.tokens == pytest.approx(float(mean), rel=1e-4)
    # a white image changes the loss (the random model reads its pixels), so the gain is measured, not assumed
    white = [Image.new("RGB", image.size, "white") for image in images]
    blank = answer_losses(vlm, white, data.questions, decisions, batch_size=4, progress=False)
    assert [a.tokens for a in blank] == [a.tokens for a in batched]
    assert [a.nats for a in blank] != pytest.approx([a.nats for a in batched], rel=1e-4)


def test_visual_token_stats_see_a_collapse(checkpoint, monkeypatch):
    vlm = KoHyperVL.load(checkpoint)
    images = [vlm.image_processor.load(image) for image in load_eval_data(None, ["charts", "ocr"], 1, 0, False).images]
    decisions = decide_all(vlm, images, "high", batch_size=2)
    healthy = visual_token_stats(vlm, images, decisions)
    assert healthy.norm > 0 and healthy.within > 0.05 and healthy.between > 0.01
    with pytest.raises(ValueError, match="at least two images"):
        visual_token_stats(vlm, images[:1], decisions)
    # a collapsed projector: the same token whatever the image, as the bundled run's ended up
    monkeypatch.setattr(vlm.model, "get_image_features",
                        lambda pixel_values, branch: torch.full((pixel_values.shape[0] * 4, 8), 3.0))
    collapsed = visual_token_stats(vlm, images, decisions)
    assert collapsed.within == 0.0 and collapsed.between == 0.0 and collapsed.norm == pytest.approx(6 * 8 ** 0.5 / 2)


def test_end_to_end_report(report, checkpoint):
    result = report.to_dict()
    n_questions = len(report.questions)
    assert result["data"]["rows_per_kind"] == {"charts": 1, "exams": 1, "ocr": 1, "tables": 1}
    assert result["data"]["questions"] == n_questions > 4
    assert list(result["modes"]) == ["auto", "low", "high"]
    for mode, scores in result["modes"].items():
        assert scores["exact_match"]["n"] == n_questions == len(report.predictions[mode])
        assert sum(v["n"] for v in scores["exact_match_by_kind"].values()) == n_questions
        assert scores["transcription_cer"]["n"] == sum(q.task == "transcribe" for q in report.questions) >= 1
        exam_items = sum(q.task == "exam_answer" for q in report.questions)
        assert scores["exam_accuracy_by_source"]["all"]["n"] == exam_items >= 1
        assert scores["latency"]["samples"] == 1 and scores["latency"]["mean_time_to_first_token_s"] > 0
        # the reported scores are the scores of the saved predictions
        assert score_answers(report.questions, report.predictions[mode]).to_dict()["exact_match"] == \
            scores["exact_match"]
    tokens = {mode: result["modes"][mode]["visual_tokens"] for mode in result["modes"]}
    vlm = KoHyperVL.load(checkpoint)
    images = [vlm.image_processor.load(image) for image in load_eval_data(None, None, 1, 0, False).images]
    high = vlm.decide(images, "high")
    assert tokens["high"]["mean_visual_tokens"] == sum(d.visual_tokens for d in high) / len(high)
    assert tokens["high"]["saved_share"] == 0.0 and tokens["low"]["saved_share"] == 0.0
    assert tokens["low"]["mean_visual_tokens"] < tokens["high"]["mean_visual_tokens"]
    assert tokens["auto"]["mean_visual_tokens"] <= tokens["high"]["mean_visual_tokens"]
    assert tokens["auto"]["mean_full_visual_tokens"] == tokens["high"]["mean_visual_tokens"]
    assert result["model"]["parameters"]["total"] == sum(p.numel() for p in vlm.model.parameters())
    assert result["model"]["tokenizer"]["vocabulary"] == len(vlm.processor.tokenizer)
    assert result["model"]["tokenizer"]["name"] == "ko-hypervl-32k (bundled)"
    assert result["model"]["stored_dtype"] == result["model"]["dtype"] == "float32"
    assert result["training_summary"] == TRAINING_SUMMARY
    assert result["tesseract"]["ran"] is False and "--no-tesseract" in result["tesseract"]["note"]
    # the blank-image baseline: high mode with white images of the same sizes, scored like a mode
    blank = result["blank_image"]
    assert blank["ran"] and blank["mode"] == "high" and blank["exact_match"]["n"] == n_questions
    assert score_answers(report.questions, report.predictions["blank_image"]).to_dict()["exact_match"] == \
        blank["exact_match"]
    first = report.questions[0]
    white = Image.new("RGB", images[first.image_index].size, "white")
    same = sum(a == b for a, b in zip(report.predictions["high"], report.predictions["blank_image"]))
    assert blank["same_answers"] == same
    assert report.predictions["blank_image"][0] == vlm.ask(white, first.question, mode="high",
                                                           max_new_tokens=FAST["max_new_tokens"]).text
    # the exact answers' loss with and without the images, over every question and per kind
    use = blank["answer_loss"]
    assert list(use) == ["all", "charts", "exams", "ocr", "tables"] and use["all"]["n"] == n_questions
    assert sum(use[kind]["n"] for kind in use if kind != "all") == n_questions
    assert use["all"]["gain"] == pytest.approx(use["all"]["nats_per_token_blank"] - use["all"]["nats_per_token_seen"],
                                               abs=2e-4)
    assert result["hardware"]["device"] == "cpu" and result["hardware"]["torch"] == torch.__version__


def test_end_to_end_files(report, checkpoint):
    names = {path.name for path in report.files}
    assert names == {"model_card.md", "eval.json", "predictions.jsonl", "accuracy_by_task.png",
                     "tokens_vs_accuracy.png", "image_use.png"}
    out = report.files[0].parent
    saved = json.loads((out / "eval.json").read_text(encoding="utf-8"))
    assert saved == json.loads(json.dumps(report.to_dict(), ensure_ascii=False))
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(records) == 4 * len(report.questions)    # three modes and the blank-image baseline
    assert [r["prediction"] for r in records if r["mode"] == "low"] == report.predictions["low"]
    for png in ("accuracy_by_task.png", "tokens_vs_accuracy.png", "image_use.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    card = (out / "model_card.md").read_text(encoding="utf-8")
    assert card.startswith("# Model card: tiny-vlm")
    assert report.command in card and "| sft | 40 | 1200.5 |" in card
    assert "![accuracy_by_task](accuracy_by_task.png)" in card
    assert "Note: Tesseract baseline turned off" in card and "### Exam items by source" in card
    assert "## Targets" in card and "| target | measured | baseline / reference | met |" in card
    assert "| metric | auto | low | high | blank image‡ |" in card and "‡ blank image: high mode" in card
    assert "Seeing the image adds" in card and f"{saved['blank_image']['same_answers']} of " in card and "| task | questions | auto | low | high | blank image‡ |" in card
    assert "Teacher-forced, the images lower the loss of the exact answers by" in card
    assert "### What the images are worth (answer loss, teacher-forced)" in card and "![image_use](image_use.png)" in card
    assert card.count("![image_use](image_use.png)") == 1       # once, with the other plots
    assert f"| ocr | {saved['blank_image']['answer_loss']['ocr']['n']} |" in card
    assert "No ablation results were given" in card
    assert len(saved["targets"]) == 12 and saved["ablations"] == {}
    recipe = next(t for t in saved["targets"] if t["target"].startswith("the full recipe"))
    assert recipe["met"] is True and recipe["measured"].startswith("1.50 h: recipe tiny")   # the checkpoint's summary
    ocr = next(t for t in saved["targets"] if t["target"].startswith("OCR"))
    assert ocr["met"] is None and "--no-tesseract" in ocr["reference"]   # no baseline: never counted as met
    check_checkpoint_dir(checkpoint)   # the run wrote nothing into the checkpoint


def test_card_puts_tesseract_beside_the_modes(report):
    result = report.to_dict()
    result["tesseract"] = {"ran": True, "note": None, "transcription_cer": {"n": 1, "cer": 0.1234},
                           "readable_by_kind": {"charts": {"n": 4, "readable": 3, "share": 0.75}}}
    table = results_markdown(result)
    assert "| metric | auto | low | high | blank image‡ | Tesseract |" in table
    assert "| 0.123 |" in table and "75.0% readable†" in table
    rows = {line.split(" | ")[0]: line for line in table.splitlines() if line.startswith("| ")}
    assert rows["| exact match: exams"].endswith("| — |")    # Tesseract has nothing to say about exam answers
    assert "## Training" in card_markdown(result, []) and "Why this size" not in card_markdown(result, [])
    result["training_summary"] = {**(result["training_summary"] or {}), "sizing": "Timed on 2 cores: 2.75 samples/s."}
    assert "### Why this size\n\nTimed on 2 cores: 2.75 samples/s." in card_markdown(result, [])


def test_the_reading_head_is_scored_on_the_single_lines_beside_tesseract(report, checkpoint):
    from ko_hypervl import load
    from ko_hypervl.evaluation.reading_head import pooled_cer, reading_head_note, reading_head_on_rows
    from ko_hypervl.model.reading import ReadingHeadSpec, encoder_digest, reading_head_layer, reading_units
    from ko_hypervl.imagecorpus.records import transcriptions

    result = report.to_dict()           # a checkpoint without a head: a note in the report and on the card
    assert result["reading_head"]["ran"] is False and "no reading head" in result["reading_head"]["note"]
    assert "Reading head: not measured (this checkpoint has no reading head" in results_markdown(result)
    vlm = load(checkpoint)
    units = tuple(dict.fromkeys(reading_units("가나다 ")))     # jamo, as a reading stage's vocabulary holds them
    spec = ReadingHeadSpec("large", units, 2, "columns", encoder_digest(vlm.model.vision_model))
    vlm.model.install_reading_head(reading_head_layer(vlm.model.config.vision_config.hidden_size, spec), spec)
    data = load_eval_data(None, ["ocr"], 6, 0, progress=False)
    rows = transcriptions(data.dataset)
    pages = sum("\n" in text.strip() for _, text in rows)
    tesseract = tesseract_available("kor")
    scored = reading_head_on_rows(vlm, data, tesseract=tesseract)
    assert scored["ran"] and scored["all"]["rows"] == len(rows) >= 2 and scored["pages"]["rows"] == pages >= 1
    assert scored["single_lines"]["rows"] == len(rows) - pages and scored["all"]["head_cer"] >= 0
    assert scored["example"]["reference"] == " ".join(rows[0][1].split())
    assert ("tesseract_cer" in scored["all"]) == tesseract
    note = reading_head_note(scored)
    assert f"over the {len(rows)} transcriptions of these rows" in note and "takes no part" in note
    assert f"pages of several lines, cut into lines first, " in note and "decoded by best path" in note
    assert "best_path_cer" not in scored["all"]
    # with a reading LM the lines are decoded by beam search, and the best path's CER is given beside
    from ko_hypervl.processing.reading_lm import fit_reading_lm

    vlm.reading_lm = fit_reading_lm(["가나 다나", "나다가"], spec.units, order=3, min_count=1)
    with_lm = reading_head_on_rows(vlm, data, tesseract=False)
    assert with_lm["decoder"] == "beam search + reading LM"
    assert with_lm["all"]["best_path_cer"] == pytest.approx(scored["all"]["head_cer"])
    assert "decoded by beam search + reading LM" in reading_head_note(with_lm)
    assert "best path without the reading LM" in reading_head_note(with_lm)
    # pooled as the card's CER: edits over reference characters, the longer transcriptions weigh more
    assert pooled_cer(["가나", "가나다라"], [1.0, 0.25]) == pytest.approx(0.5)
    assert reading_head_note(None) is None          # reports written before the head was measured
    assert scored["titles"] is None                 # OCR rows show no title
    # the titles of charts and tables, against the closest line read; with no transcription among the rows
    from ko_hypervl.evaluation.reading_head import title_of

    titled = load_eval_data(None, ["charts", "tables"], 2, 0, progress=False)
    assert all(title_of(row) for row in titled.dataset) and title_of(data.dataset[0]) is None
    only_titles = reading_head_on_rows(vlm, titled, tesseract=False)
    titles = only_titles["titles"]
    assert only_titles["ran"] is False and titles["rows"] == 4 and 0 <= titles["title_cer"] <= 1
    assert titles["exact"] + titles["read_nothing"] <= 4
    assert "Titles of 4 charts and tables: CER" in reading_head_note(only_titles)


def test_tesseract_baseline_notes(monkeypatch):
    data = load_eval_data(None, ["exams"], 1, 0, progress=False)
    assert tesseract_on_rows(data, enabled=False)["note"].endswith("(--no-tesseract)")
    import ko_hypervl.evaluation.baseline as baseline

    monkeypatch.setattr(baseline, "tesseract_available", lambda lang: False)
    skipped = tesseract_on_rows(data, enabled=True)
    assert skipped["ran"] is False and "apt-get install" in skipped["note"]
    monkeypatch.setattr(baseline, "tesseract_available", lambda lang: True)
    assert "no ocr/charts/tables rows" in tesseract_on_rows(data, enabled=True)["note"]


@pytest.mark.skipif(not tesseract_available("kor"), reason="needs tesseract with kor traineddata")
def test_tesseract_runs_on_the_same_rows():
    data = load_eval_data(None, ["ocr", "charts"], 1, 0, progress=False)
    result = tesseract_on_rows(data, enabled=True, progress=False)
    assert result["ran"] is True and result["rows"] == 2
    assert result["transcription_cer"]["n"] == sum(q.task == "transcribe" for q in data.questions)
    assert result["readable_by_kind"]["charts"]["n"] == sum(q.kind == "charts" for q in data.questions)
    assert 0 <= result["transcription_cer"]["cer"] < 1     # printed or handwritten Korean: tesseract reads some


# ---------------------------------------------------------------- CLI

def _cli(checkpoint, tmp_path, *extra):
    return ["eval", "--model", str(checkpoint), "--num", "1", "--modes", "low", "--max-new-tokens", "2",
            "--latency-samples", "0", "--no-tesseract", "--out", str(tmp_path / "out"), *extra]


def test_cli_json(checkpoint, corpus, tmp_path, capsys):
    corpus_dir, test_split = corpus
    assert main(_cli(checkpoint, tmp_path, "--data", str(corpus_dir), "--json")) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result["modes"]) == ["low"] and result["modes"]["low"]["latency"] is None
    assert result["data"]["rows_per_kind"] == {"charts": 1}
    assert result["data"]["questions"] == len(test_split[0]["tasks"])
    assert result["settings"]["data"] == str(corpus_dir)
    assert (tmp_path / "out" / "model_card.md").is_file()


def test_cli_table(checkpoint, tmp_path, capsys):
    assert main(_cli(checkpoint, tmp_path, "--kinds", "tables")) == 0
    out = capsys.readouterr().out
    assert "| metric | low |" in out and "| exact match: tables |" in out
    assert f"wrote {tmp_path / 'out' / 'model_card.md'}" in out


@pytest.mark.parametrize("extra, message", [
    (["--model", "/nonexistent/model"], "model directory not found"),
    (["--data", "/nonexistent/data"], "dataset folder not found"),
    (["--kinds", "pictures"], "unknown kind"),
    (["--num", "0"], "--num must be at least 1"),
    (["--device", "gpu9"], "not a torch device"),
])
def test_cli_bad_input_exits_2(checkpoint, tmp_path, capsys, extra, message):
    assert main(_cli(checkpoint, tmp_path, *extra)) == 2
    assert message in capsys.readouterr().err


def test_cli_empty_selection_and_bad_out_exit_2(checkpoint, corpus, tmp_path, capsys):
    corpus_dir, _ = corpus
    assert main(_cli(checkpoint, tmp_path, "--data", str(corpus_dir), "--kinds", "exams")) == 2
    assert "no samples of kind exams" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(_cli(checkpoint, tmp_path, "--out", str(blocker))) == 2
    assert "cannot use" in capsys.readouterr().err


@pytest.mark.skipif(bundled_model_dir().is_dir(), reason="a bundled model is installed")
def test_cli_without_a_bundled_model_says_so(tmp_path, capsys):
    assert main(["eval", "--out", str(tmp_path)]) == 2
    assert "the bundled model is not installed" in capsys.readouterr().err


def test_cli_image_use_compares_checkpoints(checkpoint, tmp_path, capsys):
    out = tmp_path / "use.json"
    args = ["model", "image-use", str(checkpoint), str(checkpoint), "--num", "1", "--kinds", "charts", "ocr",
            "--modes", "high", "low", "--json-out", str(out), "--no-progress"]
    assert main(args) == 0
    table = capsys.readouterr().out
    header = ("| model | mode | token norm | spread within an image | spread between images | nats/token | blank "
              "| saved (± 2 SE) | charts | ocr |")
    assert header in table and table.count(f"| {checkpoint} | high |") == 2 and f"| {checkpoint} | low |" in table
    saved = json.loads(out.read_text(encoding="utf-8"))
    assert saved["settings"]["modes"] == ["high", "low"] and len(saved["rows"]) == 4
    first, second = saved["rows"][0], saved["rows"][2]
    assert first == second      # the same checkpoint twice: the same numbers (nothing depends on the order)
    assert first["branches"] == ["large"] and saved["rows"][1]["branches"] == ["small"]
    use = first["answer_loss"]
    assert list(use) == ["all", "charts", "ocr"] and use["all"]["n"] == use["charts"]["n"] + use["ocr"]["n"]
    assert main(["model", "image-use", str(checkpoint), "--num", "0"]) == 2
    assert "--num and --batch-size must be at least 1" in capsys.readouterr().err
    assert main(["model", "image-use", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err
    with pytest.raises(EvalInputError, match="at least one checkpoint"):
        ImageUseSettings(models=[])


def test_reports_without_the_answer_loss_get_no_image_use_plot(report, tmp_path):
    from ko_hypervl.evaluation.plots import write_plots

    old = report.to_dict()
    old["blank_image"] = {"ran": False}      # an earlier report, or --no-blank-image
    assert {path.name for path in write_plots(old, tmp_path)} == {"accuracy_by_task.png", "tokens_vs_accuracy.png"}
    assert "What the images are worth" not in results_markdown(old)
