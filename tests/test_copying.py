"""The copy stage: its growing token pool, its doubled spans, its sampled softmax and the command that runs it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from ko_hypervl.cli import main
from ko_hypervl.training.copying import CopySettings, CopyStage, ordinary_token_order, pool_size_at
from ko_hypervl.training.pipeline import RECIPES


def test_the_pool_grows_on_schedule_then_covers_the_whole_vocabulary():
    pools, steps = (4, 16, 64), (3, 2, 1)
    sizes = [pool_size_at(s, pools, steps, 1000) for s in range(8)]
    assert sizes == [4, 4, 4, 16, 16, 64, 1000, 1000]
    assert pool_size_at(0, (), (), 1000) == 1000          # no pools: the whole vocabulary from the start
    assert pool_size_at(0, (4096,), (5,), 1000) == 1000     # a pool cannot exceed the vocabulary


def test_token_order_skips_special_tokens_and_pools_nest():
    order = ordinary_token_order(50, [0, 3, 49, 77], seed=1)
    assert sorted(order.tolist()) == [i for i in range(50) if i not in (0, 3, 49)]
    assert torch.equal(order, ordinary_token_order(50, [0, 3, 49], seed=1))
    assert not torch.equal(order, ordinary_token_order(50, [0, 3, 49], seed=2))


def test_spans_are_written_twice_from_the_steps_classes_the_same_way_in_every_micro_batch(tiny):
    _, model, processor = tiny
    settings = CopySettings(init=Path("a"), pools=(16, 64), pool_steps=(2, 2), sampled_vocab=8, min_span=5,
                            max_span=9)
    stage = CopyStage(settings, processor.tokenizer, model.config, steps=6, seed=3)
    specials = set(processor.tokenizer.all_special_ids)
    for step, pool in ((0, 16), (2, 64), (4, len(stage.order))):
        first, second = stage.make_batch([0, 1, 2], step), stage.make_batch([3, 4], step)
        assert torch.equal(first["classes"], second["classes"]) and first["span"] == second["span"]
        ids, span = first["input_ids"], first["span"]
        assert 5 <= span <= 9 and ids.shape == (3, 2 * span)
        assert torch.equal(ids[:, :span], ids[:, span:])
        assert set(ids.flatten().tolist()) <= set(first["classes"].tolist()) <= set(stage.order[:pool].tolist())
        assert not set(ids.flatten().tolist()) & specials
        assert torch.equal(first["classes"][first["targets"]], ids[:, 1:])
        assert first["num_targets"] == 3 * (2 * span - 1) and first["num_tokens"] == 6 * span
    again = CopyStage(settings, processor.tokenizer, model.config, steps=6, seed=3).make_batch([0, 1, 2], 1)
    assert torch.equal(again["input_ids"], stage.make_batch([0, 1, 2], 1)["input_ids"])   # pure in (seed, step)
    assert not torch.equal(again["input_ids"], stage.make_batch([0, 1, 2], 0)["input_ids"])


def test_the_sampled_softmax_is_the_full_softmax_restricted_to_the_steps_classes(tiny):
    _, model, processor = tiny
    settings = CopySettings(init=Path("a"), pools=(32,), pool_steps=(10,), sampled_vocab=8, min_span=4, max_span=4)
    stage = CopyStage(settings, processor.tokenizer, model.config, steps=10)
    batch = stage.make_batch([0, 1], 0)
    model.eval()
    loss, parts = stage.loss(model, batch, torch.device("cpu"))
    with torch.no_grad():
        logits = model.language_model(input_ids=batch["input_ids"]).logits[:, :-1][..., batch["classes"]]
    expected = torch.nn.functional.cross_entropy(logits.transpose(1, 2), batch["targets"], reduction="sum")
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert parts["loss"] == pytest.approx(loss.item())
    # an untrained LM is near uniform over the 8 classes, on both copies
    second = parts["second_copy_nats"] / batch["num_targets"]
    assert abs(second - math.log(8)) < 0.5
    full = CopyStage(CopySettings(init=Path("a"), pools=(32,), pool_steps=(10,), sampled_vocab=0, min_span=4,
                                  max_span=4), processor.tokenizer, model.config, steps=10).make_batch([0], 0)
    assert full["classes"] is None and full["targets"].max() >= 8   # token ids, scored over the whole vocabulary
    assert stage.loss(model, full, torch.device("cpu"))[0].item() > loss.item() / 2   # ~ln(vocab) per token


@pytest.mark.parametrize("changes, message", [
    (dict(pools=(8, 4), pool_steps=(1, 1)), "--pools must grow"),
    (dict(pools=(8,), pool_steps=(1, 1)), "one entry each"),
    (dict(pools=(8,), pool_steps=(-1,)), "cannot be negative"),
    (dict(pools=(8,), pool_steps=(1,), sampled_vocab=16), "at most the first pool"),
    (dict(min_span=9, max_span=4), "--min-span <= --max-span"),
])
def test_bad_copy_settings_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        CopySettings(init=Path("a"), **changes)


def test_a_span_longer_than_the_context_is_refused(tiny):
    _, model, processor = tiny
    context = model.config.text_config.max_position_embeddings
    with pytest.raises(ValueError, match="longer than the language model's context"):
        CopyStage(CopySettings(init=Path("a"), max_span=context), processor.tokenizer, model.config, steps=1)


def test_train_copy_writes_a_checkpoint_and_an_interrupted_run_resumes_to_the_same_weights(tiny, tmp_path, capsys):
    import shutil

    from safetensors.torch import load_file

    init, _, _ = tiny
    out = tmp_path / "copy"
    args = ["train", "copy", "--init", str(init), "--out", str(out), "--steps", "4", "--batch-size", "4",
            "--micro-batch-size", "2", "--pools", "8", "16", "--pool-steps", "2", "1", "--sampled-vocab", "8",
            "--min-span", "3", "--max-span", "6", "--save-every", "2", "--no-progress"]
    assert main(args) == 0 and "done:" in capsys.readouterr().out
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    logged = [row for row in rows if "second_copy_nats" in row]
    assert [row["step"] for row in logged] == [1, 2, 3, 4]
    assert all(0 < row["second_copy_nats"] <= row["loss"] * 2 for row in logged)
    summary = json.loads((out / "final" / "training_summary.json").read_text())
    entry = summary["stages"][-1]
    assert entry["stage"] == "copy" and entry["settings"]["CopySettings"]["pools"] == [8, 16]
    finished = load_file(out / "final" / "model.safetensors")
    # as if killed after the step-2 checkpoint: the same command carries on from there
    shutil.rmtree(out / "final")
    shutil.rmtree(out / "checkpoints" / "step-0000004")
    (out / "checkpoints" / "latest.json").write_text(json.dumps({"step": 2, "checkpoint": "step-0000002"}))
    assert main(args) == 0
    resumed = load_file(out / "final" / "model.safetensors")
    assert json.loads((out / "final" / "training_summary.json").read_text())["stages"][-1]["resumed_from"] == 2
    assert all(torch.allclose(finished[name], resumed[name], atol=1e-6) for name in finished)


def test_max_seconds_ends_a_stage_early_with_its_checkpoint_and_a_rerun_adds_no_step(tiny, tmp_path, capsys):
    init, _, _ = tiny
    out = tmp_path / "copy"
    args = ["train", "copy", "--init", str(init), "--out", str(out), "--steps", "50", "--batch-size", "4",
            "--micro-batch-size", "4", "--pools", "8", "--pool-steps", "50", "--sampled-vocab", "8",
            "--min-span", "3", "--max-span", "6", "--save-every", "25", "--max-seconds", "0.001", "--no-progress"]
    assert main(args) == 0 and "done:" in capsys.readouterr().out
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if "loss" in row] == [1]       # one step outlasts a millisecond
    assert json.loads((out / "checkpoints" / "latest.json").read_text())["step"] == 1
    entry = json.loads((out / "final" / "training_summary.json").read_text())["stages"][-1]
    assert entry["steps"] == 1 and entry["extra"]["stopped_by"] == "max_seconds"
    assert entry["extra"]["planned_steps"] == 50
    first = (out / "final" / "model.safetensors").read_bytes()
    assert main(args) == 0                            # the clock is spent: the rerun resumes and stops at once
    entry = json.loads((out / "final" / "training_summary.json").read_text())["stages"][-1]
    assert (entry["resumed_from"], entry["steps"]) == (1, 1)
    assert (out / "final" / "model.safetensors").read_bytes() == first


def test_batch_workers_train_the_same_weights_as_batches_made_in_process(tiny, tmp_path):
    from safetensors.torch import load_file

    init, _, _ = tiny
    finals = []
    for workers in ("0", "2"):
        out = tmp_path / f"workers-{workers}"
        assert main(["train", "copy", "--init", str(init), "--out", str(out), "--steps", "3", "--batch-size", "4",
                     "--micro-batch-size", "2", "--pools", "8", "--pool-steps", "3", "--sampled-vocab", "8",
                     "--min-span", "3", "--max-span", "6", "--batch-workers", workers, "--no-progress"]) == 0
        finals.append(load_file(out / "final" / "model.safetensors"))
    assert all(torch.equal(finals[0][name], finals[1][name]) for name in finals[0])


def test_copy_steps_put_the_copy_stage_before_the_lm_in_the_pipeline(tmp_path):
    from ko_hypervl.training.pipeline import (COPY_STAGE_LM_SHARE, STAGES, PipelineSettings, _copy_settings,
                                              _lm_settings, _train_settings)

    assert STAGES.index("copy") < STAGES.index("lm")
    plain = PipelineSettings(out=tmp_path, recipe="tiny-read")
    assert not plain.runs_stage("copy") and plain.runs_stage("lm")
    with pytest.raises(ValueError, match="does not run the copy stage"):
        PipelineSettings(out=tmp_path, recipe="tiny-read", override=("copy.sampled_vocab=64",))
    copying = PipelineSettings(out=tmp_path, recipe="tiny-read", copy_steps=3000,
                               override=("copy.pools=128,512", "copy.pool_steps=100,200"))
    assert copying.runs_stage("copy")
    train = _train_settings(RECIPES["tiny-read"], "copy", copying)
    assert (train.steps, train.batch_size, train.learning_rate, train.min_lr_ratio, train.out) == \
        (3000, 64, 1e-3, 1.0, tmp_path / "copy")
    settings = _copy_settings(RECIPES["tiny-read"], copying, tmp_path / "init")
    assert (settings.pools, settings.pool_steps, settings.sampled_vocab) == ((128, 512), (100, 200), 128)
    # the LM stage after it keeps repeating openings, unless told otherwise; without the copy stage it does not
    assert _lm_settings(RECIPES["tiny-read"], copying, tmp_path).copy_share == COPY_STAGE_LM_SHARE == 0.5
    assert _lm_settings(RECIPES["tiny-read"], plain, tmp_path).copy_share == 0.0
    told = PipelineSettings(out=tmp_path, recipe="tiny-read", copy_steps=3000, override=("lm.copy_share=0",))
    assert _lm_settings(RECIPES["tiny-read"], told, tmp_path).copy_share == 0.0
    with pytest.raises(ValueError, match="cannot be negative"):
        PipelineSettings(out=tmp_path, recipe="tiny-read", copy_steps=-1)
