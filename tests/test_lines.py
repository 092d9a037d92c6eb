"""Cutting a page into its text lines for the reading head: levelling, rules and the desk ignored, and the line
count right on most rendered pages of held-out styles, at any resolution."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from ko_hypervl.imagecorpus.build import render_sample
from ko_hypervl.imagecorpus.fonts import load_font_catalog
from ko_hypervl.processing.lines import line_bands, line_images, level, skew_angle

TEXTS = ["값이 3,400원 늘었다", "읽었다 않았다 꿇었다", "뷁 똠방각하"]


def _page(texts=TEXTS, angle=0.0, ruled=False, desk=False, dotted=False) -> Image.Image:
    gothic = next(f.path for f in load_font_catalog() if f.name == "nanum-gothic")
    font = ImageFont.truetype(str(gothic), 28)
    sheet = Image.new("RGB", (520, 60 + 48 * len(texts)), (250, 248, 240))
    draw = ImageDraw.Draw(sheet)
    if dotted:      # dot-grid paper: a 2-px dot every 12 px, across the whole sheet
        for y in range(4, sheet.height, 12):
            for x in range(4, sheet.width, 12):
                draw.rectangle((x, y, x + 1, y + 1), fill=(120, 120, 120))
    for i, text in enumerate(texts):
        if ruled:
            draw.line((0, 66 + 48 * i, sheet.width, 66 + 48 * i), fill=(160, 180, 220), width=1)
        draw.text((30, 30 + 48 * i), text, fill=(20, 20, 30), font=font)
    sheet = sheet.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=(90, 60, 40) if desk else
                         (250, 248, 240))
    if not desk:
        return sheet
    table = Image.new("RGB", (sheet.width + 40, sheet.height + 40), (90, 60, 40))
    table.paste(sheet, (20, 20))
    return table


def test_a_blank_image_has_no_lines_and_one_line_is_one_band():
    assert line_bands(Image.new("RGB", (300, 100), "white")) == []
    assert len(line_bands(_page(TEXTS[:1]))) == 1


@pytest.mark.parametrize("angle, ruled, desk", [(0.0, False, False), (3.0, True, False), (-2.5, False, True)])
def test_a_tilted_ruled_page_on_a_desk_is_levelled_and_cut_into_its_lines(angle, ruled, desk):
    page = _page(angle=angle, ruled=ruled, desk=desk)
    assert skew_angle(page) == pytest.approx(-angle, abs=0.5)
    bands = line_bands(level(page, skew_angle(page)))
    assert len(bands) == len(TEXTS) and all(a.bottom <= b.top for a, b in zip(bands, bands[1:]))
    lines = line_images(page)
    assert len(lines) == len(TEXTS)
    for line in lines:
        # the band holds one line: its ink sits in the middle third, the neighbours' ink is painted over
        middle = line.crop((line.width // 4, 0, line.width * 3 // 4, line.height))     # the text, not the desk
        ink = np.asarray(middle.convert("L")) < 128
        rows = np.flatnonzero(ink.any(axis=1))
        assert rows.size and rows.min() >= line.height * 0.2 and rows.max() <= line.height * 0.8


def test_the_line_count_is_right_on_most_rendered_pages_of_held_out_styles():
    # docs/ablations/line_cut_check.py: 90.6% of 500 test rows of the reading corpus, 93.0% of the main corpus's 115
    right = total = 0
    for index in range(40):
        row = render_sample("ocr", index, seed=0, split="test", n_questions=1)
        expected = len(json.loads(row["metadata"])["lines"])
        page = Image.open(io.BytesIO(row["image"]["bytes"]))
        right += len(line_bands(level(page, skew_angle(page)))) == expected
        total += 1
    assert right / total >= 0.8, f"{right}/{total} pages cut into the right number of lines"


def test_the_dots_of_dot_grid_paper_beside_a_short_line_are_not_part_of_its_image():
    from ko_hypervl.processing.lines import find_lines, reading_lines, reading_scale

    texts = ["짧은 줄", "조금 더 긴 둘째 줄입니다", "셋째 줄"]
    page = _page(texts, dotted=True)
    _, bands = find_lines(page)
    assert len(bands) == len(texts) and all(reading_scale(band) == 1.0 for band in bands)   # pixels as the page's
    assert all(band.left <= 40 for band in bands)                       # the text starts at x = 30
    assert bands[1].right > max(bands[0].right, bands[2].right) + 100   # each line ends where its text does
    lines = reading_lines(page)
    for band, text, line in zip(bands, texts, lines):
        # the line image keeps a margin of about two line heights, but past half a line height from the text it is
        # the page: no specks for the head to read as full stops
        assert line.width < page.width or text == texts[1]
        ink = np.asarray(line.convert("L")) < 200
        text_right = band.right - max(0, band.left - 2 * band.height)
        assert ink[:, text_right + band.height // 2 + 1:].sum() == 0
        assert ink[:, :text_right].sum() > 50                          # the letters are all still there
    # the short first line's image is much narrower than the page: the dot grid past it is gone
    assert lines[0].width < 0.6 * page.width
    # an image of one line keeps its size (the reading stage reads single lines whole), the dots beside it painted
    single = _page(texts[:1], dotted=True)
    (band,) = find_lines(single)[1]
    (whole,) = reading_lines(single)
    ink = np.asarray(whole.convert("L")) < 200
    assert whole.size == single.size and ink[:, band.right + band.height // 2 + 1:].sum() == 0
    assert ink[:, :band.left - band.height // 2 - 1].sum() == 0 and ink[:, band.left:band.right].sum() > 50
    assert (np.asarray(single.convert("L")) < 200)[:, band.right + band.height:].sum() > 0    # there were dots


def test_a_photo_sized_page_is_measured_on_a_shrunk_copy_and_cut_at_full_size():
    from ko_hypervl.processing.lines import ANALYSIS_SIDE, find_lines

    page = _page(angle=2.0, ruled=True)
    big = page.resize((page.width * 5, page.height * 5), Image.BICUBIC)      # a 12 MP photo's scale
    assert max(big.size) > ANALYSIS_SIDE >= max(page.size)
    angle, bands = find_lines(big)
    small_angle, small_bands = find_lines(page)
    assert angle == pytest.approx(small_angle, abs=0.5) and len(bands) == len(small_bands) == len(TEXTS)
    for band, small in zip(bands, small_bands):      # the same lines, in the big image's pixels
        assert abs((band.top + band.bottom) - 5 * (small.top + small.bottom)) / 2 <= 0.25 * 5 * small.height
        assert 0.7 <= band.height / (5 * small.height) <= 1.5
    # cut from the full image, then shrunk back to the text size the reading head learnt (reading_scale)
    lines, small_lines = line_images(big), line_images(page)
    assert len(lines) == len(TEXTS)
    for line, small in zip(lines, small_lines):
        assert 0.7 <= line.height / small.height <= 1.4 and 0.7 <= line.width / small.width <= 1.4


def test_a_single_line_is_read_at_the_size_of_the_training_lines():
    from ko_hypervl.processing.lines import TEXT_HEIGHT, find_lines, reading_lines, reading_scale

    line = _page(TEXTS[:1])
    (band,) = find_lines(line)[1]
    assert TEXT_HEIGHT[0] <= band.height <= TEXT_HEIGHT[2] and reading_scale(band) == 1.0
    (whole,) = reading_lines(line)           # within the training sizes: whole, as the reading stage reads it
    assert whole.size == line.size
    big = line.resize((line.width * 4, line.height * 4), Image.BICUBIC)
    (shrunk,) = reading_lines(big)
    (again,) = find_lines(shrunk)[1]
    assert again.height == pytest.approx(TEXT_HEIGHT[1], rel=0.2) and shrunk.width < big.width / 2
    blank = Image.new("RGB", (400, 80), "white")
    assert reading_lines(blank)[0] is blank                      # no line found: nothing to go by


@pytest.mark.parametrize("shape, side", [((57, 83), 11), ((12, 200), 11), ((40, 40), 3), ((5, 9), 11)])
def test_the_square_opening_is_pils_min_then_max_filter(shape, side):
    from PIL import ImageFilter

    from ko_hypervl.processing.lines import square_opening

    rng = np.random.default_rng(side + shape[0])
    mask = rng.random(shape) < 0.75
    mask[: shape[0] // 2, : shape[1] // 2] = True                 # a block wider than the square, at the border
    image = Image.fromarray((mask * 255).astype(np.uint8))
    expected = np.asarray(image.filter(ImageFilter.MinFilter(side)).filter(ImageFilter.MaxFilter(side))) > 0
    opened = square_opening(mask, side)
    assert opened.shape == mask.shape and np.array_equal(opened, expected)
    assert opened.any() or min(shape) < side


def test_a_figure_between_lines_of_text_is_no_line_and_does_not_swallow_them():
    from ko_hypervl.processing.lines import find_lines

    gothic = next(f.path for f in load_font_catalog() if f.name == "nanum-gothic")
    font = ImageFont.truetype(str(gothic), 28)
    sheet = Image.new("RGB", (620, 480), (250, 248, 240))
    draw = ImageDraw.Draw(sheet)
    draw.text((60, 30), "월에 따른 냉면 가격", fill=(20, 20, 30), font=font)            # the title
    draw.line((90, 80, 95, 380), fill=(20, 20, 30), width=3)                            # a hand-drawn axis
    zigzag = [(110 + 60 * i, 120 + (i % 2) * 220 + 7 * i) for i in range(8)]          # a line chart's line
    draw.line(zigzag, fill=(230, 120, 40), width=3)
    for x, y in zigzag:
        draw.ellipse((x - 5, y - 5, x + 5, y + 5), fill=(230, 120, 40))
    draw.text((110, 400), "2월  3월  4월  5월  6월", fill=(20, 20, 30), font=font)     # the axis labels
    _, bands = find_lines(sheet)
    assert len(bands) == 2, bands
    title, labels = bands
    assert title.top < 70 and title.bottom < 80 and labels.top > 380                      # each its own text line
