"""``ko-hypervl demo`` (the Gradio page) and ``ko-hypervl serve`` (the OpenAI-compatible API)."""

from __future__ import annotations

import argparse

from ..settings import settings_from_args
from .common import add_settings_command


def register(commands: argparse._SubParsersAction) -> None:
    from ..serving.openai_api import ServeSettings
    from ..serving.ui import DemoSettings

    add_settings_command(commands, "demo", "start the Gradio demo in the browser (Korean UI)",
                         "Ask about handwritten charts and exam pages in Korean; see the VRC decision, the speed, "
                         "and our tokens beside GPT-4o's. Listens on 127.0.0.1 unless --host says otherwise.",
                         DemoSettings, _demo)
    add_settings_command(commands, "serve", "serve an OpenAI-compatible /v1/chat/completions API",
                         "POST /v1/chat/completions (images as data URLs, or file paths under --allowed-dir; "
                         "stream: true for server-sent events), GET /v1/models, GET /health. "
                         "Listens on 127.0.0.1 unless --host says otherwise.", ServeSettings, _serve)


def _demo(args: argparse.Namespace) -> int:
    from ..serving.ui import DemoSettings, launch_demo

    launch_demo(settings_from_args(DemoSettings, args))
    return 0


def _serve(args: argparse.Namespace) -> int:
    from ..serving.openai_api import ServeSettings, run_api

    run_api(settings_from_args(ServeSettings, args))
    return 0
