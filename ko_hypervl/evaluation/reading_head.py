"""The model's reading head (``ko-hypervl read``) on the evaluated rows: its character error rate on their
transcriptions (pages cut into lines first), beside Tesseract's on the very same images.

CERs are pooled as the card's are (edits over reference characters). Where the checkpoint has a reading LM
(``ko-hypervl model reading-lm``) the head's lines are decoded with it, and the best path's CER is given beside.
The VLM's language model takes no part, so the head's CER is not the ``transcribe`` answers' CER that the
OCR target scores; it is what a pipeline that hands the head's reading to the LM could start from. The titles
of the evaluated charts and tables are scored too (against the closest line read), a first measure of what the
head reads of a chart. A
checkpoint without a head, or whose encoder was trained after the head was fitted, gets a note instead (never
an error).
"""

from __future__ import annotations

from ..imagecorpus.records import transcriptions
from ..imagecorpus.tesseract import character_error_rate, normalize_for_cer, ocr_image, tesseract_available
from ..processing.ctc_decode import decode_reading, decoder_name
from .data import EvalData
from .exams import row_metadata

TITLED_KINDS = ("charts", "tables")      # rows whose rendering spec has a title the image shows


def pooled_cer(references: list[str], rates: list[float]) -> float:
    """Edits over reference characters, all rows together (the card's CER), from each row's rate."""
    lengths = [len(normalize_for_cer(reference)) for reference in references]    # what each rate is per
    return round(sum(rate * n for n, rate in zip(lengths, rates)) / max(1, sum(lengths)), 4)


def reading_head_on_rows(vlm, data: EvalData, tesseract: bool, lang: str = "kor") -> dict:
    """The head's CER on every transcription of ``data`` (a page cut into its lines first, as ``read`` does),
    and Tesseract's on the same images, over all of them, the single lines and the pages of several lines;
    line breaks count as spaces in both."""
    try:
        spec = vlm.model.reading_head_spec()
    except ValueError as exc:
        return {"ran": False, "note": str(exc)}
    titles = titles_on_rows(vlm, data)
    rows = transcriptions(data.dataset)
    if not rows:
        return {"ran": False, "note": "no transcriptions among the evaluated rows", "titles": titles}
    images = [data.dataset[index]["image"] for index, _ in rows]
    references = [" ".join(text.split()) for _, text in rows]
    pages = [len(text.strip().splitlines()) > 1 for _, text in rows]
    # each image read once (as ``read`` reads it); with a reading LM, its lines decoded both ways
    lines = [vlm.line_log_probs(image, spec)[1] for image in images]

    def readings(greedy: bool) -> list[str]:
        return ["\n".join(decode_reading(line, spec.units, vlm.reading_lm, greedy=greedy) for line in row)
                for row in lines]

    head = readings(greedy=False)
    rates = {"head": [character_error_rate(ref, " ".join(text.split())) for ref, text in zip(references, head)]}
    if vlm.reading_lm is not None:      # what the reading LM adds, on the same lines
        rates["best_path"] = [character_error_rate(ref, " ".join(text.split()))
                              for ref, text in zip(references, readings(greedy=True))]
    if tesseract and tesseract_available(lang):
        rates["tesseract"] = [character_error_rate(ref, " ".join(ocr_image(image, lang=lang).split()))
                              for ref, image in zip(references, images)]

    def group(chosen: list[bool]) -> dict:
        """Rows, and each reader's pooled CER, of the transcriptions ``chosen`` marks."""
        picked = [i for i, keep in enumerate(chosen) if keep]
        scores = {"rows": len(picked)}
        for reader, values in rates.items():
            scores[f"{reader}_cer"] = (pooled_cer([references[i] for i in picked], [values[i] for i in picked])
                                       if picked else None)
        return scores

    return {"ran": True, "note": None, "branch": spec.branch, "order": spec.order, "fitted_cer": spec.cer,
            "decoder": decoder_name(vlm.reading_lm), "example": {"reference": references[0], "reading": head[0]},
            "all": group([True] * len(rows)), "single_lines": group([not page for page in pages]),
            "pages": group(pages), "titles": titles}


def title_of(row: dict) -> str | None:
    """The title a chart or table row's image shows (its rendering spec's), or None."""
    if row.get("kind") not in TITLED_KINDS:
        return None
    return (row_metadata(row.get("metadata")).get("spec") or {}).get("title") or None


def titles_on_rows(vlm, data: EvalData) -> dict | None:
    """The head on the titles of the evaluated charts and tables, read as ``read`` reads them: each title's CER
    against the closest line read (capped at 1), how many some line reads exactly, and how many images read as
    nothing; None where no row has a title."""
    titled = [(index, title) for index in range(len(data.dataset)) if (title := title_of(data.dataset[index]))]
    if not titled:
        return None
    rates, empty = [], 0
    for index, title in titled:
        lines = [line for line in vlm.read(data.dataset[index]["image"])[0].text.split("\n") if line.strip()]
        rates.append(min([1.0, *(character_error_rate(title, line) for line in lines)]))
        empty += not lines
    return {"rows": len(rates), "title_cer": round(sum(rates) / len(rates), 4),
            "exact": sum(rate == 0 for rate in rates), "read_nothing": empty}


def reading_head_note(head: dict | None) -> str | None:
    """The model card's sentence on the head, or None where the report has none (older reports too)."""
    if not head:
        return None
    titles = head.get("titles")
    title_note = (f" Titles of {titles['rows']} charts and tables: CER {titles['title_cer']:.3f} against the closest "
                  f"line read, {titles['exact']} read exactly, {titles['read_nothing']} images read as nothing."
                  if titles else "")
    if not head["ran"]:
        return f"Reading head: not measured ({head['note']}).{title_note}"

    def part(name: str, label: str) -> str:
        group = head[name]
        if not group["rows"]:
            return ""
        tesseract = f" (Tesseract {group['tesseract_cer']:.3f})" if group.get("tesseract_cer") is not None else ""
        return f"{label} {group['head_cer']:.3f} on {group['rows']}{tesseract}"

    pages = "pages of several lines" + (", cut into lines first," if head["order"] == "columns" else "")
    parts = [text for text in (part("single_lines", "single lines"), part("pages", pages)) if text]
    decoder = head.get("decoder", "best path")
    best_path = (f"; best path without the reading LM {head['all']['best_path_cer']:.3f}"
                 if head["all"].get("best_path_cer") is not None else "")
    return (f"Reading head (`ko-hypervl read`, {head['branch']} branch, read by {head['order']}, decoded by "
            f"{decoder}): CER {head['all']['head_cer']:.3f} over the {head['all']['rows']} transcriptions of these "
            "rows" + (f", Tesseract {head['all']['tesseract_cer']:.3f} on the same images"
                      if head["all"].get("tesseract_cer") is not None else "")
            + f"{best_path} ({'; '.join(parts)}). The VLM's language model takes no part in it, so it is not the "
            "transcription answers' CER the OCR target scores." + title_note)
