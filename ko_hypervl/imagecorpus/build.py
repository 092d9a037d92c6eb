"""Render an image-text corpus: charts, tables, exam pages and OCR lines, as a ``datasets.DatasetDict``.

Sample ``i`` of a kind is a pure function of (seed, kind, i): its split, its random state and so its
image and questions do not depend on how many workers ran or in which order, so a build is
reproducible bit for bit and can be extended with more samples without changing the first ones.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..settings import setting, settings_dict
from ..textcorpus.load import SplitSettings, split_of
from .charts import render_chart
from .chartspec import CHART_KINDS, sample_chart_spec
from .exams import exam_questions, render_exam_page
from .fonts import load_font_catalog
from .look import sample_look
from .ocr import corpus_lines, ocr_questions, pick_text, render_ocr
from .paper import capture
from .questions import chart_questions
from .records import KINDS, SPLITS, encode_image, features, make_record

log = logging.getLogger(__name__)
BUILD_INFO = "ko_hypervl_build.json"


@dataclass(frozen=True)
class ImageCorpusSettings:
    out: Path = setting(help="output folder for the dataset (datasets.save_to_disk layout)")
    kind: str = setting("all", help="what to render", choices=(*KINDS, "all"))
    num: int = setting(1000, help="samples per kind")
    seed: int = setting(0, help="random seed: the same seed gives the same dataset")
    workers: int = setting(2, help="rendering processes")
    questions: int = setting(4, help="questions per image (fewer when an image supports fewer)")
    validation_fraction: float = setting(0.1, help="share of samples in validation")
    test_fraction: float = setting(0.1, help="share of samples in test (held-out fonts, words and styles)")
    overwrite: bool = setting(False, help="replace an existing non-empty output folder")

    def __post_init__(self) -> None:
        if self.kind not in (*KINDS, "all"):
            raise ValueError(f"unknown kind {self.kind!r}; choose from {', '.join((*KINDS, 'all'))}")
        if self.num <= 0:
            raise ValueError(f"--num must be a positive number of samples, got {self.num}")
        if self.workers <= 0:
            raise ValueError(f"--workers must be at least 1, got {self.workers}")
        if self.questions <= 0:
            raise ValueError(f"--questions must be at least 1, got {self.questions}")
        if not (0 <= self.validation_fraction < 1 and 0 <= self.test_fraction < 1
                and self.validation_fraction + self.test_fraction < 1):
            raise ValueError("validation and test fractions must be in [0, 1) and sum to less than 1")

    @property
    def kinds(self) -> tuple[str, ...]:
        return KINDS if self.kind == "all" else (self.kind,)


def split_of_sample(seed: int, kind: str, index: int, validation: float, test: float) -> str:
    """The split of sample ``index``: the text corpus' stable-hash rule, keyed by seed, kind and index."""
    return split_of(f"image-sample/{seed}/{kind}", str(index), SplitSettings(validation, test))


def _capture_mode(rng: random.Random, hand: bool) -> str:
    weights = (0.15, 0.35, 0.5) if hand else (0.5, 0.25, 0.25)
    return rng.choices(("clean", "scan", "photo"), weights)[0]


def render_sample(kind: str, index: int, seed: int, split: str, n_questions: int) -> dict:
    """Row ``index`` of ``kind``: the image, its questions and the metadata that recomputes the answers."""
    rng = random.Random(f"{seed}/{kind}/{index}")
    meta: dict = {"seed": seed, "index": index, "split": split}
    if kind in ("charts", "tables"):
        hand = rng.random() < 0.7
        look = sample_look(rng, split, hand)
        spec = sample_chart_spec(rng, split, "table" if kind == "tables" else rng.choice(CHART_KINDS))
        page = render_chart(spec, look, rng)
        qas = chart_questions(spec, rng, n_questions)
        meta.update(spec=spec.to_dict(), fill=look.fill)
        font, style = look.font.name, look.style
    elif kind == "ocr":
        hand = rng.random() < 0.6
        look = sample_look(rng, split, hand)
        sentences = pick_text(rng, split, look, max_lines=rng.choice((1, 1, 3, 5)))
        page, lines = render_ocr(sentences, look, rng)
        qas = ocr_questions(lines, rng)[:n_questions]
        meta.update(lines=lines)
        font, style = look.font.name, look.style
    elif kind == "exams":
        page, items, layout = render_exam_page(rng, split)
        hand = bool(layout["marks"])
        qas = exam_questions(items, layout, rng, max(n_questions, 2))
        meta.update(items=[item.to_dict() for item in items], layout=layout)
        font, style = layout["font"], f"exam-{layout['exam']}-{layout['columns']}col-{layout['paper']}"
    else:
        raise ValueError(f"unknown kind {kind!r}; choose from {', '.join(KINDS)}")
    image, params = capture(page, rng, _capture_mode(rng, hand))
    quality = rng.randint(60, 92) if params["capture"] != "clean" else 95
    meta.update(params, jpeg_quality=quality)
    return make_record(id=f"{kind}-{seed}-{index:06d}", image=encode_image(image, jpeg_quality=quality), kind=kind,
                       qas=qas, font=font, style=style, metadata=meta)


def _render_job(job: tuple) -> dict:
    try:
        return render_sample(*job)
    except Exception as exc:   # name the sample: a worker's bare traceback does not say which one failed
        kind, index, seed, split, _ = job
        raise RuntimeError(f"rendering {kind} sample {index} (seed {seed}, {split}) failed: "
                           f"{type(exc).__name__}: {exc}") from exc


def _generate(jobs: list[tuple], workers: int, desc: str):
    from tqdm.auto import tqdm

    with tqdm(total=len(jobs), desc=desc, unit="img") as bar:
        if workers == 1:
            for job in jobs:
                yield _render_job(job)
                bar.update()
            return
        with mp.get_context("fork").Pool(workers) as pool:   # fork: workers inherit the loaded fonts
            for row in pool.imap(_render_job, jobs, chunksize=4):
                yield row
                bar.update()


def _check_output(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"output path {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ValueError(f"output folder {out} is not empty; pass --overwrite to replace it")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"cannot write to output folder {out}: {exc}") from exc


def build_image_corpus(settings: ImageCorpusSettings):
    """Render every sample the settings ask for and save the DatasetDict to ``settings.out``."""
    from datasets import Dataset, DatasetDict

    load_font_catalog()   # a missing font fails here, before any work
    _check_output(settings.out, settings.overwrite)
    jobs: dict[str, list[tuple]] = {split: [] for split in SPLITS}
    for kind in settings.kinds:
        for i in range(settings.num):
            split = split_of_sample(settings.seed, kind, i, settings.validation_fraction, settings.test_fraction)
            jobs[split].append((kind, i, settings.seed, split, settings.questions))
    started = time.perf_counter()
    if "ocr" in settings.kinds:   # load the text once here; forked workers inherit it
        for split in SPLITS:
            if any(job[0] == "ocr" for job in jobs[split]):
                corpus_lines(split)
    rows: dict[str, list[dict]] = {split: [] for split in SPLITS}
    all_jobs = [job for split in SPLITS for job in jobs[split]]
    for row, job in zip(_generate(all_jobs, settings.workers, "rendering"), all_jobs):
        rows[job[3]].append(row)
    dataset = DatasetDict({split: Dataset.from_list(r, features=features()) for split, r in rows.items() if r})
    staging = settings.out.with_name(settings.out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    dataset.save_to_disk(str(staging))
    elapsed = time.perf_counter() - started
    total = sum(len(v) for v in jobs.values())
    info = {"settings": settings_dict(settings),
            "rows": {split: len(ds) for split, ds in dataset.items()}, "seconds": round(elapsed, 1),
            "samples_per_second": round(total / elapsed, 2)}
    (staging / BUILD_INFO).write_text(json.dumps(info, ensure_ascii=False, indent=1), encoding="utf-8")
    # replace the old output only once the new one is complete, so an interrupted build loses nothing
    for child in list(settings.out.iterdir()):
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    for child in staging.iterdir():
        child.rename(settings.out / child.name)
    staging.rmdir()
    log.info("rendered %d samples in %.1f s (%.1f samples/s) into %s", total, elapsed, total / elapsed, settings.out)
    return dataset, info
