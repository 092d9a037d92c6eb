"""The Gradio demo: ask about a handwritten chart or an exam page in Korean and watch what the model does.

Tabs:
* 이미지 질문: upload, paste or webcam an image (or pick an example), ask, read the streamed answer,
  and see the VRC decision: the image as the encoder sees it with its tile grid, the visual tokens used
  against full resolution, time to first token and tokens/s. Mode: ``auto`` / ``low`` / ``high``.
* 토크나이저: type Korean text and compare our tokens with GPT-4o's (o200k_base), coloured on morphemes.
* 모델 정보: the checkpoint and its model card, so the numbers shown to a class are the measured ones.

The callbacks are plain functions of the inputs (testable without a browser); ``build_demo`` only wires
them to components. All requests pass through the shared :class:`~.service.ModelService`, so its
limits and queue apply here exactly as in the API.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..inference import Answer
from ..processing.images import ImageInputError
from ..settings import setting
from .examples import Example, load_examples
from .gate import ServerBusy
from .service import ModelService, ServerSettings
from .tokens_view import compare_tokenizers, legend_html, render_html
from .vrc_view import decision_markdown, model_view

log = logging.getLogger(__name__)

TITLE = "ko-hypervl 데모: 손글씨 차트와 시험지에 한국어로 묻기"
INTRO = """\
이미지를 올리거나(붙여넣기·웹캠도 됩니다) 아래 **예제**를 고른 뒤 한국어로 질문하세요. 답은 생성되는 대로 나옵니다.
오른쪽 패널은 **VRC(해상도 압축기)의 결정**입니다: 이 이미지에 어떤 해상도면 충분한지 모델이 고른 배율,
모델이 실제로 보는 이미지와 타일, 최대 해상도 대비 아낀 시각 토큰, 첫 토큰까지 걸린 시간과 생성 속도.
"""
MODE_HELP = "auto: VRC가 해상도를 고름 · low: 작은 인코더(빠름) · high: 큰 인코더, 최대 해상도"
TOKENIZER_SAMPLE = "학교에 갔었다고 했잖아요. 오늘 서울의 최고 기온은 27도입니다 ㅋㅋ"
CSS = """
#answer textarea { font-size: 1.25em; }
.token-view { margin-bottom: 12px; }
"""


class DemoCallbacks:
    """What the UI's buttons do, as plain functions (a generator for the streamed answer)."""

    def __init__(self, service: ModelService, ours_tokenizer=None, baseline_tokenizer=None, baseline_note: str = ""):
        self.service = service
        self.ours_tokenizer = ours_tokenizer
        self.baseline_tokenizer = baseline_tokenizer
        self.baseline_note = baseline_note

    def ask(self, image: str | dict | None, question: str, mode: str, max_tokens: int) -> Iterator[tuple]:
        """Yields (answer so far, VRC view image, VRC markdown) while the answer streams.

        ``image`` is a file path, or Gradio's file payload (a dict with its ``path``) when the event
        skips Gradio's preprocessing.
        """
        import gradio as gr

        image_path = image.get("path") if isinstance(image, dict) else image
        try:
            # decoded once, here: the same pixels feed the model and the VRC view
            loaded = self.service.load_images([image_path] if image_path else [])
            stream = self.service.open_stream(loaded, question or "", mode, int(max_tokens))
        except (ImageInputError, FileNotFoundError) as exc:
            # name the file as the user knows it, not by its path in Gradio's upload cache
            name = image.get("orig_name") if isinstance(image, dict) else None
            detail = str(exc).replace(repr(image_path), repr(name)) if name else str(exc)
            raise gr.Error(f"이미지를 쓸 수 없습니다 (cannot use this image): {detail}") from None
        except (ServerBusy, ValueError, TypeError) as exc:
            raise gr.Error(str(exc)) from None
        text = ""
        for item in stream:
            if isinstance(item, Answer):
                view = model_view(loaded[0], item.decisions[0]) if loaded else None
                yield item.text, view, decision_markdown(item)
                return
            text += item
            yield text, None, "*답변 생성 중… (generating)*"

    def tokenize(self, text: str) -> tuple[str, str, str]:
        """(our tokens HTML, GPT-4o tokens HTML, Kiwi's morphemes as markdown) for ``text``."""
        import gradio as gr

        if self.ours_tokenizer is None:
            raise gr.Error("tokenizer not loaded")
        try:
            views, morphemes = compare_tokenizers(text or "", self.ours_tokenizer, self.baseline_tokenizer)
        except (ValueError, TypeError) as exc:
            raise gr.Error(str(exc)) from None
        reference = views[1].tokens if len(views) > 1 else None
        ours = render_html(views[0], reference)
        theirs = render_html(views[1]) if len(views) > 1 else f"<p>GPT-4o 토크나이저를 불러오지 못했습니다: " \
                                                             f"{self.baseline_note}</p>"
        kiwi = "**Kiwi 형태소 경계:** " + " | ".join(f"`{m}`" for m in morphemes)
        return ours, theirs, kiwi


def load_tokenizers(service: ModelService):
    """Our tokenizer (the model's own) and GPT-4o's o200k_base as adapters; the baseline may be missing."""
    from ..tokenization.baselines import BaselineUnavailable, HFTokenizerAdapter, o200k_base

    checkpoint = Path(service.vlm.model.name_or_path or "")
    tokenizer_file = checkpoint / "tokenizer.json"
    if not tokenizer_file.is_file():
        from ..tokenization.bundled import bundled_tokenizer_dir

        tokenizer_file = bundled_tokenizer_dir() / "tokenizer.json"
    ours = HFTokenizerAdapter.from_file(f"ko-hypervl ({len(service.vlm.processor.tokenizer):,} 어휘)", tokenizer_file)
    try:
        baseline, note = o200k_base(), ""
        baseline.name = "GPT-4o (o200k_base, 200k 어휘)"
    except BaselineUnavailable as exc:
        baseline, note = None, str(exc)
    return ours, baseline, note


def measured_accuracy_note(checkpoint: Path) -> str:
    """One honest line from the checkpoint's own eval.json (made by ``ko-hypervl eval``), or nothing."""
    import json

    try:
        report = json.loads((checkpoint / "eval.json").read_text(encoding="utf-8"))
        exact = report["modes"]["auto"]["exact_match"]
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    return (f"이 모델의 측정된 정확도: 시험용 이미지 질문 {exact['n']}개 중 **{exact['accuracy']:.1%}** 정확 일치 "
            f"(auto 모드). 작은 모델을 CPU에서 짧게 학습한 결과이므로 틀린 답이 많습니다. 자세한 숫자는 '모델 정보' 탭에.")


def _model_info(service: ModelService) -> str:
    checkpoint = Path(service.vlm.model.name_or_path or "")
    card = checkpoint / "model_card.md"
    head = f"**체크포인트:** `{checkpoint}` · 파라미터 {sum(p.numel() for p in service.vlm.model.parameters()):,}개\n\n"
    if card.is_file():
        return head + card.read_text(encoding="utf-8")
    return head + "(이 체크포인트에는 model_card.md가 없습니다: `ko-hypervl eval`로 만드세요.)"


def _example_rows(examples: list[Example]) -> list[list]:
    return [[str(e.path()), e.question] for e in examples]


def build_demo(service: ModelService, examples: list[Example] | None = None):
    """The Gradio Blocks app around ``service`` (not launched)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    ours, baseline, note = load_tokenizers(service)
    accuracy = measured_accuracy_note(Path(service.vlm.model.name_or_path or ""))
    callbacks = DemoCallbacks(service, ours, baseline, note)
    examples = load_examples() if examples is None else examples
    settings = service.settings

    with gr.Blocks(title="ko-hypervl 데모", analytics_enabled=False) as demo:
        gr.Markdown(f"# {TITLE}\n{INTRO}\n{accuracy}")
        with gr.Tab("이미지 질문", id="vqa"):
            with gr.Row():
                with gr.Column(scale=1):
                    # image_mode=None: Gradio passes the file as it is instead of decoding and re-saving it
                    # (a 50-megapixel upload is refused by load_image from its header, never decoded)
                    image = gr.Image(type="filepath", image_mode=None, height=380,
                                     sources=["upload", "clipboard", "webcam"],
                                     label="이미지 (올리기 · 붙여넣기 · 웹캠)", elem_id="image-input")
                    question = gr.Textbox(label="질문", lines=2, placeholder="예: 가장 많은 학생이 좋아하는 과일은?",
                                          elem_id="question")
                    with gr.Row():
                        mode = gr.Radio(["auto", "low", "high"], value="auto", label="모드", info=MODE_HELP,
                                        elem_id="mode")
                        max_tokens = gr.Slider(8, settings.max_new_tokens, value=min(64, settings.max_new_tokens),
                                               step=8, label="최대 답변 길이 (토큰)")
                    ask = gr.Button("질문하기", variant="primary", elem_id="ask")
                    expected = gr.Textbox(label="예제의 정답 (이미지를 만든 생성기가 아는 답)", interactive=False,
                                          visible=bool(examples), elem_id="expected")
                    if examples:
                        gr.Examples(_example_rows(examples), inputs=[image, question], label=
                                    "예제: 손글씨 차트·표·시험지 (학습에 쓰지 않은 글꼴과 단어로 그린 이미지)",
                                    examples_per_page=len(examples), elem_id="examples")
                with gr.Column(scale=1):
                    answer = gr.Textbox(label="답변", lines=3, elem_id="answer", buttons=["copy"])
                    vrc_view = gr.Image(label="모델이 보는 이미지 (VRC가 고른 해상도와 타일)", height=380,
                                        interactive=False, elem_id="vrc-view")
                    vrc_panel = gr.Markdown("*질문하면 VRC 결정과 속도가 여기에 나옵니다.*", elem_id="vrc-panel")
            # an example's known answer appears with its question (kept out of the gallery table, which
            # would give it away); a user's own upload has none
            answers = {e.question: e.answer for e in examples}
            question.change(lambda q: answers.get(q, ""), question, expected, queue=False)
            image.upload(lambda: "", None, expected, queue=False)
            event_inputs = [image, question, mode, max_tokens]
            for trigger in (ask.click, question.submit):
                # preprocess=False: the callback gets the uploaded file (already checked to be in Gradio's
                # upload cache) instead of Gradio opening it first, which fails on a non-image with a
                # generic English error; load_image then says in Korean and English what is wrong
                trigger(callbacks.ask, event_inputs, [answer, vrc_view, vrc_panel], preprocess=False,
                        concurrency_limit=settings.concurrency, concurrency_id="generate")
        with gr.Tab("토크나이저", id="tokenizer"):
            gr.Markdown("한국어 문장을 넣으면 **우리 토크나이저**의 토큰과 **GPT-4o (o200k_base)** 토큰을 나란히 보여 줍니다. "
                        "색은 토큰이 형태소 경계에서 잘렸는지를 뜻합니다.")
            text = gr.Textbox(label="한국어 문장", value=TOKENIZER_SAMPLE, lines=3, elem_id="tok-text")
            go = gr.Button("토큰 보기", variant="primary", elem_id="tok-go")
            gr.HTML(legend_html())
            ours_html = gr.HTML(elem_id="tok-ours")
            theirs_html = gr.HTML(elem_id="tok-theirs")
            morphemes = gr.Markdown(elem_id="tok-morphemes")
            for trigger in (go.click, text.submit):
                trigger(callbacks.tokenize, [text], [ours_html, theirs_html, morphemes], concurrency_limit=4)
            demo.load(callbacks.tokenize, [text], [ours_html, theirs_html, morphemes])
        with gr.Tab("모델 정보", id="model"):
            gr.Markdown(_model_info(service))
    demo.queue(max_size=settings.max_waiting, default_concurrency_limit=settings.concurrency)
    return demo


@dataclass
class DemoSettings(ServerSettings):
    max_upload_mb: float = setting(50.0, help="largest file the page accepts, in megabytes")
    open_browser: bool = setting(False, help="open the demo in the default web browser once it is up")


def launch_demo(settings: DemoSettings, block: bool = True):
    """Load the model, build the demo and serve it on ``settings.host:settings.port``."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if settings.exposed:
        log.warning("listening on %s: anyone who can reach this machine can use the demo", settings.host)
    service = ModelService.load(settings)
    demo = build_demo(service)
    demo.launch(server_name=settings.host, server_port=settings.port, prevent_thread_lock=not block,
                inbrowser=settings.open_browser,
                ssr_mode=False, show_error=True, footer_links=[], theme="soft", css=CSS,
                max_file_size=int(settings.max_upload_mb * 1024 * 1024))
    return demo
