"""The model's reading head (``ko-hypervl read``) on the evaluated rows: its character error rate on their
transcriptions (pages cut into lines first), beside Tesseract's on the very same images.

The head reads without the LM, so its CER is not the ``transcribe`` answers' CER that the OCR target scores;
it is what a pipeline that hands the head's reading to the LM could start from. A checkpoint without a head,
or whose encoder was trained after the head was fitted, gets a note instead (never an error).
"""

from __future__ import annotations

from ..imagecorpus.tesseract import character_error_rate, ocr_image, tesseract_available
from ..training.reading import transcriptions
from .data import EvalData


def reading_head_on_rows(vlm, data: EvalData, tesseract: bool, lang: str = "kor") -> dict:
    """The head's CER on every transcription of ``data`` (a page cut into its lines first, as ``read`` does),
    and Tesseract's on the same images; line breaks count as spaces in both."""
    try:
        spec = vlm.model.reading_head_spec()
    except ValueError as exc:
        return {"ran": False, "note": str(exc)}
    rows = transcriptions(data.dataset)
    if not rows:
        return {"ran": False, "note": "no transcriptions among the evaluated rows"}
    images = [data.dataset[index]["image"] for index, _ in rows]
    references = [" ".join(text.split()) for _, text in rows]
    readings = vlm.read(images)
    errors = [character_error_rate(ref, " ".join(r.text.split())) for ref, r in zip(references, readings)]
    pages = sum(len(text.strip().splitlines()) > 1 for _, text in rows)
    report = {"ran": True, "note": None, "branch": spec.branch, "order": spec.order, "rows": len(rows),
              "multi_line_rows": pages, "cer": round(sum(errors) / len(errors), 4), "fitted_cer": spec.cer,
              "example": {"reference": references[0], "reading": readings[0].text}, "tesseract_cer": None}
    if tesseract and tesseract_available(lang):
        theirs = [character_error_rate(ref, " ".join(ocr_image(image, lang=lang).split()))
                  for ref, image in zip(references, images)]
        report["tesseract_cer"] = round(sum(theirs) / len(theirs), 4)
    return report


def reading_head_note(head: dict | None) -> str | None:
    """The model card's sentence on the head, or None where the report has none (older reports too)."""
    if not head:
        return None
    if not head["ran"]:
        return f"Reading head: not measured ({head['note']})."
    pages = head.get("multi_line_rows", 0)
    cut = f" ({pages} of several lines, cut into lines first)" if pages and head["order"] == "columns" else ""
    tesseract = (f"; Tesseract reads the same images at {head['tesseract_cer']:.3f}"
                 if head.get("tesseract_cer") is not None else "")
    return (f"Reading head (`ko-hypervl read`, {head['branch']} branch, read by {head['order']}): CER "
            f"{head['cer']:.3f} on the {head['rows']} transcriptions of these rows{cut}{tesseract}. It reads "
            "without the LM, so it is not the transcription answers' CER the OCR target scores.")
