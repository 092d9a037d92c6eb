"""The training loop end to end through the CLI: 2-process CPU DDP equals one process, resume after SIGKILL
equals an uninterrupted run bit for bit, and checkpoints are written atomically.

Every run is a real subprocess (`python -m ko_hypervl train lm`, or `accelerate launch` for two processes) on a
tiny model, the bundled text corpus cut to 20k tokens, one torch thread per process.

How two CPU processes are launched: `accelerate launch --cpu --num_processes 2` starts *one* process (accelerate's
simple launcher only spreads CPU processes through mpirun with a hostfile), so the test uses accelerate's torchrun
launcher (`--multi_gpu --num_processes 2`, no GPU needed) and passes `--cpu` to the train command, which makes
accelerate join the processes over gloo (MULTI_CPU). The run's `train_result.json` records how many processes
trained (``extra.processes``), so a run that silently fell back to one process fails the test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]
TINY = dict(tile_size=56, patch_size=14, vit_hidden_size=32, vit_layers=1, small_vit_hidden_size=16,
            small_vit_layers=1, lm_hidden_size=32, lm_layers=2, lm_heads=2, lm_kv_heads=1, lm_intermediate_size=64,
            max_positions=512, max_tiles=6)
# the same data, threads and device for every run; the tests add steps, batch and seed
DATA = ["--max-tokens", "20000", "--block-size", "64", "--threads", "1", "--no-progress", "--cpu"]
REFERENCE = ["--steps", "2", "--batch-size", "4", "--micro-batch-size", "2"]
RUN_TIMEOUT = 240


@pytest.fixture(scope="module")
def init_checkpoint(tmp_path_factory) -> Path:
    from ko_hypervl.checkpoint import save_checkpoint
    from ko_hypervl.model.build import ModelBuildSettings, build_model

    torch.manual_seed(0)
    model, processor = build_model(ModelBuildSettings(**TINY))
    path = tmp_path_factory.mktemp("init") / "tiny"
    save_checkpoint(model, processor, path)
    return path


def _env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ACCELERATE_", "MASTER_", "TORCHELASTIC_"))
           and k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])))
    return env


def _train_lm(init: Path, out: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "ko_hypervl", "train", "lm", "--init", str(init), "--out", str(out), *DATA, *flags]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _accelerate_launch(tmp_path: Path, processes: int) -> list[str]:
    # a config of our own, so a developer's ~/.cache/huggingface/accelerate/default_config.yaml changes nothing
    config = tmp_path / "accelerate.yaml"
    config.write_text(f"compute_environment: LOCAL_MACHINE\ndistributed_type: MULTI_GPU\nnum_processes: {processes}\n"
                      "num_machines: 1\nmachine_rank: 0\nmixed_precision: 'no'\ndynamo_config: {}\n"
                      "gpu_ids: all\nrdzv_backend: static\nsame_network: true\nuse_cpu: true\n", encoding="utf-8")
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config), "--multi_gpu",
            "--num_processes", str(processes), "--num_machines", "1", "--mixed_precision", "no",
            "--dynamo_backend", "no", "--main_process_ip", "127.0.0.1", "--main_process_port", str(_free_port())]


class Run:
    """A subprocess whose output goes to files (no pipe to fill up while it runs)."""

    def __init__(self, cmd: list[str], logs: Path):
        logs.mkdir(parents=True, exist_ok=True)
        self.cmd, self.stdout, self.stderr = cmd, logs / "stdout.txt", logs / "stderr.txt"
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=out, stderr=err)

    def wait(self, timeout: float = RUN_TIMEOUT) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"timed out after {timeout} s: {' '.join(self.cmd)}\n{self.output()}")

    def output(self) -> str:
        return (f"--- stdout\n{self.stdout.read_text(errors='replace')[-4000:]}\n"
                f"--- stderr\n{self.stderr.read_text(errors='replace')[-8000:]}")

    def succeed(self) -> str:
        code = self.wait()
        assert code == 0, f"exit code {code}: {' '.join(self.cmd)}\n{self.output()}"
        return self.stdout.read_text(errors="replace")

    def fail(self) -> str:
        code = self.wait()
        assert code == 1, f"expected exit code 1, got {code}: {' '.join(self.cmd)}\n{self.output()}"
        return self.stderr.read_text(errors="replace")


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / "final" / "model.safetensors"))


def _max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def _log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text(encoding="utf-8").splitlines()]


def _result(out: Path) -> dict:
    return json.loads((out / "train_result.json").read_text(encoding="utf-8"))




@pytest.fixture(scope="module")
def reference_run(init_checkpoint, tmp_path_factory) -> Path:
    """One finished single-process run (2 steps, global batch 4 as 2 micro-batches of 2), shared to save startups."""
    out = tmp_path_factory.mktemp("reference") / "run"
    Run(_train_lm(init_checkpoint, out, *REFERENCE), out.parent / "logs").succeed()
    return out


# -- 1. two processes = one process ---------------------------------------------------------------------------------

def test_two_process_ddp_matches_one_process_on_the_same_global_batch(init_checkpoint, reference_run, tmp_path):
    """Global batch 4 over 2 gloo processes, each accumulating 2 micro-batches of 1, makes the same two updates
    as one process doing 2 micro-batches of 2 (same samples, same token-weighted mean loss).

    Not bitwise: the gradient is summed in another order (per-process micro-batches, gloo's all-reduce and
    DDP's division by the world size, against one process's two micro-batches), so float32 rounding differs in
    the last bits; measured differences are ~2e-8, far inside atol 1e-5 / rtol 1e-4, while a run with another
    data order (--seed 1) is off by orders of magnitude more."""
    if not (torch.distributed.is_available() and torch.distributed.is_gloo_available()):
        pytest.skip("torch.distributed with the gloo backend is not available in this torch build")
    ddp_flags = ["--steps", "2", "--batch-size", "4", "--micro-batch-size", "1"]
    ddp = Run(_accelerate_launch(tmp_path, 2) + _train_lm(init_checkpoint, tmp_path / "ddp", *ddp_flags)[1:],
              tmp_path / "l-ddp")
    other = Run(_train_lm(init_checkpoint, tmp_path / "seed1", *REFERENCE, "--seed", "1"), tmp_path / "l-seed1")
    stdout = ddp.succeed()
    other.succeed()

    # it really ran as two joined processes, each accumulating two micro-batches
    assert stdout.count("done: ") == 2, stdout
    assert _result(tmp_path / "ddp")["extra"] == {"processes": 2, "micro_batches_per_step": 2}
    assert _result(reference_run)["extra"] == {"processes": 1, "micro_batches_per_step": 2}

    initial = load_file(str(init_checkpoint / "model.safetensors"))
    one, two, seed1 = _weights(reference_run), _weights(tmp_path / "ddp"), _weights(tmp_path / "seed1")
    assert _max_difference(one, initial) > 1e-5, "training did not change the weights: nothing is compared"
    difference = _max_difference(one, two)
    print(f"max |DDP - single| = {difference:.3e}")
    for name in one:
        assert torch.allclose(two[name], one[name], atol=1e-5, rtol=1e-4), \
            f"{name}: 2-process DDP differs from one process by {float((two[name] - one[name]).abs().max()):.3e}"
    # the comparison can fail: another data order does not pass it
    assert any(not torch.allclose(seed1[name], one[name], atol=1e-5, rtol=1e-4) for name in one)
    assert _max_difference(one, seed1) > 100 * max(difference, 1e-7)

    rows_one, rows_two, rows_seed1 = _log(reference_run), _log(tmp_path / "ddp"), _log(tmp_path / "seed1")
    assert [r["step"] for r in rows_two] == [r["step"] for r in rows_one] == [1, 2]
    for a, b in zip(rows_one, rows_two):
        assert a["loss"] == pytest.approx(b["loss"], abs=2e-5), (a, b)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], abs=2e-4), (a, b)
        assert (a["tokens"], a["samples"]) == (b["tokens"], b["samples"])
    assert any(abs(a["loss"] - c["loss"]) > 1e-3 for a, c in zip(rows_one, rows_seed1))


# -- 2. kill, resume, same result ---------------------------------------------------------------------------------

def _latest_step(out: Path) -> int:
    try:
        return int(json.loads((out / "checkpoints" / "latest.json").read_text(encoding="utf-8"))["step"])
    except (OSError, ValueError, KeyError):
        return 0


def test_resume_after_sigkill_is_bitwise_equal_to_an_uninterrupted_run(init_checkpoint, tmp_path):
    """SIGKILL after the first checkpoint, plant what a kill while writing leaves (``step-*.partial`` folders with
    garbage), rerun the same command: the result equals an uninterrupted run bit for bit (data order and dropout
    seed are functions of the step, the optimizer moments are restored) and the partial folders are pruned."""
    steps = 8
    flags = ["--steps", str(steps), "--save-every", "2", "--batch-size", "8", "--micro-batch-size", "4",
             "--warmup-steps", "3"]
    killed_out, straight_out = tmp_path / "killed", tmp_path / "straight"
    straight = Run(_train_lm(init_checkpoint, straight_out, *flags), tmp_path / "l-straight")
    victim = Run(_train_lm(init_checkpoint, killed_out, *flags), tmp_path / "l-victim")
    deadline = time.monotonic() + RUN_TIMEOUT
    while _latest_step(killed_out) < 2:
        assert victim.proc.poll() is None, f"the run ended before its first checkpoint\n{victim.output()}"
        assert time.monotonic() < deadline, f"no checkpoint after {RUN_TIMEOUT} s\n{victim.output()}"
        time.sleep(0.01)
    victim.proc.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL
    killed_at = _latest_step(killed_out)
    assert 2 <= killed_at < steps
    assert not (killed_out / "final").exists() and not (killed_out / "train_result.json").exists(), \
        "the run finished before it was killed: make its steps slower"

    checkpoints = killed_out / "checkpoints"
    for name in (f"step-{killed_at + 2:07d}.partial", "step-0000099.partial"):   # kill mid-write; a later step
        (checkpoints / name).mkdir(exist_ok=True)
        (checkpoints / name / "model.safetensors").write_bytes(b"\x00garbage" * 64)
        (checkpoints / name / "state.json").write_text("{half", encoding="utf-8")
    Run(_train_lm(init_checkpoint, killed_out, *flags), tmp_path / "l-resumed").succeed()
    straight.succeed()

    result = _result(killed_out)
    assert result["resumed_from"] == killed_at, result
    assert _result(straight_out)["resumed_from"] == 0
    assert sorted(p.name for p in checkpoints.iterdir()) == ["latest.json", f"step-{steps - 2:07d}",
                                                             f"step-{steps:07d}"], "partial folders not pruned"
    rows = _log(killed_out)
    assert [r["step"] for r in rows] == list(range(1, steps + 1)), "each step must be logged exactly once"
    assert [r["loss"] for r in rows] == [r["loss"] for r in _log(straight_out)]

    resumed, uninterrupted = _weights(killed_out), _weights(straight_out)
    assert resumed.keys() == uninterrupted.keys()
    for name in resumed:
        assert torch.equal(resumed[name], uninterrupted[name]), \
            f"{name} differs after resume by {float((resumed[name] - uninterrupted[name]).abs().max()):.3e}"
    # the optimizer moments of the last checkpoint too
    last = f"checkpoints/step-{steps:07d}/optimizer.safetensors"
    moments, straight_moments = load_file(str(killed_out / last)), load_file(str(straight_out / last))
    assert moments and moments.keys() == straight_moments.keys()
    assert all(torch.equal(moments[k], straight_moments[k]) for k in moments)


def test_a_resumable_checkpoint_loads_as_a_model(reference_run):
    """Each ``step-*`` folder carries the config and processor beside its weights, so a long run can be scored
    while it trains; at the last step it is the final model."""
    from ko_hypervl.checkpoint import load_checkpoint

    step, step_processor = load_checkpoint(reference_run / "checkpoints" / "step-0000002")
    final, processor = load_checkpoint(reference_run / "final")
    assert step.config.to_diff_dict() | {"_name_or_path": ""} == final.config.to_diff_dict() | {"_name_or_path": ""}
    assert step_processor.tokenizer.get_vocab() == processor.tokenizer.get_vocab()
    weights, final_weights = step.state_dict(), final.state_dict()
    assert weights.keys() == final_weights.keys()
    for name in weights:
        assert torch.equal(weights[name], final_weights[name]), name


# -- 3. clear errors instead of a wrong resume ----------------------------------------------------------------------

def test_dangling_pointer_and_changed_settings_fail_clearly(init_checkpoint, reference_run, tmp_path):
    """``latest.json`` naming a missing folder, and the same --out with another --batch-size: exit code 1, one
    line on stderr naming the problem, and the run folder left as it was."""
    dangling, other = tmp_path / "dangling", tmp_path / "other"
    shutil.copytree(reference_run, dangling)
    shutil.copytree(reference_run, other)
    pointer = dangling / "checkpoints" / "latest.json"
    pointer.write_text(json.dumps({"step": 6, "checkpoint": "step-0000006"}), encoding="utf-8")
    changed_flags = ["--steps", "2", "--batch-size", "8", "--micro-batch-size", "2"]
    missing = Run(_train_lm(init_checkpoint, dangling, *REFERENCE), tmp_path / "l-dangling")
    changed = Run(_train_lm(init_checkpoint, other, *changed_flags), tmp_path / "l-other")

    error = missing.fail()
    assert "ko-hypervl: error:" in error and str(pointer) in error and "step-0000006" in error, error
    assert "Traceback" not in error

    error = changed.fail()
    assert "ko-hypervl: error:" in error and "other settings" in error and str(other) in error, error
    assert "Traceback" not in error
    # the refused runs changed nothing
    assert json.loads(pointer.read_text(encoding="utf-8"))["checkpoint"] == "step-0000006"
    assert _latest_step(other) == 2 and [r["step"] for r in _log(other)] == [1, 2]
    assert all(torch.equal(a, b) for a, b in zip(_weights(other).values(), _weights(reference_run).values()))
