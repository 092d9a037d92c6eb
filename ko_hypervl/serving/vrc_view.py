"""The VRC panel: what resolution the model chose for an image, drawn so a teacher can point at it.

``model_view`` shows the image as the encoder receives it: shrunk to the chosen scale (so a low VRC
scale looks visibly blurrier), enlarged back to a viewable size, with the tile grid drawn over it.
``decision_markdown`` is the accounting beside it: scale, tiles, visual tokens used against full
resolution, and the answer's speed.
"""

from __future__ import annotations

from PIL import Image, ImageDraw

from ..inference import Answer, VRCDecision

DISPLAY_SIDE = 720
GRID_COLOUR = (230, 40, 40)
MODE_NAMES = {"auto": "auto (VRC가 배율 선택)", "low": "low (작은 가지)", "high": "high (큰 가지, 최대 해상도)"}
FINISH_NAMES = {"stop": "답변 끝", "length": "최대 길이 도달", "time": "시간 제한으로 중단", "cancelled": "취소됨"}


def model_view(image: Image.Image, decision: VRCDecision, display_side: int = DISPLAY_SIDE) -> Image.Image:
    """``image`` as the encoder sees it at ``decision``'s scale, enlarged for display, with its tile grid."""
    seen = image.convert("RGB").resize((decision.resized_width, decision.resized_height), Image.Resampling.BICUBIC)
    zoom = display_side / max(seen.size)
    shown = seen.resize((max(1, round(seen.width * zoom)), max(1, round(seen.height * zoom))),
                        Image.Resampling.NEAREST if zoom >= 2 else Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(shown)
    width = max(2, round(display_side / 240))
    for c in range(decision.cols + 1):
        x = min(round(c * shown.width / decision.cols), shown.width - 1)
        draw.line([(x, 0), (x, shown.height)], fill=GRID_COLOUR, width=width)
    for r in range(decision.rows + 1):
        y = min(round(r * shown.height / decision.rows), shown.height - 1)
        draw.line([(0, y), (shown.width, y)], fill=GRID_COLOUR, width=width)
    return shown


def decision_markdown(answer: Answer) -> str:
    """A Korean summary of the resolution decisions and the answer's speed (markdown table)."""
    rows = ["| 항목 | 값 |", "|---|---|"]
    for i, d in enumerate(answer.decisions):
        tag = f" (이미지 {i + 1})" if len(answer.decisions) > 1 else ""
        chooser = "VRC가 선택" if d.chosen_by == "vrc" else "고정"
        tiles = f"{d.rows}×{d.cols} = {d.rows * d.cols}" + (" + 전체 축소본 1" if d.rows * d.cols > 1 else "")
        saved = d.tokens_saved / d.full_visual_tokens if d.full_visual_tokens else 0.0
        rows += [
            f"| 모드{tag} | {MODE_NAMES.get(d.mode, d.mode)} · {d.branch} 가지 |",
            f"| 해상도 배율{tag} | **{d.scale:g}** ({chooser}) |",
            f"| 크기{tag} | 원본 {d.width}×{d.height} → 인코더 입력 {d.resized_width}×{d.resized_height} |",
            f"| 타일{tag} | {tiles} |",
            f"| 시각 토큰{tag} | **{d.visual_tokens}** / 최대 해상도 {d.full_visual_tokens} (**{saved:.0%} 절약**) |",
        ]
    rows += [
        f"| 첫 토큰까지 (TTFT) | **{answer.time_to_first_token_s * 1000:.0f} ms** |",
        f"| 생성 속도 | **{answer.tokens_per_s:.1f} 토큰/초** ({answer.new_tokens} 토큰, {answer.total_s:.2f} 초) |",
        f"| 프롬프트 토큰 | {answer.prompt_tokens} (시각 토큰 {answer.visual_tokens} 포함) |",
        f"| 끝난 이유 | {FINISH_NAMES.get(answer.finish_reason, answer.finish_reason)} |",
    ]
    return "\n".join(rows)
