"""A corpus with the reading head's reading of every image, for a model with a copy head to train on.

The reading head reads at full resolution whatever the VRC later picks, and its encoder is fixed once the
head is fitted, so an image's reading is the same at every step: it is read once, into a ``reading``
column, instead of at every visit. The instruction stages put it into the first question
(``processing.reading_prompt``) exactly as ``KoHyperVL.ask`` does at inference.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from ..checkpoint import staged_directory
from ..imagecorpus.records import SPLITS, load_split
from ..settings import setting
from .data import READING_COLUMN

READINGS_SUMMARY = "ko_hypervl_readings.json"    # beside the read corpus: what read it, and how long it took

log = logging.getLogger(__name__)


@dataclass
class ReadingsSettings:
    model: Path = setting(help="checkpoint whose reading head (and reading LM, where fitted) reads the images")
    data: Path = setting(help="image-text dataset folder to read")
    out: Path = setting(help="folder for the dataset with its `reading` column")
    kinds: list[str] = setting([], help="only rows of these kinds (default all)")
    splits: list[str] = setting(list(SPLITS), help="splits to read and write")
    max_rows: int = setting(0, help="read at most this many rows per split (0: all), the first ones")


def add_readings(settings: ReadingsSettings, progress: bool = True) -> dict:
    """Write ``settings.data`` with a ``reading`` column (the head's reading of each image) to ``settings.out``."""
    from datasets import DatasetDict
    from tqdm.auto import tqdm

    from ..inference import KoHyperVL
    from ..processing.ctc_decode import decoder_name

    if (settings.out / "dataset_dict.json").is_file():
        raise FileExistsError(f"{settings.out} holds a dataset already; choose a new --out")
    vlm = KoHyperVL.load(settings.model)
    spec = vlm.model.reading_head_spec()        # a clear error before any reading when there is no valid head
    started = time.perf_counter()
    splits = {}
    for split in settings.splits:
        rows = load_split(settings.data, split, settings.kinds or None)
        if settings.max_rows:
            rows = rows.select(range(min(settings.max_rows, len(rows))))
        texts = [vlm.read(image)[0].text
                 for image in tqdm(rows["image"], desc=f"reading {split}", unit="img", disable=not progress)]
        splits[split] = rows.add_column(READING_COLUMN, texts)
    summary = {"model": str(settings.model), "data": str(settings.data), "branch": spec.branch,
               "decoder": decoder_name(vlm.reading_lm),
               "rows": {split: len(rows) for split, rows in splits.items()},
               "seconds": round(time.perf_counter() - started, 1)}
    with staged_directory(settings.out) as partial:     # a kill while saving leaves no half-written corpus
        DatasetDict(splits).save_to_disk(str(partial))
        (partial / READINGS_SUMMARY).write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    log.info("read %s rows in %.0f s into %s", summary["rows"], summary["seconds"], settings.out)
    return summary
