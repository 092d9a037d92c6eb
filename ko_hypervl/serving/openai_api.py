"""The OpenAI-compatible HTTP API (``ko-hypervl serve``): ``POST /v1/chat/completions`` over the shared service.

Any OpenAI client can talk to the model: point its ``base_url`` at ``http://127.0.0.1:8000/v1``. The
design, in the order a request meets it:

* **The body is read and parsed here, not by FastAPI.** Its size is checked against ``max_body_mb``
  from ``Content-Length`` before reading and again while reading (a chunked body has no length), and
  the JSON is parsed by :func:`parse_json_body` and :func:`parse_chat_request`, pure functions that
  raise :class:`ApiError` with the HTTP status, so every refusal is an OpenAI-style JSON error
  ``{"error": {"message", "type", "param", "code"}}`` instead of FastAPI's 422 validation format.
* **Images are never fetched.** An image URL is a ``data:`` URL, or a ``file://`` URL / local path
  under one of ``allowed_dir`` (symlinks and ``..`` resolved first; none allowed by default), never
  ``http(s)://``: a server that downloads whatever URL a request names can be made to probe the
  network it sits in.
* **Images stay where the client put them.** Any user message may carry images, and a follow-up
  question is asked with the earlier turns' images still in the prompt at their turns: the layout
  the model was instruction-tuned on (the image in the first user turn, then several questions about
  it). An assistant message with an image is refused with 400. ``system``/``developer`` messages are
  ignored: the model was never trained with a system turn, and chat clients send a default one that
  would only confuse it.
* **Generation never blocks the event loop.** Parsing (base64 of up to ``max_body_mb``), the wait
  for a slot and the prefill run in the threadpool through :meth:`ModelService.open_stream`, which
  returns only once the first piece exists: a bad image, a busy server (503 + ``Retry-After``) or an
  over-long question is still answered with its status code, also for ``stream: true``. A stream is
  then a ``StreamingResponse`` over a sync generator of server-sent events; :class:`_EventStream`
  closes that generator however the response ends, so a client that hangs up mid-answer stops the
  generation and frees its slot at once rather than whenever the garbage collector runs. A whole
  (non-streamed) answer is collected piece by piece by :func:`answer_while_connected`, which checks
  between pieces that the client is still there.
* Greedy decoding only: ``temperature``, ``top_p``, ``n`` and the like are accepted and ignored; the
  ``model`` field is accepted whatever it names (there is one model) and the reply names the real one.
  The extra body field ``mode`` (``auto``/``low``/``high``) picks the resolution branch, and every
  reply carries an extra ``ko_hypervl`` object: the VRC decision, visual tokens and timings.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, unquote_to_bytes, urlsplit

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..inference import Answer, check_mode
from ..processing.images import ImageInputError
from ..settings import setting
from .gate import ServerBusy
from .service import ModelService, ServerSettings

log = logging.getLogger(__name__)

MB = 1024 * 1024
# Seconds a refused client is told to wait: a CPU answer takes seconds, so the line moves in seconds.
RETRY_AFTER_S = 5
CHAT_ROLES = ("user", "assistant")
IGNORED_ROLES = ("system", "developer")
ERROR_TYPES = {400: "invalid_request_error", 403: "permission_error", 404: "not_found_error",
               405: "invalid_request_error", 413: "invalid_request_error", 500: "server_error", 503: "server_error"}
# OpenAI knows "stop" and "length"; running out of time (max_time) is a length limit too.
FINISH_REASONS = {"stop": "stop", "length": "length", "time": "length"}


@dataclass
class ServeSettings(ServerSettings):
    """``ko-hypervl serve``: the settings shared with the demo plus what only the HTTP API needs."""

    port: int = setting(8000, help="port to listen on")
    allowed_dir: list[Path] = setting([], help="directories that images given as file paths or file:// URLs may "
                                               "be read from (one or more); with none, file paths are refused and "
                                               "images must be sent as data: URLs")
    max_body_mb: float = setting(64.0, help="largest request body accepted, in MB (images travel in it as base64)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_body_mb <= 0:
            raise ValueError(f"--max-body-mb must be positive, got {self.max_body_mb}")
        self.allowed_dir = [Path(d) for d in self.allowed_dir]
        for directory in self.allowed_dir:
            if not directory.is_dir():  # refused at startup, not as a puzzling 403/404 on every request
                raise ValueError(f"--allowed-dir {directory}: not a directory")


class ApiError(Exception):
    """A request the API refuses, with the HTTP status and the OpenAI error fields to answer with."""

    def __init__(self, status: int, message: str, code: str, param: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.param = param


@dataclass
class ChatRequest:
    """What the model needs from a chat completion request, checked and in the model's own format."""

    question: str
    images: list[bytes | Path] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)   # earlier turns in KoHyperVL.prepare's message format
    mode: str = "auto"
    max_tokens: int | None = None
    stream: bool = False
    include_usage: bool = False
    model: str | None = None


# ----------------------------------------------------------------------------- request parsing (pure)

def parse_json_body(raw: bytes):
    """The request body's JSON value, or a 400 that says what is wrong with it."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:   # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ApiError(400, f"the request body is not valid JSON ({exc})", "invalid_json") from None


def parse_chat_request(body: dict, allowed_dirs: Sequence[Path] = ()) -> ChatRequest:
    """Check an OpenAI chat completion body and turn it into a :class:`ChatRequest`; raises :class:`ApiError`."""
    if not isinstance(body, dict):
        raise ApiError(400, f"the request body must be a JSON object, got {type(body).__name__}", "invalid_body")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' is required: a non-empty list of chat messages", "missing_messages",
                       "messages")
    turns = [turn for i, message in enumerate(messages) if (turn := _parse_message(message, i)) is not None]
    if not turns or turns[-1][0] != "user":
        raise ApiError(400, "the last message must be from the user: it holds the question", "invalid_messages",
                       "messages")
    *earlier, (_, question, urls) = turns
    # every image of the conversation in order of appearance; the history keeps an image part where each was
    # (KoHyperVL.prepare's convention: images = the history's, then the question's)
    urls = [url for _, _, turn_urls in earlier for url in turn_urls] + urls
    history = [{"role": role, "content": [{"type": "image"} for _ in turn_urls] + [{"type": "text", "text": text}]}
               for role, text, turn_urls in earlier]
    stream_options = body.get("stream_options") or {}
    if not isinstance(stream_options, dict):
        raise ApiError(400, "'stream_options' must be an object", "invalid_stream_options", "stream_options")
    model = body.get("model")
    return ChatRequest(question=question, images=[image_source(url, allowed_dirs) for url in urls], history=history,
                       mode=_parse_mode(body.get("mode", "auto")), max_tokens=_parse_max_tokens(body),
                       stream=_parse_flag(body, "stream"), include_usage=_parse_flag(stream_options, "include_usage"),
                       model=model if isinstance(model, str) else None)


def _parse_message(message, index: int) -> tuple[str, str, list[str]] | None:
    """(role, text, image urls) of one message; None for a message that is ignored (system)."""
    where = f"messages[{index}]"
    if not isinstance(message, dict):
        raise ApiError(400, f"{where} must be an object with 'role' and 'content'", "invalid_messages", where)
    role = message.get("role")
    if role in IGNORED_ROLES:
        return None
    if role not in CHAT_ROLES:
        raise ApiError(400, f"{where}.role {role!r} is not supported; use 'user' or 'assistant' "
                            "('system' is accepted and ignored)", "invalid_role", f"{where}.role")
    texts, urls = _parse_content(message.get("content"), f"{where}.content")
    if urls and role != "user":
        raise ApiError(400, f"{where} is an {role} message with an image; only user messages may carry images",
                       "image_in_assistant_message", f"{where}.content")
    return role, "\n".join(texts), urls


def _parse_content(content, where: str) -> tuple[list[str], list[str]]:
    """The texts and image URLs of a message's content: a string, null or a list of text/image_url parts."""
    if content is None:   # an assistant turn that only called tools
        return [], []
    if isinstance(content, str):
        return [content], []
    if not isinstance(content, list):
        raise ApiError(400, f"{where} must be a string or a list of content parts", "invalid_content", where)
    texts, urls = [], []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "image_url":
            image_url = part.get("image_url")
            url = image_url.get("url") if isinstance(image_url, dict) else image_url
            if not isinstance(url, str) or not url:
                raise ApiError(400, f"{where}[{j}].image_url must be a URL string or an object with 'url'",
                               "invalid_image_url", f"{where}[{j}]")
            urls.append(url)
        else:
            raise ApiError(400, f"{where}[{j}] must be {{'type': 'text', 'text': ...}} or "
                                "{'type': 'image_url', 'image_url': {'url': ...}}", "invalid_content", f"{where}[{j}]")
    return texts, urls


def image_source(url: str, allowed_dirs: Sequence[Path] = ()) -> bytes | Path:
    """The bytes of a ``data:`` URL, or the checked path of a ``file://`` URL or plain local path."""
    if url[:5].lower() == "data:":
        return _data_url_bytes(url)
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""   # anything else is a plain path
    if scheme in ("http", "https"):
        raise ApiError(400, "http(s) image URLs are not supported: this server never downloads anything; send the "
                            "image as a data: URL (base64) (이미지는 data: URL로 보내 주세요)", "url_not_supported")
    if scheme == "file":
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise ApiError(400, f"file:// URL on host {parts.netloc!r}: only local files can be read",
                           "url_not_supported")
        return allowed_path(unquote(parts.path), allowed_dirs)
    if scheme:
        raise ApiError(400, f"unsupported image URL scheme {scheme!r}; use a data: URL", "url_not_supported")
    return allowed_path(url, allowed_dirs)


def _data_url_bytes(url: str) -> bytes:
    header, comma, payload = url.partition(",")
    if not comma:
        raise ApiError(400, "malformed data: URL (no ',' before the data)", "invalid_image")
    try:
        data = (base64.b64decode("".join(payload.split()), validate=True) if header.lower().endswith(";base64")
                else unquote_to_bytes(payload))
    except ValueError:   # binascii.Error is a ValueError
        raise ApiError(400, "the data: URL's base64 is invalid", "invalid_image") from None
    if not data:
        raise ApiError(400, "the image is empty (0 bytes) (빈 이미지입니다)", "invalid_image")
    return data


def allowed_path(path: str, allowed_dirs: Sequence[Path]) -> Path:
    """``path`` resolved (symlinks, ``..``), if it lies under an allowed directory: 403 if not, 404 if missing."""
    if not allowed_dirs:
        raise ApiError(403, "images given as file paths are refused: the server allows no directory "
                            "(start it with --allowed-dir DIR) or send the image as a data: URL", "path_not_allowed")
    try:
        resolved = Path(path).resolve()
    except (OSError, RuntimeError) as exc:   # RuntimeError: a symlink loop
        raise ApiError(400, f"cannot resolve the image path {path!r} ({exc})", "invalid_image_url") from None
    if not any(resolved.is_relative_to(Path(root).resolve()) for root in allowed_dirs):
        # the same answer whether or not the file exists: nothing about the rest of the disk leaks
        raise ApiError(403, f"{path!r} is outside the directories this server may read images from",
                       "path_not_allowed")
    if not resolved.is_file():
        raise ApiError(404, f"image file not found: {path!r} (이미지 파일 없음)", "file_not_found")
    return resolved


def _parse_mode(mode) -> str:
    try:
        return check_mode(mode)
    except ValueError as exc:
        raise ApiError(400, str(exc), "invalid_mode", "mode") from None


def _parse_max_tokens(body: dict) -> int | None:
    name = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ApiError(400, f"{name} must be a positive integer, got {value!r}", "invalid_max_tokens", name)
    return value


def _parse_flag(body: dict, name: str) -> bool:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise ApiError(400, f"{name} must be true or false, got {value!r}", f"invalid_{name}", name)
    return bool(value)


# ----------------------------------------------------------------------------- responses

def error_body(status: int, message: str, code: str, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": ERROR_TYPES.get(status, "invalid_request_error"), "param": param,
                      "code": code}}


def error_response(exc: Exception) -> JSONResponse:
    """The JSON error for anything a chat request raised; unexpected errors are logged with their traceback."""
    headers = None
    if isinstance(exc, ApiError):
        status, code, param = exc.status, exc.code, exc.param
    elif isinstance(exc, ServerBusy):
        status, code, param, headers = 503, "server_busy", None, {"Retry-After": str(RETRY_AFTER_S)}
    elif isinstance(exc, ImageInputError):
        status, code, param = 400, "invalid_image", "messages"
    elif isinstance(exc, FileNotFoundError):   # a file that vanished between the check and the read
        status, code, param = 404, "file_not_found", "messages"
    elif isinstance(exc, PermissionError):     # under an allowed directory but unreadable for the server
        status, code, param = 403, "path_not_allowed", "messages"
    elif isinstance(exc, (ValueError, TypeError)):   # what ModelService.open_stream raises for a bad request
        status, code, param = 400, "invalid_request", None
    else:
        log.exception("chat completion failed")
        return JSONResponse(error_body(500, f"internal error ({type(exc).__name__}); see the server log",
                                       "internal_error"), status_code=500)
    return JSONResponse(error_body(status, str(exc), code, param), status_code=status, headers=headers)


def usage(answer: Answer) -> dict:
    return {"prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.new_tokens,
            "total_tokens": answer.prompt_tokens + answer.new_tokens}


def answer_stats(answer: Answer) -> dict:
    """The ``ko_hypervl`` extra: everything the Answer knows except the text (which is in the message)."""
    stats = answer.to_dict()
    del stats["answer"]
    return stats


def completion_body(answer: Answer, completion_id: str, created: int, model: str) -> dict:
    return {"id": completion_id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text},
                         "finish_reason": FINISH_REASONS.get(answer.finish_reason, "stop"), "logprobs": None}],
            "usage": usage(answer), "ko_hypervl": answer_stats(answer)}


def _sse(payload) -> str:
    return "data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ":")) + "\n\n"


def completion_events(stream: Iterator[str | Answer], completion_id: str, created: int, model: str,
                      include_usage: bool = False) -> Iterator[str]:
    """The server-sent events of a streamed completion, from an open ``ModelService`` stream.

    The first chunk carries the role, then one chunk per text piece, then a chunk with the finish
    reason and the ``ko_hypervl`` stats, then (``include_usage``) OpenAI's usage chunk with no
    choices, then ``[DONE]``. Closing this generator closes ``stream``, which stops the generation.
    """
    def chunk(delta: dict, finish_reason: str | None = None, **extra) -> str:
        return _sse({"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
                     **extra})

    with contextlib.closing(stream):
        yield chunk({"role": "assistant", "content": ""})
        try:
            for item in trim_pieces(stream):
                if isinstance(item, str):
                    yield chunk({"content": item})
                    continue
                yield chunk({}, FINISH_REASONS.get(item.finish_reason, "stop"), ko_hypervl=answer_stats(item))
                if include_usage:
                    yield _sse({"id": completion_id, "object": "chat.completion.chunk", "created": created,
                                "model": model, "choices": [], "usage": usage(item)})
        except Exception:   # the status line is long sent: report in the stream, as OpenAI does
            log.exception("streamed chat completion failed")
            yield _sse(error_body(500, "internal error while generating; see the server log", "internal_error"))
            return
    yield "data: [DONE]\n\n"


def trim_pieces(stream: Iterator[str | Answer]) -> Iterator[str | Answer]:
    """The stream's text pieces without leading and trailing whitespace, other items passed through.

    ``Answer.text`` is the stripped concatenation of the pieces; trimming the stream the same way
    makes a streamed answer, put together, identical to the non-streamed one. Whitespace inside the
    answer is held back only until the next visible text arrives.
    """
    held = ""       # trailing whitespace, sent once more text follows it
    started = False
    for item in stream:
        if not isinstance(item, str):
            yield item
            continue
        text = held + item if started else item.lstrip()
        visible = text.rstrip()
        held = text[len(visible):]
        if visible:
            started = True
            yield visible


class _EventStream(StreamingResponse):
    """A ``text/event-stream`` response that closes its (sync) event generator however the response ends.

    Starlette stops reading the generator when the client disconnects but leaves it suspended; only the
    garbage collector would close it, and until then the generation keeps its slot. Closing it here, in
    the threadpool and shielded from the cancellation that ended the response, frees the slot at once.
    """

    media_type = "text/event-stream"

    def __init__(self, events: Iterator[str]):
        super().__init__(events, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._events = events

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(self._events.close)


async def answer_while_connected(stream: Iterator, request: Request) -> Answer | None:
    """The finished answer of ``stream``, or None once the client has hung up (generation stopped, slot freed).

    A whole (non-streamed) answer is still generated piece by piece, so a client that gives up waiting
    is noticed between pieces instead of holding the slot until ``max_time``.
    """
    try:
        while (item := await run_in_threadpool(next, stream, None)) is not None:
            if isinstance(item, Answer):
                return item
            if await request.is_disconnected():
                return None
        raise RuntimeError("the answer stream ended without its Answer")
    finally:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(stream.close)


# ----------------------------------------------------------------------------- the app

def build_api_app(service: ModelService) -> FastAPI:
    """The FastAPI app of the API over ``service`` (its settings, if a :class:`ServeSettings`, add the API limits)."""
    settings = service.settings if isinstance(service.settings, ServeSettings) else ServeSettings()
    allowed_dirs = [d.resolve() for d in settings.allowed_dir]
    max_body = int(settings.max_body_mb * MB)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        # Every request waiting for a generation slot holds a threadpool thread; with too few threads
        # requests would queue invisibly in anyio, outside the gate's line and its wait_timeout.
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = max(limiter.total_tokens, service.gate.concurrency + service.gate.max_waiting + 8)
        yield

    # no /docs: the schema would be empty (bodies are parsed by hand) and Swagger UI loads from a CDN
    app = FastAPI(title="ko-hypervl", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:   # 404/405 routes
        code = {404: "unknown_route", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = f"{request.method} {request.url.path}: {exc.detail}"
        return JSONResponse(error_body(exc.status_code, message, code), status_code=exc.status_code,
                            headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:   # uvicorn logs the traceback
        return JSONResponse(error_body(500, f"internal error ({type(exc).__name__})", "internal_error"),
                            status_code=500)

    @app.get("/health")
    async def health() -> dict:
        return service.health()

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [{"id": service.model_name, "object": "model",
                                            "created": int(service.started), "owned_by": "ko-hypervl"}]}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        try:
            raw = await read_body(request, max_body)
            chat = await run_in_threadpool(lambda: parse_chat_request(parse_json_body(raw), allowed_dirs))
            completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
            args = (chat.images, chat.question, chat.mode, chat.max_tokens, chat.history)
            stream = await run_in_threadpool(service.open_stream, *args)
            if chat.stream:
                return _EventStream(completion_events(stream, completion_id, created, service.model_name,
                                                      chat.include_usage))
            answer = await answer_while_connected(stream, request)
            if answer is None:   # the client hung up: nobody reads a reply
                return Response(status_code=499)
            return JSONResponse(completion_body(answer, completion_id, created, service.model_name))
        except Exception as exc:
            return error_response(exc)

    return app


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 once it is known to exceed ``limit`` bytes (header first, then as read)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, f"invalid Content-Length {declared!r}", "invalid_body")
        if int(declared) > limit:
            raise _too_large(int(declared), limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(len(body), limit)
    return bytes(body)


def _too_large(size: int, limit: int) -> ApiError:
    return ApiError(413, f"the request body is over {size / MB:.1f} MB; the limit is {limit / MB:g} MB "
                         "(--max-body-mb); send smaller images (요청이 너무 큽니다)", "body_too_large")


def run_api(settings: ServeSettings) -> None:
    """Load the model and serve the API on ``settings.host``:``settings.port`` until interrupted."""
    import uvicorn

    service = ModelService.load(settings)
    if settings.exposed:
        log.warning("listening on %s: the API is reachable from your network, without authentication; "
                    "use --host 127.0.0.1 to keep it on this machine", settings.host)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    print(f"ko-hypervl API ({service.model_name}): http://{host}:{settings.port}/v1  "
          f"(OpenAI base_url; POST /v1/chat/completions, GET /v1/models, GET /health)", flush=True)
    uvicorn.run(build_api_app(service), host=settings.host, port=settings.port)
