"""The model card (``model_card.md``) and the files beside it: ``eval.json``, ``predictions.jsonl``, plots.

Every number in the card is read from the JSON report, so the card, eval.json and the CLI table agree; the
Ablations section also shows the twins' numbers, read from the ablation files named with ``--ablations``.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import __version__
from .language import format_table as bpc_table
from .plots import write_plots
from .reading_head import reading_head_note
from .targets import (HEADLINE_MODE, KNOWN_ABLATIONS, LM_TOKENIZER, NO_DCL, TargetRow, choice_label, dcl_gap,
                      exact_match_of, kl_weights, same_rows, target_rows, targets_table)

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
    blank = _blank_image(report)

    def row(label, value_of, tesseract_value=None, score=False):
        """``score``: the row is a score, which the blank-image baseline has too (not tokens or timings)."""
        cells = [label, *(value_of(result) for result in modes.values())]
        if blank:
            cells.append(value_of(blank) if score else MISSING)
        return cells + ([tesseract_value if tesseract_value is not None else MISSING] if tess else [])

    kinds = sorted({kind for result in modes.values() for kind in result["exact_match_by_kind"]})
    rows = [row("exact match, all questions", lambda r: _pct(r["exact_match"]["accuracy"]), score=True)]
    for kind in kinds:
        readable = tess["readable_by_kind"].get(kind) if tess else None
        rows.append(row(f"exact match: {kind}", lambda r, k=kind: _pct(r["exact_match_by_kind"].get(k, {})
                                                                         .get("accuracy")),
                        f"{_pct(readable['share'])} readable†" if readable else None, score=True))
    if any(r["transcription_cer"] for r in modes.values()):
        tess_cer = tess["transcription_cer"] if tess else None
        rows.append(row("OCR transcription CER ↓", lambda r: f"{r['transcription_cer']['cer']:.3f}"
                        if r["transcription_cer"] else MISSING, f"{tess_cer['cer']:.3f}" if tess_cer else None,
                        score=True))
    if any(r["exam_accuracy_by_source"] for r in modes.values()):
        rows.append(row("exam items, right choice", lambda r: _pct(r["exam_accuracy_by_source"].get("all", {})
                                                                     .get("accuracy")), score=True))
        rows.append(row("exam items, chance level", lambda r: _pct(r["exam_accuracy_by_source"].get("all", {})
                                                                     .get("chance")), score=True))
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


def _blank_image(report: dict) -> dict | None:
    """The blank-image baseline's scores, when it ran (reports from before it have no entry)."""
    blank = report.get("blank_image") or {}
    return blank if blank.get("ran") else None


def blank_image_note(report: dict) -> str:
    """What the blank-image column means, and how much seeing the image adds over it."""
    blank = _blank_image(report)
    mode = blank["mode"]
    seen = report["modes"].get(mode)
    gain = (f" Seeing the image adds {100 * (seen['exact_match']['accuracy'] - blank['exact_match']['accuracy']):+.1f} "
            f"points of exact match in {mode} mode." if seen else "")
    if "same_answers" in blank:
        gain += (f" {blank['same_answers']} of {blank['exact_match']['n']} answers are word for word the ones given "
                 "with the real images.")
    if use := blank.get("answer_loss", {}).get("all"):
        gain += (f" Teacher-forced, the images lower the loss of the exact answers by {use['gain']:+.3f} ± "
                 f"{2 * use['gain_se']:.3f} (2 SE) nats per token ({use['nats_per_token_seen']:.3f} with them, "
                 f"{use['nats_per_token_blank']:.3f} blank): {_image_use_verdict(use)}.")
    return (f"‡ blank image: {mode} mode with every image replaced by a white one of the same size (same tiles and "
            f"visual tokens, nothing to read), so it scores what the model answers from the question alone.{gain}")


def _image_use_verdict(use: dict) -> str:
    se = use["gain_se"]
    if se != se or use["gain"] <= 2 * se:   # NaN (one question) or within noise of no gain
        return "no evidence that the model uses the images"
    return "the model uses the images"


def image_use_lines(blank: dict) -> list[str]:
    """The answer loss with and without the images, per kind (empty for reports from before it was measured)."""
    use = blank.get("answer_loss")
    if not use:
        return []
    rows = [[kind, u["n"], u["tokens"], f"{u['nats_per_token_seen']:.3f}", f"{u['nats_per_token_blank']:.3f}",
             f"{u['gain']:+.3f} ± {2 * u['gain_se']:.3f}"] for kind, u in use.items()]
    return ["", "### What the images are worth (answer loss, teacher-forced)", "",
            *_table(["kind", "questions", "answer tokens", "nats/token with images", "nats/token blank",
                     "saved by the images (± 2 SE)"], rows),
            "", "Exact match stays at its floor long after a model starts to look at images; the loss of the exact "
                "answers moves as soon as the image tells the model anything about them. A saving within 2 SE of "
                "zero is no evidence the model uses the images (plot: image_use.png, with the others below)."]


def results_markdown(report: dict) -> str:
    """The results: headline table, exact match by task, exam accuracy by source, and the notes they need."""
    modes = list(report["modes"])
    tess = report["tesseract"]
    blank = _blank_image(report)
    header = ["metric", *modes] + (["blank image‡"] if blank else []) + (["Tesseract"] if tess["ran"] else [])
    lines = [f"Evaluated {report['data']['questions']} questions on {report['data']['rows']} images "
             f"({report['data']['origin']}).", "", *_table(header, summary_rows(report))]
    if blank:
        lines += ["", blank_image_note(report)]
    if tess["ran"]:
        lines += ["", "† Tesseract cannot answer questions; its cell is the share of those answers found verbatim "
                      "in its OCR text (an upper bound for an OCR-only pipeline). Its CER is on the same "
                      "transcriptions."]
    else:
        lines += ["", f"Note: {tess['note']}."]
    if head := reading_head_note(report.get("reading_head")):
        lines += ["", head]
    if blank:
        lines += image_use_lines(blank)
    tasks = sorted({t for m in modes for t in report["modes"][m]["exact_match_by_task"]})
    first = report["modes"][modes[0]]
    by_task = [report["modes"][m]["exact_match_by_task"] for m in modes] + ([blank["exact_match_by_task"]]
                                                                          if blank else [])
    lines += ["", "### Exact match by task", "",
              *_table(["task", "questions", *modes] + (["blank image‡"] if blank else []),
                      [[t, first["exact_match_by_task"][t]["n"], *(_pct(scores[t]["accuracy"]) for scores in by_task)]
                       for t in tasks])]
    sources = list(first["exam_accuracy_by_source"])
    if sources:
        lines += ["", "### Exam items by source (right choice)", "",
                  *_table(["source", "items", *modes, "chance", f"most named ({modes[0]})"],
                          [[s, first["exam_accuracy_by_source"][s]["n"],
                            *(_pct(report["modes"][m]["exam_accuracy_by_source"][s]["accuracy"]) for m in modes),
                            _pct(first["exam_accuracy_by_source"][s]["chance"]),
                            _most_named(first["exam_accuracy_by_source"][s])] for s in sources]),
                  "", "An item counts as right when the answer names its correct choice (①…⑤ or \"2번\"); "
                      "chance is the mean of 1/choices (KoBEST COPA and BoolQ have 2 choices, HellaSwag 4). "
                      "Most named: the choice the answers name most often, and for what share of the items; "
                      "a model that names one choice whatever the item scores the share of items it answers, "
                      "which is chance by another draw."]
    return "\n".join(lines)


def _is_scalar(value) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _cell(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text.replace("|", "\\|").replace("\n", " ")


def _most_named(tally: dict) -> str:
    """The choice an exam tally's answers name most often, with the share of items ("② 95%"); "—" if none."""
    choice = tally.get("most_named_choice")
    return MISSING if choice is None else f"{choice_label(choice)} {_pct(tally['most_named_share'])}"


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
    branches = ", ".join(f"{b}: {v['tile_size']} px tiles at {v.get('image_scale', 1.0):g}× resolution, "
                         f"{v['visual_tokens_per_tile']} visual tokens per tile" for b, v in model["branches"].items())
    return [*_table(["part", "parameters"], [[name.replace("_", " "), f"{count / 1e6:.2f} M"]
                                            for name, count in params.items()]), "",
            f"- language model: {lm['type']}, {lm['layers']} layers, hidden size {lm['hidden_size']}, "
            f"context {lm['context']} tokens",
            f"- vision: {branches}; at most {model['max_tiles']} tiles; VRC scales {model['vrc_scales']}",
            f"- tokenizer: {tok['name']} ({tok['class']}, {tok['vocabulary']:,} tokens); weights stored as "
            f"{model.get('stored_dtype') or model['dtype']}, evaluated in {model['dtype']}",
            f"- path: `{model['path']}`"]


def targets_markdown(report: dict, ablations: dict[str, dict] | None = None) -> list[str]:
    """The Targets section's body: the table of eval.json's ``targets`` (computed here when the dict has none)."""
    rows = ([TargetRow(**row) for row in report["targets"]] if "targets" in report
            else target_rows(report, ablations or {}))
    return [f"The targets of issue #7, measured by this run (accuracy targets in {HEADLINE_MODE} mode, the default "
            "of `ask`) and by the ablation runs named with `--ablations` (see Ablations). A target that needs a "
            "mode, a baseline or an ablation this run does not have is marked not measurable, never met.", "",
            targets_table(rows)]


def _rate_pct(rate) -> str:
    return _pct(rate[0]) if rate else MISSING


def _no_dcl_lines(report: dict, twin: dict) -> list[str]:
    """Ours beside the no-DCL twin: exact match per mode, the high − low gap, the KL weights, the rows."""
    modes = [m for m in ("high", "low", "auto") if m in report["modes"] or m in twin["modes"]]
    rows = [["model", report["model"]["name"], twin.get("model", {}).get("name", MISSING)]]
    rows += [[f"exact match: {m}", _rate_pct(exact_match_of(report, m)), _rate_pct(exact_match_of(twin, m))]
             for m in modes]
    gaps = [dcl_gap(report), dcl_gap(twin)]
    rows.append(["gap high − low", *(f"{100 * g[0]:.1f} pts" if g else MISSING for g in gaps)])
    ttft = [[(r["modes"].get(m) or {}).get("latency") for m in ("high", "low")] for r in (report, twin)]
    rows.append(["time to first token high / low", *(
        f"{1000 * h['mean_time_to_first_token_s']:.0f} / {1000 * lo['mean_time_to_first_token_s']:.0f} ms"
        if h and lo else MISSING for h, lo in ttft)])
    weights = [kl_weights(r.get("training_summary")) for r in (report, twin)]
    rows.append(["DCL KL weight by stage (training summary)",
                 *(", ".join(f"{stage} {weight}" for stage, weight in by_stage.items()) or MISSING
                   for by_stage in weights)])
    lines = _table(["metric", "ours", "no-DCL twin"], rows)
    if not same_rows(report, twin):
        lines += ["", f"The twin was evaluated on other rows ({twin.get('data', {}).get('origin', MISSING)}, "
                      f"{twin.get('data', {}).get('questions', MISSING)} questions): not comparable."]
    return lines


def ablations_markdown(report: dict, ablations: dict[str, dict] | None = None) -> list[str]:
    """The Ablations section's body: per ablation, its file and the twin's key numbers beside ours."""
    paths = report.get("ablations") or {}
    if not paths:
        return ["No ablation results were given to this run; give them with "
                f"`ko-hypervl eval --ablations {NO_DCL}=… {LM_TOKENIZER}=…` ("
                + "; ".join(f"{name}: {what}" for name, what in KNOWN_ABLATIONS.items()) + ")."]
    lines: list[str] = []
    for name, path in paths.items():
        data = (ablations or {}).get(name)
        lines += [f"### {name}", "", f"From `{path}` ({KNOWN_ABLATIONS[name]}).", ""]
        if data is None:
            lines += ["(not loaded here)", ""]
        elif name == NO_DCL:
            lines += [*_no_dcl_lines(report, data), ""]
        elif name == LM_TOKENIZER:
            lines += [bpc_table(data["rows"]), ""]
            if data.get("text"):
                lines += [f"Scored text: {data['text']}. First row: the LM with our tokenizer; bits/char ÷ first "
                          "and tokens/char ÷ first compare each row with it.", ""]
    return lines[:-1]


def card_markdown(report: dict, plots: list[str], ablations: dict[str, dict] | None = None) -> str:
    """The whole model card; ``ablations`` are the loaded ablation files (for the Ablations section's numbers)."""
    data, hw = report["data"], report["hardware"]
    lines = [f"# Model card: {report['model']['name']}", "",
             f"Evaluated on {report['date']} with ko-hypervl {__version__}. Generated by `ko-hypervl eval`; "
             "regenerate it rather than editing it.", "", "## Results", "", results_markdown(report), ""]
    lines += [f"![{Path(p).stem}]({Path(p).name})" for p in plots]
    lines += ["", "## Targets", "", *targets_markdown(report, ablations), "",
              "## Ablations", "", *ablations_markdown(report, ablations)]
    lines += ["", "## Checkpoint", "", *_checkpoint_lines(report["model"])]
    if sizing := (report["training_summary"] or {}).get("sizing"):
        lines += ["", "### Why this size", "", sizing]
    lines += ["", "## Training", ""]
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
    card.write_text(card_markdown(data, [str(p) for p in files], report.ablations), encoding="utf-8")
    files = [card, out / REPORT_JSON, predictions, *files]
    report.files = files
    (out / REPORT_JSON).write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
    return files
