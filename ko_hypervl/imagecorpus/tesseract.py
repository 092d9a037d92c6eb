"""A Tesseract OCR baseline over the rendered image-text datasets: the bar the VLM has to beat.

Every image of a split goes through the ``tesseract`` binary (Korean model, no pytesseract dependency).
OCR rows with a ``transcribe`` answer are scored by character error rate against that exact text; every
other answer (chart values, table cells, exam choices...) is scored by whether it can be read off the OCR
text at all, which is the most a pure OCR pipeline without reasoning could answer.
"""

from __future__ import annotations

import functools
import io
import os
import re
import shutil
import subprocess
import unicodedata
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from multiprocessing import Pool
from typing import Any

from PIL import Image

from .records import TRANSCRIBE, qa_pairs

INSTALL_HINT = "apt-get install -y tesseract-ocr tesseract-ocr-kor"
_WHITESPACE = re.compile(r"\s+")
# "12명", "3400원", "-4.5%", "20만원": a number followed by a short unit (compact form, commas already gone).
_NUMBER_WITH_UNIT = re.compile(r"([+-]?\d+(?:\.\d+)?)\D{1,4}")
# A thousands separator: "3,400" and "3400" are the same number whichever way the image or OCR wrote it.
_THOUSANDS_COMMA = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


@functools.lru_cache(maxsize=1)
def _installed_languages() -> frozenset[str] | None:
    """The traineddata languages of the installed tesseract, or None without the binary (asked once per process)."""
    if shutil.which("tesseract") is None:
        return None
    listing = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True, check=False)
    # the first line is the 'List of available languages in "...":' header (stdout or stderr by version)
    lines = (listing.stdout + "\n" + listing.stderr).splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("List of"))


def tesseract_available(lang: str = "kor") -> bool:
    """Whether the ``tesseract`` binary and the traineddata of ``lang`` are installed."""
    languages = _installed_languages()
    return languages is not None and lang in languages


def _require_tesseract(lang: str) -> None:
    languages = _installed_languages()
    if languages is None:
        raise RuntimeError(f"the tesseract binary is not on PATH; install it with: {INSTALL_HINT}")
    if lang not in languages:
        raise RuntimeError(f"tesseract has no {lang!r} traineddata (installed: {', '.join(sorted(languages))}); "
                           f"install it with: {INSTALL_HINT}")


def ocr_image(image: Image.Image, lang: str = "kor", psm: int = 6) -> str:
    """The text tesseract reads in ``image`` (``psm`` 6: one uniform block of text, the layout we render).

    The image goes in as PNG on stdin and the text comes back on stdout, so no temporary files. Tesseract
    is pinned to one OpenMP thread: parallelism comes from the worker processes, and letting each of them
    spawn a thread per core only oversubscribes the CPU.
    """
    _require_tesseract(lang)
    if image.mode not in ("1", "L", "LA", "RGB", "RGBA"):
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    result = subprocess.run(["tesseract", "stdin", "stdout", "-l", lang, "--psm", str(psm)],
                            input=buffer.getvalue(), capture_output=True, check=False,
                            env={**os.environ, "OMP_THREAD_LIMIT": "1"})
    if result.returncode != 0:
        raise RuntimeError(f"tesseract failed (exit {result.returncode}): "
                           f"{result.stderr.decode('utf-8', 'replace').strip()}")
    return result.stdout.decode("utf-8", "replace").strip()  # strip the trailing newline and page-break \f


def normalize_for_cer(text: str) -> str:
    """NFC, every whitespace run (line breaks included) collapsed to one space, ends stripped.

    CER measures reading the characters: where a handwritten page breaks its lines, or whether OCR
    reports two spaces or a newline between words, is layout, not reading, and would otherwise dominate
    the error of long transcriptions. A missing or spurious word boundary still counts as one edit.
    """
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insert, delete, substitute: cost 1 each) between the characters of ``a`` and ``b``."""
    # the shared prefix and suffix cost nothing; trimming them makes near-perfect OCR of a paragraph cheap
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    end = 0
    while end < min(len(a), len(b)) - start and a[-1 - end] == b[-1 - end]:
        end += 1
    a, b = a[start:len(a) - end], b[start:len(b) - end]
    if len(a) < len(b):
        a, b = b, a  # the row is the shorter string
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def character_error_rate(reference: str, hypothesis: str) -> float:
    """Edits to turn ``hypothesis`` into ``reference`` per reference character, both ``normalize_for_cer``-ed.

    0 is a perfect read; an empty hypothesis scores 1; spurious text can push it above 1. An empty
    reference has no rate and raises ValueError.
    """
    reference, hypothesis = normalize_for_cer(reference), normalize_for_cer(hypothesis)
    if not reference:
        raise ValueError("CER needs a non-empty reference text")
    return edit_distance(reference, hypothesis) / len(reference)


def _compact(text: str) -> str:
    """NFC, no whitespace at all, no thousands commas: the form ``answer_readable`` compares."""
    return _THOUSANDS_COMMA.sub("", _WHITESPACE.sub("", unicodedata.normalize("NFC", text)))


def _occurs(needle: str, haystack: str) -> bool:
    """``needle`` in ``haystack``, where a number must not be part of a longer one ("12" is not in "112")."""
    pattern = re.escape(needle)
    if needle[0].isdigit():
        pattern = r"(?<!\d)(?<!\d\.)" + pattern
    if needle[-1].isdigit():
        pattern += r"(?!\.?\d)"
    return re.search(pattern, haystack) is not None


def answer_readable(answer: str, ocr_text: str) -> bool:
    """Whether ``answer`` can be read off ``ocr_text`` verbatim.

    Both sides are NFC-normalised with all whitespace and thousands commas removed ("3,400" == "3400"),
    so spacing and line breaks never matter. The answer is readable when its compact form occurs in the
    compact OCR text or, for a number with a unit ("12명", "3,400원", "4.5%"), when the bare number does
    (a chart puts the unit in the axis title, not next to every value). A number never matches inside a
    longer one: "12" is not read off "112" or "12.5".
    """
    needle, haystack = _compact(answer), _compact(ocr_text)
    if not needle:
        return False
    if _occurs(needle, haystack):
        return True
    number = _NUMBER_WITH_UNIT.fullmatch(needle)
    return number is not None and _occurs(number.group(1), haystack)


@dataclass(frozen=True)
class CERGroup:
    """Transcription error of one group of rows (``all``, ``style=...``, ``font=...``)."""

    group: str
    samples: int
    reference_chars: int
    edits: int
    row_mean_cer: float

    @property
    def cer(self) -> float:
        """Character-weighted CER: total edits over total reference characters (long pages weigh more)."""
        return self.edits / self.reference_chars


@dataclass(frozen=True)
class ReadableGroup:
    """Answers of one group (``all``, ``kind=...``, ``task=...``) found verbatim in the OCR text."""

    group: str
    samples: int
    readable: int

    @property
    def share(self) -> float:
        return self.readable / self.samples


@dataclass
class BaselineReport:
    """What tesseract achieves on one split: CER of the transcriptions, readable share of the other answers."""

    rows: int
    lang: str
    psm: int
    transcription: list[CERGroup] = field(default_factory=list)
    readability: list[ReadableGroup] = field(default_factory=list)

    def group(self, name: str) -> CERGroup | ReadableGroup:
        """The group called ``name`` (e.g. ``"style=printed"``, ``"kind=charts"``)."""
        for entry in (*self.transcription, *self.readability):
            if entry.group == name:
                return entry
        raise KeyError(name)

    def to_markdown(self) -> str:
        lines = [f"Tesseract baseline ({self.lang}, psm {self.psm}) over {self.rows} images"]
        if self.transcription:
            lines += ["", "| transcription | samples | CER (chars) | CER (row mean) |", "|---|---:|---:|---:|"]
            lines += [f"| {g.group} | {g.samples} | {g.cer:.3f} | {g.row_mean_cer:.3f} |" for g in self.transcription]
        if self.readability:
            lines += ["", "| answers | samples | readable % |", "|---|---:|---:|"]
            lines += [f"| {g.group} | {g.samples} | {100 * g.share:.1f} |" for g in self.readability]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with the derived ``cer`` and ``share`` included next to the counts."""
        return {
            "rows": self.rows, "lang": self.lang, "psm": self.psm,
            "transcription": [{**asdict(g), "cer": g.cer} for g in self.transcription],
            "readability": [{**asdict(g), "share": g.share} for g in self.readability],
        }


_WORKER = None  # (undecoded image column, lang, psm), set once per worker process by _init_worker


def _init_worker(images, lang: str, psm: int) -> None:
    global _WORKER
    _WORKER = (images, lang, psm)


def _ocr_row(index: int) -> str:
    """OCR row ``index`` of the worker's dataset: each worker decodes its own images, nothing big is pickled."""
    images, lang, psm = _WORKER
    value = images[index]["image"]
    with Image.open(io.BytesIO(value["bytes"]) if value["bytes"] else value["path"]) as image:
        return ocr_image(image, lang=lang, psm=psm)


def run_tesseract_baseline(dataset, *, limit: int | None = None, workers: int = 2, progress: bool = True,
                           lang: str = "kor", psm: int = 6) -> BaselineReport:
    """OCR every image of ``dataset`` (one split of a rendered corpus, first ``limit`` rows) and score it.

    Rows are checked before any OCR runs (aligned tasks, non-empty transcriptions), so a malformed dataset
    fails in a second, not after an hour of OCR.
    """
    from datasets import Image as ImageFeature
    from tqdm.auto import tqdm

    _require_tesseract(lang)
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    rows = list(dataset.select_columns(["id", "kind", "messages", "tasks", "font", "style"]))
    for row in rows:
        pairs = qa_pairs(row["messages"])
        if len(pairs) != len(row["tasks"]):
            raise ValueError(f"row {row['id']}: {len(pairs)} answers but {len(row['tasks'])} tasks")
        row["qas"] = list(zip(pairs, row["tasks"]))
        for (_, answer), task in row["qas"]:
            if task == TRANSCRIBE and not normalize_for_cer(answer):
                raise ValueError(f"row {row['id']}: empty transcription answer")

    images = dataset.select_columns(["image"]).cast_column("image", ImageFeature(decode=False))
    indices = range(len(rows))
    bar = dict(total=len(rows), desc="tesseract", unit="image", disable=not progress)
    if workers <= 1:
        _init_worker(images, lang, psm)
        texts = [_ocr_row(i) for i in tqdm(indices, **bar)]
    else:
        with Pool(workers, initializer=_init_worker, initargs=(images, lang, psm)) as pool:
            texts = list(tqdm(pool.imap(_ocr_row, indices, chunksize=4), **bar))

    cer_rows: dict[str, list[tuple[int, int]]] = defaultdict(list)  # group -> (edits, reference chars)
    readable: dict[str, list[bool]] = defaultdict(list)
    for row, text in zip(rows, texts):
        for (_, answer), task in row["qas"]:
            if task == TRANSCRIBE:
                reference = normalize_for_cer(answer)
                counts = (edit_distance(reference, normalize_for_cer(text)), len(reference))
                for name in ("all", f"style={row['style']}", f"font={row['font']}"):
                    cer_rows[name].append(counts)
            else:
                hit = answer_readable(answer, text)
                for name in ("all", f"kind={row['kind']}", f"task={task}"):
                    readable[name].append(hit)

    return BaselineReport(
        rows=len(rows), lang=lang, psm=psm,
        transcription=[CERGroup(name, len(counts), sum(c for _, c in counts), sum(e for e, _ in counts),
                                sum(e / c for e, c in counts) / len(counts))
                       for name, counts in sorted(cer_rows.items(), key=_group_order)],
        readability=[ReadableGroup(name, len(hits), sum(hits))
                     for name, hits in sorted(readable.items(), key=_group_order)],
    )


def _group_order(item: tuple[str, Any]) -> tuple[bool, str]:
    """``all`` first, then the groups alphabetically (``font=`` before ``style=``, ``kind=`` before ``task=``)."""
    return item[0] != "all", item[0]
