"""Load the committed Korean text corpus as ``datasets`` objects.

Splits are made per document by a stable hash of ``source/document id``: the same on every machine,
independent of file order, and no document's lines are ever in two splits.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..settings import setting
from .clean import stable_fraction
from .layout import ENV_VAR, MANIFEST_NAME, default_corpora_dir

SPLITS = ("train", "validation", "test")


class CorpusError(RuntimeError):
    """The corpus files are missing, corrupt or inconsistent with their manifest."""


@dataclass(frozen=True)
class SplitSettings:
    validation_fraction: float = setting(0.02, help="share of documents in the validation split")
    test_fraction: float = setting(0.02, help="share of documents in the test split")

    def __post_init__(self) -> None:
        if not (0 <= self.validation_fraction < 1 and 0 <= self.test_fraction < 1
                and self.validation_fraction + self.test_fraction < 1):
            raise ValueError("validation_fraction and test_fraction must be in [0, 1) and sum to less than 1")


def split_of(source: str, doc_id: str, settings: SplitSettings = SplitSettings()) -> str:
    """The split a document belongs to: a pure function of its source and id."""
    x = stable_fraction(f"{source}/{doc_id}")
    if x < settings.test_fraction:
        return "test"
    if x < settings.test_fraction + settings.validation_fraction:
        return "validation"
    return "train"


def read_manifest(corpus_dir: Path | str | None = None) -> tuple[Path, dict]:
    root = Path(corpus_dir) if corpus_dir is not None else default_corpora_dir()
    path = root / MANIFEST_NAME
    if not path.is_file():
        raise CorpusError(
            f"corpus manifest not found: {path}. The text corpus lives in the repository's corpora/ folder; "
            f"run from a checkout (pip install -e .), pass corpus_dir=..., or set {ENV_VAR}."
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        manifest["sources"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CorpusError(f"corpus manifest is corrupt: {path} ({exc}); restore it with `git checkout -- {path}`") from exc
    return root, manifest


def _read_records(root: Path, entry: dict, verify: bool) -> list[dict]:
    path = root / entry["file"]
    if not path.is_file():
        raise CorpusError(f"corpus file missing: {path} (source {entry['name']!r}); restore it with `git checkout -- {path}`")
    data = path.read_bytes()
    if verify and hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise CorpusError(
            f"corpus file corrupt: {path} (sha256 differs from {MANIFEST_NAME}); restore it with `git checkout -- {path}` "
            "or rebuild with `ko-hypervl corpora text build`"
        )
    try:
        lines = gzip.decompress(data).decode("utf-8").splitlines()
        return [json.loads(line) for line in lines]
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorpusError(f"corpus file corrupt: {path} ({exc})") from exc


def _select(manifest: dict, role: str, sources: Sequence[str] | None) -> list[dict]:
    entries = [e for e in manifest["sources"] if e["role"] == role]
    if sources is None:
        return entries
    known = {e["name"]: e for e in entries}
    unknown = [s for s in sources if s not in known]
    if unknown:
        raise ValueError(f"unknown {role} source(s) {unknown}; available: {sorted(known)}")
    return [known[s] for s in sources]


def iter_corpus_documents(
    corpus_dir: Path | str | None = None, sources: Sequence[str] | None = None, verify: bool = True
) -> Iterable[tuple[dict, dict]]:
    """Yield ``(manifest entry, record)`` for every training-mix document, in manifest order."""
    root, manifest = read_manifest(corpus_dir)
    for entry in _select(manifest, "train", sources):
        for rec in _read_records(root, entry, verify):
            yield entry, rec


def load_text_corpus(
    corpus_dir: Path | str | None = None,
    sources: Sequence[str] | None = None,
    split_settings: SplitSettings = SplitSettings(),
    verify: bool = True,
):
    """The training text mix as a ``DatasetDict`` with train/validation/test splits.

    Columns: ``id``, ``source``, ``genre``, ``text`` (one document per row; lines joined by newlines).
    """
    from datasets import Dataset, DatasetDict

    columns = {split: {"id": [], "source": [], "genre": [], "text": []} for split in SPLITS}
    for entry, rec in iter_corpus_documents(corpus_dir, sources, verify):
        col = columns[split_of(entry["name"], rec["id"], split_settings)]
        col["id"].append(rec["id"])
        col["source"].append(entry["name"])
        col["genre"].append(entry["genre"])
        col["text"].append(rec["text"])
    return DatasetDict({split: Dataset.from_dict(cols) for split, cols in columns.items()})


def load_eval_text(corpus_dir: Path | str | None = None, sources: Sequence[str] | None = None, verify: bool = True):
    """The held-out evaluation sets (never in training), one ``Dataset`` per source.

    Every set has ``id`` and ``text``; ``ud_korean`` adds ``treebank`` and ``words`` (form, gold lemma
    split with ``+``, xpos per eojeol), ``korean_ambiguity`` adds ``surface``/``answer``, ``tatoeba`` adds
    ``english``/``attribution`` (required by its licence), ``klue_dev`` adds ``task``.
    """
    from datasets import Dataset, DatasetDict

    root, manifest = read_manifest(corpus_dir)
    return DatasetDict(
        {e["name"]: Dataset.from_list(_read_records(root, e, verify)) for e in _select(manifest, "eval", sources)}
    )
