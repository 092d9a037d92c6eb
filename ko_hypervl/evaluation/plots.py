"""The model card's plots, drawn from the JSON report (``EvalReport.to_dict()``) with matplotlib's Agg backend.

Labels are Korean and English, so a Korean font from the repository's ``corpora/fonts`` is registered first;
without it the plots are still written (Korean glyphs then show as boxes) and a warning says so.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

log = logging.getLogger(__name__)
PLOT_FONT = "nanum-barun-gothic"
MODE_COLORS = {"auto": "#1f77b4", "high": "#d62728", "low": "#2ca02c"}


@functools.lru_cache(maxsize=1)
def korean_font_family() -> str | None:
    """Register the repository's Korean gothic face with matplotlib; its family name, or None without it."""
    from matplotlib import font_manager

    from ..imagecorpus.fonts import FontError, load_font_catalog

    try:
        faces = load_font_catalog()
    except FontError as exc:
        log.warning("plots without a Korean font (%s)", exc)
        return None
    face = next((f for f in faces if f.name == PLOT_FONT), None) or next(f for f in faces if f.style == "printed")
    font_manager.fontManager.addfont(str(face.path))
    return font_manager.FontProperties(fname=str(face.path)).get_name()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def _rc() -> dict:
    family = korean_font_family()
    # a Korean face has no U+2212 minus sign; the ASCII hyphen keeps negative ticks readable
    return {"axes.unicode_minus": False, **({"font.family": family} if family else {})}


def plot_accuracy_by_task(report: dict, path: Path) -> Path:
    """Grouped bars: exact match per task, one bar per mode."""
    plt = _pyplot()
    modes = list(report["modes"])
    tasks = sorted({task for m in modes for task in report["modes"][m]["exact_match_by_task"]})
    width = 0.8 / max(1, len(modes))
    with plt.rc_context(_rc()):
        fig, ax = plt.subplots(figsize=(min(14.0, max(6.0, 0.55 * len(tasks) + 2)), 4.2), dpi=110)
        for k, mode in enumerate(modes):
            scores = report["modes"][mode]["exact_match_by_task"]
            values = [100 * scores[t]["accuracy"] if t in scores else 0.0 for t in tasks]
            ax.bar([i + (k - (len(modes) - 1) / 2) * width for i in range(len(tasks))], values, width,
                   label=mode, color=MODE_COLORS.get(mode))
        ax.set_xticks(range(len(tasks)), tasks, rotation=35, ha="right")
        ax.set_ylim(0, 100)
        ax.set_ylabel("exact match (%)")
        ax.set_title("과제별 정확도 (exact match by task and mode)")
        ax.legend(title="mode")
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
    return path


def plot_tokens_vs_accuracy(report: dict, path: Path) -> Path:
    """One point per mode: mean visual tokens per image against exact match (and exam accuracy)."""
    plt = _pyplot()
    with plt.rc_context(_rc()):
        fig, ax = plt.subplots(figsize=(6, 4.2), dpi=110)
        for mode, result in report["modes"].items():
            x = result["visual_tokens"]["mean_visual_tokens"]
            y = 100 * result["exact_match"]["accuracy"]
            ax.scatter([x], [y], s=70, color=MODE_COLORS.get(mode), label=f"{mode}: exact match")
            ax.annotate(mode, (x, y), textcoords="offset points", xytext=(6, 6))
            exam = result["exam_accuracy_by_source"].get("all")
            if exam:
                ax.scatter([x], [100 * exam["accuracy"]], s=70, marker="^", color=MODE_COLORS.get(mode),
                           label=f"{mode}: exam choice")
        ax.set_xlabel("평균 시각 토큰 수 (mean visual tokens per image)")
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(0, 100)
        ax.set_xlim(left=0)
        ax.set_title("시각 토큰 대비 정확도 (visual tokens vs accuracy)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
    return path


def plot_image_use(report: dict, path: Path) -> Path | None:
    """Bars per kind: nats per answer token the images save, with 2-SE error bars (None when not measured)."""
    use = (report.get("blank_image") or {}).get("answer_loss")
    if not use:
        return None
    plt = _pyplot()
    kinds = list(use)
    gains = [use[k]["gain"] for k in kinds]
    errors = [2 * use[k]["gain_se"] if use[k]["gain_se"] == use[k]["gain_se"] else 0.0 for k in kinds]
    with plt.rc_context(_rc()):
        fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
        colors = ["#d62728" if k == "all" else "#7f7f7f" for k in kinds]
        ax.barh(range(len(kinds)), gains, xerr=errors, color=colors, capsize=4)
        ax.set_yticks(range(len(kinds)), [f"{k} (n={use[k]['n']})" for k in kinds])
        ax.invert_yaxis()
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_xlabel("nats per answer token saved by the images (± 2 SE)")
        ax.set_title("이미지가 줄여 주는 정답 손실 (what the images are worth)")
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
    return path


PLOTS = {"accuracy_by_task.png": plot_accuracy_by_task, "tokens_vs_accuracy.png": plot_tokens_vs_accuracy,
         "image_use.png": plot_image_use}


def write_plots(report: dict, out: Path) -> list[Path]:
    """Every plot of ``PLOTS`` the report has the numbers for, into ``out``."""
    paths = [plot(report, out / name) for name, plot in PLOTS.items()]
    return [path for path in paths if path is not None]
