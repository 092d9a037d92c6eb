"""The one-call application API: ``ko_hypervl.load(path).ask(image, "질문")``.

It runs the method end to end: the VRC (``auto``) or a fixed scale picks the resolution, the processor
tiles the image for the chosen branch, the model generates with its KV cache, and every answer comes
back with its resolution decision (scale, tiles, visual tokens, tokens saved versus full resolution)
and its timings (time to first token, tokens/s).

Modes: ``auto`` = large branch at the VRC's scale; ``high`` = large branch at full resolution;
``low`` = small branch (fewer visual tokens per tile, smaller encoder) at full resolution. An explicit
``scale`` overrides the VRC in any mode.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from .processing.tiling import TilePlan
from .textinput import check_text

MODES = ("auto", "low", "high")
MAX_QUESTION_CHARS = 4000


def check_question(question) -> str:
    """``question`` if it can be asked: text, not blank, at most ``MAX_QUESTION_CHARS`` characters."""
    return check_text(question, what="the question", limit=MAX_QUESTION_CHARS,
                      empty_hint="ask something about the image (질문을 입력하세요)",
                      long_hint=f"질문이 너무 깁니다: {MAX_QUESTION_CHARS:,}자 이하로 줄여 주세요")


def check_mode(mode) -> str:
    """``mode`` if it is one of ``MODES``; else an error that lists them."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    return mode


HISTORY_ROLES = ("system", "user", "assistant")   # the roles the chat template has tokens for


def check_history(history) -> list[dict]:
    """``history`` as a list of chat messages, or a clear error naming the first malformed one.

    A message is ``{"role": "user" | "assistant" | "system", "content": str | [part, …]}``; a part is
    ``{"type": "text", "text": str}`` or ``{"type": "image"}`` (the image itself goes in ``images``).
    """
    if history is None:
        return []
    if isinstance(history, (str, bytes, dict)) or not isinstance(history, (list, tuple)):
        raise ValueError(f"history must be a list of chat messages, got {type(history).__name__}")
    for i, message in enumerate(history):
        where = f"history[{i}]"
        if not isinstance(message, dict) or "content" not in message:
            raise ValueError(f"{where} must be a dict with 'role' and 'content', got {message!r:.80}")
        if message.get("role") not in HISTORY_ROLES:
            raise ValueError(f"{where}: role {message.get('role')!r} is not one of {', '.join(HISTORY_ROLES)}")
        content = message["content"]
        if isinstance(content, str):
            continue
        if not isinstance(content, (list, tuple)):
            raise ValueError(f"{where}: content must be text or a list of parts, got {type(content).__name__}")
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "image" or (kind == "text" and isinstance(part.get("text"), str)):
                continue
            raise ValueError(f"{where}.content[{j}] must be {{'type': 'text', 'text': str}} or {{'type': 'image'}}, "
                             f"got {part!r:.80}")
    return list(history)


def history_image_count(history: list[dict]) -> int:
    """How many ``{"type": "image"}`` parts the messages of ``history`` (checked by ``check_history``) hold."""
    return sum(part["type"] == "image" for message in history if not isinstance(message["content"], str)
               for part in message["content"])


@dataclass
class VRCDecision:
    mode: str
    branch: str
    scale: float
    chosen_by: str          # "vrc" or "fixed"
    width: int
    height: int
    resized_width: int
    resized_height: int
    rows: int
    cols: int
    visual_tokens: int
    full_visual_tokens: int  # the same branch at scale 1.0

    @property
    def tokens_saved(self) -> int:
        return self.full_visual_tokens - self.visual_tokens

    def to_dict(self) -> dict:
        saved = self.tokens_saved
        return {**asdict(self), "tiles": self.rows * self.cols, "tokens_saved": saved,
                "tokens_saved_ratio": round(saved / self.full_visual_tokens, 4) if self.full_visual_tokens else 0.0}


@dataclass
class Answer:
    text: str
    decisions: list[VRCDecision]
    prompt_tokens: int
    new_tokens: int
    time_to_first_token_s: float
    tokens_per_s: float
    total_s: float
    # why generation ended: "stop" (end of turn), "length" (max_new_tokens), "time" (max_time) or
    # "cancelled" (the caller stopped reading)
    finish_reason: str = "stop"
    extra: dict = field(default_factory=dict)

    @property
    def visual_tokens(self) -> int:
        return sum(d.visual_tokens for d in self.decisions)

    def to_dict(self) -> dict:
        return {"answer": self.text, "vrc": [d.to_dict() for d in self.decisions], "prompt_tokens": self.prompt_tokens,
                "visual_tokens": self.visual_tokens, "new_tokens": self.new_tokens,
                "time_to_first_token_s": round(self.time_to_first_token_s, 4),
                "tokens_per_s": round(self.tokens_per_s, 2), "total_s": round(self.total_s, 4),
                "finish_reason": self.finish_reason, **self.extra}


class _TimedStreamer(BaseStreamer):
    """Receives tokens from ``generate``; queues decoded text pieces and records when tokens arrive."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.token_ids: list[int] = []
        self.token_times: list[float] = []
        self.text_queue: queue.Queue = queue.Queue()
        self._emitted = ""
        self._prompt_seen = False

    def put(self, value):
        if not self._prompt_seen:  # generate first pushes the prompt
            self._prompt_seen = True
            return
        ids = value.reshape(-1).tolist()
        self.token_times.extend([time.perf_counter()] * len(ids))
        self.token_ids.extend(ids)
        text = self.tokenizer.decode(self.token_ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):  # a Hangul syllable split across byte tokens: wait for the rest
            return
        if text.startswith(self._emitted) and len(text) > len(self._emitted):
            self.text_queue.put(text[len(self._emitted):])
            self._emitted = text

    def end(self):
        text = self.tokenizer.decode(self.token_ids, skip_special_tokens=True)
        if text.startswith(self._emitted) and len(text) > len(self._emitted):
            self.text_queue.put(text[len(self._emitted):])
        self.text_queue.put(None)


class _StopWhenSet(StoppingCriteria):
    """Ends generation once the caller stops reading the stream (a closed browser tab, a client that hung up)."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids, scores, **kwargs) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


@dataclass
class Reading:
    """An image as the reading head reads it."""

    text: str          # the lines' readings, joined with line breaks
    branch: str
    width: int
    height: int
    lines: int         # how many lines it was read as
    seconds: float
    decoder: str = "best path"

    def to_dict(self) -> dict:
        return {**asdict(self), "seconds": round(self.seconds, 4)}


class KoHyperVL:
    """A loaded model + processor, ready to answer questions about images."""

    def __init__(self, model, processor, reading_lm=None):
        self.model = model.eval()
        self.processor = processor
        self.reading_lm = reading_lm      # the reading head's letter LM (processing.reading_lm), where fitted

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, device: str | None = None,
             dtype: torch.dtype | None = None) -> "KoHyperVL":
        from .checkpoint import check_checkpoint_dir, load_checkpoint
        from .processing.reading_lm import load_reading_lm

        model, processor = load_checkpoint(path, device=device, dtype=dtype)
        return cls(model, processor, load_reading_lm(check_checkpoint_dir(path)))

    @property
    def image_processor(self):
        return self.processor.image_processor

    @property
    def uses_readings(self) -> bool:
        """Whether questions carry the reading head's reading of their images (a model with a copy head)."""
        return bool(getattr(self.model.config, "copy_head", False))

    def question_with_reading(self, question: str, images: list, reading: str | None = None) -> str:
        """``question`` as the model takes it: with its images' reading (``reading``, else read now) where the
        model has a copy head."""
        if not self.uses_readings or not images:
            return question
        from .processing.reading_prompt import with_reading

        if reading is None:
            reading = "\n".join(r.text for r in self.read(images))
        return with_reading(question, reading)

    def decide(self, images: list, mode: str = "auto", scale: float | None = None) -> list[VRCDecision]:
        """The branch and scale each image gets in ``mode``, with the visual-token accounting."""
        check_mode(mode)
        branch = "small" if mode == "low" else "large"
        if scale is not None:
            scales, chosen_by = [float(scale)] * len(images), "fixed"
        elif mode == "auto" and images:
            vrc = self.image_processor.vrc_inputs(images)
            scales, chosen_by = self.model.predict_scales(vrc["vrc_pixel_values"], vrc["vrc_image_sizes"]), "vrc"
        else:
            scales, chosen_by = [1.0] * len(images), "fixed"
        decisions = []
        for image, s in zip(images, scales):
            plan: TilePlan = self.image_processor.plan(image, branch, s)
            full = self.image_processor.plan(image, branch, 1.0)
            decisions.append(VRCDecision(mode, branch, s, chosen_by, plan.width, plan.height, plan.resized_width,
                                         plan.resized_height, plan.rows, plan.cols, plan.visual_tokens,
                                         full.visual_tokens))
        return decisions

    def prepare(self, images, question: str, mode: str = "auto", scale: float | None = None,
                history: list[dict] | None = None):
        """Processor inputs and VRC decisions for one question about ``images`` (one image or a list).

        ``history`` holds earlier turns as chat messages; an ``{"type": "image"}`` part in one marks an image
        shown at that turn (a follow-up question about the first turn's image, the layout the model was
        instruction-tuned on). ``images`` are then every image of the conversation in order of appearance:
        those of the history's image parts first, the rest belong to the question.
        """
        check_question(question)
        if "<image>" in question:
            raise ValueError("the question contains the reserved placeholder '<image>'; remove it")
        images = [] if images is None else (list(images) if isinstance(images, (list, tuple)) else [images])
        history = check_history(history)
        in_history = history_image_count(history)
        if in_history > len(images):
            raise ValueError(f"the history shows {in_history} image(s) but {len(images)} were given; pass every "
                             "image of the conversation, in order (the history's first, then the question's)")
        loaded = [self.image_processor.load(image) for image in images]
        decisions = self.decide(loaded, mode, scale)
        question = self.question_with_reading(question, loaded[in_history:])
        content = [{"type": "image"} for _ in loaded[in_history:]] + [{"type": "text", "text": question}]
        messages = history + [{"role": "user", "content": content}]
        prompt = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = self.processor(images=loaded or None, text=prompt, branch=decisions[0].branch if decisions else "large",
                                scales=[d.scale for d in decisions] or None)
        return inputs.to(self.model.device), decisions

    def stream(self, images, question: str, mode: str = "auto", scale: float | None = None,
               max_new_tokens: int = 128, history: list[dict] | None = None,
               max_time: float | None = None) -> Iterator[str | Answer]:
        """Yields the answer as text pieces while it is generated, then the finished ``Answer``.

        ``max_time`` (seconds) ends generation early, keeping what was generated (``finish_reason="time"``).
        """
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        start = time.perf_counter()
        inputs, decisions = self.prepare(images, question, mode, scale, history)
        streamer = _TimedStreamer(self.processor.tokenizer)
        errors: list[BaseException] = []
        stop = threading.Event()

        def run():
            try:
                with torch.inference_mode():
                    self.model.generate(**inputs, max_new_tokens=max_new_tokens, streamer=streamer, do_sample=False,
                                        max_time=max_time,
                                        stopping_criteria=StoppingCriteriaList([_StopWhenSet(stop)]))
            except BaseException as exc:  # re-raised in the caller's thread
                errors.append(exc)
                streamer.text_queue.put(None)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        pieces = []
        try:
            while (piece := streamer.text_queue.get()) is not None:
                pieces.append(piece)
                yield piece
        finally:  # also when the caller closes the generator early
            stop.set()
            thread.join()
        if errors:
            raise errors[0]
        end = time.perf_counter()
        times = streamer.token_times
        first = times[0] - start if times else end - start
        rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
        reason = self._finish_reason(streamer.token_ids, max_new_tokens, max_time, end - start)
        yield Answer("".join(pieces).strip(), decisions, int(inputs["input_ids"].shape[-1]), len(times), first, rate,
                     end - start, reason)

    def _finish_reason(self, token_ids: list[int], max_new_tokens: int, max_time: float | None, elapsed: float) -> str:
        eos = self.model.generation_config.eos_token_id
        eos = set(eos if isinstance(eos, (list, tuple)) else [] if eos is None else [eos])
        if token_ids and token_ids[-1] in eos:
            return "stop"
        if len(token_ids) >= max_new_tokens:
            return "length"
        if max_time is not None and elapsed >= max_time:
            return "time"
        return "cancelled"

    def ask(self, images, question: str, mode: str = "auto", scale: float | None = None, max_new_tokens: int = 128,
            history: list[dict] | None = None, max_time: float | None = None) -> Answer:
        """The answer to ``question`` about ``images``, with its VRC decision and timings."""
        *_, answer = self.stream(images, question, mode, scale, max_new_tokens, history, max_time)
        return answer

    def line_log_probs(self, image, spec=None, split_lines: bool = True):
        """``(loaded image, the head's log-probabilities per line)`` for one image, at full resolution.

        The head the recipes keep reads one line at a time (its order is ``columns``), so with ``split_lines``
        a page is levelled and cut into its lines first (``processing.lines``: the line count is right on
        90.6–93.0% of the corpus's held-out OCR test rows); an image with one line is read whole. Lines whose
        text is far larger or smaller than the training lines' are resized to their size first. ``spec`` is
        ``model.reading_head_spec()``, taken once by a caller that reads many images (its check hashes the
        encoder).
        """
        from .processing.lines import reading_lines

        spec = spec or self.model.reading_head_spec()
        loaded = self.image_processor.load(image)
        lines = reading_lines(loaded) if split_lines and spec.order == "columns" else [loaded]
        inputs = self.image_processor(lines, branch=spec.branch)
        return loaded, self.model.read_log_probs(inputs["pixel_values"], inputs["image_grid"], spec)

    def read(self, images, split_lines: bool = True, greedy: bool = False) -> list[Reading]:
        """What the model's reading head reads in each image (one image or a list), line by line
        (``line_log_probs``), the lines' readings joined with line breaks.

        Where the checkpoint has a reading LM (``ko-hypervl model reading-lm``), each line is decoded by beam
        search with it, unless ``greedy``; else by best path. A checkpoint without a head, or whose encoder was
        trained after the head was fitted, is refused with a clear error.
        """
        from .processing.ctc_decode import decode_reading, decoder_name

        spec = self.model.reading_head_spec()
        lm = None if greedy else self.reading_lm
        images = list(images) if isinstance(images, (list, tuple)) else [images]
        readings = []
        for image in images:
            started = time.perf_counter()
            loaded, log_probs = self.line_log_probs(image, spec, split_lines)
            texts = [decode_reading(line, spec.units, lm) for line in log_probs]
            readings.append(Reading("\n".join(texts), spec.branch, loaded.width, loaded.height, len(texts),
                                    time.perf_counter() - started, decoder_name(lm)))
        return readings


def load(path: str | os.PathLike | Path | None = None, device: str | None = None,
         dtype: torch.dtype | None = None) -> KoHyperVL:
    """Load a checkpoint directory (default: the bundled model) for ``ask``/``stream``."""
    return KoHyperVL.load(path, device=device, dtype=dtype)
