"""The OpenAI-compatible HTTP API (issue #8): the real app under uvicorn on loopback, tested over real HTTP.

One server with the bundled model serves most tests; the busy-server, body-size and disconnect tests
get their own small servers (over the same loaded model, or an endless fake one) because they need
other limits or an answer that never ends by itself.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import socket
import struct
import threading
import time
import zlib
from contextlib import contextmanager
from functools import cache
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import uvicorn
from PIL import Image

from ko_hypervl.inference import KoHyperVL
from ko_hypervl.settings import add_settings_arguments, settings_from_args
from ko_hypervl.serving.openai_api import (ApiError, ServeSettings, build_api_app, parse_chat_request,
                                           trim_pieces)
from ko_hypervl.serving.service import ModelService

QUESTION = "이 그림에 무엇이 있나요?"


# ----------------------------------------------------------------------------- helpers

def png_bytes(width: int = 96, height: int = 64, color: str = "navy") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


@cache
def blank_png(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of any size without allocating its pixels: a blank one compresses to kilobytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = (b"\0" + bytes((width + 7) // 8)) * height      # filter byte + packed bits, per row
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def chat_body(question: str = QUESTION, *image_urls: str, **extra) -> dict:
    images = [{"type": "image_url", "image_url": {"url": url}} for url in image_urls]
    content = [{"type": "text", "text": question}, *images]
    return {"model": "ko-hypervl-tiny", "messages": [{"role": "user", "content": content}], **extra}


@dataclass
class Reply:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


def request(url: str, method: str, path: str, body: bytes | dict | None = None, headers: dict | None = None,
            timeout: float = 60) -> Reply:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        if isinstance(body, dict):
            body = json.dumps(body).encode()
        connection.request(method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


def post(url: str, body, **kwargs) -> Reply:
    return request(url, "POST", "/v1/chat/completions", body, **kwargs)


def health(url: str) -> dict:
    reply = request(url, "GET", "/health")
    assert reply.status == 200
    return reply.json()


def assert_json_error(reply: Reply, status: int, code: str | None = None) -> dict:
    assert reply.status == status, reply.body
    assert reply.headers["content-type"] == "application/json"
    error = reply.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    if code is not None:
        assert error["code"] == code, error
    return error


def wait_until(condition, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@contextmanager
def serving(service: ModelService):
    """The API app over ``service`` under uvicorn in a background thread, on a free loopback port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))   # the bound socket goes to uvicorn: no race for the port
    server = uvicorn.Server(uvicorn.Config(build_api_app(service), log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started, what="uvicorn to start")
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


class EndlessVLM:
    """A stand-in model whose answer goes on (slowly) until its stream is closed."""

    model = SimpleNamespace(name_or_path="endless")

    def __init__(self, limit: int = 2000):
        self.limit = limit
        self.pieces = 0
        self.closed = threading.Event()

    def stream(self, images, question, mode, **kwargs):
        try:
            for _ in range(self.limit):
                self.pieces += 1
                yield "가"
                time.sleep(0.01)
        finally:
            self.closed.set()


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def vlm() -> KoHyperVL:
    return KoHyperVL.load()


@pytest.fixture(scope="module")
def dirs(tmp_path_factory) -> SimpleNamespace:
    allowed, outside = tmp_path_factory.mktemp("allowed"), tmp_path_factory.mktemp("outside")
    (allowed / "photo.png").write_bytes(png_bytes(120, 80, "orange"))
    (outside / "secret.png").write_bytes(png_bytes())
    (allowed / "link.png").symlink_to(outside / "secret.png")
    return SimpleNamespace(allowed=allowed, outside=outside)


@pytest.fixture(scope="module")
def api(vlm, dirs):
    service = ModelService(vlm, ServeSettings(max_new_tokens=16, allowed_dir=[dirs.allowed]))
    with serving(service) as url:
        yield SimpleNamespace(url=url, service=service)


@pytest.fixture
def openai_client(api):
    openai = pytest.importorskip("openai", reason="the openai package is needed to test client compatibility")
    return openai.OpenAI(base_url=f"{api.url}/v1", api_key="not-checked", max_retries=0, timeout=60)


# ----------------------------------------------------------------------------- settings and parsing (pure)

def test_serve_settings_extend_the_server_settings_as_flags(dirs):
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser, ServeSettings)
    settings = settings_from_args(ServeSettings, parser.parse_args(
        ["--allowed-dir", str(dirs.allowed), str(dirs.outside), "--max-body-mb", "8", "--max-waiting", "3"]))
    assert settings.allowed_dir == [dirs.allowed, dirs.outside] and settings.max_body_mb == 8.0
    assert (settings.port, settings.host, settings.max_waiting) == (8000, "127.0.0.1", 3) and not settings.exposed
    assert settings_from_args(ServeSettings, parser.parse_args([])).allowed_dir == []
    with pytest.raises(ValueError, match="not a directory"):
        ServeSettings(allowed_dir=[dirs.allowed / "photo.png"])
    with pytest.raises(ValueError, match="max-body-mb"):
        ServeSettings(max_body_mb=0)


def test_parse_chat_request_takes_the_last_user_turn_and_keeps_earlier_text_turns(dirs, monkeypatch):
    body = {"messages": [{"role": "system", "content": "You are helpful."},
                         {"role": "user", "content": "안녕"},
                         {"role": "assistant", "content": [{"type": "text", "text": "네, 안녕하세요."}]},
                         {"role": "user", "content": [{"type": "text", "text": "이건"},
                                                      {"type": "image_url", "image_url": data_url(b"\x89PNG")},
                                                      {"type": "image_url", "image_url": {"url": "photo.png"}},
                                                      {"type": "text", "text": "뭐예요?"}]}],
            "mode": "low", "max_completion_tokens": 7, "stream": True, "stream_options": {"include_usage": True}}
    monkeypatch.chdir(dirs.allowed)   # a relative path is relative to the server's working directory
    chat = parse_chat_request(body, [dirs.allowed])
    assert chat.question == "이건\n뭐예요?"
    assert chat.images == [b"\x89PNG", (dirs.allowed / "photo.png").resolve()]
    assert chat.history == [{"role": "user", "content": [{"type": "text", "text": "안녕"}]},
                            {"role": "assistant", "content": [{"type": "text", "text": "네, 안녕하세요."}]}]
    assert (chat.mode, chat.max_tokens, chat.stream, chat.include_usage) == ("low", 7, True, True)


def test_parse_chat_request_keeps_earlier_images_at_their_turns():
    first, second = data_url(b"\x89PNG-1"), data_url(b"\x89PNG-2")
    body = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": first},
                                                      {"type": "text", "text": "가장 큰 값은?"}]},
                         {"role": "assistant", "content": "사과"},
                         {"role": "user", "content": [{"type": "text", "text": "이것과 비교하면?"},
                                                      {"type": "image_url", "image_url": second}]}]}
    chat = parse_chat_request(body)
    assert chat.images == [b"\x89PNG-1", b"\x89PNG-2"]      # the history's first, then the question's
    assert chat.history == [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "가장 큰 값은?"}]},
                            {"role": "assistant", "content": [{"type": "text", "text": "사과"}]}]
    assert chat.question == "이것과 비교하면?"


@pytest.mark.parametrize("messages, code", [
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": [
        {"type": "image_url", "image_url": data_url(b"x")}]}, {"role": "user", "content": "again?"}],
     "image_in_assistant_message"),
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}], "invalid_messages"),
    ([{"role": "system", "content": "only a system prompt"}], "invalid_messages"),
    ([{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}], "invalid_content"),
    ([{"role": "user", "content": 42}], "invalid_content"),
    (["just a string"], "invalid_messages"),
])
def test_parse_chat_request_refuses_what_it_cannot_honour(messages, code):
    with pytest.raises(ApiError) as caught:
        parse_chat_request({"messages": messages})
    assert (caught.value.status, caught.value.code) == (400, code)


def test_trimmed_stream_pieces_join_to_the_stripped_answer():
    pieces = ["  ", " 안", "녕 ", "\n", " 하", "세요 ", " "]
    trimmed = list(trim_pieces(iter(pieces)))
    assert "".join(trimmed) == "".join(pieces).strip() == "안녕 \n 하세요"
    assert all(trimmed)


# ----------------------------------------------------------------------------- answering

def test_openai_client_gets_an_answer_with_usage_and_the_vrc_decision(api, openai_client):
    completion = openai_client.chat.completions.create(
        model="anything", messages=[{"role": "user", "content": [
            {"type": "text", "text": QUESTION}, {"type": "image_url", "image_url": {"url": data_url(png_bytes())}}]}],
        extra_body={"mode": "auto"})
    assert completion.object == "chat.completion" and completion.id.startswith("chatcmpl-")
    assert completion.model == api.service.model_name
    choice = completion.choices[0]
    assert isinstance(choice.message.content, str) and choice.message.role == "assistant"
    assert choice.finish_reason in ("stop", "length")
    stats = completion.model_extra["ko_hypervl"]
    assert "answer" not in stats
    (decision,) = stats["vrc"]
    assert (decision["mode"], decision["chosen_by"], decision["width"], decision["height"]) == ("auto", "vrc", 96, 64)
    assert stats["visual_tokens"] == decision["visual_tokens"] > 0
    assert stats["time_to_first_token_s"] > 0 and stats["finish_reason"] in ("stop", "length")
    usage = completion.usage
    assert usage.prompt_tokens > stats["visual_tokens"] and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert openai_client.models.list().data[0].id == api.service.model_name


def test_a_streamed_answer_is_the_same_as_the_whole_one(openai_client):
    messages = [{"role": "user", "content": [{"type": "text", "text": "무슨 색인가요?"},
                                             {"type": "image_url", "image_url": data_url(png_bytes(color="red"))}]}]
    whole = openai_client.chat.completions.create(model="m", messages=messages, extra_body={"mode": "high"})
    chunks = list(openai_client.chat.completions.create(model="m", messages=messages, extra_body={"mode": "high"},
                                                        stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finish) == 1 and finish[0].choices[0].finish_reason == whole.choices[0].finish_reason
    assert finish[0].model_extra["ko_hypervl"]["vrc"][0]["mode"] == "high"
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage


def test_an_image_by_path_or_file_url_under_the_allowed_dir(api, dirs):
    photo = dirs.allowed / "photo.png"
    for url in (str(photo), photo.as_uri(), str(dirs.allowed / "sub" / ".." / "photo.png")):
        reply = post(api.url, chat_body(QUESTION, url))
        assert reply.status == 200, reply.body
        (decision,) = reply.json()["ko_hypervl"]["vrc"]
        assert (decision["width"], decision["height"]) == (120, 80)   # the file's own size: it was read


def test_a_text_only_multi_turn_chat_is_answered(api):
    body = {"messages": [{"role": "system", "content": "ignored"}, {"role": "user", "content": "안녕하세요"},
                         {"role": "assistant", "content": "안녕하세요!"}, {"role": "user", "content": "이름이 뭐예요?"}],
            "max_tokens": 4}
    reply = post(api.url, body)
    assert reply.status == 200, reply.body
    result = reply.json()
    assert result["ko_hypervl"]["vrc"] == [] and result["usage"]["completion_tokens"] <= 4


def test_a_follow_up_about_the_first_turns_image_is_answered_with_that_image(openai_client):
    messages = [{"role": "user", "content": [{"type": "image_url", "image_url": data_url(png_bytes())},
                                             {"type": "text", "text": QUESTION}]},
                {"role": "assistant", "content": "사과"},
                {"role": "user", "content": "그럼 가장 작은 것은?"}]
    completion = openai_client.chat.completions.create(model="m", messages=messages, max_tokens=4,
                                                       extra_body={"mode": "low"})
    stats = completion.model_extra["ko_hypervl"]
    (decision,) = stats["vrc"]                                     # the first turn's image, still in the prompt
    assert (decision["branch"], decision["width"], decision["height"]) == ("small", 96, 64)
    assert completion.usage.prompt_tokens > stats["visual_tokens"] > 0


# ----------------------------------------------------------------------------- refusals

def bad_requests(dirs) -> dict[str, tuple[bytes | dict, int, str, str]]:
    """name: (body, status, error code, a phrase the message must contain)."""
    return {
        "malformed JSON": (b'{"messages": [', 400, "invalid_json", "not valid JSON"),
        "non-object body": (b"[1, 2]", 400, "invalid_body", "JSON object"),
        "missing messages": ({"model": "m"}, 400, "missing_messages", "'messages' is required"),
        "text file as image": (chat_body(QUESTION, data_url("그냥 글자입니다".encode(), "image/png")), 400,
                               "invalid_image", "not a readable image"),
        "empty image": (chat_body(QUESTION, "data:image/png;base64,"), 400, "invalid_image", "empty"),
        "50-megapixel image": (chat_body(QUESTION, data_url(blank_png(10_000, 5_000))), 400, "invalid_image",
                               "over the limit"),
        "empty question": (chat_body("   ", data_url(png_bytes())), 400, "invalid_request", "empty"),
        "10,000-char question": (chat_body("가" * 10_000), 400, "invalid_request", "10,000 characters"),
        "path outside allowed dir": (chat_body(QUESTION, str(dirs.outside / "secret.png")), 403, "path_not_allowed",
                                     "outside"),
        "../ escape": (chat_body(QUESTION, f"{dirs.allowed}/../{dirs.outside.name}/secret.png"), 403,
                       "path_not_allowed", "outside"),
        "symlink escape": (chat_body(QUESTION, str(dirs.allowed / "link.png")), 403, "path_not_allowed", "outside"),
        "missing file in allowed dir": (chat_body(QUESTION, str(dirs.allowed / "nope.png")), 404, "file_not_found",
                                        "not found"),
        "http URL": (chat_body(QUESTION, "https://example.com/cat.png"), 400, "url_not_supported",
                     "never downloads"),
        "bad mode": (chat_body(QUESTION, mode="ultra"), 400, "invalid_mode", "auto, low, high"),
        "bad max_tokens": (chat_body(QUESTION, max_tokens="16"), 400, "invalid_max_tokens", "positive integer"),
        "unknown role": ({"messages": [{"role": "tool", "content": "x"}]}, 400, "invalid_role", "'tool'"),
    }


BAD_REQUEST_NAMES = list(bad_requests(SimpleNamespace(allowed=Path("/a"), outside=Path("/b"))))


def test_the_50_megapixel_png_is_tiny_and_well_formed():
    png = blank_png(10_000, 5_000)
    assert len(png) < 100_000 and Image.open(io.BytesIO(png)).size == (10_000, 5_000)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("name", BAD_REQUEST_NAMES)
def test_a_bad_request_gets_its_status_and_a_json_error(api, dirs, name, stream):
    body, status, code, phrase = bad_requests(dirs)[name]
    if stream and isinstance(body, dict):
        body = {**body, "stream": True}   # a stream is refused with the same status, not a 200 stream
    error = assert_json_error(post(api.url, body), status, code)
    assert phrase in error["message"]
    assert health(api.url)["running"] == 0   # no slot taken or leaked, and the server still answers


def test_a_body_over_the_limit_is_refused_from_its_content_length(api):
    host, port = api.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest("POST", "/v1/chat/completions")
    connection.putheader("Content-Length", str(100 * 2**20))   # declared, never sent
    connection.endheaders()
    response = connection.getresponse()
    reply = Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    connection.close()
    assert "64 MB" in assert_json_error(reply, 413, "body_too_large")["message"]
    assert health(api.url)["status"] == "ok"


def test_unknown_routes_and_methods_get_json_errors(api):
    assert_json_error(request(api.url, "GET", "/v1/nothing"), 404, "unknown_route")
    reply = request(api.url, "GET", "/v1/chat/completions")
    assert_json_error(reply, 405, "method_not_allowed")
    assert reply.headers["allow"] == "POST"


# ----------------------------------------------------------------------------- load, busy, disconnects

def test_twenty_concurrent_requests_are_all_answered_within_bounded_memory(api):
    body = json.dumps(chat_body(QUESTION, data_url(png_bytes(200, 150, "teal")), max_tokens=8)).encode()
    before, served = rss_mb(), health(api.url)["served"]
    start = threading.Barrier(20)
    replies, failures = [], []

    def send():
        start.wait()
        try:
            replies.append(post(api.url, body))
        except Exception as exc:   # a lost request: refused connection, reset, timeout
            failures.append(exc)

    threads = [threading.Thread(target=send) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures and len(replies) == 20
    for reply in replies:
        if reply.status == 503:
            assert_json_error(reply, 503, "server_busy")
        else:
            assert reply.status == 200 and isinstance(reply.json()["choices"][0]["message"]["content"], str)
    # the line holds 32 waiting requests, so none of these 20 may be turned away
    assert [r.status for r in replies] == [200] * 20
    stats = health(api.url)
    assert stats["served"] == served + 20 and (stats["running"], stats["waiting"]) == (0, 0)
    assert rss_mb() - before < 300


def test_a_full_line_is_refused_with_503_and_retry_after(vlm):
    settings = ServeSettings(max_new_tokens=8, max_waiting=2, wait_timeout=30, max_body_mb=0.01)
    service = ModelService(vlm, settings)
    with serving(service) as url:
        service.gate.acquire()   # the one generation slot is busy
        waiting: list[Reply] = []
        threads = [threading.Thread(target=lambda: waiting.append(post(url, chat_body(max_tokens=4))))
                   for _ in range(2)]
        try:
            for thread in threads:
                thread.start()
            wait_until(lambda: health(url)["waiting"] == 2, what="two requests in line")
            refused = [post(url, chat_body(max_tokens=4, stream=stream)) for stream in (False, False, True, True)]
        finally:
            service.gate.release()
        for thread in threads:
            thread.join(30)
        for reply in refused:
            assert "busy" in assert_json_error(reply, 503, "server_busy")["message"]
            assert int(reply.headers["retry-after"]) > 0
        assert [r.status for r in waiting] == [200, 200]   # the line moved on once the slot was free
        assert health(url)["refused"] == 4

        # this server's body limit is 10 KB: a chunked body (no Content-Length) is cut off while read
        oversized = (b"x" * 4096 for _ in range(4))
        host, port = url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.request("POST", "/v1/chat/completions", body=oversized, encode_chunked=True)
        response = connection.getresponse()
        reply = Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        connection.close()
        assert_json_error(reply, 413, "body_too_large")


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole answer"])
def test_a_client_that_hangs_up_mid_answer_frees_its_slot(stream):
    endless = EndlessVLM()
    service = ModelService(endless, ServeSettings())
    with serving(service) as url:
        host, port = url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.request("POST", "/v1/chat/completions", body=json.dumps(chat_body(stream=stream)).encode())
        if stream:
            response = connection.getresponse()
            assert response.status == 200 and response.getheader("content-type").startswith("text/event-stream")
            first_events = [response.fp.readline() for _ in range(6)]
            assert any(b'"content":"\xea\xb0\x80"' in line for line in first_events)   # "가": the answer is flowing
        else:   # a whole answer is sent only when done: hang up while it is being generated
            wait_until(lambda: endless.pieces > 5, timeout=5, what="the answer to be generated")
        assert health(url)["running"] == 1
        connection.sock.shutdown(socket.SHUT_RDWR)   # hang up without reading the rest
        connection.close()
        wait_until(endless.closed.is_set, timeout=5, what="the generation to be stopped")
        wait_until(lambda: health(url)["running"] == 0, timeout=5, what="the slot to be released")
        assert endless.pieces < endless.limit
