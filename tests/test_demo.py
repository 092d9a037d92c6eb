"""The demo's library parts without a browser: gallery, token view, VRC view, callbacks, gate and service limits."""

import io
import json
import threading
import time

import pytest
from PIL import Image

from ko_hypervl.inference import Answer, VRCDecision
from ko_hypervl.serving import ConcurrencyGate, ModelService, ServerBusy, ServerSettings
from ko_hypervl.serving.examples import EXAMPLES_DIR, GALLERY_SEED, load_examples
from ko_hypervl.serving.tokens_view import compare_tokenizers, render_html, segments
from ko_hypervl.serving.vrc_view import decision_markdown, model_view


@pytest.fixture(scope="module")
def service():
    return ModelService.load(ServerSettings(max_new_tokens=16, max_time=20))


# --- the example gallery -------------------------------------------------------------------------------

def test_gallery_is_committed_small_and_never_trained_on():
    examples = load_examples()
    kinds = [e.kind for e in examples]
    assert kinds.count("charts") >= 3 and kinds.count("exams") >= 2
    index = json.loads((EXAMPLES_DIR / "examples.json").read_text(encoding="utf-8"))
    # rendered in the held-out test split (fonts, words and styles training never sees) with a gallery-only seed
    assert index["split"] == "test" and index["seed"] == GALLERY_SEED != 0
    for e in examples:
        assert e.question.strip() and e.answer.strip()
        assert e.path().stat().st_size < 300_000
        with Image.open(e.path()) as im:
            assert max(im.size) <= 1400


def test_gallery_regenerates_identically(tmp_path):
    # the committed questions are what the generators produce for that seed (the images are lossy JPEGs)
    from ko_hypervl.serving.examples import render_examples

    fresh = render_examples(tmp_path)
    assert [(e.file, e.question, e.answer) for e in fresh] == [(e.file, e.question, e.answer) for e in load_examples()]


# --- the tokenizer tab ---------------------------------------------------------------------------------

def test_segments_colour_tokens_by_morpheme_edges():
    text = "학교에 갔다"
    cuts = [2, 5]                                  # Kiwi: 학교|에 갔|다
    b = lambda s: len(s.encode())                  # noqa: E731
    spans_ok = [(0, b("학교")), (b("학교"), b("학교에")), (b("학교에"), b("학교에 갔")), (b("학교에 갔"), b(text))]
    assert [(s.text, s.kind) for s in segments(text, spans_ok, cuts)] == [
        ("학교", "morpheme"), ("에", "morpheme"), (" 갔", "morpheme"), ("다", "morpheme")]
    spans_bad = [(0, b("학")), (b("학"), b("학교에"))]          # 학|교에 cuts through 학교
    assert [s.kind for s in segments("학교에", spans_bad, [2])] == ["split", "split"]
    # a syllable cut into UTF-8 bytes becomes one red segment that says how many tokens it took
    spans_bytes = [(0, 1), (1, 3), (3, 6)]                      # 학 as two byte tokens, then 교 whole
    assert [(s.text, s.kind, s.tokens) for s in segments("학교", spans_bytes, [1])] == [
        ("학", "bytes", 2), ("교", "morpheme", 1)]


def test_compare_tokenizers_counts_and_errors():
    from ko_hypervl.tokenization.baselines import load_adapter
    from ko_hypervl.tokenization.bundled import bundled_tokenizer_dir

    ours = load_adapter(bundled_tokenizer_dir())
    text = "학교에 갔었다고 했잖아요. 😀"
    views, morphemes = compare_tokenizers(text, ours)
    (view,) = views
    assert "".join(s.text for s in view.segments) == text          # nothing dropped or doubled
    assert view.tokens == len(ours.encode_batch([text])[0])
    assert "".join(morphemes) == text and "학교" in morphemes
    html = render_html(view, reference_tokens=view.tokens * 2)
    assert f'data-tokens="{view.tokens}"' in html and "50%" in html
    for bad, error in (("", ValueError), ("   ", ValueError), ("가" * 5001, ValueError), (None, TypeError)):
        with pytest.raises(error):
            compare_tokenizers(bad, ours)


# --- the VRC panel -------------------------------------------------------------------------------------

def _decision(scale=0.5, rows=2, cols=3):
    return VRCDecision("auto", "large", scale, "vrc", 900, 600, 336, 224, rows, cols, 112, 304)


def test_model_view_draws_the_grid_at_the_chosen_resolution():
    image = Image.new("RGB", (900, 600), "white")
    view = model_view(image, _decision(), display_side=720)
    assert view.size == (720, 480)
    pixels = view.load()
    assert pixels[360, 2] == (230, 40, 40) or pixels[360, 1] == (230, 40, 40)   # the top edge is drawn
    assert pixels[240, 240] == (230, 40, 40)                                      # a column line at 1/3
    assert pixels[100, 100] == (255, 255, 255)                                    # inside a tile: the image


def test_decision_markdown_reports_tokens_saved_and_speed():
    answer = Answer("답", [_decision()], 120, 5, 0.081, 95.0, 0.2, "stop")
    text = decision_markdown(answer)
    assert "**112** / 최대 해상도 304" in text and "63% 절약" in text
    assert "2×3 = 6 + 전체 축소본 1" in text and "81 ms" in text and "95.0 토큰/초" in text


# --- the callbacks the UI calls ------------------------------------------------------------------------

def test_ask_streams_an_answer_with_the_vrc_panel(service):
    from ko_hypervl.serving.ui import DemoCallbacks

    example = load_examples()[0]
    updates = list(DemoCallbacks(service).ask(str(example.path()), example.question, "auto", 16))
    text, view, panel = updates[-1]
    assert isinstance(text, str) and "시각 토큰" in panel and "VRC가 선택" in panel
    assert isinstance(view, Image.Image) and max(view.size) == 720
    assert all(u[2].startswith("*답변 생성 중") for u in updates[:-1])


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_text("not an image"), "이미지를 쓸 수 없습니다"),
    (lambda p: p.write_bytes(b""), "이미지를 쓸 수 없습니다"),
    # 50 megapixels: refused from the header, never decoded (a 1-bit PNG of that size is a few kB)
    (lambda p: Image.new("1", (10_000, 5_000)).save(p, format="PNG"), "over the limit"),
])
def test_ask_explains_bad_images(service, tmp_path, make, message):
    import gradio as gr

    from ko_hypervl.serving.ui import DemoCallbacks

    path = tmp_path / "upload.png"
    make(path)
    with pytest.raises(gr.Error, match=message):
        next(DemoCallbacks(service).ask(str(path), "무엇인가요?", "auto", 16))
    assert service.gate.running == 0


@pytest.mark.parametrize("question, message", [("", "질문을 입력하세요"), ("   ", "질문을 입력하세요"),
                                               ("가" * 10_000, "질문이 너무 깁니다")])
def test_ask_explains_bad_questions(service, question, message):
    import gradio as gr

    from ko_hypervl.serving.ui import DemoCallbacks

    with pytest.raises(gr.Error, match=message):
        next(DemoCallbacks(service).ask(str(load_examples()[0].path()), question, "auto", 16))


def test_tokenize_callback_puts_ours_beside_gpt4o(service):
    from ko_hypervl.serving.ui import DemoCallbacks, load_tokenizers

    ours, baseline, note = load_tokenizers(service)
    if baseline is None:
        pytest.skip(f"o200k_base not installed: {note}")
    mine, theirs, kiwi = DemoCallbacks(service, ours, baseline).tokenize("오늘 서울의 최고 기온은 27도입니다")
    count = lambda html: int(html.split('data-tokens="')[1].split('"')[0])   # noqa: E731
    assert count(mine) < count(theirs)
    assert "GPT-4o 대비" in mine and "Kiwi" in kiwi


def test_measured_accuracy_note_comes_from_the_checkpoint_eval(service, tmp_path):
    from pathlib import Path

    from ko_hypervl.serving.ui import measured_accuracy_note

    report = json.loads((Path(service.vlm.model.name_or_path) / "eval.json").read_text(encoding="utf-8"))
    assert f"{report['modes']['auto']['exact_match']['accuracy']:.1%}" in measured_accuracy_note(
        Path(service.vlm.model.name_or_path))
    assert measured_accuracy_note(tmp_path) == ""


# --- limits: the gate, the time limit, slots released ----------------------------------------------------

def test_gate_refuses_past_its_waiting_line_and_after_its_timeout():
    gate = ConcurrencyGate(concurrency=1, max_waiting=1, wait_timeout=0.3)
    gate.acquire()
    waiter_result = []
    waiter = threading.Thread(target=lambda: waiter_result.append(_try(gate)))
    waiter.start()
    time.sleep(0.05)
    with pytest.raises(ServerBusy, match="already waiting"):     # the line (1) is full
        gate.acquire()
    waiter.join()
    assert waiter_result == ["busy"]                              # it waited 0.3 s, then was refused
    gate.release()
    with gate.slot():
        assert gate.running == 1
    assert gate.stats() == {"concurrency": 1, "running": 0, "waiting": 0, "max_waiting": 1, "refused": 2}


def _try(gate):
    try:
        gate.acquire()
    except ServerBusy:
        return "busy"
    gate.release()
    return "ok"


def test_closing_a_stream_early_frees_the_slot(service):
    stream = service.open_stream([str(load_examples()[0].path())], "제목은?", "high", 16)
    assert service.gate.running == 1
    next(stream)
    stream.close()                        # a closed browser tab / a client that hung up
    assert service.gate.running == 0


def test_max_time_cuts_an_answer_off_cleanly(service):
    answer = service.vlm.ask(Image.new("RGB", (224, 224), "white"), "설명해 주세요", "high", max_new_tokens=64,
                             max_time=1e-4)
    assert answer.finish_reason == "time" and answer.new_tokens < 64


def test_server_settings_refuse_nonsense():
    for kwargs in ({"concurrency": 0}, {"max_time": 0}, {"port": 0}, {"max_new_tokens": -1}):
        with pytest.raises(ValueError):
            ServerSettings(**kwargs)
    assert not ServerSettings().exposed and ServerSettings(host="0.0.0.0").exposed


def test_too_many_images_is_a_clear_error(service):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buffer, format="PNG")
    with pytest.raises(ValueError, match="이미지가 너무 많습니다"):
        service.open_stream([buffer.getvalue()] * 5, "질문", "auto")
