"""Training logs: one JSON object per line (``log.jsonl``), and the loss curve drawn from it as a PNG."""

from __future__ import annotations

import json
from pathlib import Path

LOG_FILE = "log.jsonl"


class RunLog:
    """Appends rows to ``log.jsonl``; on resume, rows past the resumed step are dropped first, so a
    step that is trained again after a kill is logged once."""

    def __init__(self, directory: Path, resume_step: int, enabled: bool = True):
        self.path = directory / LOG_FILE
        self.enabled = enabled
        if enabled:
            directory.mkdir(parents=True, exist_ok=True)
            kept = [row for row in read_log(self.path) if row.get("step", 0) <= resume_step]
            self.path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in kept), encoding="utf-8")

    def write(self, row: dict) -> None:
        if self.enabled:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_log(path: Path) -> list[dict]:
    """The rows of a log file; a line cut short by a kill is skipped."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def plot_loss(rows: list[dict], out: Path, title: str) -> Path | None:
    """Training loss per step (with its parts, e.g. each branch and the KL, when logged) as a PNG."""
    rows = [row for row in rows if "loss" in row]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    steps = [row["step"] for row in rows]
    ax.plot(steps, [row["loss"] for row in rows], label="loss", linewidth=1.6)
    parts = sorted({key for row in rows for key in row if key.startswith("loss_")})
    for key in parts:
        ax.plot(steps, [row.get(key, float("nan")) for row in rows], label=key[5:], linewidth=1.0, alpha=0.8)
    return save_figure(fig, ax, out, "step", "loss", title)


def save_figure(fig, ax, out: Path, xlabel: str, ylabel: str, title: str) -> Path:
    """Label, grid and legend the axes, write the PNG and free the figure."""
    import matplotlib.pyplot as plt

    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def moving_mean(values: list[float], window: int) -> list[float]:
    """Mean of each value and the ``window`` - 1 before it (fewer at the start): curves readable through noise."""
    means, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        means.append(total / min(i + 1, window))
    return means


def compare_runs(runs: dict[str, list[dict]], out: Path, metric: str = "loss", window: int = 50,
                 title: str = "", ymax: float = 0.0) -> list[dict]:
    """Draw ``metric`` of several runs (label → log rows) on one chart, as moving means; returns a summary per run.

    The summary has each run's steps, seconds, and the metric's mean over its first and last ``window`` logged
    steps, so a comparison can be read (and checked) without the picture.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    summary, lowest = [], float("inf")
    for label, rows in runs.items():
        rows = [row for row in rows if metric in row and "step" in row]
        if not rows:
            raise ValueError(f"run {label!r} logged no {metric!r}")
        values = [float(row[metric]) for row in rows]
        means = moving_mean(values, window)
        lowest = min(lowest, *means)
        ax.plot([row["step"] for row in rows], means, label=label, linewidth=1.4)
        head, tail = values[:window], values[-window:]
        summary.append({"run": label, "steps": rows[-1]["step"], "seconds": rows[-1].get("seconds"),
                        f"first_{metric}": round(sum(head) / len(head), 4),
                        f"last_{metric}": round(sum(tail) / len(tail), 4)})
    if ymax:
        if ymax <= lowest:   # the axis would turn upside down and show nothing
            plt.close(fig)
            raise ValueError(f"--ymax {ymax:g} is not above the lowest {metric} on the chart ({lowest:.4g})")
        ax.set_ylim(lowest - 0.05 * (ymax - lowest), ymax)
    save_figure(fig, ax, out, "step", f"{metric} (mean of {window} steps)", title or f"{metric} by step")
    return summary
