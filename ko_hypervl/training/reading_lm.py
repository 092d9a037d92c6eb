"""``ko-hypervl model reading-lm``: fit the reading head's letter LM and choose how the beam search weighs it.

The LM is fitted on the lines of the text corpus's training split, in the head's units
(``processing.reading_lm``). Its weight ``alpha`` and the length bonus ``beta`` are then chosen on validation
OCR rows (the main corpus's, rendered as a default build renders them, or ``--data``'s): the head reads each
row once, every (alpha, beta) of the grid decodes those readings, and the pair with the lowest pooled CER is
kept. Test rows are never looked at. The LM is written into the checkpoint folder (``reading_lm.safetensors``),
where ``ko-hypervl read`` and ``ko-hypervl eval`` find it.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from ..settings import setting

log = logging.getLogger(__name__)


@dataclass
class ReadingLMSettings:
    model: str = setting(help="checkpoint directory with a reading head (the LM is written into it)")
    data: Path | None = setting(None, help="image corpus whose validation OCR rows choose the decoding (default: "
                                           "the main corpus's, rendered now)")
    order: int = setting(6, help="n-gram order in the head's units (jamo: 6 spans about two syllables; 5 reads "
                                 "worse, 7 no better for twice the size)")
    min_count: int = setting(3, help="drop n-grams of order 3 and up seen fewer times than this: 3 keeps 70%% of "
                                     "2's n-grams at the same CER (docs/ablations/reading_lm_sweep.py)")
    rows: int = setting(100, help="validation OCR rows to choose alpha and beta on")
    alphas: tuple[float, ...] = setting((0.0, 0.3, 0.5, 0.7, 1.0), help="LM weights to try")
    betas: tuple[float, ...] = setting((0.0, 0.5, 1.0, 1.5, 2.0), help="length bonuses (per unit) to try")
    beam: int = setting(16, help="readings kept per position")
    seed: int = setting(0, help="corpus seed of the rendered validation rows")


def corpus_lines(split: str = "train") -> list[str]:
    """Every non-blank line of the text corpus ``split`` (documents are split at line breaks)."""
    from ..textcorpus import load_text_corpus

    return [line for text in load_text_corpus()[split]["text"] for line in text.split("\n") if line.strip()]


def validation_rows(data: Path | None, rows: int, seed: int):
    """The first ``rows`` validation OCR rows of ``data``, or of a default corpus build rendered now."""
    from datasets import Dataset

    from ..evaluation.data import render_held_out_rows
    from ..imagecorpus.records import features, load_split

    if data is not None:
        dataset = load_split(data, "validation", ["ocr"])
        return dataset.select(range(min(rows, len(dataset)))), f"validation split of {data}"
    rendered = render_held_out_rows(["ocr"], rows, seed, split="validation")
    return Dataset.from_list(rendered, features=features()), f"rendered validation rows (seed {seed})"


def validation_readings(vlm, spec, settings: ReadingLMSettings):
    """(references, the head's log-probabilities per line of each row, origin) of the validation OCR rows'
    transcriptions (pages cut into lines, as ``read`` cuts them)."""
    from tqdm.auto import tqdm

    from ..imagecorpus.records import transcriptions

    dataset, origin = validation_rows(settings.data, settings.rows, settings.seed)
    rows = transcriptions(dataset)
    if not rows:
        raise ValueError(f"no transcriptions among the OCR rows of the {origin}")
    references = [" ".join(text.split()) for _, text in rows]
    lines = [vlm.line_log_probs(dataset[index]["image"], spec)[1]
             for index, _ in tqdm(rows, desc="reading validation rows", unit="row")]
    return references, [[line.float().numpy() for line in row] for row in lines], origin


def decoded_cer(references: list[str], lines: list[list], units: tuple[str, ...], lm=None, settings=None,
                greedy: bool = False) -> float:
    """The pooled CER of ``references`` against their rows' lines (log-probabilities) decoded one way
    (``processing.ctc_decode.decode_reading``'s arguments)."""
    from ..evaluation.reading_head import pooled_cer
    from ..imagecorpus.tesseract import character_error_rate
    from ..processing.ctc_decode import decode_reading

    readings = [" ".join(decode_reading(line, units, lm, settings, greedy) for line in row) for row in lines]
    return pooled_cer(references, [character_error_rate(r, t) for r, t in zip(references, readings)])


def fit_and_tune(settings: ReadingLMSettings) -> dict:
    """Fit the LM, choose (alpha, beta) on validation rows, save it into the checkpoint; returns the record."""
    from tqdm.auto import tqdm

    from ..checkpoint import check_checkpoint_dir
    from ..inference import KoHyperVL
    from ..processing.reading_lm import DecodeSettings, fit_reading_lm, save_reading_lm

    began = time.perf_counter()
    directory = check_checkpoint_dir(settings.model)
    vlm = KoHyperVL.load(directory)
    spec = vlm.model.reading_head_spec()
    started = time.perf_counter()
    lm = fit_reading_lm(corpus_lines("train"), spec.units, settings.order, settings.min_count)
    fitted_s = time.perf_counter() - started
    log.info("fitted a %d-gram LM with %d n-grams on %d units in %.0f s", settings.order, lm.size,
             lm.info["units_fitted"], fitted_s)
    references, lines, origin = validation_readings(vlm, spec, settings)
    greedy = decoded_cer(references, lines, spec.units, greedy=True)
    grid = []
    for alpha in tqdm(settings.alphas, desc="alpha × beta", unit="alpha"):
        for beta in settings.betas:
            choice = DecodeSettings(alpha, beta, settings.beam)
            grid.append({"alpha": alpha, "beta": beta, "cer": decoded_cer(references, lines, spec.units, lm, choice)})
    best = min(grid, key=lambda g: (g["cer"], g["alpha"], g["beta"]))
    lm.decode = DecodeSettings(best["alpha"], best["beta"], settings.beam)
    lm.info.update({"text": "the text corpus's training split, one line at a time", "fit_seconds": round(fitted_s),
                    "chosen_on": origin, "rows": len(references), "greedy_cer": greedy, "cer": best["cer"],
                    "grid": grid})
    path = save_reading_lm(lm, directory)
    return {"path": str(path), "n_grams": lm.size, "bytes": path.stat().st_size, **lm.info,
            "alpha": best["alpha"], "beta": best["beta"], "beam": settings.beam,
            "seconds": round(time.perf_counter() - began, 1)}


def print_record(record: dict) -> None:
    alphas = sorted({g["alpha"] for g in record["grid"]})
    betas = sorted({g["beta"] for g in record["grid"]})
    table = {(g["alpha"], g["beta"]): g["cer"] for g in record["grid"]}
    print(f"reading LM: order {record['order']}, {record['n_grams']:,} n-grams ({record['bytes'] / 1e6:.1f} MB), "
          f"fitted on {record['units_fitted']:,} units in {record['fit_seconds']} s")
    print(f"pooled CER on {record['rows']} transcriptions of the {record['chosen_on']}:")
    print("alpha \\ beta " + "".join(f"{b:>8g}" for b in betas))
    for a in alphas:
        print(f"{a:>12g} " + "".join(f"{table[(a, b)]:8.4f}" for b in betas))
    print(f"best path (no LM): {record['greedy_cer']:.4f}; chosen alpha {record['alpha']:g}, beta "
          f"{record['beta']:g}: {record['cer']:.4f}; written to {record['path']}")
    print(json.dumps({k: v for k, v in record.items() if k != "grid"}, ensure_ascii=False))
