"""The model card (``model_card.md``) and the files beside it: ``eval.json``, ``predictions.jsonl``, plots.

Every number in the card is read from the JSON report, so the card, eval.json and the CLI table agree.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import __version__
from .plots import write_plots

MISSING = "—"
CARD = "model_card.md"
REPORT_JSON = "eval.json"
PREDICTIONS = "predictions.jsonl"


def _pct(value: float | None) -> str:
    return MISSING if value is None else f"{100 * value:.1f}%"


def _table(header: list[str], rows: list[list], numbers: bool = True) -> list[str]:
    """A Markdown table; the first column is left-aligned, the others right-aligned when they hold ``numbers``."""
    rule = ["---:" if i and numbers else "---" for i in range(len(header))]
    return ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |",
            *["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]]


def _latency(result: dict, key: str, fmt) -> str:
    latency = result["latency"]
    return fmt(latency[key]) if latency else MISSING


def summary_rows(report: dict) -> list[list]:
    """The headline table: one column per mode (and Tesseract where it ran), one row per metric."""
    modes = report["modes"]
    tess = report["tesseract"] if report["tesseract"]["ran"] else None

    def row(label, value_of, tesseract_value=None):
        cells = [label, *(value_of(result) for result in modes.values())]
        return cells + ([tesseract_value if tesseract_value is not None else MISSING] if tess else [])

    kinds = sorted({kind for result in modes.values() for kind in result["exact_match_by_kind"]})
    rows = [row("exact match, all questions", lambda r: _pct(r["exact_match"]["accuracy"]))]
    for kind in kinds:
        readable = tess["readable_by_kind"].get(kind) if tess else None
        rows.append(row(f"exact match: {kind}", lambda r, k=kind: _pct(r["exact_match_by_kind"].get(k, {})
                                                                         .get("accuracy")),
                        f"{_pct(readable['share'])} readable†" if readable else None))
    if any(r["transcription_cer"] for r in modes.values()):
        tess_cer = tess["transcription_cer"] if tess else None
        rows.append(row("OCR transcription CER ↓", lambda r: f"{r['transcription_cer']['cer']:.3f}"
                        if r["transcription_cer"] else MISSING, f"{tess_cer['cer']:.3f}" if tess_cer else None))
    if any(r["exam_accuracy_by_source"] for r in modes.values()):
        rows.append(row("exam items, right choice", lambda r: _pct(r["exam_accuracy_by_source"].get("all", {})
                                                                     .get("accuracy"))))
        rows.append(row("exam items, chance level", lambda r: _pct(r["exam_accuracy_by_source"].get("all", {})
                                                                     .get("chance"))))
    rows += [
        row("visual tokens per image (mean)", lambda r: f"{r['visual_tokens']['mean_visual_tokens']:.1f}"),
        row("… at full resolution, same branch", lambda r: f"{r['visual_tokens']['mean_full_visual_tokens']:.1f}"),
        row("visual tokens saved", lambda r: _pct(r["visual_tokens"]["saved_share"])),
        row("mean scale", lambda r: f"{r['visual_tokens']['mean_scale']:.3f}"),
        row("time to first token (mean)", lambda r: _latency(r, "mean_time_to_first_token_s",
                                                             lambda s: f"{1000 * s:.0f} ms")),
        row("decoding speed (mean)", lambda r: _latency(r, "mean_tokens_per_s", lambda v: f"{v:.1f} tok/s")),
        row("time per answer (mean)", lambda r: _latency(r, "mean_total_s", lambda s: f"{s:.2f} s")),
        row("batched answering", lambda r: f"{report['data']['questions'] / r['answer_seconds']:.1f} q/s"
            if r["answer_seconds"] else MISSING),
    ]
    return rows


def results_markdown(report: dict) -> str:
    """The results: headline table, exact match by task, exam accuracy by source, and the notes they need."""
    modes = list(report["modes"])
    tess = report["tesseract"]
    header = ["metric", *modes] + (["Tesseract"] if tess["ran"] else [])
    lines = [f"Evaluated {report['data']['questions']} questions on {report['data']['rows']} images "
             f"({report['data']['origin']}).", "", *_table(header, summary_rows(report))]
    if tess["ran"]:
        lines += ["", "† Tesseract cannot answer questions; its cell is the share of those answers found verbatim "
                      "in its OCR text (an upper bound for an OCR-only pipeline). Its CER is on the same "
                      "transcriptions."]
    else:
        lines += ["", f"Note: {tess['note']}."]
    tasks = sorted({t for m in modes for t in report["modes"][m]["exact_match_by_task"]})
    first = report["modes"][modes[0]]
    lines += ["", "### Exact match by task", "",
              *_table(["task", "questions", *modes],
                      [[t, first["exact_match_by_task"][t]["n"],
                        *(_pct(report["modes"][m]["exact_match_by_task"][t]["accuracy"]) for m in modes)]
                       for t in tasks])]
    sources = list(first["exam_accuracy_by_source"])
    if sources:
        lines += ["", "### Exam items by source (right choice)", "",
                  *_table(["source", "items", *modes, "chance"],
                          [[s, first["exam_accuracy_by_source"][s]["n"],
                            *(_pct(report["modes"][m]["exam_accuracy_by_source"][s]["accuracy"]) for m in modes),
                            _pct(first["exam_accuracy_by_source"][s]["chance"])] for s in sources]),
                  "", "An item counts as right when the answer names its correct choice (①…⑤ or \"2번\"); "
                      "chance is the mean of 1/choices (KoBEST COPA and BoolQ have 2 choices, HellaSwag 4)."]
    return "\n".join(lines)


def _is_scalar(value) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _cell(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text.replace("|", "\\|").replace("\n", " ")


def json_markdown(value) -> list[str]:
    """Any JSON as Markdown: scalars in a key/value table, lists of objects as tables, the rest as JSON blocks."""
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        columns = list(dict.fromkeys(key for v in value for key in v))
        return _table(columns, [[_cell(v.get(c, "")) for c in columns] for v in value], numbers=False)
    if not isinstance(value, dict):
        return ["```json", json.dumps(value, ensure_ascii=False, indent=1), "```"]
    scalars = {k: v for k, v in value.items() if _is_scalar(v)}
    lines = []
    if scalars:
        lines = _table(["key", "value"], [[_cell(k), _cell(v)] for k, v in scalars.items()], numbers=False)
    for key, nested in value.items():
        if key not in scalars:
            lines += ["", f"**{key}**", "", *json_markdown(nested)]
    return lines


def _checkpoint_lines(model: dict) -> list[str]:
    params = model["parameters"]
    lm, tok = model["language_model"], model["tokenizer"]
    branches = ", ".join(f"{b}: {v['tile_size']} px tiles, {v['visual_tokens_per_tile']} visual tokens per tile"
                         for b, v in model["branches"].items())
    return [*_table(["part", "parameters"], [[name.replace("_", " "), f"{count / 1e6:.2f} M"]
                                            for name, count in params.items()]), "",
            f"- language model: {lm['type']}, {lm['layers']} layers, hidden size {lm['hidden_size']}, "
            f"context {lm['context']} tokens",
            f"- vision: {branches}; at most {model['max_tiles']} tiles; VRC scales {model['vrc_scales']}",
            f"- tokenizer: {tok['name']} ({tok['class']}, {tok['vocabulary']:,} tokens); weights {model['dtype']}",
            f"- path: `{model['path']}`"]


def card_markdown(report: dict, plots: list[str]) -> str:
    """The whole model card."""
    data, hw = report["data"], report["hardware"]
    lines = [f"# Model card: {report['model']['name']}", "",
             f"Evaluated on {report['date']} with ko-hypervl {__version__}. Generated by `ko-hypervl eval`; "
             "regenerate it rather than editing it.", "", "## Results", "", results_markdown(report), ""]
    lines += [f"![{Path(p).stem}]({Path(p).name})" for p in plots]
    lines += ["", "## Checkpoint", "", *_checkpoint_lines(report["model"]), "", "## Training", ""]
    if report["training_summary"] is None:
        lines.append("The checkpoint folder has no (readable) `training_summary.json`.")
    else:
        lines += ["From the checkpoint's `training_summary.json`:", "", *json_markdown(report["training_summary"])]
    lines += ["", "## Evaluation data", "", f"{data['origin']}: {data['rows']} images, {data['questions']} questions "
              "(each asked alone, as a single-turn question about its image).", "",
              *_table(["kind", "images"], [[k, n] for k, n in sorted(data["rows_per_kind"].items())]),
              "", "## How it was measured", "", "```bash", report["command"], "```", "",
              "- Answers: greedy decoding in left-padded batches; exact match after NFC, whitespace collapsing and "
              "removing thousands separators; CER = edits / reference characters over all transcriptions.",
              "- Modes: auto = large branch at the VRC's scale, high = large branch at full resolution, "
              "low = small branch. Full-resolution tokens are the same branch at scale 1.0.",
              "- Latency: single streamed `ask` calls (batch of one) after one untimed warm-up call.", "",
              *_table(["setting", "value"], [[k, _cell(v)] for k, v in report["settings"].items()], numbers=False),
              "", *_table(["hardware", "value"], [[k, _cell(v)] for k, v in hw.items()], numbers=False), ""]
    return "\n".join(lines)


def write_eval_outputs(report, out: Path) -> list[Path]:
    """Plots, predictions.jsonl, model_card.md and eval.json (written last, listing every file) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    data = report.to_dict()
    files = write_plots(data, out)
    predictions = out / PREDICTIONS
    with predictions.open("w", encoding="utf-8") as f:
        for record in report.prediction_records():
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    card = out / CARD
    card.write_text(card_markdown(data, [str(p) for p in files]), encoding="utf-8")
    files = [card, out / REPORT_JSON, predictions, *files]
    report.files = files
    (out / REPORT_JSON).write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
    return files
