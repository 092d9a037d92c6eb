"""Readers for users' own image-text data, so they can train on it: rows in the one schema of ``records``.

Two layouts are read: LLaVA-style conversations (JSON list or JSONL) and multiple-choice VQA tables
(K-DTCBench / KoNET export style: CSV, TSV, JSONL or JSON list). Every record is checked before it is
used, its image included (a broken image must never reach training silently). A bad record is reported
as a ``ReaderError`` naming the file and line; the caller picks whether the first one stops the read
(``on_error="stop"``) or bad records are skipped, logged and returned (``on_error="skip"``).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, NamedTuple

from PIL import Image

from .records import QA, features, make_record

if TYPE_CHECKING:
    from datasets import Dataset

log = logging.getLogger(__name__)

OnError = Literal["stop", "skip"]
LLAVA_SUFFIXES = (".json", ".jsonl")
TABLE_SUFFIXES = (".json", ".jsonl", ".csv", ".tsv")
MARKS = "①②③④⑤⑥⑦⑧⑨⑩"  # Korean exam numbering; also bounds the number of choices
LETTERS = "ABCDEFGHIJ"
USER_ROLES = ("human", "user")
ASSISTANT_ROLES = ("gpt", "assistant")
IMAGE_PLACEHOLDER = re.compile(r"\n?<image>\n?")


class ReaderError(ValueError):
    """A bad input file or record, with where it is: ``line`` is 1-based; ``index`` is set for JSON lists."""

    def __init__(self, file: Path | str, reason: str, line: int | None = None, index: int | None = None):
        self.file, self.reason, self.line, self.index = str(file), reason, line, index
        where = self.file if line is None else f"{self.file}:{line}"
        if index is not None:
            where += f" (item {index})"
        super().__init__(f"{where}: {reason}")


class ReadResult(NamedTuple):
    """The rows read, and the records skipped (always empty with ``on_error="stop"``)."""

    dataset: Dataset
    problems: list[ReaderError]


class _Bad(Exception):
    """A record is invalid; ``_read`` adds the file and line."""


@dataclass(frozen=True)
class _Entry:
    """One raw record: its 1-based source line, its index in a JSON list, and the parsed value or why
    there is none (a line that is not JSON, a row with the wrong number of cells)."""

    line: int
    index: int | None
    value: Any
    problem: str | None = None


@dataclass(frozen=True)
class _Parsed:
    image: str
    qas: list[QA]
    metadata: dict[str, Any]
    id: str | None


def read_llava(path: Path | str, image_dir: Path | str | None = None, on_error: OnError = "stop") -> ReadResult:
    """LLaVA-style conversations (JSON list or JSONL, ``conversations`` or ``messages``), one row per record.

    Images resolve against ``image_dir``, by default the record file's folder.
    """
    path = Path(path)
    return _read(path, _load(path, LLAVA_SUFFIXES), image_dir, on_error, _parse_llava, "llava")


def read_multiple_choice(path: Path | str, image_dir: Path | str | None = None,
                         on_error: OnError = "stop") -> ReadResult:
    """Multiple-choice VQA rows (CSV, TSV, JSONL or JSON list), one exam-style question and answer per row."""
    path = Path(path)
    return _read(path, _load(path, TABLE_SUFFIXES), image_dir, on_error, _parse_multiple_choice, "multiple_choice")


def read_user_data(path: Path | str, format: Literal["auto", "llava", "multiple_choice"] = "auto",
                   image_dir: Path | str | None = None, on_error: OnError = "stop") -> ReadResult:
    """Either layout; ``auto`` tells them apart by the first record's keys (tables are always multiple choice)."""
    path = Path(path)
    parsers = {"llava": _parse_llava, "multiple_choice": _parse_multiple_choice}
    if format not in ("auto", *parsers):
        raise ValueError(f"format must be 'auto', 'llava' or 'multiple_choice', not {format!r}")
    entries = _load(path, LLAVA_SUFFIXES if format == "llava" else TABLE_SUFFIXES)
    if format == "auto":
        format = _sniff(path, entries)
    return _read(path, entries, image_dir, on_error, parsers[format], format)


def _sniff(path: Path, entries: list[_Entry]) -> Literal["llava", "multiple_choice"]:
    first = next((e.value for e in entries if isinstance(e.value, dict)), None)
    keys = {str(k).strip().lower() for k in first} if first is not None else set()
    if keys & {"conversations", "messages"}:
        return "llava"
    if {"question", "answer"} <= keys:
        return "multiple_choice"
    raise ReaderError(path, "cannot tell the format: no record has 'conversations'/'messages' or "
                            "'question' and 'answer'; pass format='llava' or 'multiple_choice'")


def _read(path: Path, entries: list[_Entry], image_dir: Path | str | None, on_error: OnError,
          parse: Callable[[Any], _Parsed], format: str) -> ReadResult:
    """Parse and check every entry, then build the dataset; the rules of ``on_error`` live here only."""
    if on_error not in ("stop", "skip"):
        raise ValueError(f"on_error must be 'stop' or 'skip', not {on_error!r}")
    from datasets import Dataset  # imported here: importing ``datasets`` is slow

    image_dir = Path(image_dir) if image_dir is not None else path.parent
    checked: dict[Path, str | None] = {}
    rows, problems = [], []
    for entry in entries:
        try:
            if entry.problem is not None:
                raise _Bad(entry.problem)
            parsed = parse(entry.value)
            image = (image_dir / parsed.image).resolve()
            if image not in checked:
                checked[image] = _image_problem(image)
            if checked[image] is not None:
                raise _Bad(f"image {parsed.image!r}: {checked[image]}")
        except _Bad as bad:
            error = ReaderError(path, str(bad), entry.line, entry.index)
            if on_error == "stop":
                raise error from None
            log.warning("skipped %s", error)
            problems.append(error)
            continue
        where = {"source_file": str(path), "line": entry.line, "format": format}
        if entry.index is not None:
            where["index"] = entry.index
        rows.append(make_record(id=parsed.id or f"{path.stem}-{entry.line}", image=str(image), kind="user",
                                qas=parsed.qas, metadata={**where, **parsed.metadata}))
    if not rows:
        detail = f" ({len(problems)} skipped, the first: {problems[0]})" if problems else ""
        raise ReaderError(path, f"no valid records{detail}")
    return ReadResult(Dataset.from_list(rows, features=features()), problems)


def _image_problem(path: Path) -> str | None:
    """Why ``path`` is not a usable image, or None. ``verify`` checks the structure (PNG checksums) but
    decodes nothing (it passes a truncated JPEG), so the image is also loaded."""
    if not path.is_file():
        return f"no such file {str(path)!r}"
    try:
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            image.load()
    except Exception as error:  # PIL raises OSError, SyntaxError, ValueError... for broken files
        return f"unreadable image ({type(error).__name__}: {error})"
    return None


# --- loading records --------------------------------------------------------------------------------------

def _load(path: Path, suffixes: tuple[str, ...]) -> list[_Entry]:
    """The raw records of ``path``, one per JSONL line / CSV row / JSON list item."""
    suffix = path.suffix.lower()
    if suffix not in suffixes:
        raise ReaderError(path, f"unsupported file type {path.suffix!r}; supported: {', '.join(suffixes)}")
    text = path.read_text(encoding="utf-8-sig")  # spreadsheet exports often start with a BOM
    if not text.strip():
        raise ReaderError(path, "the file is empty")
    if suffix == ".json":
        entries = _json_items(path, text)
    elif suffix == ".jsonl":
        entries = _jsonl_lines(text)
    else:
        entries = _table_rows(path, text, "\t" if suffix == ".tsv" else ",")
    if not entries:
        raise ReaderError(path, "the file has no records")
    return entries


def _jsonl_lines(text: str) -> list[_Entry]:
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entries.append(_Entry(number, None, json.loads(line)))
        except json.JSONDecodeError as error:
            entries.append(_Entry(number, None, None, f"not valid JSON: {error.msg}"))
    return entries


def _json_items(path: Path, text: str) -> list[_Entry]:
    """The items of a JSON list, each with the line it starts on (so errors point into the file)."""
    try:
        items = json.loads(text)
    except json.JSONDecodeError as error:
        raise ReaderError(path, f"not valid JSON: {error.msg}", error.lineno) from None
    if not isinstance(items, list):
        raise ReaderError(path, f"expected a JSON list of records, found a {type(items).__name__}")
    decoder, separator = json.JSONDecoder(), re.compile(r"[\s,]*")
    entries, position, line = [], text.index("[") + 1, 1
    for index, item in enumerate(items):
        start = separator.match(text, position).end()
        line += text.count("\n", position, start)
        end = decoder.raw_decode(text, start)[1]
        entries.append(_Entry(line, index, item))
        line += text.count("\n", start, end)
        position = end
    return entries


def _table_rows(path: Path, text: str, delimiter: str) -> list[_Entry]:
    """CSV/TSV rows as dicts, each with the line it starts on (a quoted cell may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [name.strip() for name in next(reader)]
    entries, previous_end = [], reader.line_num
    for cells in reader:
        start, previous_end = previous_end + 1, reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            entries.append(_Entry(start, None, None, f"{len(cells)} cells, but the header has {len(header)}"))
        else:
            entries.append(_Entry(start, None, dict(zip(header, cells))))
    return entries


# --- LLaVA conversations ----------------------------------------------------------------------------------

def _parse_llava(record: Any) -> _Parsed:
    record = _object(record)
    image = record.get("image")
    if not isinstance(image, str) or not image.strip():
        raise _Bad("missing 'image' (one image path per record)")
    key = "conversations" if "conversations" in record else "messages"
    turns = record.get(key)
    if not isinstance(turns, list) or not turns:
        raise _Bad("missing 'conversations' (or 'messages'): a list of turns")
    speaker_key, text_key = ("from", "value") if key == "conversations" else ("role", "content")
    if len(turns) % 2:
        raise _Bad(f"{len(turns)} turns: a conversation needs question/answer pairs")
    task = record.get("task", "conversation")
    if not isinstance(task, str) or not task:
        raise _Bad(f"'task' must be a non-empty string, not {task!r}")
    qas = []
    for number in range(0, len(turns), 2):
        question = _turn(turns[number], number, speaker_key, text_key, USER_ROLES)
        answer = _turn(turns[number + 1], number + 1, speaker_key, text_key, ASSISTANT_ROLES)
        if not answer.strip():
            raise _Bad(f"turn {number + 1} is an empty answer")
        qas.append(QA(IMAGE_PLACEHOLDER.sub("", question).strip(), answer.strip(), task))
    extra = {k: v for k, v in record.items() if k not in ("id", "image", key, "task")}
    return _Parsed(image, qas, {"extra": extra} if extra else {}, _id(record))


def _turn(turn: Any, number: int, speaker_key: str, text_key: str, roles: tuple[str, ...]) -> str:
    """The text of turn ``number`` (0-based), which must be spoken by one of ``roles``."""
    if not isinstance(turn, dict):
        raise _Bad(f"turn {number} is not an object")
    speaker = turn.get(speaker_key)
    if speaker not in roles:
        expected = "/".join(roles)
        raise _Bad(f"turn {number} is from {speaker!r}, expected {expected}: turns must alternate, question first")
    text = turn.get(text_key)
    if isinstance(text, list):  # OpenAI-style content parts: keep the text ones
        text = "".join(part.get("text") or "" for part in text if isinstance(part, dict) and part.get("type") == "text")
    if not isinstance(text, str):
        raise _Bad(f"turn {number} has no text '{text_key}'")
    return text


# --- multiple-choice tables -------------------------------------------------------------------------------

def _parse_multiple_choice(record: Any) -> _Parsed:
    record = _object(record)
    fields = {str(k).strip().lower(): v for k, v in record.items()}
    image, question = _text(fields, "image"), _text(fields, "question")
    choices, used = _choices(fields)
    answer = fields.get("answer")
    if answer is None or not str(answer).strip():
        raise _Bad("missing 'answer'")
    index = _answer_index(str(answer).strip(), choices)
    listed = "\n".join(f"{MARKS[i]} {choice}" for i, choice in enumerate(choices))
    qa = QA(f"{question}\n{listed}", f"정답: {MARKS[index]} {choices[index]}", "multiple_choice")
    used |= {"id", "image", "question", "answer"}
    extra = {k: v for k, v in record.items() if str(k).strip().lower() not in used}
    metadata = {"question": question, "choices": choices, "answer_index": index, **({"extra": extra} if extra else {})}
    return _Parsed(image, [qa], metadata, _id(fields))


def _choices(fields: dict[str, Any]) -> tuple[list[str], set[str]]:
    """The choice texts and the columns they came from: one ``choices``/``options`` column (a list, a JSON
    list, or a "|"- or newline-separated string), or one column per choice (A, B.., choice1.., option1..)."""
    for name in ("choices", "options"):
        if name in fields:
            return _checked(_split_choices(fields[name])), {name}
    for columns in ([c.lower() for c in LETTERS], [f"choice{i}" for i in range(1, 11)],
                    [f"option{i}" for i in range(1, 11)]):
        present = [c for c in columns if c in fields]
        if present and present[0] == columns[0]:
            values = [str(fields[c] if fields[c] is not None else "").strip() for c in present]
            while values and not values[-1]:  # a 4-choice item in a table with an E column
                values.pop()
            return _checked(values), set(present)
    raise _Bad("missing choices: a 'choices' column or columns A, B.. / choice1.. / option1..")


def _split_choices(value: Any) -> list[str]:
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise _Bad(f"'choices' looks like a JSON list but is not valid JSON: {error.msg}") from None
    if isinstance(value, str):
        return [part.strip() for part in value.strip().split("\n" if "\n" in value.strip() else "|")]
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return [str(v).strip() for v in value]
    raise _Bad(f"'choices' must be a list or a separated string, not {type(value).__name__}")


def _checked(choices: list[str]) -> list[str]:
    if not 2 <= len(choices) <= len(MARKS):
        raise _Bad(f"{len(choices)} choices: expected 2 to {len(MARKS)}")
    if not all(choices):
        raise _Bad(f"choice {MARKS[choices.index('')]} is empty")
    return choices


def _answer_index(answer: str, choices: list[str]) -> int:
    """The 0-based index ``answer`` names: a letter (A..), a number (1..), a mark (①..) or the choice text.
    When readings disagree (choices "3", "1", "2" and answer "1") nothing is guessed."""
    n = len(choices)
    readings = {i for i, text in enumerate(choices) if text == answer}
    if answer.upper() in LETTERS[:n]:
        readings.add(LETTERS.index(answer.upper()))
    if answer in MARKS[:n]:
        readings.add(MARKS.index(answer))
    if answer.isascii() and answer.isdigit() and 1 <= int(answer) <= n:
        readings.add(int(answer) - 1)
    if len(readings) == 1:
        return readings.pop()
    listed = ", ".join(f"{MARKS[i]} {text}" for i, text in enumerate(choices))
    if not readings:
        raise _Bad(f"answer {answer!r} is not among the choices ({listed})")
    marks = " or ".join(MARKS[i] for i in sorted(readings))
    raise _Bad(f"answer {answer!r} is ambiguous: it reads as {marks} ({listed})")


# --- shared -----------------------------------------------------------------------------------------------

def _object(record: Any) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise _Bad(f"expected an object, found a {type(record).__name__}")
    return record


def _text(fields: dict[str, Any], name: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _Bad(f"missing '{name}'")
    return value.strip()


def _id(fields: dict[str, Any]) -> str | None:
    value = fields.get("id")
    return str(value) if value not in (None, "") else None
