"""The demo in a real browser: headless Chromium driven by Playwright, against the demo served on loopback.

Skipped, with the reason, only where Playwright or the system Chromium is missing (``bash scripts/test.sh``
installs both: the ``dev`` extra and ``scripts/apt-packages-dev.txt``). Set ``KO_HYPERVL_SCREENSHOTS=DIR``
to keep the screenshots (the README's comes from ``DIR=docs/images``).
"""

import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from ko_hypervl.serving import ModelService, ServerSettings
from ko_hypervl.serving.examples import load_examples

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# NOTES §5: the system Chromium, never `playwright install`; no sandbox inside containers, nothing phoning home
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
HANGUL = re.compile(r"[가-힣]")

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
if CHROMIUM is None:
    pytest.skip("no Chromium on this machine: apt-get install -y --no-install-recommends chromium",
                allow_module_level=True)
expect = sync_api.expect


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def demo_url():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from ko_hypervl.serving.ui import CSS, build_demo

    settings = ServerSettings(port=_free_port(), max_new_tokens=32, max_time=30)
    demo = build_demo(ModelService.load(settings))
    demo.launch(server_name="127.0.0.1", server_port=settings.port, prevent_thread_lock=True, quiet=True,
                ssr_mode=False, footer_links=[], theme="soft", css=CSS)
    yield f"http://127.0.0.1:{settings.port}/"
    demo.close()


@pytest.fixture(scope="module")
def page(demo_url):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="ko-KR")
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(demo_url, wait_until="networkidle")
        yield page
        browser.close()


def _has_korean_font() -> bool:
    if shutil.which("fc-list") is None:
        return False
    return bool(subprocess.run(["fc-list", ":lang=ko"], capture_output=True, text=True).stdout.strip())


@pytest.fixture
def shots(tmp_path):
    keep = os.environ.get("KO_HYPERVL_SCREENSHOTS")
    # screenshots kept for the README must show the Korean, not the empty boxes of a browser without a Korean font
    if keep and not _has_korean_font():
        pytest.fail("KO_HYPERVL_SCREENSHOTS needs a Korean system font for Chromium: "
                    "apt-get install -y --no-install-recommends fonts-nanum (scripts/apt-packages-dev.txt)")

    def shot(name: str, **kwargs) -> Path:
        path = tmp_path / name
        sync_page = kwargs.pop("page")
        sync_page.screenshot(path=str(path), **kwargs)
        assert path.stat().st_size > 10_000            # a real picture, not a blank page
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(keep) / name)
        return path

    return shot


def _answer_box(page):
    return page.locator("#answer textarea")


def test_example_gets_a_korean_answer_and_the_vrc_panel(page, shots):
    example = load_examples()[0]
    expect(page.locator("h1")).to_contain_text("ko-hypervl")
    page.locator("#examples [data-testid='dataset-cell-0-1']").click()
    expect(page.locator("#question textarea")).to_have_value(example.question)
    expect(page.locator("#expected textarea")).to_have_value(example.answer)
    page.locator("#ask").click()
    panel = page.locator("#vrc-panel")
    expect(panel).to_contain_text("시각 토큰")
    assert HANGUL.search(_answer_box(page).input_value()), _answer_box(page).input_value()
    text = panel.inner_text()
    assert "VRC가 선택" in text and "절약" in text and "ms" in text and "토큰/초" in text
    expect(page.locator("#vrc-view img")).to_be_visible()          # the model's view with its tile grid
    shots("demo.png", page=page, full_page=True)


def test_uploaded_image_in_low_mode(page, shots, tmp_path):
    upload = tmp_path / "my_chart.png"
    image = Image.new("RGB", (800, 500), "white")
    draw = ImageDraw.Draw(image)
    for i, height in enumerate((120, 300, 210)):
        draw.rectangle([150 + i * 200, 450 - height, 250 + i * 200, 450], fill=(200, 60, 60))
    image.save(upload)
    page.locator("#image-input input[type=file]").set_input_files(str(upload))
    expect(page.locator("#expected textarea")).to_have_value("")   # an upload has no known answer
    page.locator("#question textarea").fill("가장 긴 막대는 몇 번째인가요?")
    page.locator("#mode").get_by_label("low").check()
    page.locator("#ask").click()
    expect(page.locator("#vrc-panel")).to_contain_text("small 가지")
    expect(page.locator("#vrc-panel")).to_contain_text("800×500")
    assert _answer_box(page).input_value().strip()


def test_a_file_that_is_not_an_image_gets_a_clear_message(page, tmp_path):
    bad = tmp_path / "homework.png"
    bad.write_text("this is not an image")
    page.locator("#image-input input[type=file]").set_input_files(str(bad))
    page.locator("#question textarea").fill("무엇이 보이나요?")
    page.locator("#ask").click()
    toast = page.locator(".toast-body").filter(has_text="이미지를 쓸 수 없습니다")
    expect(toast).to_contain_text("'homework.png' is not a readable image")   # the user's file name


def test_empty_question_gets_a_clear_message(page):
    page.locator("#examples [data-testid='dataset-cell-1-1']").click()
    # the example (a readable image) must be in place before asking, or the previous test's file is judged
    expect(page.locator("#expected textarea")).to_have_value(load_examples()[1].answer)
    page.locator("#question textarea").fill("")
    page.locator("#ask").click()
    # filter, not .last: toasts of earlier tests may still be on the page, in any order
    expect(page.locator(".toast-body").filter(has_text="질문을 입력하세요")).to_be_visible()


def test_tokenizer_tab_compares_with_gpt4o(page, shots):
    page.reload(wait_until="networkidle")   # a fresh page: the earlier tests' error toasts would cover the tokens
    page.get_by_role("tab", name="토크나이저").click()
    page.locator("#tok-text textarea").fill("학교에 갔었다고 했잖아요. 국립국어원 표준국어대사전")
    page.locator("#tok-go").click()
    ours = page.locator("#tok-ours .token-view")
    expect(ours).to_contain_text("토큰")
    theirs = page.locator("#tok-theirs .token-view")
    if theirs.count() == 0:
        pytest.skip("o200k_base is not installed here (pip install -e .[bench])")
    expect(theirs).to_contain_text("o200k_base")
    n_ours, n_theirs = int(ours.get_attribute("data-tokens")), int(theirs.get_attribute("data-tokens"))
    assert 0 < n_ours < n_theirs
    assert page.locator("#tok-ours .tok-morpheme").count() > 0
    expect(page.locator("#tok-morphemes")).to_contain_text("학교")
    expect(page.locator("[data-testid='toast-body']")).to_have_count(0)   # nothing covers the README's picture
    shots("demo_tokenizer.png", page=page)
