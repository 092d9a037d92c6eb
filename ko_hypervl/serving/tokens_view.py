"""The tokenizer tab: our tokens beside GPT-4o's (o200k_base), coloured by how they sit on morphemes.

Each token is coloured by its edges, the way a teacher would point at it:
* ``morpheme`` (green): both edges fall on a Kiwi morpheme cut, a space, or the ends of the text;
* ``split`` (orange): an edge cuts through a morpheme (학|교 instead of 학교|에);
* ``bytes`` (red): byte-level tokens that cut a Hangul syllable into UTF-8 bytes; they are shown merged
  into the characters they make up, with how many tokens that took.
Shades alternate so that every token boundary stays visible. The counts and the share of inner
boundaries on a morpheme cut are the same measure ``ko-hypervl tokenizer eval`` reports.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from ..textinput import check_text
from ..tokenization.bytelevel import utf8_char_offsets
from ..tokenization.metrics import BoundaryCount
from ..tokenization.morphology import morpheme_cuts, split_at

MAX_TEXT_CHARS = 5000
COLOURS = {"morpheme": ("#c8f0c8", "#9edf9e"), "split": ("#ffd9a8", "#ffc078"), "bytes": ("#ffb3b3", "#ff8f8f")}
LABELS = {"morpheme": "형태소 경계에서 자른 토큰", "split": "형태소 중간을 자른 토큰", "bytes": "글자를 바이트로 쪼갠 토큰"}


@dataclass(frozen=True)
class Segment:
    text: str
    kind: str          # morpheme | split | bytes
    tokens: int = 1    # tokens this segment stands for (more than 1 only for "bytes")


@dataclass(frozen=True)
class TokenView:
    name: str
    segments: list[Segment]
    tokens: int
    morpheme_cut_share: float


def _edge_ok(text: str, pos: int, cuts: set[int]) -> bool:
    if pos <= 0 or pos >= len(text) or pos in cuts:
        return True
    return text[pos - 1].isspace() or text[pos].isspace()


def segments(text: str, byte_spans: list[tuple[int, int]], cuts: list[int]) -> list[Segment]:
    """``text`` cut into coloured segments from its tokens' UTF-8 byte spans and Kiwi's cut positions."""
    offsets = utf8_char_offsets(text)
    char_at = {b: i for i, b in enumerate(offsets)}
    cut_set = set(cuts)
    out: list[Segment] = []
    group_start: int | None = None    # byte where the current run of tokens began
    group_tokens = 0
    for start, end in byte_spans:
        if group_start is None:
            group_start = start
        group_tokens += 1
        if end not in char_at:        # this token ends inside a character: merge it with the next one
            continue
        a = char_at.get(group_start, max(i for i, off in enumerate(offsets) if off <= group_start))
        b = char_at[end]
        if group_tokens > 1:
            kind = "bytes"
        else:
            kind = "morpheme" if _edge_ok(text, a, cut_set) and _edge_ok(text, b, cut_set) else "split"
        if b > a:
            out.append(Segment(text[a:b], kind, group_tokens))
        group_start, group_tokens = None, 0
    return out


def token_view(name: str, text: str, byte_spans: list[tuple[int, int]], cuts: list[int]) -> TokenView:
    count = BoundaryCount()
    count.add(text, byte_spans, cuts)
    return TokenView(name, segments(text, byte_spans, cuts), len(byte_spans), count.share)


def render_html(view: TokenView, reference_tokens: int | None = None) -> str:
    """One tokenizer's segments as coloured spans, with its counts (and its size against ``reference_tokens``)."""
    spans = []
    for i, seg in enumerate(view.segments):
        colour = COLOURS[seg.kind][i % 2]
        title = LABELS[seg.kind] + (f" ({seg.tokens} tokens)" if seg.tokens > 1 else "")
        shown = html.escape(seg.text).replace("\n", "⏎<br>")
        spans.append(f'<span class="tok tok-{seg.kind}" title="{html.escape(title)}" '
                     f'style="background:{colour};border-radius:3px;padding:1px 0;margin:0 1px">{shown}</span>')
    share = "—" if view.morpheme_cut_share != view.morpheme_cut_share else f"{view.morpheme_cut_share:.0%}"
    ratio = ""
    if reference_tokens:
        ratio = f" · GPT-4o 대비 <b>{view.tokens / reference_tokens:.0%}</b>"
    return (f'<div class="token-view" data-tokens="{view.tokens}"><h4 style="margin:4px 0">{html.escape(view.name)}: '
            f'<b class="token-count">{view.tokens}</b> 토큰{ratio} · 형태소 경계 일치 {share}</h4>'
            f'<div style="white-space:pre-wrap;line-height:2;font-size:1.1em">{"".join(spans)}</div></div>')


def legend_html() -> str:
    items = "".join(f'<span style="background:{COLOURS[k][0]};padding:2px 6px;margin-right:8px;border-radius:3px">'
                    f'{LABELS[k]}</span>' for k in COLOURS)
    return f'<div class="token-legend">{items}</div>'


def compare_tokenizers(text: str, ours, baseline=None) -> tuple[list[TokenView], list[str]]:
    """Views for our tokenizer and (if given) the baseline adapter, and Kiwi's morphemes of ``text``.

    ``ours`` and ``baseline`` are tokenizer adapters with ``byte_spans(text)`` (see ``tokenization.baselines``).
    """
    check_text(text, what="the text", limit=MAX_TEXT_CHARS,
               empty_hint="type some Korean text to tokenize (토큰으로 나눌 한국어 문장을 입력하세요)",
               long_hint="문장이 너무 깁니다")
    (cuts,) = morpheme_cuts([text])
    views = [token_view(ours.name, text, ours.byte_spans(text), cuts)]
    if baseline is not None:
        views.append(token_view(baseline.name, text, baseline.byte_spans(text), cuts))
    return views, split_at(text, cuts)
