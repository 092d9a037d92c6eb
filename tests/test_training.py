"""The training library: schedule, data order, answer-only labels, losses, VRC labels, stages, the smoke
pipeline end to end, LoRA on user data, and the errors bad settings and data give."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ko_hypervl.cli import main
from ko_hypervl.imagecorpus.records import load_split, rows_spread_over_kinds
from ko_hypervl.training import TrainSettings, learning_rate_at
from ko_hypervl.training.data import IGNORE, ConversationEncoder, chat_segments, repeat_opening, select_turns
from ko_hypervl.training.losses import (answer_token_weights, cross_entropy_sum, distillation_kl_sum,
                                       gather_target_logits, gather_target_weights, greedy_correct,
                                        predicting_positions)
from ko_hypervl.training.pipeline import RECIPES
from ko_hypervl.training.sampling import global_batch, micro_batches, process_share
from ko_hypervl.training.stages import (AlignSettings, DCLSettings, LanguageModelStage, LMSettings, SFTSettings,
                                        VisionLanguageSettings, COLLAPSE_PATIENCE, VisionLanguageStage, visual_spread)
from ko_hypervl.training.vrc import _turn_of_targets, label_scales, operating_point

FIXTURES = Path(__file__).parent / "fixtures" / "user_data"
MESSAGES = [
    {"role": "user", "content": [{"type": "image", "text": None}, {"type": "text", "text": "가장 큰 값은?"}]},
    {"role": "assistant", "content": [{"type": "text", "text": "42명"}]},
    {"role": "user", "content": [{"type": "text", "text": "제목은 무엇인가요?"}]},
    {"role": "assistant", "content": [{"type": "text", "text": "학년별 학생 수"}]},
]


@pytest.fixture()
def chart_image():
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (300, 200), "white")
    ImageDraw.Draw(image).rectangle((40, 60, 90, 190), fill="navy")
    return image


# -- schedule and data order ------------------------------------------------------------------------------------

def test_learning_rate_warms_up_then_decays_to_the_floor():
    settings = TrainSettings(out=Path("x"), steps=11, warmup_steps=2, learning_rate=1.0, min_lr_ratio=0.1)
    assert [learning_rate_at(s, settings) for s in (0, 1)] == [0.5, 1.0]
    assert learning_rate_at(2, settings) == pytest.approx(1.0)
    assert learning_rate_at(10, settings) == pytest.approx(0.1)
    middle = learning_rate_at(6, settings)
    assert 0.1 < middle < 1.0 and middle == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 4 / 8)))


def test_a_clock_limit_decays_the_learning_rate_by_whichever_of_steps_and_time_is_further():
    settings = TrainSettings(out=Path("x"), steps=11, warmup_steps=2, learning_rate=1.0, min_lr_ratio=0.1,
                             max_seconds=60)
    assert learning_rate_at(1, settings, time_share=0.9) == 1.0             # the warm-up is by steps alone
    assert learning_rate_at(2, settings, time_share=1.0) == pytest.approx(0.1)
    assert learning_rate_at(2, settings, time_share=0.5) == pytest.approx(learning_rate_at(6, settings))
    assert learning_rate_at(8, settings, time_share=0.1) == pytest.approx(learning_rate_at(8, settings))
    for bad in (-1.0, math.inf):
        with pytest.raises(ValueError, match="--max-seconds"):
            TrainSettings(out=Path("x"), max_seconds=bad)


def test_stages_of_one_process_may_train_in_different_precisions(tmp_path):
    from ko_hypervl.training.loop import _make_accelerator

    # the GPU lease recipe's LM trains in bf16 between float32 stages; accelerate keeps one precision otherwise
    precisions = [_make_accelerator(TrainSettings(out=tmp_path, precision=p)).mixed_precision
                  for p in ("no", "bf16", "bf16", "no")]
    assert precisions == ["no", "bf16", "bf16", "no"]


def test_runs_written_before_the_clock_limit_existed_keep_their_fingerprint():
    from ko_hypervl.training.loop import fingerprint

    stage = _RecordingStage()
    stage.describe = lambda: {}
    assert "max_seconds" not in fingerprint(stage, TrainSettings(out=Path("x")))["train"]
    assert fingerprint(stage, TrainSettings(out=Path("x"), max_seconds=30))["train"]["max_seconds"] == 30


@pytest.mark.parametrize("batch, micro, processes, expected", [(8, 4, 1, 2), (8, 2, 2, 2), (8, 8, 2, 1), (6, 4, 3, 1)])
def test_accumulation_keeps_the_global_batch(batch, micro, processes, expected):
    assert TrainSettings(out=Path("x"), batch_size=batch, micro_batch_size=micro).accumulation_steps(processes) == expected


def test_a_batch_that_does_not_split_is_refused():
    with pytest.raises(ValueError, match="does not split over 3 processes"):
        TrainSettings(out=Path("x"), batch_size=8).accumulation_steps(3)
    with pytest.raises(ValueError, match="does not divide"):
        TrainSettings(out=Path("x"), batch_size=6, micro_batch_size=4).accumulation_steps(1)
    with pytest.raises(ValueError, match="--steps must be at least 1"):
        TrainSettings(out=Path("x"), steps=0)


def test_data_order_is_a_pure_function_of_seed_and_step():
    size, batch = 10, 4
    steps = [global_batch(3, step, batch, size) for step in range(5)]
    assert steps == [global_batch(3, step, batch, size) for step in range(5)]   # no hidden state
    flat = [i for s in steps for i in s]
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:20]) == list(range(10))   # epochs cover all
    assert flat[:10] != flat[10:20]                                                        # reshuffled per epoch
    assert global_batch(4, 0, batch, size) != steps[0]
    shares = [process_share(steps[0], rank, 2) for rank in range(2)]
    assert shares[0] + shares[1] == steps[0]
    assert micro_batches(shares[0], 2) == [[shares[0][0]], [shares[0][1]]]
    with pytest.raises(ValueError, match="empty"):
        global_batch(0, 0, 4, 0)


class _RecordingStage:
    """make_batch records which thread made which step; it fails at ``fail_at``."""

    name = "probe"

    def __init__(self, fail_at: int | None = None):
        import threading

        self.fail_at, self.made, self.threads, self.lock = fail_at, [], set(), threading.Lock()

    def make_batch(self, indices, step):
        import threading
        import time

        time.sleep(0.01)
        if step == self.fail_at:
            raise ValueError(f"broken sample at step {step}")
        with self.lock:
            self.made.append(step)
            self.threads.add(threading.current_thread().name)
        return {"step": step, "indices": list(indices)}


def test_prefetched_batches_are_the_inline_ones_and_errors_arrive_at_their_step(tmp_path):
    from ko_hypervl.training.loop import step_batches

    settings = TrainSettings(out=tmp_path, steps=6, batch_size=4, micro_batch_size=2, seed=5)
    inline_stage, ahead_stage = _RecordingStage(), _RecordingStage()
    inline = list(step_batches(inline_stage, settings, 1, 10, 0, 1, 2, prefetch=0))
    ahead = list(step_batches(ahead_stage, settings, 1, 10, 0, 1, 2, prefetch=2))
    assert ahead == inline and [b[0]["step"] for b in inline] == [1, 2, 3, 4, 5]   # resumed at step 1
    assert inline[0][0]["indices"] + inline[0][1]["indices"] == list(global_batch(5, 1, 4, 10))
    assert inline_stage.threads == {"MainThread"} and ahead_stage.threads == {"probe-batches_0"}

    failing = step_batches(_RecordingStage(fail_at=3), settings, 0, 10, 0, 1, 2, prefetch=2)
    assert [next(failing)[0]["step"] for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="step 3"):
        next(failing)

    # forked worker processes (a GPU's loader) make the very same batches, and a failure still names its step
    assert list(step_batches(_RecordingStage(), settings, 1, 10, 0, 1, 2, prefetch=1, workers=2)) == inline
    failing = step_batches(_RecordingStage(fail_at=3), settings, 0, 10, 0, 1, 2, prefetch=1, workers=2)
    assert [next(failing)[0]["step"] for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="step 3"):
        next(failing)

    stopped = _RecordingStage()
    early = step_batches(stopped, settings, 0, 10, 0, 1, 2, prefetch=2)
    next(early)
    early.close()                       # the loop closes it when training stops
    made = len(stopped.made)
    import time

    time.sleep(0.1)
    assert len(stopped.made) == made <= 2 * 4      # nothing is made after close (at most 4 steps were asked for)
    with pytest.raises(ValueError, match="prefetch-batches"):
        TrainSettings(out=tmp_path, prefetch_batches=-2)
    with pytest.raises(ValueError, match="batch-workers"):
        TrainSettings(out=tmp_path, batch_workers=-2)


def test_batch_workers_default_to_the_free_cores_on_a_gpu_and_none_on_the_cpu(tmp_path, monkeypatch):
    from ko_hypervl.training.loop import batch_worker_count

    monkeypatch.setattr("os.cpu_count", lambda: 16)
    auto = TrainSettings(out=tmp_path)
    assert batch_worker_count(auto, torch.device("cpu"), 1) == 0
    assert batch_worker_count(auto, torch.device("cuda"), 1) == 8
    assert batch_worker_count(auto, torch.device("cuda"), 4) == 3
    assert batch_worker_count(TrainSettings(out=tmp_path, batch_workers=2), torch.device("cpu"), 1) == 2


def test_compare_draws_runs_and_prints_their_first_and_last_means(tmp_path, capsys):
    from ko_hypervl.training.runlog import moving_mean

    assert moving_mean([4.0, 2.0, 6.0, 0.0], 2) == [4.0, 3.0, 4.0, 3.0]
    for name, losses in {"a": [5.0, 4.0, 3.0, 2.0], "b": [5.0, 5.0, 4.0, 4.0]}.items():
        (tmp_path / name).mkdir()
        rows = [{"step": i + 1, "loss": v, "seconds": float(i + 1)} for i, v in enumerate(losses)]
        (tmp_path / name / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 5, "lo',
                                                   encoding="utf-8")     # a line cut short by a kill is skipped
    chart = tmp_path / "cmp.png"
    assert main(["train", "compare", str(tmp_path / "a"), str(tmp_path / "b" / "log.jsonl"), "--labels", "ours",
                 "twin", "--window", "2", "--out", str(chart), "--ymax", "6"]) == 0
    printed = capsys.readouterr().out
    assert "| ours | 4 | 4.0 | 4.5 | 2.5 |" in printed and "| twin | 4 | 4.0 | 5.0 | 4.0 |" in printed
    assert chart.stat().st_size > 5000
    assert main(["train", "compare", str(tmp_path / "a"), "--labels", "x", "y"]) == 1
    assert main(["train", "compare", str(tmp_path / "a"), str(tmp_path / "missing")]) == 1
    assert main(["train", "compare", str(tmp_path / "a"), "--metric", "loss_kl"]) == 1
    assert main(["train", "compare", str(tmp_path / "a"), "--ymax", "2", "--out", str(tmp_path / "low.png")]) == 1
    errors = capsys.readouterr().err
    assert "--labels names 2 runs, but 1" in errors and "no training log at" in errors and "no 'loss_kl'" in errors
    assert "--ymax 2 is not above the lowest loss on the chart (3.5)" in errors and not (tmp_path / "low.png").exists()


# -- answer-only labels -----------------------------------------------------------------------------------------

def test_chat_segments_rebuild_the_chat_template(tiny):
    _, _, processor = tiny
    pieces = chat_segments(processor, MESSAGES)
    rebuilt = "".join(text + ("<|end|>" if answer else "") for text, answer in pieces)
    assert rebuilt == processor.apply_chat_template(MESSAGES, tokenize=False)
    assert [text for text, answer in pieces if answer] == ["42명", "학년별 학생 수"]


def test_labels_are_the_answers_and_their_end_tokens_only(tiny, chart_image):
    _, _, processor = tiny
    encoder = ConversationEncoder(processor, max_length=1024)
    sample = encoder.encode(chart_image, MESSAGES, "large", 1.0, "s1")
    tokenizer = processor.tokenizer
    targets = [label for label in sample.labels if label != IGNORE]
    assert tokenizer.decode(targets) == "42명<|end|>학년별 학생 수<|end|>"
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    assert sample.input_ids.count(image_id) == sample.visual_tokens > 0
    assert all(label == IGNORE for token, label in zip(sample.input_ids, sample.labels) if token == image_id)
    assert sample.pixel_values.shape[0] == int(sample.image_grid.prod(-1).item() + (sample.image_grid.prod(-1) > 1))
    small = encoder.encode(chart_image, MESSAGES, "small", 0.5, "s1")
    assert [l for l in small.labels if l != IGNORE] == targets and small.visual_tokens < sample.visual_tokens


def test_turns_that_do_not_fit_are_dropped_and_a_first_turn_that_does_not_is_an_error(tiny, chart_image):
    _, _, processor = tiny
    full = ConversationEncoder(processor, 1024).encode(chart_image, MESSAGES, "large", 1.0, "s")
    first_turn_end = full.labels.index(IGNORE, full.labels.index(next(l for l in full.labels if l != IGNORE)))
    cut = ConversationEncoder(processor, first_turn_end + 3).encode(chart_image, MESSAGES, "large", 1.0, "s")
    assert cut.input_ids == full.input_ids[:first_turn_end]
    with pytest.raises(ValueError, match="sample s: its first question and answer need more than 20 tokens"):
        ConversationEncoder(processor, 20).encode(chart_image, MESSAGES, "large", 1.0, "s")


def test_select_turns_keeps_only_the_chosen_tasks():
    kept = select_turns(MESSAGES, ["max", "title"], {"title"})
    assert [m["role"] for m in kept] == ["user", "assistant"]
    assert kept[0]["content"][0]["type"] == "image" and kept[1]["content"][0]["text"] == "학년별 학생 수"
    assert select_turns(MESSAGES, ["max", "title"], {"sum"}) == []
    assert select_turns(MESSAGES, ["max", "title"], None) is MESSAGES


# -- losses ---------------------------------------------------------------------------------------------------

def test_target_logits_are_gathered_row_by_row():
    labels = torch.tensor([[IGNORE, IGNORE, 5, 6], [IGNORE, 7, IGNORE, IGNORE]])
    positions = predicting_positions(labels)
    assert positions.tolist() == [0, 1, 2]
    logits = torch.arange(2 * 3 * 1, dtype=torch.float).view(2, 3, 1)   # logits[row, kept position] = id
    chosen, targets = gather_target_logits(logits, labels, positions)
    assert targets.tolist() == [5, 6, 7] and chosen.squeeze(1).tolist() == [1.0, 2.0, 3.0]


def test_distillation_kl_is_zero_for_equal_outputs_scales_with_t_squared_and_detaches_the_teacher():
    torch.manual_seed(0)
    teacher = torch.randn(5, 11, requires_grad=True)
    student = torch.randn(5, 11, requires_grad=True)
    assert distillation_kl_sum(teacher.detach(), teacher.detach(), 2.0).item() == pytest.approx(0.0, abs=1e-6)
    kl = distillation_kl_sum(student, teacher, 3.0)
    p = torch.softmax(teacher.detach() / 3, -1)
    manual = (p * (p.log() - torch.log_softmax(student.detach() / 3, -1))).sum() * 9
    assert kl.item() == pytest.approx(manual.item(), rel=1e-5)
    kl.backward()
    assert teacher.grad is None and student.grad is not None
    with pytest.raises(ValueError, match="temperature"):
        distillation_kl_sum(student, teacher, 0.0)


def test_sqrt_answer_weights_give_each_answer_the_root_of_its_length():
    I = IGNORE
    # row 0: a 4-token answer, then a user turn, then a 1-token one; row 1: one 9-token answer, then padding
    labels = torch.tensor([[I, I, 5, 6, 7, 8, I, I, 9, I, I, I],
                           [I, 1, 2, 3, 4, 5, 6, 7, 8, 9, I, I]])
    assert answer_token_weights(labels, "token").tolist() == (labels[:, 1:] != I).float().tolist()
    weights = answer_token_weights(labels, "sqrt")
    assert weights[0].tolist() == pytest.approx([0, .5, .5, .5, .5, 0, 0, 1, 0, 0, 0])
    assert weights[1].tolist() == pytest.approx([1 / 3] * 9 + [0, 0])
    # each answer's weights sum to √(its length): 2 + 1 and 3
    assert weights.sum(dim=1).tolist() == pytest.approx([3.0, 3.0])
    positions = torch.tensor([1, 2, 3, 4, 5, 7, 8])
    picked = gather_target_weights(weights, labels, positions)
    logits = torch.randn(2, len(positions), 10)
    chosen, targets = gather_target_logits(logits, labels, positions)
    assert picked.shape == targets.shape and picked.sum().item() == pytest.approx(3 + 7 / 3)   # 2 of row 1 left out
    per_token = torch.nn.functional.cross_entropy(chosen, targets, reduction="none")
    assert cross_entropy_sum(chosen, targets, picked).item() == pytest.approx((per_token * picked).sum().item())
    assert cross_entropy_sum(chosen, targets, torch.ones_like(picked)).item() == pytest.approx(
        cross_entropy_sum(chosen, targets).item())
    assert distillation_kl_sum(chosen, chosen * 2, 2.0, torch.ones_like(picked)).item() == pytest.approx(
        distillation_kl_sum(chosen, chosen * 2, 2.0).item(), rel=1e-5)
    with pytest.raises(ValueError, match="answer weighting"):
        answer_token_weights(labels, "mean")
    with pytest.raises(ValueError, match="answer-weighting"):
        SFTSettings(init=Path("x"), data=Path("y"), answer_weighting="mean")


def test_greedy_correct_ignores_suppressed_tokens():
    logits = torch.tensor([[0.0, 5.0, 1.0], [3.0, 0.0, 1.0]])
    targets = torch.tensor([2, 0])
    assert greedy_correct(logits, targets).tolist() == [False, True]
    assert greedy_correct(logits, targets, suppressed=[1]).tolist() == [True, True]


# -- VRC labels ------------------------------------------------------------------------------------------------

def test_scale_labels_are_the_smallest_scale_within_the_tolerance():
    losses = [[2.0, 1.3, 1.05, 1.0], [1.0, 1.0, 1.0, 1.0], [5.0, 4.0, 3.0, 2.0]]
    assert label_scales(losses, 0.0) == [3, 0, 3]
    assert label_scales(losses, 0.05) == [2, 0, 3]
    assert label_scales(losses, 0.5) == [1, 0, 2]
    assert label_scales(losses, 10.0) == [0, 0, 0]
    # with the answers right per scale: a scale within ε that loses an answer full resolution gets is not enough
    correct = [[0.0, 1.0, 0.5, 1.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]
    assert label_scales(losses, 10.0, correct) == [1, 0, 0]
    assert label_scales(losses, 0.05, correct) == [3, 0, 3]


def test_vrc_labels_a_subset_that_takes_every_kind_in_turn():
    kinds = ["charts"] * 4 + ["exams"] * 2 + ["ocr"] * 3
    assert rows_spread_over_kinds(kinds, 3) == [0, 4, 6]          # one of each, not the first three charts
    assert rows_spread_over_kinds(kinds, 7) == [0, 1, 2, 4, 5, 6, 7]   # exams run out; the others go on in turn
    assert rows_spread_over_kinds(kinds, 0) == rows_spread_over_kinds(kinds, 99) == list(range(9))


def test_operating_point_counts_tokens_and_accuracy_against_full_resolution():
    tokens = [[10, 40], [20, 60]]
    correct = [[1.0, 1.0], [0.0, 1.0]]
    point = operating_point([0, 1], tokens, correct)
    assert point["tokens_saved_pct"] == pytest.approx(100 * (1 - 70 / 100))
    assert point["accuracy"] == 1.0 and point["accuracy_kept_pct"] == 100.0
    assert operating_point([0, 0], tokens, correct)["accuracy_kept_pct"] == 50.0


def test_target_tokens_are_assigned_to_their_answer_turn():
    labels = torch.tensor([[IGNORE, 4, 5, IGNORE, IGNORE, 6, IGNORE], [IGNORE, IGNORE, 8, IGNORE, 9, 9, IGNORE]])
    assert _turn_of_targets(labels).tolist() == [0, 0, 1, 0, 1, 1]


# -- stages ---------------------------------------------------------------------------------------------------

def test_stage_settings_refuse_contradictions():
    with pytest.raises(ValueError, match="needs --branches both"):
        VisionLanguageSettings(init=Path("a"), data=Path("b"), kl_weight=1.0)
    with pytest.raises(ValueError, match="nothing to train"):
        VisionLanguageSettings(init=Path("a"), data=Path("b"), train_vision=False, train_projector=False,
                               train_lm=False)
    assert DCLSettings(init=Path("a"), data=Path("b")).kl_weight > 0
    for scale in (0.0, 1.5):
        with pytest.raises(ValueError, match="--vision-lr-scale must be in"):
            SFTSettings(init=Path("a"), data=Path("b"), vision_lr_scale=scale)


def test_repeat_opening_writes_the_opening_twice_and_keeps_the_length():
    block = torch.arange(10)
    assert repeat_opening(block, 3).tolist() == [0, 1, 2, 0, 1, 2, 3, 4, 5, 6]
    assert repeat_opening(block, 5).tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]
    assert repeat_opening(block.view(1, 10), 1).tolist() == [[0, 0, 1, 2, 3, 4, 5, 6, 7, 8]]
    for span in (0, 6):
        with pytest.raises(ValueError, match="repeated span must be 1 to half the block"):
            repeat_opening(block, span)


def test_lm_copy_share_repeats_that_share_of_blocks_the_same_way_after_a_resume(tiny):
    _, model, processor = tiny
    settings = dict(init=Path("a"), block_size=64, max_tokens=64 * 40)
    plain = LanguageModelStage(LMSettings(**settings), processor.tokenizer, model.config, progress=False)
    copying = LanguageModelStage(LMSettings(**settings, copy_share=0.5), processor.tokenizer, model.config,
                                 progress=False, seed=3)
    indices = list(range(40))
    assert torch.equal(plain.make_batch(indices, 0)["input_ids"], plain.blocks)
    batch = copying.make_batch(indices, 0)["input_ids"]
    assert torch.equal(batch, copying.make_batch(indices, 0)["input_ids"])   # a pure function of (seed, step)
    assert not torch.equal(batch, copying.make_batch(indices, 1)["input_ids"])
    repeated = 0
    for block, original in zip(batch, plain.blocks):
        if torch.equal(block, original):
            continue
        span = next(n for n in range(8, 33) if torch.equal(block, repeat_opening(original, n)))
        assert 64 // 8 <= span <= 64 // 2
        repeated += 1
    assert 10 <= repeated <= 30   # about half of 40
    with pytest.raises(ValueError, match="--copy-share must be in"):
        LMSettings(init=Path("a"), copy_share=1.5)


def test_visual_spread_tells_a_collapsed_encoder_from_a_working_one(tiny, caplog):
    torch.manual_seed(0)
    assert visual_spread(torch.randn(64, 32)) == pytest.approx(1.0, abs=0.05)
    collapsed = torch.full((64, 32), 40.0) + 0.01 * torch.randn(64, 32)   # one big vector, whatever the image
    assert visual_spread(collapsed) < 0.001 and visual_spread(torch.zeros(4, 8)) == 0.0
    _, model, processor = tiny
    from datasets import Dataset

    rows = Dataset.from_list([{"id": "x", "messages": MESSAGES, "tasks": ["max", "title"]}])
    stage = VisionLanguageStage("sft", SFTSettings(init=Path("a"), data=Path("b"), branches="both"), rows,
                                processor, seed=0)
    with caplog.at_level("WARNING"):
        # one batch of near-blank images dips below the line and recovers: no alarm
        for spread in [0.4, 0.01] * COLLAPSE_PATIENCE:
            stage.warn_on_collapse("large", spread)
        assert not caplog.records
        for _ in range(2 * COLLAPSE_PATIENCE):   # a collapse stays there: said once per branch, not every step
            stage.warn_on_collapse("large", visual_spread(collapsed))
            stage.warn_on_collapse("small", 0.4)
    assert [r.getMessage().count("large branch's visual tokens have collapsed") for r in caplog.records] == [1]
    assert "--vision-lr-scale 0.1" in caplog.records[0].getMessage()

    # the advice is what the stage has not tried: encoders already at 0.1× → freeze them
    slow = VisionLanguageStage("sft", SFTSettings(init=Path("a"), data=Path("b"), vision_lr_scale=0.1), rows,
                               processor, seed=0)
    caplog.clear()
    with caplog.at_level("WARNING"):
        for _ in range(COLLAPSE_PATIENCE):
            slow.warn_on_collapse("large", 0.0)
    assert len(caplog.records) == 1 and "--no-train-vision" in caplog.records[0].getMessage()
    assert "--vision-lr-scale 0.1" not in caplog.records[0].getMessage()


def test_alignment_trains_encoders_and_projectors_with_the_language_model_frozen(tiny):
    _, model, processor = tiny
    from datasets import Dataset

    rows = Dataset.from_list([{"id": "x", "messages": MESSAGES, "tasks": ["max", "title"]}])
    stage = VisionLanguageStage("align", AlignSettings(init=Path("a"), data=Path("b")), rows, processor, seed=0)
    names = [name for name, _ in stage.trainable_parameters(model)]
    assert stage.dataset_size() == 1   # only the title turn is an alignment task
    assert any(n.startswith("vision_model.") for n in names) and any(n.startswith("small_projector.") for n in names)
    assert not any(n.startswith("language_model.") for n in names)
    assert not model.language_model.get_input_embeddings().weight.requires_grad


def test_a_lower_vision_learning_rate_reaches_the_encoders_only(tiny, tmp_path):
    from ko_hypervl.training.loop import _param_groups, set_learning_rate

    init, model, processor = tiny
    from datasets import Dataset

    rows = Dataset.from_list([{"id": "x", "messages": MESSAGES, "tasks": ["max", "title"]}])
    stage = VisionLanguageStage("dcl", DCLSettings(init=Path("a"), data=Path("b"), vision_lr_scale=0.1), rows,
                                processor, seed=0)
    trainable = stage.trainable_parameters(model)
    optimizer = torch.optim.AdamW(_param_groups(trainable, 0.01, stage.learning_rate_scale))
    set_learning_rate(optimizer, 1e-3)
    lr_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    assert len(lr_of) == len(trainable)                     # every trainable parameter, once
    for name, param in trainable:
        encoder = name.startswith(("vision_model.", "small_vision_model."))
        assert lr_of[id(param)] == pytest.approx(1e-4 if encoder else 1e-3), name
    # every scale 1: the two groups (decayed or not) of checkpoints written before scales existed
    plain = _param_groups(trainable, 0.01, VisionLanguageStage("sft", SFTSettings(init=Path("a"), data=Path("b")),
                                                               rows, processor, seed=0).learning_rate_scale)
    assert [(g["weight_decay"], g["lr_scale"]) for g in plain] == [(0.01, 1.0), (0.0, 1.0)]

    # through the CLI and the loop: one AdamW step moves each weight by about its learning rate
    out = tmp_path / "sft"
    assert main(["train", "sft", "--init", str(init), "--data", str(_colour_dataset(tmp_path)), "--out", str(out),
                 "--steps", "1", "--batch-size", "4", "--micro-batch-size", "4", "--learning-rate", "1e-3",
                 "--warmup-steps", "0", "--vision-lr-scale", "0.01", "--no-progress"]) == 0
    before, after = load_file(init / "model.safetensors"), load_file(out / "final" / "model.safetensors")
    moved = {prefix: max(float((after[k].float() - before[k].float()).abs().max()) for k in before
                         if k.startswith(prefix)) for prefix in ("vision_model.", "projector.", "language_model.")}
    assert moved["vision_model."] < 3e-5 and moved["projector."] > 5e-4 and moved["language_model."] > 5e-4, moved


# -- end to end ---------------------------------------------------------------------------------------------------

# the smoke recipe, its reading stage on an OCR corpus of its own with a blank prior, both encoders with a
# convolutional stem
SMOKE_PIPELINE = ["--smoke", "--read-lines", "12", "--read-blank-prior", "0.9", "--vit-stem-channels", "8",
                  "--no-progress"]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pipeline") / "run"
    code = main(["train", "pipeline", *SMOKE_PIPELINE, "--out", str(out)])
    assert code == 0
    return out


def test_smoke_pipeline_trains_every_stage_into_one_checkpoint(smoke_run):
    model_dir = smoke_run / "model"
    summary = json.loads((model_dir / "training_summary.json").read_text(encoding="utf-8"))
    assert [s["stage"] for s in summary["stages"]] == ["copy", "lm", "read", "align", "sft", "dcl", "vrc"]
    assert summary["recipe"] == "smoke" and summary["recipe_description"] == RECIPES["smoke"].description
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    assert config["vision_config"]["stem_channels"] == config["small_vision_config"]["stem_channels"] == [8]
    for stage in summary["stages"][:6]:
        assert stage["samples_per_second"] > 0 and stage["tokens_per_second"] > 0
        log = [json.loads(line) for line in (smoke_run / stage["stage"] / "log.jsonl").read_text().splitlines()]
        assert [row["step"] for row in log] == list(range(1, stage["steps"] + 1))
        assert (smoke_run / stage["stage"] / "loss.png").stat().st_size > 1000
    lm_log = [json.loads(line) for line in (smoke_run / "lm" / "log.jsonl").read_text().splitlines()]
    assert lm_log[-1]["loss"] < lm_log[0]["loss"]   # it learns
    assert summary["stages"][0]["settings"]["CopySettings"]["pools"] == [16]
    read = summary["stages"][2]
    assert read["settings"]["ReadSettings"]["data"] == str(smoke_run / "read-data")     # --read-lines' own lines
    assert read["settings"]["ReadSettings"]["blank_prior"] == 0.9
    assert set(load_split(smoke_run / "read-data", "train")["kind"]) == {"ocr"}
    assert {"large", "small"} == set(read["reading_cer"]) and 1 <= read["reading_cer"]["large"]["rows"] <= 4
    assert read["reading_classes"] > 20 and 0 <= read["reading_cer"]["large"]["cer"]
    # after the reading stage, the later stages train the encoders at a tenth of their rate
    scales = {s["stage"]: s["settings"][f"{cls}Settings"]["vision_lr_scale"]
              for s, cls in zip(summary["stages"][3:6], ("Align", "SFT", "DCL"))}
    assert scales == {"align": 0.1, "sft": 0.1, "dcl": 0.1}
    dcl_log = json.loads((smoke_run / "dcl" / "log.jsonl").read_text().splitlines()[-1])
    assert {"loss_large", "loss_small", "loss_kl", "visual_spread_large", "visual_spread_small"} <= set(dcl_log)
    assert 0 < dcl_log["visual_spread_large"] < 2 and 0 < dcl_log["visual_spread_small"] < 2
    curve = json.loads((smoke_run / "vrc" / "vrc_curve.json").read_text(encoding="utf-8"))
    assert [row["tolerance"] for row in curve["curve"]] == sorted(row["tolerance"] for row in curve["curve"])
    # --max-images takes every kind (the corpus is ordered by kind: its first 12 rows are charts)
    table = json.loads((smoke_run / "vrc" / "scale_table.json").read_text(encoding="utf-8"))
    labelled = {row["id"].split("-")[0] for row in table["train"]}
    assert len(table["train"]) == 12 and labelled == set(load_split(smoke_run / "data", "train")["kind"])
    assert (smoke_run / "vrc" / "vrc_curve.png").is_file() and "| dcl |" in (smoke_run / "throughput.md").read_text()
    # the smoke recipe trains the encoders after reading, so its head reads nothing: no reading LM for it
    assert not (model_dir / "reading_lm.safetensors").exists() and not (smoke_run / "reading_lm").exists()
    # the VRC the pipeline fitted is the model's: its weights differ from the untrained one's
    trained = load_file(str(model_dir / "model.safetensors"))
    untrained = load_file(str(smoke_run / "init" / "model.safetensors"))
    assert not torch.equal(trained["vrc.head.2.weight"], untrained["vrc.head.2.weight"])
    import ko_hypervl

    row = load_split(smoke_run / "data", "test")[0]
    answer = ko_hypervl.load(model_dir).ask(row["image"], "제목은 무엇인가요?", mode="auto", max_new_tokens=3)
    assert answer.decisions[0].chosen_by == "vrc" and answer.visual_tokens <= answer.decisions[0].full_visual_tokens


def test_copy_head_pipeline_reads_the_corpus_once_and_trains_with_the_readings(tmp_path):
    out = tmp_path / "run"
    code = main(["train", "pipeline", *SMOKE_PIPELINE, "--copy-head", "--out", str(out)])
    assert code == 0
    summary = json.loads((out / "model" / "training_summary.json").read_text(encoding="utf-8"))
    later = {s["stage"]: s["settings"] for s in summary["stages"][3:6]}
    for stage, cls in zip(("align", "sft", "dcl"), ("Align", "SFT", "DCL")):
        assert later[stage][f"{cls}Settings"]["data"] == str(out / "data-read")
        assert later[stage][f"{cls}Settings"]["train_vision"] is False      # the readings come from these encoders
    read = load_split(out / "data-read", "train")
    assert len(read) == len(load_split(out / "data", "train")) and all(isinstance(t, str) for t in read["reading"])
    assert sorted(json.loads((out / "data-read" / "dataset_dict.json").read_text())["splits"]) == ["train",
                                                                                                   "validation"]
    # reading the corpus and fitting the reading LM use the trained model: they count in the recipe's time
    steps = {step["step"].split(" (")[0]: step["seconds"] for step in summary["preparation"]}
    assert set(steps) == {"reading LM", "reading the corpus"} and all(s > 0 for s in steps.values())
    stages = sum(stage["seconds"] for stage in summary["stages"])
    assert summary["total_seconds"] == pytest.approx(stages + sum(steps.values()), abs=0.2)
    config = json.loads((out / "model" / "config.json").read_text(encoding="utf-8"))
    assert config["copy_head"] and config["reading_head"]
    import ko_hypervl

    vlm = ko_hypervl.load(out / "model")
    assert vlm.uses_readings and vlm.model.reading_head_spec()       # the head still reads its encoder
    row = load_split(out / "data", "test")[0]
    assert vlm.ask(row["image"], "무엇이라고 쓰여 있나요?", mode="high", max_new_tokens=3).new_tokens >= 1
    from ko_hypervl.training.pipeline import PipelineSettings

    with pytest.raises(ValueError, match="drop --vision-lr-scale"):
        PipelineSettings(out=tmp_path / "bad", smoke=True, copy_head=True, vision_lr_scale=0.5)
    with pytest.raises(ValueError, match="--copy-head is for the reading stage"):
        PipelineSettings(out=tmp_path / "bad", recipe="tiny", copy_head=True)


def test_pipeline_overrides_change_one_stage_over_the_recipe(tmp_path):
    from ko_hypervl.training.pipeline import (PipelineSettings, _lm_settings, _stage_settings, _train_settings,
                                              _vrc_settings)

    settings = PipelineSettings(out=tmp_path, recipe="tiny", steps_scale=0.5, override=(
        "lm.steps=20000", "lm.batch_size=64", "lm.copy_share=0.5", "lm.precision=bf16", "sft.answer_weighting=sqrt",
        "vrc.tolerances=0,0.1", "dcl.train_vision=false"))
    lm = _train_settings(RECIPES["tiny"], "lm", settings)
    assert (lm.steps, lm.batch_size, lm.precision) == (20000, 64, "bf16")       # after --steps-scale, not halved
    assert lm.micro_batch_size == RECIPES["tiny"].train["lm"]["micro_batch_size"] and lm.save_every == 25
    assert _train_settings(RECIPES["tiny"], "sft", settings).steps == RECIPES["tiny"].train["sft"]["steps"] // 2
    assert _lm_settings(RECIPES["tiny"], settings, tmp_path).copy_share == 0.5
    assert _stage_settings(RECIPES["tiny"], "sft", settings, tmp_path, tmp_path).answer_weighting == "sqrt"
    assert _stage_settings(RECIPES["tiny"], "dcl", settings, tmp_path, tmp_path).train_vision is False
    assert _stage_settings(RECIPES["tiny"], "align", settings, tmp_path, tmp_path).train_vision is True
    assert _vrc_settings(RECIPES["tiny"], settings, tmp_path, tmp_path).tolerances == [0.0, 0.1]
    plain = PipelineSettings(out=tmp_path, recipe="tiny")
    assert _lm_settings(RECIPES["tiny"], plain, tmp_path).copy_share == 0.0
    # the CLI takes them as one flag with several values
    from ko_hypervl.cli import build_parser
    args = build_parser().parse_args(["train", "pipeline", "--out", str(tmp_path), "--override", "lm.steps=7",
                                      "lm.copy_share=0.25"])
    assert args.override == ["lm.steps=7", "lm.copy_share=0.25"]


@pytest.mark.parametrize("item, message", [
    ("lm.steps", "STAGE.FIELD=VALUE"), ("steps=3", "STAGE.FIELD=VALUE"), ("eval.steps=3", "no stage 'eval'"),
    ("read.steps=3", "does not run the read stage"), ("lm.out=x", "sets out itself"),
    ("lm.stepz=3", "no setting 'stepz'"), ("lm.steps=many", "not a valid int"), ("sft.answer_weighting=cube", "not one of"),
    ("lm.progress=yes", "sets progress itself"), ("align.train_vision=maybe", "not a valid bool"),
])
def test_bad_pipeline_override_fails_before_any_stage(tmp_path, item, message):
    from ko_hypervl.training.pipeline import PipelineSettings

    with pytest.raises(ValueError, match=message):
        PipelineSettings(out=tmp_path, recipe="tiny", override=(item,))


def test_read_steps_add_the_reading_stage_and_read_lines_give_it_its_own_ocr_corpus(tmp_path):
    from ko_hypervl.training.pipeline import PipelineSettings, _read_corpus, _read_settings, _train_settings

    plain = PipelineSettings(out=tmp_path / "plain", recipe="tiny")
    assert not plain.runs_stage("read") and plain.runs_stage("align") and _read_corpus(plain) is None
    reading = PipelineSettings(out=tmp_path / "read", recipe="tiny", read_steps=2000, read_lines=12, steps_scale=0.5)
    assert reading.runs_stage("read")
    train = _train_settings(RECIPES["tiny"], "read", reading)
    assert (train.steps, train.warmup_steps, train.batch_size, train.out) == (1000, 100, 16, tmp_path / "read" / "read")
    smoke = _train_settings(RECIPES["smoke"], "read", PipelineSettings(out=tmp_path, smoke=True, read_steps=20))
    assert (smoke.steps, smoke.warmup_steps, smoke.batch_size) == (20, 1, 4)      # the recipe's loop, more steps
    corpus = _read_corpus(reading)
    assert corpus == tmp_path / "read" / "read-data"
    rows = sum(len(load_split(corpus, split)) for split in ("train", "validation", "test")
               if (corpus / split).is_dir())
    assert rows == 12 and set(load_split(corpus, "train")["kind"]) == {"ocr"}
    with pytest.raises(ValueError, match="add --read-steps"):
        PipelineSettings(out=tmp_path, recipe="tiny", read_lines=100)
    with pytest.raises(ValueError, match="--read-blank-prior is for the reading stage"):
        PipelineSettings(out=tmp_path, recipe="tiny", read_blank_prior=0.95)
    with pytest.raises(ValueError, match="--read-order is for the reading stage"):
        PipelineSettings(out=tmp_path, recipe="tiny", read_order="columns")
    with pytest.raises(ValueError, match="--read-order must be one of rows, columns"):
        PipelineSettings(out=tmp_path, recipe="tiny", read_steps=10, read_order="diagonal")
    by_columns = PipelineSettings(out=tmp_path / "read", recipe="tiny", read_steps=2000, read_lines=12,
                                  read_order="columns", read_blank_prior=0.95)
    read = _read_settings(RECIPES["tiny"], by_columns, tmp_path / "lm", tmp_path / "data")
    assert (read.order, read.blank_prior, read.init, read.data) == ("columns", 0.95, tmp_path / "lm", corpus)
    assert _read_settings(RECIPES["tiny"], plain, tmp_path / "lm", tmp_path / "data").order == "rows"
    for bad in (-0.5, 1.0):     # refused before any stage runs, not when the reading stage starts
        with pytest.raises(ValueError, match=r"--read-blank-prior must be in \[0, 1\)"):
            PipelineSettings(out=tmp_path, recipe="tiny", read_steps=10, read_blank_prior=bad)


def test_the_encoders_learning_rate_after_a_reading_stage(tmp_path):
    from ko_hypervl.training.pipeline import READ_VISION_LR_SCALE, PipelineSettings

    assert PipelineSettings(out=tmp_path, recipe="tiny").encoder_lr_scale == 1.0
    assert PipelineSettings(out=tmp_path, recipe="tiny", read_steps=10).encoder_lr_scale == READ_VISION_LR_SCALE
    assert PipelineSettings(out=tmp_path, recipe="tiny", read_steps=10, vision_lr_scale=1).encoder_lr_scale == 1.0
    assert PipelineSettings(out=tmp_path, recipe="tiny", vision_lr_scale=0.25).encoder_lr_scale == 0.25
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"--vision-lr-scale must be in \[0, 1\]"):
            PipelineSettings(out=tmp_path, recipe="tiny", vision_lr_scale=bad)


def test_freeze_vision_keeps_the_encoders_fixed_in_align_sft_and_dcl(tmp_path):
    from ko_hypervl.training.pipeline import PipelineSettings, _stage_settings

    frozen = PipelineSettings(out=tmp_path, recipe="tiny", read_steps=10, freeze_vision=True)
    slow = PipelineSettings(out=tmp_path, recipe="tiny", read_steps=10)
    for stage in ("align", "sft", "dcl"):
        settings = _stage_settings(RECIPES["tiny"], stage, frozen, tmp_path / "read", tmp_path / "data")
        assert not settings.train_vision and settings.train_projector and settings.init == tmp_path / "read"
        settings = _stage_settings(RECIPES["tiny"], stage, slow, tmp_path / "read", tmp_path / "data")
        assert settings.train_vision and settings.vision_lr_scale == 0.1
    with pytest.raises(ValueError, match="--freeze-vision keeps the encoders fixed"):
        PipelineSettings(out=tmp_path, recipe="tiny", freeze_vision=True, vision_lr_scale=0.1)


def test_the_tiny_read_recipe_reads_its_own_lines_then_keeps_the_encoders_fixed_and_flags_override_it(tmp_path):
    from ko_hypervl.training.pipeline import (PipelineSettings, _read_settings, _stage_settings, _train_settings,
                                              model_settings)

    recipe = RECIPES["tiny-read"]
    run = PipelineSettings(out=tmp_path, recipe="tiny-read")
    assert run.runs_stage("read") and run.read_line_count == 5000 and run.freezes_vision
    model = model_settings(recipe, run)
    assert (model["tile_size"], model["patch_size"]) == (128, 16)
    assert model["vit_stem_channels"] == model["small_vit_stem_channels"] == (16, 32, 64, 128)
    read = _read_settings(recipe, run, tmp_path / "lm", tmp_path / "data")
    assert (read.order, read.blank_prior, read.data) == ("columns", 0.95, tmp_path / "read-data")
    assert (_train_settings(recipe, "read", run).steps, _train_settings(recipe, "sft", run).steps) == (1000, 1000)
    for stage in ("align", "sft", "dcl"):
        assert not _stage_settings(recipe, stage, run, tmp_path / "read", tmp_path / "data").train_vision
    assert recipe.stage["vrc"] == {"max_images": 120, "tolerance": 0.0}   # ε chosen on the validation rows
    # a flag given on the command line wins over the recipe
    flagged = PipelineSettings(out=tmp_path, recipe="tiny-read", read_order="rows", read_blank_prior=0.0,
                               read_lines=7, read_steps=30, vision_lr_scale=0.1)
    read = _read_settings(recipe, flagged, tmp_path / "lm", tmp_path / "data")
    assert (read.order, read.blank_prior, flagged.read_line_count) == ("rows", 0.0, 7)
    assert _train_settings(recipe, "read", flagged).steps == 30
    assert not flagged.freezes_vision and flagged.encoder_settings == {"vision_lr_scale": 0.1}
    # the recipes without a reading stage keep their encoders trainable and render no reading corpus
    assert not PipelineSettings(out=tmp_path, recipe="tiny").freezes_vision
    assert PipelineSettings(out=tmp_path, recipe="tiny").read_line_count == 0


def test_the_reading_head_outlives_later_stages_while_its_encoder_stays_fixed(smoke_run, tmp_path):
    from PIL import Image

    from ko_hypervl import load

    line = Image.new("RGB", (96, 32), "white")
    assert load(smoke_run / "read" / "final").read(line)[0].branch == "large"
    # the smoke recipe trains the encoders again after reading (a tenth of the rate): its head no longer fits
    with pytest.raises(ValueError, match="trained after its reading head was fitted"):
        load(smoke_run / "model").read(line)
    # a stage with the encoders fixed (as tiny-read's align, sft and dcl) keeps the head, and it still reads
    out = tmp_path / "align"
    assert main(["train", "align", "--init", str(smoke_run / "read" / "final"), "--data", str(smoke_run / "data"),
                 "--out", str(out), "--steps", "1", "--batch-size", "2", "--micro-batch-size", "2",
                 "--no-train-vision", "--no-progress"]) == 0
    before, after = load(smoke_run / "read" / "final"), load(out / "final")
    assert torch.equal(before.model.reading_head.weight, after.model.reading_head.weight)
    assert after.read(line)[0].text == before.read(line)[0].text


def test_rerunning_a_finished_pipeline_skips_every_stage(smoke_run, caplog):
    before = (smoke_run / "model" / "model.safetensors").read_bytes()
    caplog.set_level("INFO")
    assert main(["train", "pipeline", *SMOKE_PIPELINE, "--out", str(smoke_run)]) == 0
    assert sum("already done" in r.getMessage() for r in caplog.records) == 7   # copy, lm, read, align, sft, dcl, vrc
    assert (smoke_run / "model" / "model.safetensors").read_bytes() == before


def test_the_pipeline_can_set_the_encoders_tile_patch_and_stem(tmp_path):
    from ko_hypervl.training.pipeline import PipelineSettings, model_settings

    recipe = RECIPES["tiny"]
    assert model_settings(recipe, PipelineSettings(out=tmp_path)) == {**recipe.model, "seed": 0}
    cnn_like = PipelineSettings(out=tmp_path, tile_size=128, patch_size=16, vit_stem_channels=(32, 64, 128, 128))
    values = model_settings(recipe, cnn_like)
    assert (values["tile_size"], values["patch_size"]) == (128, 16)
    assert values["vit_stem_channels"] == values["small_vit_stem_channels"] == (32, 64, 128, 128)
    assert {k: v for k, v in values.items() if "tile" not in k and "patch" not in k and "stem" not in k} == \
        {k: v for k, v in recipe.model.items() if "tile" not in k and "patch" not in k and "stem" not in k} | {"seed": 0}
    with pytest.raises(ValueError, match="cannot be negative"):
        PipelineSettings(out=tmp_path, tile_size=-112)


def test_a_pipeline_whose_sizes_the_model_refuses_stops_before_it_records_the_run(tmp_path, capsys):
    out = tmp_path / "run"
    for flags, reason in ((["--patch-size", "15"], "image_size 112 is not a multiple of patch_size 15"),
                          (["--patch-size", "16"], "7 patches per side is not divisible by pixel shuffle 2")):
        assert main(["train", "pipeline", "--recipe", "tiny", "--out", str(out), *flags, "--no-progress"]) == 1
        assert reason in capsys.readouterr().err
        # nothing recorded, nothing rendered: the corrected command starts this --out afresh
        assert not (out / "pipeline.json").exists() and not (out / "init").exists() and not (out / "data").exists()


def test_resuming_a_pipeline_with_other_model_settings_is_refused(smoke_run, capsys):
    before = (smoke_run / "pipeline.json").read_bytes()
    plain = [flag for flag in SMOKE_PIPELINE if flag not in ("--vit-stem-channels", "8")]
    assert main(["train", "pipeline", *plain, "--out", str(smoke_run)]) == 1
    assert "other model settings (small_vit_stem_channels, vit_stem_channels)" in capsys.readouterr().err
    assert (smoke_run / "pipeline.json").read_bytes() == before      # the run's record is kept as it was


def test_lora_fine_tunes_on_user_data_and_writes_adapter_and_merged_model(tiny, tmp_path, chart_image):
    init, _, _ = tiny
    out = tmp_path / "lora"
    code = main(["train", "lora", "--data", str(FIXTURES / "llava.jsonl"), "--model", str(init), "--out", str(out),
                 "--steps", "3", "--batch-size", "2", "--micro-batch-size", "2", "--warmup-steps", "1",
                 "--max-length", "1024", "--no-progress", "--r", "4", "--alpha", "8"])
    assert code == 0
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert json.loads((out / "adapter" / "adapter_config.json").read_text())["r"] == 4
    import ko_hypervl

    answer = ko_hypervl.load(out / "final").ask(chart_image, "배경은 무슨 색인가요?", mode="high", max_new_tokens=4)
    assert answer.visual_tokens > 0
    merged = load_file(str(out / "final" / "model.safetensors"))
    base = load_file(str(init / "model.safetensors"))
    changed = [k for k in base if k.startswith("language_model.") and not torch.equal(base[k], merged[k])]
    assert changed and all("proj" in k for k in changed)   # LoRA touched the decoder's linear layers only
    assert not any("lora" in k for k in merged)


COLOURS = {"빨강": (220, 30, 30), "파랑": (30, 60, 220), "초록": (30, 170, 60), "노랑": (240, 210, 20)}


def _colour_question(name: str | None = None) -> list[dict]:
    messages = [{"role": "user", "content": [{"type": "image", "text": None}, {"type": "text", "text": "무슨 색인가요?"}]}]
    return messages + ([{"role": "assistant", "content": [{"type": "text", "text": name}]}] if name else [])


def _colour_dataset(folder: Path) -> Path:
    """Plain-colour images of several sizes, each with the question and its colour's name."""
    from datasets import Dataset, DatasetDict
    from PIL import Image

    rows = [{"id": f"c{i}", "kind": "charts", "image": Image.new("RGB", (48 + 9 * i, 40 + 5 * i), rgb),
             "messages": _colour_question(name), "tasks": ["colour"]}
            for i, (name, rgb) in enumerate(list(COLOURS.items()) * 6)]
    DatasetDict({"train": Dataset.from_list(rows)}).save_to_disk(str(folder / "colours"))
    return folder / "colours"


def test_the_image_path_learns_an_answer_only_the_image_holds(tiny, tmp_path):
    """The whole image → answer path (processor, encoder, projector, merge at <image>, loss, loop) can learn:
    one question, four plain colours, four answers. Text alone cannot tell them apart, so answering each
    colour right needs the image (the bundled model's answers do not depend on it; see its blank-image row)."""
    from PIL import Image

    init, _, _ = tiny
    out = tmp_path / "sft"
    assert main(["train", "sft", "--init", str(init), "--data", str(_colour_dataset(tmp_path)), "--out", str(out),
                 "--steps", "120", "--batch-size", "8", "--micro-batch-size", "8", "--learning-rate", "5e-3",
                 "--warmup-steps", "10", "--save-every", "120", "--no-progress"]) == 0
    import ko_hypervl

    vlm = ko_hypervl.load(out / "final")
    answers = {name: vlm.ask(Image.new("RGB", (70, 61), rgb), "무슨 색인가요?", mode="high", max_new_tokens=4).text
               for name, rgb in COLOURS.items()}            # a size no training image had
    assert answers == {name: name for name in COLOURS}
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert log[-1]["visual_spread_large"] > 0.05            # it learnt without collapsing the visual tokens


# -- bad input -------------------------------------------------------------------------------------------------

def test_bad_settings_and_data_give_clear_errors(tiny, tmp_path, capsys):
    init, _, _ = tiny

    def run(*argv):
        code = main(list(argv))
        return code, capsys.readouterr().err

    code, err = run("train", "sft", "--init", str(init), "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"))
    assert code == 1 and "dataset folder not found" in err
    code, err = run("train", "lm", "--init", str(tmp_path / "missing"), "--out", str(tmp_path / "o"))
    assert code == 1 and "model directory not found" in err
    code, err = run("train", "lora", "--data", str(FIXTURES / "llava_bad.jsonl"), "--model", str(init),
                    "--out", str(tmp_path / "o"))
    assert code == 1 and "llava_bad.jsonl" in err
    code, err = run("train", "lora", "--data", str(tmp_path / "none.jsonl"), "--model", str(init),
                    "--out", str(tmp_path / "o"))
    assert code == 1 and "none.jsonl" in err
    code, err = run("train", "lm", "--init", str(init), "--out", str(tmp_path / "o"), "--batch-size", "4096",
                    "--micro-batch-size", "4096", "--block-size", "1024", "--max-tokens", "300000")
    assert code == 1 and "GiB" in err and "--micro-batch-size" in err
    code, err = run("train", "lm", "--init", str(init), "--out", str(tmp_path / "o"), "--block-size", "4096")
    assert code == 1 and "longer than the language model's context (1024 tokens)" in err


def test_the_gpu_lease_recipe_says_how_it_is_used(tmp_path):
    import subprocess

    script = Path(__file__).parents[1] / "training" / "recipes" / "gpu_lease.sh"
    usage = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    assert usage.returncode == 2 and "wheels|run" in usage.stderr
    env = {k: v for k, v in __import__("os").environ.items() if k != "OUT"}
    no_out = subprocess.run(["bash", str(script), "run"], capture_output=True, text=True, env=env)
    assert no_out.returncode != 0 and "set OUT" in no_out.stderr
