"""Paper to draw on and the camera or scanner that captures it.

Paper: notebook lines, graph grid, dot grid, kraft, sticky note, plain white, with fibre texture.
Capture: a flat-bed scan (small skew, soft focus) or a phone photo (perspective on a desk, uneven light,
sensor noise); JPEG artefacts come from the quality the row is saved at.
"""

from __future__ import annotations

import random

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

PAPER_COLORS = {
    "plain": (250, 249, 244), "lined": (252, 251, 246), "grid": (250, 251, 247), "dotted": (251, 250, 245),
    "kraft": (214, 190, 150), "sticky": (253, 240, 140), "white": (255, 255, 255), "panel": (246, 247, 249),
    "textbook": (253, 250, 240),
}
DESKS = ((92, 64, 42), (60, 60, 62), (140, 110, 80), (200, 200, 196), (40, 50, 70))


def paper_color(kind: str) -> tuple[int, int, int]:
    return PAPER_COLORS[kind]


def _texture(rng: np.random.Generator, width: int, height: int, strength: float) -> np.ndarray:
    """Low-frequency blotches plus fine grain, as one float map around 0."""
    coarse = rng.normal(0, 1, (max(2, height // 40), max(2, width // 40))).astype(np.float32)
    blotch = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BILINEAR))
    grain = rng.normal(0, 1, (height, width)).astype(np.float32)
    return strength * (0.6 * blotch + 0.4 * grain)


def make_paper(kind: str, width: int, height: int, rng: random.Random) -> Image.Image:
    """A sheet of ``kind`` (see ``PAPER_COLORS``) with its ruling printed on it."""
    base = np.empty((height, width, 3), np.float32)
    base[:] = PAPER_COLORS[kind]
    if kind not in ("white", "panel"):
        nrng = np.random.default_rng(rng.getrandbits(32))
        base += _texture(nrng, width, height, 3.0 if kind != "kraft" else 7.0)[..., None]
    image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    if kind == "lined":
        gap = rng.randint(24, 34)
        for y in range(rng.randint(30, 60), height, gap):
            draw.line([(0, y), (width, y)], fill=(170, 195, 225), width=1)
        x = rng.randint(40, 70)
        draw.line([(x, 0), (x, height)], fill=(230, 140, 140), width=1)
    elif kind == "grid":
        gap = rng.randint(16, 26)
        color = rng.choice(((180, 205, 225), (175, 210, 180), (215, 200, 180)))
        for y in range(gap // 2, height, gap):
            draw.line([(0, y), (width, y)], fill=color, width=1)
        for x in range(gap // 2, width, gap):
            draw.line([(x, 0), (x, height)], fill=color, width=1)
    elif kind == "dotted":
        gap = rng.randint(16, 24)
        for y in range(gap // 2, height, gap):
            for x in range(gap // 2, width, gap):
                draw.ellipse((x - 1, y - 1, x + 1, y + 1), fill=(175, 180, 190))
    elif kind == "panel":
        draw.rectangle((6, 6, width - 7, height - 7), outline=(205, 208, 214), width=2)
    elif kind == "textbook":
        band = rng.choice(((60, 110, 170), (40, 140, 120), (190, 90, 60)))
        draw.rectangle((0, 0, width, 10), fill=band)
    return image


def _perspective_coeffs(src: list[tuple[float, float]], dst: list[tuple[float, float]]) -> list[float]:
    """Coefficients for PIL's PERSPECTIVE transform mapping output points ``dst`` to input points ``src``."""
    rows = []
    for (x, y), (u, v) in zip(dst, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    a = np.array(rows, dtype=np.float64)
    b = np.array([c for point in src for c in point], dtype=np.float64)
    return np.linalg.solve(a, b).tolist()


def capture(page: Image.Image, rng: random.Random, mode: str) -> tuple[Image.Image, dict]:
    """The page as a scanner (``scan``) or phone camera (``photo``) sees it; ``clean`` leaves it as drawn.

    Returns the image and the parameters used (kept in the row's metadata)."""
    if mode == "clean":
        return page, {"capture": "clean"}
    w, h = page.size
    nrng = np.random.default_rng(rng.getrandbits(32))
    params: dict = {"capture": mode}
    if mode == "scan":
        angle = rng.uniform(-1.5, 1.5)
        image = page.rotate(angle, resample=Image.BILINEAR, expand=False, fillcolor=(245, 245, 245))
        params["angle"] = round(angle, 2)
    elif mode == "photo":
        margin = int(min(w, h) * rng.uniform(0.03, 0.08))
        desk = Image.new("RGB", (w + 2 * margin, h + 2 * margin), rng.choice(DESKS))
        desk.paste(page, (margin, margin))
        W, H = desk.size
        jitter = min(w, h) * rng.uniform(0.01, 0.05)
        dst = [(rng.uniform(0, jitter), rng.uniform(0, jitter)), (W - rng.uniform(0, jitter), rng.uniform(0, jitter)),
               (W - rng.uniform(0, jitter), H - rng.uniform(0, jitter)), (rng.uniform(0, jitter), H - rng.uniform(0, jitter))]
        # the desk is what the camera frames; the page corners move inward by the tilt, and the whole
        # frame turns a little: both in one perspective warp (one resampling pass, not two)
        angle = rng.uniform(-3, 3)
        cos, sin = np.cos(np.radians(angle)), np.sin(np.radians(angle))
        dst = [(W / 2 + (x - W / 2) * cos - (y - H / 2) * sin, H / 2 + (x - W / 2) * sin + (y - H / 2) * cos) for x, y in dst]
        src = [(0, 0), (W, 0), (W, H), (0, H)]
        image = desk.transform((W, H), Image.PERSPECTIVE, _perspective_coeffs(src, dst), Image.BILINEAR,
                               fillcolor=desk.getpixel((0, 0)))
        params.update(angle=round(angle, 2), tilt_px=round(jitter, 1))
    else:
        raise ValueError(f"unknown capture mode {mode!r}; choose clean, scan or photo")
    arr = np.asarray(image, dtype=np.float32)
    H, W = arr.shape[:2]
    # uneven light: a linear gradient across the sheet, sometimes a soft shadow band
    gx, gy = rng.uniform(-1, 1), rng.uniform(-1, 1)
    strength = rng.uniform(0.05, 0.22) if mode == "photo" else 0.05
    light = 1.0 + strength * ((np.arange(W, dtype=np.float32) / W - 0.5)[None, :] * gx
                              + (np.arange(H, dtype=np.float32) / H - 0.5)[:, None] * gy)
    arr *= light[..., None]
    if mode == "photo":
        arr *= np.array([rng.uniform(0.93, 1.0), rng.uniform(0.95, 1.0), rng.uniform(0.9, 1.02)], np.float32)
        arr += nrng.normal(0, rng.uniform(1.5, 5.0), arr.shape[:2]).astype(np.float32)[..., None]
    image = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    blur = rng.uniform(0.0, 1.1 if mode == "photo" else 0.6)
    if blur > 0.25:   # a box blur looks the same at these radii and costs a third of a Gaussian
        image = image.filter(ImageFilter.BoxBlur(blur))
    params["blur"] = round(blur, 2)
    return image, params
