"""The issue #7 targets, checked from eval.json-style dicts: VRC savings, DCL, small-branch speed, speed on CPU,
training time, accuracy targets, OCR against Tesseract, KoBEST against chance, and the tokenizer ablation.

Everything here is a pure function of dicts: the main report (``EvalReport.to_dict()``), and the ablation
files named by ``--ablations NAME=PATH``:

- ``no-dcl``: the ``eval.json`` of a twin trained with the same budget without DCL (``--kl-weight 0``),
  evaluated on the same rows (same ``ko-hypervl eval`` settings but ``--model``/``--out``);
- ``lm-tokenizer``: the ``bpc.json`` of ``ko-hypervl model bpc OURS TWIN --json-out`` (first row: the LM
  with our tokenizer; the others: the plain-BPE twin), as ``training/recipes/ablation_lm_tokenizer.sh`` writes.

A target that cannot be measured (a mode not evaluated, an ablation not given, Tesseract not run) is
reported with ``met = None``, never as met.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from ..imagecorpus.examitems import CIRCLED
from .errors import EvalInputError

# thresholds of issue #7
TOKENS_SAVED_MIN = 0.50        # auto spends ≥ 50 % fewer visual tokens than full resolution
ACCURACY_KEPT_MIN = 0.99       # … keeping ≥ 99 % of full-resolution exact match
DCL_GAP_RATIO_MAX = 0.5        # small-branch gap with DCL ≤ ½ the no-DCL twin's
TTFT_SPEEDUP_MIN = 2.0         # small branch answers ≥ 2× faster (time to first token)
CPU_TTFT_MAX_S = 1.0           # on CPU, the default mode answers with its first token within 1 s …
CPU_TOKENS_PER_S_MIN = 20.0    # … and decodes ≥ 20 tokens/s
RECIPE_HOURS_MAX = 3.0         # the full recipe trains in under 3 hours on the 2-core CPU
RECIPE_CPU_CORES = 2
CHARTS_EM_MIN = 0.85
EXAMS_EM_MIN = 0.85
HEADLINE_MODE = "auto"         # the mode `ask` uses by default: the accuracy targets are measured in it
CONSTANT_ANSWER_SHARE = 0.9    # answers naming one choice for this share of the items are a constant answer
EPS = 1e-9                     # rounding slack for "at least" / "at most" comparisons of rounded JSON numbers

NO_DCL = "no-dcl"
LM_TOKENIZER = "lm-tokenizer"
KNOWN_ABLATIONS = {
    NO_DCL: "eval.json of the twin trained with the same budget without DCL (--kl-weight 0)",
    LM_TOKENIZER: "bpc.json of `ko-hypervl model bpc OURS TWIN --json-out` (the tokenizer ablation)",
}
BPC_ROW_KEYS = ("model", "vocab_size", "tokens", "tokens_per_char", "bits_per_token", "bits_per_char",
                "bits_per_char_ratio", "tokens_per_char_ratio")
NOT_EVALUATED = "not evaluated"
NOT_MEASURED = "not measured"


@dataclass(frozen=True)
class TargetRow:
    target: str
    measured: str
    reference: str
    met: bool | None       # None: not measurable here

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------- --ablations NAME=PATH

def parse_ablations(items: list[str], must_exist: bool = True) -> dict[str, Path]:
    """``["no-dcl=PATH", …]`` as ``{name: Path}``; an EvalInputError for a bad item, name, repeat or missing file."""
    known = ", ".join(KNOWN_ABLATIONS)
    out: dict[str, Path] = {}
    for item in items:
        name, sep, path = str(item).partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not name or not path:
            raise EvalInputError(f"--ablations takes NAME=PATH items (NAME one of {known}), got {item!r}")
        if name not in KNOWN_ABLATIONS:
            raise EvalInputError(f"--ablations: unknown ablation {name!r}; known: {known}")
        if name in out:
            raise EvalInputError(f"--ablations: {name} is given twice")
        if must_exist and not Path(path).is_file():
            raise EvalInputError(f"--ablations {name}={path}: file not found (expected the "
                                 f"{KNOWN_ABLATIONS[name]})")
        out[name] = Path(path)
    return out


def _check_layout(name: str, path: Path, data) -> None:
    def bad(why: str) -> EvalInputError:
        return EvalInputError(f"--ablations {name}={path}: {why}; expected the {KNOWN_ABLATIONS[name]}")

    if not isinstance(data, dict):
        raise bad("not a JSON object")
    if name == NO_DCL:
        modes = data.get("modes")
        if not isinstance(modes, dict) or not isinstance(data.get("data"), dict):
            raise bad("no 'modes' and 'data'")
        for mode, result in modes.items():
            tally = result.get("exact_match") if isinstance(result, dict) else None
            if not isinstance(tally, dict) or not {"n", "correct"} <= tally.keys():
                raise bad(f"mode {mode!r} has no exact_match n/correct")
    elif name == LM_TOKENIZER:
        rows = data.get("rows")
        if not isinstance(rows, list) or len(rows) < 2:
            raise bad("needs 'rows' with at least two models (ours first, then the twin)")
        for row in rows:
            missing = [key for key in BPC_ROW_KEYS if not isinstance(row, dict) or key not in row]
            if missing:
                raise bad(f"a row lacks {', '.join(missing)}")


def load_ablations(paths: dict[str, Path]) -> dict[str, dict]:
    """The JSON of every ablation file, checked to have the layout its name needs (else EvalInputError)."""
    loaded = {}
    for name, path in paths.items():
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EvalInputError(f"--ablations {name}={path}: cannot read it as JSON ({exc})") from None
        _check_layout(name, path, data)
        loaded[name] = data
    return loaded


# ---------------------------------------------------------------- reading eval.json-style dicts

def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _at(threshold: float) -> str:
    return f"{100 * threshold:g}%"


def _pts(value: float) -> str:
    return f"{100 * value:.1f} pts"


def _rate(tally: dict | None) -> tuple[float, int, int] | None:
    """(accuracy, correct, n) of a ``{"n", "correct", …}`` tally, from the counts; None when empty or absent."""
    if not tally or not tally.get("n"):
        return None
    return tally["correct"] / tally["n"], tally["correct"], tally["n"]


def _em_text(rate: tuple[float, int, int]) -> str:
    return f"{_pct(rate[0])} ({rate[1]}/{rate[2]})"


def exact_match_of(report: dict, mode: str, kind: str | None = None) -> tuple[float, int, int] | None:
    """Exact match of ``mode`` (over all questions, or of one ``kind``); None when not evaluated."""
    result = report.get("modes", {}).get(mode)
    if result is None:
        return None
    return _rate(result["exact_match"] if kind is None else result.get("exact_match_by_kind", {}).get(kind))


def _ttft(report: dict, mode: str) -> float | None:
    result = report.get("modes", {}).get(mode)
    latency = result.get("latency") if result else None
    return latency.get("mean_time_to_first_token_s") if latency else None


def _needs(report: dict, *modes: str) -> list[str]:
    return [m for m in modes if m not in report.get("modes", {})]


def _not_evaluated(target: str, missing: list[str]) -> TargetRow:
    return TargetRow(target, NOT_EVALUATED, f"needs mode(s) {', '.join(missing)} (--modes)", None)


def _others(report: dict, mode: str, value_of) -> str:
    """``value_of`` in the evaluated modes other than ``mode``, as "high 80.0%, low 70.0%"."""
    parts = []
    for other in report.get("modes", {}):
        if other != mode and (value := value_of(other)) is not None:
            parts.append(f"{other} {value}")
    return ", ".join(parts)


def same_rows(ours: dict, twin: dict) -> bool:
    """Whether two reports evaluated the same rows (same origin, question count and rows per kind)."""
    keys = ("origin", "questions", "rows_per_kind")
    return all(ours.get("data", {}).get(k) == twin.get("data", {}).get(k) for k in keys)


# ---------------------------------------------------------------- the targets

def vrc_token_row(report: dict) -> TargetRow:
    target = f"VRC (auto): ≥ {_at(TOKENS_SAVED_MIN)} fewer visual tokens than full resolution (high)"
    if missing := _needs(report, "auto"):
        return _not_evaluated(target, missing)
    tokens = report["modes"]["auto"]["visual_tokens"]
    high = report["modes"].get("high")
    # high's own count when it ran; else the large branch at scale 1.0 on the same images (auto's full count)
    full = high["visual_tokens"]["mean_visual_tokens"] if high else tokens["mean_full_visual_tokens"]
    if not full:
        return TargetRow(target, "no images", "", None)
    saved = 1 - tokens["mean_visual_tokens"] / full
    return TargetRow(target, f"{_pct(saved)} fewer ({tokens['mean_visual_tokens']:.1f} visual tokens per image)",
                     f"full resolution: {full:.1f} visual tokens per image", saved >= TOKENS_SAVED_MIN - EPS)


def vrc_accuracy_row(report: dict) -> TargetRow:
    target = f"VRC (auto): keeps ≥ {_at(ACCURACY_KEPT_MIN)} of full-resolution exact match (auto EM / high EM)"
    if missing := _needs(report, "auto", "high"):
        return _not_evaluated(target, missing)
    auto, high = exact_match_of(report, "auto"), exact_match_of(report, "high")
    if auto is None or high is None:
        return TargetRow(target, "no questions", "", None)
    reference = f"high (full resolution) {_em_text(high)}"
    if not high[1]:
        return TargetRow(target, f"auto {_em_text(auto)}", reference + "; no share kept of 0 correct answers", None)
    kept = auto[0] / high[0]
    # met or not is the point estimate either way; the note says when a few questions decided it
    noise = gap_noise(high, auto)
    if abs(high[0] - auto[0]) <= noise:
        reference += (f"; auto − high {100 * (auto[0] - high[0]):+.1f} pts is within noise "
                      f"(2 standard errors: {_pts(noise)})")
    return TargetRow(target, f"{_pct(kept)} kept (auto {_em_text(auto)})", reference, kept >= ACCURACY_KEPT_MIN - EPS)


def dcl_gap(report: dict) -> tuple[float, tuple, tuple] | None:
    """(high − low exact match, high rate, low rate), or None when either mode is missing or empty."""
    high, low = exact_match_of(report, "high"), exact_match_of(report, "low")
    return (high[0] - low[0], high, low) if high and low else None


def gap_noise(high: tuple[float, int, int], low: tuple[float, int, int]) -> float:
    """Two standard errors of a difference of two exact-match rates, treated as independent.

    Both modes answer the same questions, so their results are positively correlated and the true error of
    the difference is smaller: a gap above this is real, one below it may be chance.
    """
    (p_high, _, n_high), (p_low, _, n_low) = high, low
    return 2 * math.sqrt(p_high * (1 - p_high) / n_high + p_low * (1 - p_low) / n_low)


def dcl_gap_row(report: dict, twin: dict | None) -> TargetRow:
    target = (f"DCL: small-branch gap (high − low EM) ≤ {DCL_GAP_RATIO_MAX:g} × the gap of the no-DCL twin "
              "(same budget, --kl-weight 0)")
    if missing := _needs(report, "high", "low"):
        return _not_evaluated(target, missing)
    ours = dcl_gap(report)
    if ours is None:
        return TargetRow(target, "no questions", "", None)
    measured = f"gap {_pts(ours[0])} (high {_pct(ours[1][0])}, low {_pct(ours[2][0])})"
    if twin is None:
        return TargetRow(target, measured, f"{NOT_MEASURED}: no twin (--ablations {NO_DCL}=PATH)", None)
    if missing := _needs(twin, "high", "low"):
        return TargetRow(target, measured, f"the no-DCL twin was not evaluated in mode(s) {', '.join(missing)}", None)
    theirs = dcl_gap(twin)
    if theirs is None:
        return TargetRow(target, measured, "the no-DCL twin has no questions", None)
    reference = f"no-DCL twin: gap {_pts(theirs[0])} (high {_pct(theirs[1][0])}, low {_pct(theirs[2][0])})"
    if not same_rows(report, twin):
        return TargetRow(target, measured, reference + "; evaluated on other rows, not comparable", None)
    noise = gap_noise(theirs[1], theirs[2])
    if theirs[0] <= noise:   # no real gap without DCL: halving it would be measuring chance
        return TargetRow(target, measured, reference + f"; within noise (2 standard errors: {_pts(noise)}), so "
                                                       "there is no gap for DCL to halve", None)
    reference += f"; ratio {ours[0] / theirs[0]:.2f}"
    return TargetRow(target, measured, reference, ours[0] <= DCL_GAP_RATIO_MAX * theirs[0] + EPS)


def ttft_row(report: dict) -> TargetRow:
    target = f"small branch (low) answers ≥ {TTFT_SPEEDUP_MIN:g}× faster than the large (high): time to first token"
    if missing := _needs(report, "high", "low"):
        return _not_evaluated(target, missing)
    high, low = _ttft(report, "high"), _ttft(report, "low")
    if high is None or low is None:
        return TargetRow(target, NOT_MEASURED, "latency not measured (--latency-samples 0)", None)
    if not low:
        return TargetRow(target, NOT_MEASURED, "low's time to first token rounds to 0", None)
    speedup = high / low
    return TargetRow(target, f"{speedup:.2f}× (low {1000 * low:.0f} ms)", f"high {1000 * high:.0f} ms (mean)",
                     speedup >= TTFT_SPEEDUP_MIN - EPS)


def cpu_speed_row(report: dict) -> TargetRow:
    target = (f"on CPU, {HEADLINE_MODE} answers with time to first token < {CPU_TTFT_MAX_S:g} s and "
              f"≥ {CPU_TOKENS_PER_S_MIN:g} tokens/s")
    if missing := _needs(report, HEADLINE_MODE):
        return _not_evaluated(target, missing)
    latency = report["modes"][HEADLINE_MODE].get("latency")
    if not latency:
        return TargetRow(target, NOT_MEASURED, "latency not measured (--latency-samples 0)", None)
    ttft, speed = latency["mean_time_to_first_token_s"], latency["mean_tokens_per_s"]
    measured = f"{1000 * ttft:.0f} ms to first token, {speed:.1f} tokens/s (mean of {latency['samples']} answers)"
    hardware = report.get("hardware") or {}
    where = f"{hardware.get('device', 'unknown device')}, {hardware.get('torch_threads', '?')} threads"
    if hardware.get("device") != "cpu":
        return TargetRow(target, measured, f"measured on {where}, not on a CPU", None)
    return TargetRow(target, measured, where, ttft < CPU_TTFT_MAX_S and speed >= CPU_TOKENS_PER_S_MIN - EPS)


def recipe_time_row(report: dict) -> TargetRow:
    target = f"the full recipe trains in under {RECIPE_HOURS_MAX:g} hours on a {RECIPE_CPU_CORES}-core CPU"
    summary = report.get("training_summary") or {}
    seconds = summary.get("total_seconds")
    if not seconds:
        return TargetRow(target, NOT_MEASURED, "the checkpoint has no training summary", None)
    stages = [stage.get("stage", "?") for stage in summary.get("stages", [])]
    counted = "".join(f", {step.get('step', '?')}" for step in summary.get("preparation", []))
    measured = (f"{seconds / 3600:.2f} h: recipe {summary.get('recipe', '?')}, stages {', '.join(stages)}{counted} "
                "(rendering the images not counted)")
    hardware = summary.get("hardware") or {}
    cores = hardware.get("cpu_count")
    where = f"trained on {hardware.get('device', 'an unknown device')}, {cores or '?'} cores"
    if hardware.get("device") != "cpu" or not cores or cores > RECIPE_CPU_CORES:
        return TargetRow(target, measured, f"{where}: not the {RECIPE_CPU_CORES}-core CPU", None)
    return TargetRow(target, measured, where, seconds < RECIPE_HOURS_MAX * 3600)


def kind_em_row(report: dict, kind: str, threshold: float, label: str) -> TargetRow:
    target = f"{label}: exact match ≥ {_at(threshold)} (kind {kind}, {HEADLINE_MODE} mode)"
    if missing := _needs(report, HEADLINE_MODE):
        return _not_evaluated(target, missing)
    rate = exact_match_of(report, HEADLINE_MODE, kind)
    if rate is None:
        return TargetRow(target, NOT_EVALUATED, f"no {kind} rows (--kinds)", None)
    def other(mode: str) -> str | None:
        rate = exact_match_of(report, mode, kind)
        return _pct(rate[0]) if rate else None

    others = _others(report, HEADLINE_MODE, other)
    return TargetRow(target, _em_text(rate), others, rate[0] >= threshold - EPS)


def ocr_row(report: dict) -> TargetRow:
    target = f"OCR: transcription CER below Tesseract's on the same images ({HEADLINE_MODE} mode)"
    if missing := _needs(report, HEADLINE_MODE):
        return _not_evaluated(target, missing)
    ours = report["modes"][HEADLINE_MODE].get("transcription_cer")
    if not ours:
        return TargetRow(target, NOT_EVALUATED, "no transcription questions (kind ocr)", None)
    measured = f"CER {ours['cer']:.3f} ({ours['n']} transcriptions)"
    tess = report.get("tesseract") or {}
    tess_cer = tess.get("transcription_cer") if tess.get("ran") else None
    if not tess_cer:
        return TargetRow(target, measured, f"Tesseract: {NOT_MEASURED} ({tess.get('note') or 'no transcriptions'})",
                         None)
    return TargetRow(target, measured, f"Tesseract CER {tess_cer['cer']:.3f}", ours["cer"] < tess_cer["cer"])


def kobest_row(report: dict) -> TargetRow:
    target = f"KoBEST exam items: right choice above chance ({HEADLINE_MODE} mode)"
    if missing := _needs(report, HEADLINE_MODE):
        return _not_evaluated(target, missing)
    by_source = report["modes"][HEADLINE_MODE].get("exam_accuracy_by_source", {})
    kobest = by_source.get("kobest")
    rate = _rate(kobest)
    if rate is None:
        return TargetRow(target, NOT_EVALUATED, "no KoBEST items among the exam questions", None)
    families = [f"{source.split('/', 1)[1]} {_pct(t['accuracy'])} (chance {_pct(t['chance'])}, n={t['n']})"
                for source, t in by_source.items() if source.startswith("kobest/")]
    reference = "; ".join([f"chance {_pct(kobest['chance'])}", *families])
    constant = constant_answer(kobest)
    if constant:
        # a model that names one choice whatever the item scores the share of items that choice answers:
        # above or below chance as the draw of items falls, never evidence that it reads or reasons
        return TargetRow(target, _em_text(rate), f"{reference}; {constant}: a constant answer", False)
    return TargetRow(target, _em_text(rate), reference, rate[0] > kobest["chance"])


def constant_answer(tally: dict) -> str | None:
    """How the answers name one choice for nearly every item of an exam tally (``CONSTANT_ANSWER_SHARE``), or
    None (also for eval.json files written before the choices were counted)."""
    share, choice = tally.get("most_named_share"), tally.get("most_named_choice")
    if choice is None or share is None or share < CONSTANT_ANSWER_SHARE:
        return None
    return f"the answers name {choice_label(choice)} for {_pct(share)} of the items"


def choice_label(choice: int) -> str:
    """A 1-based choice as the exam page prints it (①…⑤), or "7번" past the circled digits."""
    return CIRCLED[choice - 1] if 1 <= choice <= len(CIRCLED) else f"{choice}번"


def tokenizer_rows(bpc: dict | None) -> list[TargetRow]:
    bpc_target = "tokenizer: our LM's bits per character ≤ the plain-BPE twin's (held-out text)"
    tpc_target = "tokenizer: fewer tokens per character than the plain-BPE twin"
    if bpc is None:
        reference = f"{NOT_MEASURED}: no tokenizer ablation (--ablations {LM_TOKENIZER}=PATH)"
        return [TargetRow(bpc_target, NOT_MEASURED, reference, None),
                TargetRow(tpc_target, NOT_MEASURED, reference, None)]
    ours, twins = bpc["rows"][0], bpc["rows"][1:]

    def twin_text(key: str) -> str:
        return "; ".join(f"{t['model']}: {t[key]:.4f}" for t in twins)

    return [TargetRow(bpc_target, f"{ours['bits_per_char']:.4f} bits/char ({ours['model']})",
                      "twin " + twin_text("bits_per_char"),
                      all(ours["bits_per_char"] <= t["bits_per_char"] for t in twins)),
            TargetRow(tpc_target, f"{ours['tokens_per_char']:.4f} tokens/char ({ours['model']})",
                      "twin " + twin_text("tokens_per_char"),
                      all(ours["tokens_per_char"] < t["tokens_per_char"] for t in twins))]


def target_rows(report: dict, ablations: dict[str, dict] | None = None) -> list[TargetRow]:
    """Every issue #7 target as measured in ``report`` (an eval.json dict) and the loaded ``ablations``."""
    ablations = ablations or {}
    split = report.get("data", {}).get("split", "test")   # reports from before --split answered the test rows

    def on_rows(row: TargetRow) -> TargetRow:
        """A target measured on the evaluated rows counts only on the test split (held-out fonts and words)."""
        if split == "test":
            return row
        return TargetRow(row.target, row.measured, f"measured on the {split} split; the targets are the test "
                                                   "split's (--split test)", None)

    return [on_rows(vrc_token_row(report)), on_rows(vrc_accuracy_row(report)),
            on_rows(dcl_gap_row(report, ablations.get(NO_DCL))),
            ttft_row(report), cpu_speed_row(report), recipe_time_row(report),
            on_rows(kind_em_row(report, "charts", CHARTS_EM_MIN, "chart QA")),
            on_rows(kind_em_row(report, "exams", EXAMS_EM_MIN, "exam pages")), on_rows(ocr_row(report)),
            on_rows(kobest_row(report)), *tokenizer_rows(ablations.get(LM_TOKENIZER))]


def met_text(met: bool | None) -> str:
    return {True: "✅ met", False: "❌ not met", None: "— not measurable"}[met]


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ") or "—"


def targets_table(rows: list[TargetRow]) -> str:
    """The targets as a Markdown table: target, measured, baseline / reference, met."""
    lines = ["| target | measured | baseline / reference | met |", "| --- | --- | --- | --- |"]
    lines += [f"| {_cell(r.target)} | {_cell(r.measured)} | {_cell(r.reference)} | {met_text(r.met)} |"
              for r in rows]
    return "\n".join(lines)


def kl_weights(training_summary) -> dict[str, float]:
    """The DCL KL weight of each stage of a ``training_summary.json`` that has one (``{}`` when none does)."""
    out = {}
    stages = training_summary.get("stages") if isinstance(training_summary, dict) else None
    for stage in stages if isinstance(stages, list) else []:
        if not isinstance(stage, dict):
            continue
        for values in (stage.get("settings") or {}).values():
            if isinstance(values, dict) and "kl_weight" in values:
                out[str(stage.get("stage"))] = values["kl_weight"]
    return out
