"""Build the committed text corpus from the licensed release (a maintainer step, not run time).

``ko-hypervl corpora text build --source-dir ../shared/data`` reads every source, cleans each line
(NFC, no control characters), keeps only lines with Hangul, removes duplicate lines across the whole
training mix and every training line that also appears in the held-out evaluation sets, subsamples
NSMC so one colloquial source does not dominate, and writes one gzipped JSONL file per source plus a
manifest with licences, attribution, sizes and checksums.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import json
import logging
import shutil
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm.auto import tqdm

from ..settings import setting
from .clean import clean_line, count_eojeol, dedup_key, has_hangul, stable_fraction
from .layout import MANIFEST_NAME, default_corpora_dir
from .sources import SOURCES, Document, Source

log = logging.getLogger(__name__)


@dataclass
class TextCorpusBuildSettings:
    source_dir: Path = setting(help="the licensed Korean text release to build from (e.g. ../shared/data)")
    out_dir: Path = setting(default_corpora_dir(), help="where corpora/text, corpora/eval and the manifest are written")
    nsmc_max_chars: int = setting(4_000_000, help="character budget for NSMC reviews (the rest of the mix is ~7 M)")
    nsmc_reviews_per_film: int = setting(30, help="at most this many reviews of one film, so many films are covered")
    seed: str = setting("ko-hypervl-v1", help="salt of the deterministic sampling hash")


@dataclass
class SourceStats:
    documents: int = 0
    lines: int = 0
    characters: int = 0
    eojeol: int = 0
    dropped_duplicate_lines: int = 0
    dropped_eval_overlap_lines: int = 0
    dropped_non_korean_lines: int = 0


def _write_jsonl_gz(path: Path, records: Iterable[dict]) -> str:
    """Write records reproducibly (fixed gzip mtime, sorted keys); return the file's sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0, filename="") as gz:
        for rec in records:
            gz.write((json.dumps(rec, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8"))
    tmp.replace(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _subsample_nsmc(docs: Iterable[Document], settings: TextCorpusBuildSettings) -> list[Document]:
    """Keep a bounded, deterministic sample of reviews from as many films as the budget allows."""
    films = sorted(docs, key=lambda d: stable_fraction(f"{settings.seed}/film/{d.id}"))
    kept, budget = [], settings.nsmc_max_chars
    for film in films:
        reviews = [r for r in film.text.split("\n") if r.strip()]
        reviews.sort(key=lambda r: stable_fraction(f"{settings.seed}/review/{film.id}/{r}"))
        text = "\n".join(reviews[: settings.nsmc_reviews_per_film])
        if not text:
            continue
        kept.append(Document(film.id, text, film.meta))
        budget -= len(text)
        if budget <= 0:
            break
    return sorted(kept, key=lambda d: int(d.meta["movie_id"]))


def clean_training_document(
    doc: Document, seen: set[str], eval_keys: set[str], stats: SourceStats
) -> Document | None:
    """Clean a document's lines, dropping non-Korean lines, repeats and held-out text; None if empty."""
    lines = []
    for raw in doc.text.split("\n"):
        # web-scraped reviews carry HTML entities (&lt; &#39;): store the characters they stand for
        line = clean_line(html.unescape(raw))
        if not line:
            continue
        if not has_hangul(line):
            stats.dropped_non_korean_lines += 1
            continue
        key = dedup_key(line)
        if key in eval_keys:
            stats.dropped_eval_overlap_lines += 1
            continue
        if key in seen:
            stats.dropped_duplicate_lines += 1
            continue
        seen.add(key)
        lines.append(line)
    if not lines:
        return None
    return Document(doc.id, "\n".join(lines), doc.meta)


def _add(stats: SourceStats, text: str) -> None:
    stats.documents += 1
    stats.lines += text.count("\n") + 1
    stats.characters += len(text)
    stats.eojeol += count_eojeol(text)


def _copy_licences(src: Source, source_dir: Path, out_dir: Path) -> list[str]:
    copied = []
    for rel in src.licence_files:
        target = out_dir / "licenses" / src.name / rel.replace("/", "__")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source_dir / rel, target)
        copied.append(str(target.relative_to(out_dir)))
    return copied


def build_text_corpus(settings: TextCorpusBuildSettings) -> dict:
    """Build every source into ``settings.out_dir`` and return the manifest that was written."""
    source_dir, out_dir = Path(settings.source_dir), Path(settings.out_dir)
    if not source_dir.is_dir():
        raise FileNotFoundError(f"source release not found: {source_dir} (expected the folder with nsmc/, boddari/, …)")
    manifest: dict = {"version": 1, "build_settings": {k: str(v) for k, v in asdict(settings).items()
                                                       if k not in ("source_dir", "out_dir")}, "sources": []}
    eval_keys: set[str] = set()
    # held-out sets first, so training text that repeats them can be dropped
    ordered = [s for s in SOURCES if s.role == "eval"] + [s for s in SOURCES if s.role == "train"]
    seen: set[str] = set()
    for src in tqdm(ordered, desc="sources", unit="source"):
        stats = SourceStats()
        docs: Iterable[Document] = src.reader(source_dir)
        records = []
        if src.role == "eval":
            for doc in docs:
                text = clean_line(doc.text)
                if not text:
                    continue
                eval_keys.add(dedup_key(text))
                _add(stats, text)
                records.append({"id": doc.id, "text": text, **doc.meta})
            rel = f"eval/{src.name}.jsonl.gz"
        else:
            if src.name == "nsmc":
                docs = _subsample_nsmc(docs, settings)
            for doc in docs:
                cleaned = clean_training_document(doc, seen, eval_keys, stats)
                if cleaned is not None:
                    _add(stats, cleaned.text)
                    records.append({"id": cleaned.id, "text": cleaned.text})
            rel = f"text/{src.name}.jsonl.gz"
        sha = _write_jsonl_gz(out_dir / rel, records)
        entry = {
            "name": src.name, "role": src.role, "genre": src.genre, "license": src.license,
            "attribution": src.attribution, "url": src.url, "note": src.note, "file": rel, "sha256": sha,
            "original_files": list(src.files), "licence_files": _copy_licences(src, source_dir, out_dir),
            **asdict(stats),
        }
        manifest["sources"].append(entry)
        log.info("%s: %d documents, %d characters", src.name, stats.documents, stats.characters)
    # keep the manifest in the declared source order
    order = {s.name: i for i, s in enumerate(SOURCES)}
    manifest["sources"].sort(key=lambda e: order[e["name"]])
    (out_dir / MANIFEST_NAME).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return manifest


def summarize_genres(manifest: dict) -> dict[str, int]:
    """Characters per genre of the training mix (to check the balance)."""
    totals: dict[str, int] = defaultdict(int)
    for entry in manifest["sources"]:
        if entry["role"] == "train":
            totals[entry["genre"]] += entry["characters"]
    return dict(totals)
