"""Which exam item a question is about, and the source groups exam accuracy is reported by.

Exam questions name their item by its printed number ("5번 문제의 정답은…", "12번의 답은…"); the page's
items are numbered from ``layout.first_number`` in the order the row's ``metadata.items`` lists them, so
item ``k`` is number ``first_number + k``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

# the item number leads every exam question the renderer writes ("13번 문제…", "13번의 답…")
_ITEM_NUMBER = re.compile(r"^\s*(\d+)\s*번")


@dataclass(frozen=True)
class ExamItemRef:
    """What scoring needs of the exam item a question asks about."""

    number: int
    source: str        # kobest/copa/test/786, math/average, chart/value …
    n_choices: int
    answer: int        # 0-based index of the correct choice


def item_number(question: str) -> int | None:
    """The item number a question starts with, or None."""
    match = _ITEM_NUMBER.match(question)
    return int(match.group(1)) if match else None


def exam_item_for(question: str, metadata: dict) -> ExamItemRef | None:
    """The item of an exam page (its row ``metadata``) that ``question`` asks about; None if it names none."""
    items, layout = metadata.get("items"), metadata.get("layout")
    number = item_number(question)
    if not items or not layout or number is None:
        return None
    k = number - int(layout["first_number"])
    if not 0 <= k < len(items):
        return None
    item = items[k]
    return ExamItemRef(number, item["source"], len(item["choices"]), int(item["answer"]))


def row_metadata(metadata_json: str) -> dict:
    """A row's ``metadata`` column as a dict ({} when empty or not a JSON object: imported data may have none)."""
    try:
        value = json.loads(metadata_json or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def source_groups(source: str) -> tuple[str, str]:
    """The family and sub-family of an item source: ``kobest/copa/test/786`` → (``kobest``, ``kobest/copa``).

    Row indices and split names below the second part identify single items, not kinds of item.
    """
    parts = source.split("/")
    return parts[0], "/".join(parts[:2])
