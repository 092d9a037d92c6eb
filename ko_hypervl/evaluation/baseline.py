"""The Tesseract OCR baseline on the very rows the model answered: CER of the same transcriptions, and the
share of chart and table answers that can be read off the OCR text at all (what OCR without reasoning reaches).

Tesseract is optional: without the binary or its Korean traineddata the report carries a note, never an error.
"""

from __future__ import annotations

import os

from ..imagecorpus.tesseract import INSTALL_HINT, run_tesseract_baseline, tesseract_available
from .data import EvalData

OCR_KINDS = ("ocr", "charts", "tables")
READABLE_KINDS = ("charts", "tables")


def _skipped(note: str) -> dict:
    return {"ran": False, "note": note}


def tesseract_on_rows(data: EvalData, enabled: bool, progress: bool = True, lang: str = "kor") -> dict:
    """Tesseract's numbers on the OCR, chart and table rows of ``data`` (or why there are none)."""
    if not enabled:
        return _skipped("Tesseract baseline turned off (--no-tesseract)")
    if not tesseract_available(lang):
        return _skipped(f"Tesseract baseline skipped: tesseract with '{lang}' traineddata is not installed "
                        f"({INSTALL_HINT})")
    rows = data.dataset.filter(lambda kind: kind in OCR_KINDS, input_columns="kind")
    if len(rows) == 0:
        return _skipped(f"Tesseract baseline skipped: no {'/'.join(OCR_KINDS)} rows selected")
    report = run_tesseract_baseline(rows, workers=min(2, os.cpu_count() or 1), progress=progress, lang=lang)
    # both lists have an "all" group: the transcription one is the CER of every transcribe answer
    cer = next((g for g in report.transcription if g.group == "all"), None)
    readable_groups = {g.group: g for g in report.readability}
    readable = {kind: readable_groups[f"kind={kind}"] for kind in READABLE_KINDS if f"kind={kind}" in readable_groups}
    return {
        "ran": True, "note": None, "rows": report.rows, "lang": report.lang, "psm": report.psm,
        "transcription_cer": ({"n": cer.samples, "reference_chars": cer.reference_chars, "cer": round(cer.cer, 4),
                               "row_mean_cer": round(cer.row_mean_cer, 4)} if cer else None),
        "readable_by_kind": {kind: {"n": g.samples, "readable": g.readable, "share": round(g.share, 4)}
                             for kind, g in readable.items()},
    }
