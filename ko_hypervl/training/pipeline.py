"""The whole recipe, end to end and resumable: model init, image corpus, LM, (reading,) alignment, instruction
tuning, DCL, VRC, then one self-contained checkpoint (and, when asked, its evaluation and model card).

Each step writes its output under ``<out>/<step>`` and is skipped when that output is complete, and each
training stage resumes from its own last checkpoint, so after a kill the same command carries on.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..checkpoint import TRAINING_SUMMARY, save_checkpoint, staged_directory
from ..model.build import ModelBuildSettings, build_model
from ..settings import parse_setting, setting
from .checkpointing import write_json_atomic
from .copying import CopySettings
from .reading import READING_ORDERS, ReadSettings, check_blank_prior, check_reading_order
from .readings import READINGS_SUMMARY, ReadingsSettings, add_readings
from .run import FINAL, hardware, stage_history, train_copy, train_lm, train_read, train_vision_language
from .settings import TrainSettings
from .stages import AlignSettings, DCLSettings, LMSettings, SFTSettings
from .vrc import VRCSettings, train_vrc

log = logging.getLogger(__name__)
STAGES = ("copy", "lm", "read", "align", "sft", "dcl", "vrc")
# run only by recipes that list them in ``train``, or with --copy-steps / --read-steps
OPTIONAL_STAGES = {"copy", "read"}
# the reading stage's loop settings when a recipe has none (docs/ablations/reading_pretraining.md's runs)
READ_TRAIN = dict(steps=1500, batch_size=16, micro_batch_size=16, learning_rate=1e-3, warmup_steps=100, save_every=250)
# the copy stage's loop when a recipe has none: docs/ablations/copying.md's run (batch 64 at a constant 1e-3; the
# last pool is learnt while the rate would otherwise have decayed)
COPY_TRAIN = dict(steps=2500, batch_size=64, micro_batch_size=64, learning_rate=1e-3, min_lr_ratio=1.0,
                  warmup_steps=20, save_every=200)
OPTIONAL_TRAIN = {"copy": COPY_TRAIN, "read": READ_TRAIN}
# after the copy stage the LM stage repeats this share of its blocks' openings, so text training keeps the skill:
# plain text steps after the copy stage took the copy gain from +3.70 to +0.035 nats/token (runs/tr6/lm/final),
# 300 steps at 0.5 kept +5.34 (docs/ablations/copying.md §3); `--override lm.copy_share=…` changes it
COPY_STAGE_LM_SHARE = 0.5
STAGE_SETTINGS = {"lm": LMSettings, "align": AlignSettings, "sft": SFTSettings, "dcl": DCLSettings}
# what --override may change per stage: its loop (TrainSettings; vrc has none) and its own settings
OVERRIDABLE = {"copy": (TrainSettings, CopySettings), "lm": (TrainSettings, LMSettings),
               "read": (TrainSettings, ReadSettings), "align": (TrainSettings, AlignSettings),
               "sft": (TrainSettings, SFTSettings), "dcl": (TrainSettings, DCLSettings), "vrc": (VRCSettings,)}
# set by the pipeline itself (run folders, the stage chain, its --seed and --progress)
PIPELINE_OWNED = {"out", "init", "data", "seed", "progress"}
# after a reading stage the encoders read; the stages after it start with untrained projectors whose large first
# gradients flow into the encoders (aligning at the full rate after a reading run, both branches' visual tokens
# collapsed to one vector within 15 steps: docs/ablations/reading_pretraining.md), so by default the encoders
# train at a tenth of each stage's rate
READ_VISION_LR_SCALE = 0.1


@dataclass(frozen=True)
class Recipe:
    """Sizes of one pipeline run: the model, the image corpus, and per stage its loop and stage settings."""

    model: dict
    images_per_kind: int
    train: dict                     # per stage: TrainSettings fields
    stage: dict                     # per stage: its stage settings' fields
    description: str = ""
    sizing: str = ""                # why these sizes, with the measurements behind them (the model card's)
    read_lines: int = 0             # OCR line images rendered for the reading stage alone (0: it reads the corpus's)
    freeze_vision: bool = False     # keep both encoders fixed in align, sft and dcl (after the reading stage)


SMOKE_MODEL = dict(tile_size=56, patch_size=14, vit_hidden_size=32, vit_layers=1, small_vit_hidden_size=16,
                   small_vit_layers=1, small_image_scale=0.5, lm_hidden_size=64, lm_layers=2, lm_heads=2,
                   lm_kv_heads=1, lm_intermediate_size=128, max_positions=1024, max_tiles=6)
# The bundled model, sized by measurement on the 2-core CPU (docs/model_sizes.md): 112-px tiles, up to 20 of
# them (a 560×448 full resolution), a 128-wide 4-layer large ViT, a 64-wide 2-layer small one that sees the
# image at half the side lengths (a quarter of the tiles) with pixel shuffle 4 (a quarter of the tokens per
# tile), so it answers about 2× faster, and a 256-wide 4-layer LM.
TINY_MODEL = dict(tile_size=112, patch_size=14, vit_hidden_size=128, vit_layers=4, small_vit_hidden_size=64,
                  small_vit_layers=2, pixel_shuffle_factor=2, small_pixel_shuffle_factor=4, small_image_scale=0.5,
                  lm_hidden_size=256, lm_layers=4, lm_heads=4, lm_kv_heads=2, lm_intermediate_size=704,
                  max_positions=2048, max_tiles=20)
TINY_TRAIN = {"lm": dict(steps=100, batch_size=8, micro_batch_size=8, learning_rate=2e-3, warmup_steps=10,
                         save_every=25),
              "align": dict(steps=120, batch_size=16, micro_batch_size=8, learning_rate=2e-3, warmup_steps=12,
                            save_every=20),
              "sft": dict(steps=1000, batch_size=16, micro_batch_size=8, learning_rate=1e-3, warmup_steps=50,
                          save_every=50),
              "dcl": dict(steps=100, batch_size=16, micro_batch_size=8, learning_rate=3e-4, warmup_steps=10,
                          save_every=25)}
TINY_STAGE = {"lm": dict(block_size=256), "align": {}, "sft": {}, "dcl": {}, "vrc": dict(max_images=120)}
# tiny with a reading stage first (docs/ablations/reading_pretraining.md): 128-px tiles of 16-px patches through a
# 16-32-64-128 convolutional stem (a 8×8 grid per tile), which learn to read 5,000 single OCR lines with CTC and
# then stay fixed, so the LM learns to use encoders that already read instead of ones that flatten
NARROW_STEM = (16, 32, 64, 128)
TINY_READ_MODEL = {**TINY_MODEL, "tile_size": 128, "patch_size": 16, "vit_stem_channels": NARROW_STEM,
                   "small_vit_stem_channels": NARROW_STEM}
RECIPES = {
    "smoke": Recipe(
        model=SMOKE_MODEL, images_per_kind=10,
        train={"copy": dict(steps=4, batch_size=4, micro_batch_size=4, warmup_steps=1, save_every=2),
               "lm": dict(steps=12, batch_size=4, micro_batch_size=4, warmup_steps=2, save_every=6),
               "read": dict(steps=4, batch_size=4, micro_batch_size=4, warmup_steps=1, save_every=2),
               "align": dict(steps=6, batch_size=4, micro_batch_size=4, warmup_steps=1, save_every=3),
               "sft": dict(steps=6, batch_size=4, micro_batch_size=4, warmup_steps=1, save_every=3),
               "dcl": dict(steps=6, batch_size=4, micro_batch_size=4, warmup_steps=1, save_every=3)},
        stage={"copy": dict(pools=(16,), pool_steps=(2,), sampled_vocab=16, max_span=16),
               "lm": dict(block_size=128, max_tokens=40_000), "read": dict(eval_rows=4), "align": dict(max_length=1024),
               "sft": dict(max_length=1024), "dcl": dict(max_length=1024),
               "vrc": dict(max_images=12, fit_steps=20, fit_batch_size=8, tolerances=[0.0, 0.05, 0.2, 1.0])},
        description="a minutes-long run of every stage on a toy-sized model, for tests and CI",
    ),
    "tiny": Recipe(
        model=TINY_MODEL, images_per_kind=1000,
        train=TINY_TRAIN, stage=TINY_STAGE,
        description="the bundled ko-hypervl-tiny: sized to train in about two hours on a 2-core CPU",
        sizing=(
            "Sizes were chosen by timing one training step per candidate on the 2-core CPU "
            "(`training/size_bench.py`, table in docs/model_sizes.md). The built-in default (16 tiles of 224 px, a "
            "192-wide 6-layer ViT) trains at 0.15 samples/s, about 20× too slow to see more than a few thousand "
            "samples in the 3 hours the recipe may take; 112-px tiles with a 128-wide 4-layer large ViT and a "
            "64-wide 2-layer small one train at 2.75–3.8 samples/s. Up to 20 tiles (251k pixels) instead of 12 "
            "gives 67% more pixels for 14% more time per step, and handwriting needs the pixels. The small branch "
            "sees the image at half the side lengths (a quarter of the tiles) with pixel shuffle 4 (a quarter of "
            "the tokens per tile): with full-resolution tiles it answered only 1.7× faster than the large branch, "
            "because image preparation and generation overhead are shared. The LM stays 256 wide × 4 layers: its "
            "32k-token output layer, not depth, dominates its cost (617 tokens/s in training)."
        ),
    ),
    "tiny-read": Recipe(
        model=TINY_READ_MODEL, images_per_kind=1000, read_lines=5000, freeze_vision=True,
        train={**TINY_TRAIN, "read": {**READ_TRAIN, "steps": 1000}},
        stage={**TINY_STAGE, "read": dict(blank_prior=0.95, order="columns"),
               "sft": dict(answer_weighting="sqrt"), "dcl": dict(answer_weighting="sqrt"),
               "vrc": {**TINY_STAGE["vrc"], "tolerance": 0.0}},
        description="tiny with a reading stage: the encoders learn to read OCR lines first, then stay fixed; "
                    "about 2.2 hours of training on a 2-core CPU",
        sizing=(
            "The LM and the large and small ViTs are tiny's. Without a reading stage the LM never used the image "
            "(the bundled tiny model's images save 0.000 nats per answer token; with the encoders at 0.1x or fixed, "
            "+0.001 and +0.002), so the encoders first learn to read 5,000 rendered OCR lines (CTC, 1,000 steps) "
            "and then stay fixed. 128-px tiles of 16-px patches through a 16-32-64-128 convolutional stem read in "
            "59% of the time of a 32-64-128-128 stem (2.25 s against 3.8 s per reading step; CER 0.63 against "
            "0.52 on held-out lines), and fixed encoders need no backward pass. Instruction tuning takes tiny's 1,000 "
            "steps (400 cost 0.15 nats of answer loss) with each answer's tokens weighed 1/√(its length): under "
            "the plain token mean the tables and transcriptions, half of the answer tokens, drowned the short "
            "answers that most questions have. The VRC ships its fit at ε = 0 (a scale must keep full "
            "resolution's answer loss and right answers): at ε = 0.05 nearly every image got the smallest scale, "
            "and on the validation rows auto mode lost more than half of the OCR answers full resolution gets "
            "(8.2% against 9.6% in all); at ε = 0 it keeps them (10.2%) with 57.6% fewer visual tokens "
            "(docs/ablations/reading_pretraining.md)."
        ),
    ),
}


@dataclass
class PipelineSettings:
    out: Path = setting(help="run folder; rerun the same command to resume after an interruption")
    recipe: str = setting("tiny", help="sizes of the run", choices=tuple(RECIPES))
    smoke: bool = setting(False, help="shorthand for --recipe smoke (every stage in a few minutes)")
    steps_scale: float = setting(1.0, help="multiply every stage's steps (e.g. 0.1 for a quick look)")
    images_per_kind: int = setting(0, help="rendered images per kind (0: the recipe's)")
    data: Path | None = setting(None, help="use this rendered image corpus instead of rendering one")
    copy_steps: int = setting(0, help="first teach the fresh LM to copy from its context for this many steps "
                                      "(random spans from a growing token pool, batch 64: 0.8 s a step on the 2-core "
                                      "CPU; docs/ablations/copying.md), then keep the skill with the LM stage's "
                                      "--copy-share 0.5; 0: only when the recipe has the stage")
    read_steps: int = setting(0, help="run the reading stage for this many steps between lm and align "
                                      "(0: only when the recipe has it, for its steps)")
    read_lines: int = setting(0, help="render this many OCR line images for the reading stage alone "
                                      "(0: the recipe's; none there: it reads the main corpus's lines)")
    read_blank_prior: float | None = setting(None, help="the reading stage's --blank-prior (its CTC head's starting "
                                                        "P(blank); default: the recipe's, else 0, uniform)")
    read_order: str | None = setting(None, help="the reading stage's --order (rows: every line; columns: single "
                                                "lines, each patch column pooled over the height; default: the "
                                                "recipe's, else rows)", choices=READING_ORDERS)
    vision_lr_scale: float = setting(0.0, help="the encoders' learning rate in align, sft and dcl as a share of "
                                               "each stage's (0: 1, or 0.1 after a reading stage, which it protects)")
    freeze_vision: bool = setting(False, help="keep both encoders fixed in align, sft and dcl (after a reading "
                                              "stage they already read; no backward pass through them makes each step "
                                              "cheaper, and fixed encoders cannot flatten); recipes with a reading "
                                              "stage do this unless --vision-lr-scale is given")
    tile_size: int = setting(0, help="tile side of both built-in encoders (0: the recipe's)")
    patch_size: int = setting(0, help="patch side of both built-in encoders (0: the recipe's; e.g. 16 with "
                                      "--tile-size 128 and a four-width stem, which pools to the whole patch)")
    vit_stem_channels: tuple[int, ...] = setting((), help="give both built-in encoders a convolutional stem of "
                                                           "these widths (e.g. 32 64 128 128; none: the recipe's patch "
                                                           "projection)")
    workers: int = setting(2, help="rendering processes")
    seed: int = setting(0, help="seed of the data, the weights and the data order")
    override: tuple[str, ...] = setting((), help="change a stage's setting over the recipe's: STAGE.FIELD=VALUE, "
                                                 "e.g. lm.steps=20000 lm.batch_size=64 lm.micro_batch_size=64 "
                                                 "lm.copy_share=0.5 lm.precision=bf16 (a GPU's longer LM pretraining); "
                                                 "FIELD is one of `ko-hypervl train STAGE`'s flags, in snake case; "
                                                 "applied after --steps-scale")
    copy_head: bool = setting(False, help="after the reading stage, give the model a copy head and read the corpus's "
                                          "train and validation images with the reading head and its reading LM "
                                          "(`ko-hypervl model copy-head`, `ko-hypervl corpora read`): the later "
                                          "stages train "
                                          "with each image's reading in its first question, which the copy head "
                                          "copies into the answers (docs/ablations/copying.md §8)")
    reading_lm: bool = setting(True, help="where the final model keeps a valid reading head, fit its letter LM and "
                                          "choose its decoding on validation OCR rows (`ko-hypervl model "
                                          "reading-lm`, once; about 5 minutes on 2 cores)")
    evaluate: bool = setting(False, help="run `ko-hypervl eval` on the final model and write its model card")
    progress: bool = setting(True, help="show progress bars")

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.smoke:
            self.recipe = "smoke"
        if self.recipe not in RECIPES:
            raise ValueError(f"unknown recipe {self.recipe!r}; choose from {', '.join(RECIPES)}")
        if self.steps_scale <= 0:
            raise ValueError("--steps-scale must be positive")
        if self.read_steps < 0 or self.read_lines < 0 or self.copy_steps < 0:
            raise ValueError("--copy-steps, --read-steps and --read-lines cannot be negative")
        if not 0 <= self.vision_lr_scale <= 1:
            raise ValueError(f"--vision-lr-scale must be in [0, 1] (0: the default), got {self.vision_lr_scale}")
        if self.freeze_vision and self.vision_lr_scale:
            raise ValueError("--freeze-vision keeps the encoders fixed, so --vision-lr-scale has nothing to scale: "
                             "give one of them")
        if self.copy_head and self.vision_lr_scale:
            raise ValueError("--copy-head keeps the encoders fixed after the reading stage (the readings the later "
                             "stages train on come from them, and ask reads with them): drop --vision-lr-scale")
        if self.tile_size < 0 or self.patch_size < 0:
            raise ValueError("--tile-size and --patch-size cannot be negative")
        # checked here, not when the reading stage starts hours later, after the lm stage
        if self.read_blank_prior is not None:
            check_blank_prior(self.read_blank_prior, "--read-blank-prior")
        if self.read_order is not None:
            check_reading_order(self.read_order, "--read-order")
        _ = self.overrides   # parsed now, so a typo stops the run before hours of earlier stages
        for flag, value in (("--copy-head", self.copy_head), ("--read-lines", self.read_lines),
                            ("--read-blank-prior", self.read_blank_prior is not None),
                            ("--read-order", self.read_order is not None)):
            if value and not self.runs_stage("read"):
                raise ValueError(f"{flag} is for the reading stage, which recipe {self.recipe!r} does not run: "
                                 "add --read-steps")

    @property
    def overrides(self) -> dict[str, dict[type, dict]]:
        """``--override`` as {stage: {settings class: {field: typed value}}}."""
        parsed: dict[str, dict[type, dict]] = {}
        for item in self.override:
            target, sep, text = item.partition("=")
            stage, dot, name = target.partition(".")
            if not (sep and dot and stage and name):
                raise ValueError(f"--override {item!r}: write STAGE.FIELD=VALUE, e.g. lm.steps=20000")
            if stage not in OVERRIDABLE:
                raise ValueError(f"--override {item!r}: no stage {stage!r}; the stages are {', '.join(OVERRIDABLE)}")
            if not self.runs_stage(stage):
                raise ValueError(f"--override {item!r}: recipe {self.recipe!r} does not run the {stage} stage")
            if name in PIPELINE_OWNED:
                raise ValueError(f"--override {item!r}: the pipeline sets {name} itself")
            owner = next((cls for cls in OVERRIDABLE[stage] if name in cls.__dataclass_fields__), None)
            if owner is None:
                fields = sorted({f for cls in OVERRIDABLE[stage] for f in cls.__dataclass_fields__} - PIPELINE_OWNED)
                raise ValueError(f"--override {item!r}: the {stage} stage has no setting {name!r}; it has "
                                 f"{', '.join(fields)}")
            parsed.setdefault(stage, {}).setdefault(owner, {})[name] = parse_setting(owner, name, text)
        return parsed

    def stage_overrides(self, stage: str, cls: type) -> dict:
        return self.overrides.get(stage, {}).get(cls, {})

    @property
    def encoder_lr_scale(self) -> float:
        """The vision encoders' learning-rate share in the stages after the reading stage's place."""
        return self.vision_lr_scale or (READ_VISION_LR_SCALE if self.runs_stage("read") else 1.0)

    @property
    def freezes_vision(self) -> bool:
        """Whether align, sft and dcl keep the encoders fixed: --freeze-vision or --copy-head, or a recipe that does
        unless --vision-lr-scale asks to train them."""
        return (self.freeze_vision or self.copy_head
                or (RECIPES[self.recipe].freeze_vision and not self.vision_lr_scale))

    @property
    def encoder_settings(self) -> dict:
        """How align, sft and dcl treat the vision encoders: fixed, or trained at a share of each stage's rate."""
        return {"train_vision": False} if self.freezes_vision else {"vision_lr_scale": self.encoder_lr_scale}

    @property
    def read_line_count(self) -> int:
        """OCR line images rendered for the reading stage alone (0: it reads the main corpus's lines)."""
        return (self.read_lines or RECIPES[self.recipe].read_lines) if self.runs_stage("read") else 0

    def runs_stage(self, stage: str) -> bool:
        recipe = RECIPES[self.recipe]
        return (stage not in OPTIONAL_STAGES or stage in recipe.train or (stage == "read" and self.read_steps > 0)
                or (stage == "copy" and self.copy_steps > 0))


def _done(path: Path) -> bool:
    return (path / "config.json").is_file() and (path / "model.safetensors").is_file()


def model_settings(recipe: Recipe, settings: PipelineSettings) -> dict:
    """The ``ModelBuildSettings`` fields of the run: the recipe's sizes, the seed, and the pipeline's encoder
    flags (tile and patch sides, stem), if any."""
    values = {**recipe.model, "seed": settings.seed}
    values.update({name: getattr(settings, name) for name in ("tile_size", "patch_size") if getattr(settings, name)})
    if settings.vit_stem_channels:
        values.update(vit_stem_channels=tuple(settings.vit_stem_channels),
                      small_vit_stem_channels=tuple(settings.vit_stem_channels))
    return values


def _check_same_model(path: Path, model: dict) -> None:
    """A resumed run must build the model it started with: its stages' checkpoints hold that model."""
    if not path.is_file():
        return
    before = json.loads(path.read_text(encoding="utf-8")).get("model")
    now = json.loads(json.dumps(model))      # as pipeline.json holds it (tuples are lists there)
    if before is not None and before != now:
        changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
        raise ValueError(f"{path.parent} was started with other model settings ({', '.join(changed)}); "
                         "rerun it with the same flags, or start a new --out")


def _init_model(out: Path, model_build: dict) -> Path:
    target = out / "init"
    if not _done(target):
        model, processor = build_model(ModelBuildSettings(**model_build))
        with staged_directory(target) as partial:
            save_checkpoint(model, processor, partial)
    return target


def _render_once(target: Path, **corpus) -> Path:
    """Render an image corpus into ``target`` unless a complete one is there (a build replaces the folder only
    when it is complete, so an interrupted one is rendered again)."""
    from ..imagecorpus import ImageCorpusSettings, build_image_corpus

    if not (target / "dataset_dict.json").is_file():
        build_image_corpus(ImageCorpusSettings(out=target, overwrite=True, **corpus))
    return target


def _image_corpus(recipe: Recipe, settings: PipelineSettings) -> Path:
    if settings.data is not None:
        return settings.data
    return _render_once(settings.out / "data", num=settings.images_per_kind or recipe.images_per_kind,
                        seed=settings.seed, workers=settings.workers)


def _read_corpus(settings: PipelineSettings) -> Path | None:
    """The OCR-only corpus of ``--read-lines`` images (None: the reading stage reads the main corpus).

    Same seed as the main corpus: a line index renders the same image into the same split in both, so the
    reading stage never trains on the main corpus's validation or test lines.
    """
    if not settings.read_line_count:
        return None
    return _render_once(settings.out / "read-data", kind="ocr", num=settings.read_line_count, seed=settings.seed,
                        workers=settings.workers)


def _read_settings(recipe: Recipe, settings: PipelineSettings, init: Path, data: Path) -> ReadSettings:
    """The reading stage's settings: the recipe's, with the pipeline's --read-* flags over them."""
    flags = {"blank_prior": settings.read_blank_prior, "order": settings.read_order}
    values = {**recipe.stage.get("read", {}), **{k: v for k, v in flags.items() if v is not None},
              **settings.stage_overrides("read", ReadSettings)}
    return ReadSettings(init=init, data=_read_corpus(settings) or data, **values)


def _stage_settings(recipe: Recipe, stage: str, settings: PipelineSettings, init: Path, data: Path):
    """Align's, sft's or dcl's settings: the recipe's, with the pipeline's treatment of the encoders."""
    cls = STAGE_SETTINGS[stage]
    return cls(init=init, data=data, **{**settings.encoder_settings, **recipe.stage[stage],
                                        **settings.stage_overrides(stage, cls)})


def _copy_settings(recipe: Recipe, settings: PipelineSettings, init: Path) -> CopySettings:
    return CopySettings(init=init, **{**recipe.stage.get("copy", {}), **settings.stage_overrides("copy", CopySettings)})


def _lm_settings(recipe: Recipe, settings: PipelineSettings, init: Path) -> LMSettings:
    keep_copying = {"copy_share": COPY_STAGE_LM_SHARE} if settings.runs_stage("copy") else {}
    return LMSettings(init=init, **{**keep_copying, **recipe.stage["lm"], **settings.stage_overrides("lm", LMSettings)})


def _vrc_settings(recipe: Recipe, settings: PipelineSettings, init: Path, data: Path) -> VRCSettings:
    return VRCSettings(out=settings.out / "vrc", init=init, data=data, seed=settings.seed, progress=settings.progress,
                       **{**recipe.stage["vrc"], **settings.stage_overrides("vrc", VRCSettings)})


def _train_settings(recipe: Recipe, stage: str, settings: PipelineSettings) -> TrainSettings:
    values = dict(recipe.train[stage] if stage in recipe.train else OPTIONAL_TRAIN[stage])
    flag_steps = {"read": settings.read_steps, "copy": settings.copy_steps}.get(stage)
    if flag_steps:
        values["steps"] = flag_steps
        values["warmup_steps"] = min(values.get("warmup_steps", 10), flag_steps // 10)
    values["steps"] = max(1, round(values["steps"] * settings.steps_scale))
    values.update(settings.stage_overrides(stage, TrainSettings))
    values["save_every"] = min(values.get("save_every", 50), values["steps"])
    return TrainSettings(out=settings.out / stage, seed=settings.seed, progress=settings.progress, **values)


def run_pipeline(settings: PipelineSettings) -> Path:
    """Run (or resume) every step; returns ``<out>/model``, the self-contained final checkpoint."""
    from accelerate import PartialState

    # under `accelerate launch` every process runs this; one prepares files, the training stages use all
    state = PartialState()
    recipe = RECIPES[settings.recipe]
    started = time.perf_counter()
    if state.is_main_process:
        settings.out.mkdir(parents=True, exist_ok=True)
        model = model_settings(recipe, settings)
        _check_same_model(settings.out / "pipeline.json", model)
        # built before the run's record is written: sizes the model refuses (a tile that is no multiple of the
        # patch, a grid the pixel shuffle cannot fold) leave no record that a corrected rerun would clash with
        _init_model(settings.out, model)
        write_json_atomic(settings.out / "pipeline.json",
                          {"settings": vars(settings), "recipe": vars(recipe), "model": model})
        _image_corpus(recipe, settings)
        _read_corpus(settings)
    state.wait_for_everyone()
    model_dir = settings.out / "init"
    data = settings.data or settings.out / "data"
    for stage in STAGES:
        final = settings.out / stage / FINAL
        if not settings.runs_stage(stage):
            continue
        if _done(final):
            log.info("%s: already done (%s)", stage, final)
        elif stage == "vrc":   # one process: the labelling pass and the predictor are small
            if state.is_main_process:
                train_vrc(_vrc_settings(recipe, settings, model_dir, data))
            state.wait_for_everyone()
        elif stage == "copy":
            train_copy(_train_settings(recipe, stage, settings), _copy_settings(recipe, settings, model_dir))
        elif stage == "lm":
            train_lm(_train_settings(recipe, stage, settings), _lm_settings(recipe, settings, model_dir))
        elif stage == "read":
            train_read(_train_settings(recipe, stage, settings), _read_settings(recipe, settings, model_dir, data))
        else:
            train_vision_language(stage, _train_settings(recipe, stage, settings),
                                  _stage_settings(recipe, stage, settings, model_dir, data))
        model_dir = final
        if stage == "read" and settings.copy_head:
            if state.is_main_process:
                _prepare_copying(model_dir, data, settings)
            state.wait_for_everyone()
            model_dir, data = settings.out / COPY_HEAD_DIR, settings.out / READ_DATA_DIR
    if not state.is_main_process:
        return settings.out / "model"
    out = settings.out / "model"
    history = stage_history(model_dir)
    with staged_directory(out) as partial:
        shutil.copytree(model_dir, partial, dirs_exist_ok=True)
        if settings.reading_lm:
            _add_reading_lm(partial, data, settings)
        preparation = preparation_steps(settings.out)
        summary = {"recipe": settings.recipe, "recipe_description": recipe.description, "sizing": recipe.sizing,
                   "stages": history, **({"preparation": preparation} if preparation else {}),
                   "hardware": hardware(),
                   "total_seconds": round(sum(s.get("seconds", 0) for s in history + preparation), 1),
                   "this_invocation_seconds": round(time.perf_counter() - started, 1)}
        (partial / TRAINING_SUMMARY).write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
    (settings.out / "throughput.md").write_text(throughput_table(history), encoding="utf-8")
    log.info("pipeline done: %s\n%s", out, throughput_table(history))
    if settings.evaluate:
        _evaluate(out, settings)
    return out


COPY_HEAD_DIR = "copy-head"     # the reading stage's model with its reading LM and a copy head
READ_DATA_DIR = "data-read"     # the corpus with each image's reading


def _prepare_copying(read_model: Path, data: Path, settings: PipelineSettings) -> None:
    """The reading stage's model with a copy head and its reading LM (``<out>/copy-head``), and the corpus read by
    that head (``<out>/data-read``), for the later stages; each kept once made, so a rerun resumes after them."""
    from ..checkpoint import add_copy_head
    from ..processing.reading_lm import LM_FILE

    model_dir = settings.out / COPY_HEAD_DIR
    if not _done(model_dir):
        add_copy_head(read_model, model_dir)
    if not (model_dir / LM_FILE).is_file():
        _add_reading_lm(model_dir, data, settings)
    if not (settings.out / READ_DATA_DIR / "dataset_dict.json").is_file():
        # the stages train on the train split and the VRC is chosen on validation; the evaluation reads its own
        # held-out rows, so reading the test split would only spend time (a tenth of the corpus)
        add_readings(ReadingsSettings(model=model_dir, data=data, out=settings.out / READ_DATA_DIR,
                                      splits=["train", "validation"]), progress=settings.progress)


def _add_reading_lm(model_dir: Path, data: Path, settings: PipelineSettings) -> None:
    """Put the reading LM into the final checkpoint: fitted once into ``<out>/reading_lm``, then copied."""
    from ..processing.reading_lm import LM_FILE
    from .reading_lm import ReadingLMSettings, fit_and_tune

    kept = settings.out / "reading_lm" / LM_FILE
    if not kept.is_file():
        if not json.loads((model_dir / "config.json").read_text(encoding="utf-8")).get("reading_head"):
            return
        try:
            record = fit_and_tune(ReadingLMSettings(model=str(model_dir), data=data, seed=settings.seed))
        except ValueError as exc:    # a head whose encoder a later stage trained reads nothing worth decoding
            log.info("no reading LM: %s", exc)
            return
        log.info("reading LM: validation CER %.4f by best path, %.4f with the LM (alpha %g, beta %g)",
                 record["greedy_cer"], record["cer"], record["alpha"], record["beta"])
        kept.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(kept.parent / READING_LM_TIME, {"seconds": record["seconds"]})
        shutil.copy2(model_dir / LM_FILE, kept.with_suffix(".partial"))
        os.replace(kept.with_suffix(".partial"), kept)
    shutil.copy2(kept, model_dir / LM_FILE)


READING_LM_TIME = "seconds.json"     # in <out>/reading_lm: what fitting and tuning the reading LM took


def preparation_steps(out: Path) -> list[dict]:
    """The work of a run between and after its stages that uses a trained model, and so counts in its time as the
    stages do (rendering the images does not): fitting the reading LM, and reading the corpus for a copy head."""
    steps = []
    lm_time = out / "reading_lm" / READING_LM_TIME
    if lm_time.is_file():
        steps.append({"step": "reading LM (fit, and decoding chosen on validation lines)",
                      "seconds": json.loads(lm_time.read_text(encoding="utf-8"))["seconds"]})
    readings = out / READ_DATA_DIR / READINGS_SUMMARY
    if readings.is_file():
        record = json.loads(readings.read_text(encoding="utf-8"))
        steps.append({"step": f"reading the corpus ({sum(record['rows'].values())} images)",
                      "seconds": record["seconds"]})
    return steps


def throughput_table(history: list[dict]) -> str:
    lines = ["| stage | steps | seconds | samples/s | tokens/s | target tokens/s | final loss |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for s in history:
        loss = s.get("final_loss")
        lines.append(f"| {s['stage']} | {s['steps']} | {s['seconds']:.0f} | {s['samples_per_second']:.2f} | "
                     f"{s['tokens_per_second']:.0f} | {s['target_tokens_per_second']:.0f} | "
                     f"{'' if loss is None else f'{loss:.3f}'} |")
    return "\n".join(lines) + "\n"


def _evaluate(model_dir: Path, settings: PipelineSettings) -> None:
    from ..evaluation import EvalSettings, evaluate

    evaluate(EvalSettings(model=str(model_dir), out=settings.out / "eval"), progress=settings.progress)

