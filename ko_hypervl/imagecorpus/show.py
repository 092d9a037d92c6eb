"""A contact sheet: random samples of a rendered dataset with their questions and answers, as one PNG."""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw

from . import draw as d
from .fonts import load_font_catalog, scaled
from .records import load_split, qa_pairs

CELL_WIDTH, TEXT_H = 420, 150


def _label_font_path() -> Path:
    return next(f.path for f in load_font_catalog() if f.name == "nanum-gothic")


def contact_sheet(rows: list[dict], columns: int = 4, qa_per_sample: int = 2, cell_width: int = CELL_WIDTH) -> Image.Image:
    """Thumbnails of ``rows`` (decoded dataset rows) in a grid, each with its kind, font, style and Q/A."""
    if not rows:
        raise ValueError("no samples to show")
    if cell_width < 200:
        raise ValueError("cell width must be at least 200 pixels")
    font_path = _label_font_path()
    cell_w, image_h = cell_width, int(cell_width * (1.3 if all(r["kind"] == "exams" for r in rows) else 0.72))
    columns = min(columns, len(rows))
    n_rows = (len(rows) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * cell_w, n_rows * (image_h + TEXT_H)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    small, tiny = scaled(font_path, 14), scaled(font_path, 12)
    for k, row in enumerate(rows):
        x, y = (k % columns) * cell_w, (k // columns) * (image_h + TEXT_H)
        image = row["image"].convert("RGB")
        image.thumbnail((cell_w - 10, image_h - 10))
        sheet.paste(image, (x + (cell_w - image.width) // 2, y + (image_h - image.height) // 2))
        ty = y + image_h
        draw.text((x + 6, ty), f"{row['kind']} · {row['font']} · {row['style']}", font=tiny, fill=(120, 120, 120))
        ty += 18
        for question, answer in qa_pairs(row["messages"])[:qa_per_sample]:
            for prefix, text, color in (("Q ", question, (20, 20, 120)), ("A ", answer.replace("\n", " / "), (20, 100, 20))):
                for line in d.wrap(prefix + text, font_path, 14, cell_w - 14)[:2]:
                    draw.text((x + 6, ty), line, font=small, fill=color)
                    ty += 18
        draw.rectangle((x, y, x + cell_w - 1, y + image_h + TEXT_H - 1), outline=(220, 220, 220))
    return sheet


def write_contact_sheet(dataset_dir: Path | str, out: Path | str | None = None, *, split: str = "train",
                        count: int = 12, seed: int = 0, kind: str | None = None, columns: int = 4,
                        cell_width: int = CELL_WIDTH) -> Path:
    """Pick ``count`` random rows of ``split`` (optionally of one ``kind``) and save their contact sheet."""
    ds = load_split(dataset_dir, split, [kind] if kind else None)
    picks = random.Random(seed).sample(range(len(ds)), min(count, len(ds)))
    sheet = contact_sheet([ds[i] for i in picks], columns=columns, cell_width=cell_width)
    out = Path(out) if out else Path(dataset_dir) / f"contact_sheet_{split}.png"
    sheet.save(out)
    return out
