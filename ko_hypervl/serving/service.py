"""The model behind the demo and the API: one loaded KoHyperVL, a concurrency gate and request limits.

Both front ends (Gradio UI, OpenAI-compatible HTTP) call :meth:`ModelService.open_stream`, so the
same checks, limits and queueing apply whichever door a request came through. The cheap checks
(question, mode, number of images) run *before* a generation slot is taken; images are decoded once
the slot is held, so a long waiting line holds compressed bytes, not decoded pixels. The first piece of
the answer is produced before ``open_stream`` returns: an HTTP handler can still answer with a 4xx/503
status when something is wrong, instead of failing halfway through a 200 stream.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..inference import Answer, KoHyperVL, check_mode, check_question
from ..processing.images import DEFAULT_MAX_PIXELS, load_image
from ..settings import setting
from .gate import ConcurrencyGate

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class ServerSettings:
    """What the demo and the API server share: the model, where to listen, and the limits per request."""

    model: Path | None = setting(None, help="checkpoint directory (default: the bundled ko-hypervl-tiny)")
    host: str = setting("127.0.0.1", help="address to listen on; anything but loopback exposes the model "
                                          "to your network")
    port: int = setting(7860, help="port to listen on")
    concurrency: int = setting(1, help="generations that run at the same time (a CPU is fastest with 1)")
    max_waiting: int = setting(32, help="requests that may wait for a slot; more are refused at once (busy)")
    wait_timeout: float = setting(120.0, help="seconds a request may wait for a slot before it is refused")
    max_time: float = setting(60.0, help="seconds one answer may take; longer answers are cut off there")
    max_new_tokens: int = setting(256, help="upper limit on the answer length in tokens")
    max_pixels: int = setting(DEFAULT_MAX_PIXELS, help="largest image accepted, in pixels (checked before decoding)")
    max_images: int = setting(4, help="images accepted in one request")

    def __post_init__(self) -> None:
        for name in ("concurrency", "max_new_tokens", "max_pixels", "max_images"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        for name in ("wait_timeout", "max_time"):
            if getattr(self, name) <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if not 0 < self.port < 65536:
            raise ValueError(f"--port must be in 1..65535, got {self.port}")

    @property
    def exposed(self) -> bool:
        return self.host not in LOOPBACK


class ModelService:
    def __init__(self, vlm: KoHyperVL, settings: ServerSettings | None = None):
        self.vlm = vlm
        self.settings = settings or ServerSettings()
        s = self.settings
        self.gate = ConcurrencyGate(s.concurrency, s.max_waiting, s.wait_timeout)
        self.started = time.time()
        self.served = 0

    @classmethod
    def load(cls, settings: ServerSettings) -> "ModelService":
        vlm = KoHyperVL.load(settings.model)
        return cls(vlm, settings)

    @property
    def model_name(self) -> str:
        path = getattr(self.vlm.model, "name_or_path", "") or ""
        return Path(path).name or "ko-hypervl"

    def load_images(self, images: Sequence) -> list:
        """Decode the request's images (paths, bytes, PIL images), refusing oversized ones from their header."""
        return [load_image(image, max_pixels=self.settings.max_pixels) for image in images]

    def check_request(self, question: str, mode: str, max_new_tokens: int | None) -> int:
        check_question(question)
        check_mode(mode)
        if max_new_tokens is None:
            return self.settings.max_new_tokens
        if not isinstance(max_new_tokens, int) or isinstance(max_new_tokens, bool) or max_new_tokens < 1:
            raise ValueError(f"max_tokens must be a positive integer, got {max_new_tokens!r}")
        return min(max_new_tokens, self.settings.max_new_tokens)

    def open_stream(self, images: Sequence, question: str, mode: str = "auto", max_new_tokens: int | None = None,
                    history: list[dict] | None = None) -> Iterator[str | Answer]:
        """Check the request, wait for a slot, decode the images, start generating; returns the stream.

        Raises ``ValueError``/``TypeError``/``ImageInputError`` for a bad request and
        :class:`~.gate.ServerBusy` when no slot frees up in time; once it returns, the slot is held until
        the stream is exhausted or closed.
        """
        limit = self.check_request(question, mode, max_new_tokens)
        if len(images) > self.settings.max_images:
            raise ValueError(f"{len(images)} images in one request; the limit is {self.settings.max_images} "
                             f"(이미지가 너무 많습니다)")
        self.gate.acquire()
        try:
            # decoded only once a slot is held: requests waiting in line keep their compressed bytes, not
            # max_waiting × max_images decoded images (up to 120 MB each at the default max_pixels)
            loaded = self.load_images(images)
            stream = self.vlm.stream(loaded, question, mode, max_new_tokens=limit, history=history,
                                     max_time=self.settings.max_time)
            first = next(stream)   # runs prepare() and the prefill: errors surface here, not mid-stream
        except BaseException:
            self.gate.release()
            raise
        return self._rest(first, stream)

    def _rest(self, first, stream) -> Iterator[str | Answer]:
        try:
            for item in itertools.chain([first], stream):
                if isinstance(item, Answer):
                    self.served += 1
                    log.info("answered in %.2f s (%d tokens, %s, %d visual tokens)", item.total_s, item.new_tokens,
                             item.finish_reason, item.visual_tokens)
                yield item
        finally:
            stream.close()
            self.gate.release()

    def health(self) -> dict:
        return {"status": "ok", "model": self.model_name, "uptime_s": round(time.time() - self.started, 1),
                "served": self.served, **self.gate.stats()}
