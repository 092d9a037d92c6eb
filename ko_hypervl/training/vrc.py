"""Stage 5, the Visual Resolution Compressor: labels from the model itself, then the predictor.

For every image the VLM's answer loss and greedy exact match are measured at each scale α (one batched
forward per image, teacher-forced). The label for a tolerance ε is the smallest α whose loss stays within
(1 + ε) of the loss at full resolution (HyperVL) and, by default, that answers at least the turns right that
full resolution does: a model that reads only a little gains a few percent of loss from the image, so a loss
bound alone sends a text line it can read at full resolution down to the scale it cannot. The small CNN is
then fitted to those labels, once per ε of a grid, to report tokens saved against accuracy kept on held-out
images; the fit at the chosen ε goes into the model. ``--max-images`` takes every kind in turn: the corpus
is ordered by kind, and a predictor that saw only charts never learns what a text line needs.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..settings import setting
from .checkpointing import write_json_atomic
from .data import ConversationEncoder, asked_messages, collate, select_turns
from .runlog import save_figure
from .losses import (answer_run_ids, cross_entropy_sum, gather_target_logits, greedy_correct, next_token_targets,
                     predicting_positions)

log = logging.getLogger(__name__)
TABLE = "scale_table.json"


@dataclass
class VRCSettings:
    out: Path = setting(help="run folder: scale table, curve and the final model")
    init: Path = setting(help="checkpoint to label with and to add the predictor to (the DCL stage's final model)")
    data: Path = setting(help="image-text dataset folder")
    label_split: str = setting("train", help="split whose images label and train the predictor")
    eval_split: str = setting("validation", help="split the tokens-versus-accuracy curve is measured on")
    kinds: list[str] = setting([], help="only these kinds (default all)")
    max_images: int = setting(0, help="at most this many images per split, taken from every kind in turn (0: all)")
    tolerance: float = setting(0.05, help="ε of the shipped predictor: smallest α with L(α) ≤ (1+ε)·L(1)")
    tolerances: list[float] = setting([0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0],
                                      help="ε grid of the tokens-saved versus accuracy curve")
    keep_correct: bool = setting(True, help="a scale is enough only if it also gets at least the answers right "
                                            "(teacher-forced, greedy) that full resolution gets right")
    fit_steps: int = setting(300, help="optimizer steps per predictor fit")
    fit_batch_size: int = setting(32, help="images per predictor step")
    fit_learning_rate: float = setting(3e-3, help="predictor learning rate (AdamW)")
    max_length: int = setting(2048, help="longest sequence in tokens")
    save_every: int = setting(20, help="save the scale table every N images (the labelling pass resumes)")
    seed: int = setting(0, help="seed of the predictor fits")
    progress: bool = setting(True, help="show a progress bar")

    def __post_init__(self) -> None:
        if self.tolerance < 0 or any(t < 0 for t in self.tolerances):
            raise ValueError("tolerances are relative loss increases and cannot be negative")
        if self.fit_steps <= 0 or self.fit_batch_size <= 0 or self.max_images < 0:
            raise ValueError("--fit-steps and --fit-batch-size must be positive and --max-images ≥ 0")


# -- pure functions on the scale table -----------------------------------------------------------------------

def label_scales(losses: list[list[float]], tolerance: float, correct: list[list[float]] | None = None) -> list[int]:
    """Per image, the index of the smallest scale whose loss ≤ (1 + tolerance) × the full-resolution loss and,
    when ``correct`` is given, whose share of answers right is at least full resolution's.

    ``losses[i][j]`` (and ``correct[i][j]``) is image i's answer loss (share right) at scale j, scales ascending
    with full resolution last.
    """
    labels = []
    for i, row in enumerate(losses):
        bound = row[-1] * (1 + tolerance)
        enough = [loss <= bound for loss in row]
        if correct is not None:
            enough = [ok and right >= correct[i][-1] for ok, right in zip(enough, correct[i])]
        labels.append(next(j for j, ok in enumerate(enough) if ok or j == len(row) - 1))
    return labels


def operating_point(choices: list[int], visual_tokens: list[list[int]], correct: list[list[float]]) -> dict:
    """Visual tokens and accuracy when image i is shown at scale ``choices[i]``, against full resolution."""
    n = len(choices)
    tokens = sum(visual_tokens[i][c] for i, c in enumerate(choices))
    full_tokens = sum(row[-1] for row in visual_tokens)
    accuracy = sum(correct[i][c] for i, c in enumerate(choices)) / n
    full_accuracy = sum(row[-1] for row in correct) / n
    return {
        "mean_visual_tokens": tokens / n, "full_visual_tokens": full_tokens / n,
        "tokens_saved_pct": 100 * (1 - tokens / full_tokens) if full_tokens else 0.0,
        "accuracy": accuracy, "full_accuracy": full_accuracy,
        "accuracy_kept_pct": 100 * accuracy / full_accuracy if full_accuracy else None,
    }


# -- the labelling pass ----------------------------------------------------------------------------------------

def _turn_of_targets(labels: torch.Tensor) -> torch.Tensor:
    """For each target token (row-major, as ``gather_target_logits`` orders them), which answer turn it is in."""
    return (answer_run_ids(labels) - 1)[next_token_targets(labels)]


@torch.no_grad()
def measure_scales(model, encoder: ConversationEncoder, image, messages: list[dict], scales: list[float],
                   suppressed: list[int], sample_id: str) -> dict:
    """One image's answer loss, per-turn greedy exact match and visual tokens at every scale (large branch)."""
    samples = encoder.encode_variants(image, messages, [("large", scale) for scale in scales], sample_id)
    batch = collate(samples, encoder.tokenizer.pad_token_id)
    device = model.device
    positions = predicting_positions(batch["labels"]).to(device)
    out = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device),
                pixel_values=batch["pixel_values"].to(device), image_grid=batch["image_grid"].to(device),
                branch="large", logits_to_keep=positions)
    losses, correct = [], []
    for row in range(len(scales)):
        labels = batch["labels"][row:row + 1].to(device)
        logits, targets = gather_target_logits(out.logits[row:row + 1], labels, positions)
        losses.append(float(cross_entropy_sum(logits, targets)) / max(1, len(targets)))
        hits = greedy_correct(logits, targets, suppressed)
        turns = _turn_of_targets(labels)
        per_turn = [bool(hits[turns == t].all()) for t in range(int(turns.max()) + 1)] if len(turns) else []
        correct.append(sum(per_turn) / len(per_turn) if per_turn else 0.0)
    return {"id": sample_id, "losses": losses, "correct": correct, "visual_tokens": [s.visual_tokens for s in samples]}


def build_scale_table(model, processor, dataset, settings: VRCSettings, split: str, table: dict, path: Path,
                      progress: bool) -> list[dict]:
    """Measure every image of ``dataset`` (resuming from the rows already in ``table[split]``); the rows in the
    dataset's order."""
    from tqdm.auto import tqdm

    scales = list(model.config.vrc_scales)
    encoder = ConversationEncoder(processor, settings.max_length)
    suppressed = list(model.generation_config.suppress_tokens or [])
    rows = table.setdefault(split, [])
    done = {row["id"] for row in rows}
    for index in tqdm(range(len(dataset)), desc=f"vrc labels ({split})", unit="img", disable=not progress):
        record = dataset[index]
        if record["id"] in done:
            continue
        messages = asked_messages(record, select_turns(record["messages"], record["tasks"], None))
        rows.append(measure_scales(model, encoder, record["image"], messages, scales, suppressed, record["id"]))
        if len(rows) % settings.save_every == 0:
            write_json_atomic(path, table)
    write_json_atomic(path, table)
    by_id = {row["id"]: row for row in rows}
    return [by_id[sample_id] for sample_id in dataset["id"]]


# -- the predictor ---------------------------------------------------------------------------------------------

def _fit(module: nn.Module, forward, count: int, labels: list[int], settings: VRCSettings, seed: int) -> None:
    """AdamW on cross-entropy, random mini-batches of ``forward(indices)`` against ``labels``."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(module.parameters(), lr=settings.fit_learning_rate, weight_decay=0.01)
    targets = torch.tensor(labels)
    module.train()
    for _ in range(settings.fit_steps):
        batch = torch.randint(count, (min(settings.fit_batch_size, count),), generator=generator)
        loss = nn.functional.cross_entropy(forward(batch), targets[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    module.eval()


def fit_predictor(vrc: nn.Module, pixel_values: torch.Tensor, image_sizes: torch.Tensor, labels: list[int],
                  settings: VRCSettings, seed: int) -> nn.Module:
    """A copy of ``vrc`` trained end to end on ``labels`` (indices into the scales)."""
    fitted = copy.deepcopy(vrc)
    _fit(fitted, lambda b: fitted(pixel_values[b], image_sizes[b]), len(labels), labels, settings, seed)
    return fitted


def fit_head(vrc: nn.Module, pooled: torch.Tensor, image_sizes: torch.Tensor, labels: list[int],
             settings: VRCSettings, seed: int) -> nn.Module:
    """A copy of ``vrc`` whose head alone is refitted on ``labels`` over its frozen pooled features (fast)."""
    fitted = copy.deepcopy(vrc)
    _fit(fitted.head, lambda b: fitted.classify(pooled[b], image_sizes[b]), len(labels), labels, settings, seed)
    return fitted


@torch.no_grad()
def predict(vrc: nn.Module, pixel_values: torch.Tensor, image_sizes: torch.Tensor) -> list[int]:
    return vrc.eval()(pixel_values, image_sizes).argmax(dim=-1).tolist()


def tolerance_curve(vrc, train_inputs, train_rows, eval_inputs, eval_rows, settings: VRCSettings, seed: int):
    """The predictor fitted at ``settings.tolerance``, and per ε of the grid the operating point on the held-out
    images of the oracle (the labels themselves) and of the predictor (the shared CNN, its head refitted at ε)."""
    def labels_of(rows, tolerance):
        return label_scales([row["losses"] for row in rows], tolerance,
                            [row["correct"] for row in rows] if settings.keep_correct else None)

    scale_count = len(train_rows[0]["losses"])
    shipped = fit_predictor(vrc, *train_inputs, labels_of(train_rows, settings.tolerance), settings, seed)
    with torch.no_grad():
        pooled = shipped.pooled_features(train_inputs[0])
    eval_tokens = [row["visual_tokens"] for row in eval_rows]
    eval_correct = [row["correct"] for row in eval_rows]
    curve = []
    for tolerance in sorted(set(settings.tolerances) | {settings.tolerance}):
        labels = labels_of(train_rows, tolerance)
        fitted = shipped if tolerance == settings.tolerance else fit_head(shipped, pooled, train_inputs[1], labels,
                                                                           settings, seed)
        oracle = operating_point(labels_of(eval_rows, tolerance), eval_tokens, eval_correct)
        predicted = operating_point(predict(fitted, *eval_inputs), eval_tokens, eval_correct)
        curve.append({"tolerance": tolerance, "label_histogram": [labels.count(j) for j in range(scale_count)],
                      "predicted": predicted, "oracle": oracle})
    return curve, shipped


def plot_curve(curve: list[dict], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2), dpi=110)
    for key, style in (("predicted", "o-"), ("oracle", "s--")):
        xs = [row[key]["tokens_saved_pct"] for row in curve]
        ys = [100 * row[key]["accuracy"] for row in curve]
        ax.plot(xs, ys, style, label=f"{key} scales")
        for row, x, y in zip(curve, xs, ys):
            if key == "predicted":
                ax.annotate(f"ε={row['tolerance']:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    full = 100 * curve[0]["predicted"]["full_accuracy"]
    ax.axhline(full, color="gray", linewidth=0.8, label="full resolution")
    return save_figure(fig, ax, out, "visual tokens saved vs full resolution (%)", "exact match (%)",
                       "VRC: tokens saved vs accuracy over the tolerance ε")


def train_vrc(settings: VRCSettings) -> Path:
    """Label, fit over the ε grid, install the fit at ``settings.tolerance``, write the curve and the model."""
    import time

    from ..imagecorpus.records import load_split, rows_spread_over_kinds
    from .loop import TrainResult
    from .run import _finish, _load_for_training

    started = time.perf_counter()
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    model, processor = _load_for_training(settings.init)
    model.eval()
    scales = list(model.config.vrc_scales)
    if scales != sorted(scales) or not math.isclose(scales[-1], 1.0):
        raise ValueError(f"the model's VRC scales must ascend to 1.0, got {scales}")
    path = out / TABLE
    table = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    if table and table.get("scales") != scales:
        raise ValueError(f"{path} was measured at other scales; delete it or use another --out")
    table["scales"] = scales
    datasets = {}
    for split in (settings.label_split, settings.eval_split):
        dataset = load_split(settings.data, split, settings.kinds or None)
        datasets[split] = dataset.select(rows_spread_over_kinds(dataset["kind"], settings.max_images))
    rows = {split: build_scale_table(model, processor, ds, settings, split, table, path, settings.progress)
            for split, ds in datasets.items()}
    labelled = time.perf_counter() - started

    def inputs(split):
        count = len(rows[split])
        vrc = processor.image_processor.vrc_inputs([datasets[split][i]["image"] for i in range(count)])
        return vrc["vrc_pixel_values"], vrc["vrc_image_sizes"]

    curve, shipped = tolerance_curve(model.vrc, inputs(settings.label_split), rows[settings.label_split],
                                    inputs(settings.eval_split), rows[settings.eval_split], settings, settings.seed)
    model.vrc.load_state_dict(shipped.state_dict())
    chosen = next(row for row in curve if row["tolerance"] == settings.tolerance)
    report = {"scales": scales, "tolerance": settings.tolerance, "curve": curve, "chosen": chosen,
              "images": {split: len(r) for split, r in rows.items()}, "labelling_seconds": round(labelled, 1)}
    write_json_atomic(out / "vrc_curve.json", report)
    plot_curve(curve, out / "vrc_curve.png")
    seconds = time.perf_counter() - started
    images = sum(len(r) for r in rows.values())
    result = TrainResult(stage="vrc", steps=settings.fit_steps, resumed_from=0, seconds=round(seconds, 2),
                         samples_per_second=round(images * len(scales) / labelled, 3) if labelled else 0.0,
                         tokens_per_second=0.0, target_tokens_per_second=0.0, final_loss=None,
                         log_file=str(out / "vrc_curve.json"), loss_plot=str(out / "vrc_curve.png"),
                         extra={"chosen": chosen})
    log.info("VRC at ε=%g: %.1f%% fewer visual tokens, accuracy %.3f (full %.3f) on %d %s images",
             settings.tolerance, chosen["predicted"]["tokens_saved_pct"], chosen["predicted"]["accuracy"],
             chosen["predicted"]["full_accuracy"], len(rows[settings.eval_split]), settings.eval_split)
    return _finish(result, model, processor, out, [settings], settings.init)
