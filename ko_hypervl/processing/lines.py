"""Text lines of a page, top to bottom: where a reader that reads one line at a time (the CTC reading head with
its ``columns`` order) should look. Pure functions of the image.

Ink is what is darker than the page around it (a heavily blurred copy of the image stands for the page, so
paper textures, panels and the uneven light of a photographed page do not count), less what no pen stroke
looks like: areas wider than a stroke (the desk past a sheet's edge), runs longer than a letter (rules, grids,
borders) and anything in the outer margin. The page is first levelled: of the rotations within ±6°, the one
whose row profile of ink is sharpest. In the profile, a line is a run of rows with ink whose core holds a
fifth of a text row's ink (specks and slivers hold less); runs closer than a quarter of the typical line
height are one line (the parts of a jamo, punctuation), and runs much thinner or lighter than the typical
line are dropped. A run of rows many times taller than the others is a figure (a chart's plot), not a line.
Along a line, its text is where the ink is as dense as writing (``text_span``), so the dots
of dot-grid paper beside a short line are not read. On the corpus's held-out OCR test rows the line count
comes out right on 90.6–93.0% (docs/ablations/line_cut_check.py). An image larger than a scanned page is
measured on a shrunk copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image, ImageFilter

INK_CONTRAST = 40            # grey levels darker than the page around it
MIN_ROW_INK = 0.004          # share of a row's pixels: below it the row is blank (a stray speck, a border's edge)
AREA_SIDE = 11               # pixels: a square this wide fits inside no pen stroke the corpus renders
BORDER = 6                   # percent of each side: ink this close to the border is the sheet's edge, not text
FIGURE_HEIGHT = 4.0          # times the median run of inked rows: a taller run is a figure, not a text line
TEXT_DENSITY = 0.25          # of a line's densest stretch: a stretch with less ink is paper (dots, squares)
SIDE_MARGIN, KEPT_MARGIN = 2.0, 0.5   # line heights: a line image's margin beside its text, and how much of it
                                      # keeps the page's own pixels (the rest is painted with the page)
MAX_SKEW, SKEW_STEP = 6.0, 0.5    # degrees: the corpus tilts scans by up to 1.5°, photos by up to 3°
TEXT_HEIGHT = (19, 26.5, 43)  # pixels: a training line's ink band (runs/read-data), 5th percentile, median, 95th
ANALYSIS_SIDE = 1200         # pixels: a larger image is measured on a copy this long (a phone photo of a page is
                             # 4-5 times a corpus page; at full size the 25 trial rotations took 9 s on 12 MP)


@dataclass(frozen=True)
class LineBand:
    """A text line's rows: ``top`` (inclusive) to ``bottom`` (exclusive), and the columns its text spans,
    ``left`` (inclusive) to ``right`` (exclusive; None: to the image's right edge), in image pixels."""

    top: int
    bottom: int
    left: int = 0
    right: int | None = None

    @property
    def height(self) -> int:
        return self.bottom - self.top


def page_blur(image: Image.Image) -> Image.Image:
    """The page behind the ink: ``image`` box-blurred over an eighth of its shorter side (8 px at least)."""
    return image.filter(ImageFilter.BoxBlur(max(8, min(image.size) // 8)))


def long_runs(mask: np.ndarray, length: int) -> np.ndarray:
    """The pixels of ``mask`` in horizontal runs of at least ``length`` (rules, grid lines, a table's edge)."""
    padded = np.pad(mask, ((0, 0), (1, 1))).astype(np.int8)
    edges = np.diff(padded, axis=1)
    out = np.zeros_like(mask)
    for y in np.flatnonzero(mask.any(axis=1)):
        starts, ends = np.flatnonzero(edges[y] == 1), np.flatnonzero(edges[y] == -1)
        for start, end in zip(starts, ends):
            if end - start >= length:
                out[y, start:end] = True
    return out


def _square_filter(mask: np.ndarray, side: int, reduce) -> np.ndarray:
    """``reduce`` (np.min or np.max) of ``mask`` over the ``side`` × ``side`` square around each pixel, the
    border repeated past the edges: one pass along the rows, one down the columns."""
    padded = np.pad(mask, side // 2, mode="edge")
    rows = reduce(sliding_window_view(padded, side, axis=1), axis=-1)
    return reduce(sliding_window_view(rows, side, axis=0), axis=-1)


def square_opening(mask: np.ndarray, side: int) -> np.ndarray:
    """The pixels of ``mask`` inside a ``side`` × ``side`` square wholly in ``mask`` (areas no stroke that thin
    fills). The same as PIL's MinFilter then MaxFilter, which took 80% of cutting an exam page into lines: a
    square's minimum is a row's minimum of column minima, so this costs 2·side per pixel, not side²."""
    return _square_filter(_square_filter(mask, side, np.min), side, np.max)


def ink_mask(image: Image.Image, rules: bool = False) -> np.ndarray:
    """(height, width) booleans: pixels at least ``INK_CONTRAST`` darker than the blurred page around them, less
    the dark areas no pen stroke is as wide as (the desk past a sheet's edge) and, unless ``rules``, less the long
    horizontal and vertical runs that rules, grids and borders leave (no stroke of a handwritten letter is that
    long)."""
    grey = image.convert("L")
    page = np.asarray(page_blur(grey), dtype=np.int16)
    ink = np.asarray(grey, dtype=np.int16) < page - INK_CONTRAST
    ink &= ~square_opening(ink, AREA_SIDE)
    if not rules:
        height, width = ink.shape
        ink &= ~(long_runs(ink, max(40, width // 6)) | long_runs(ink.T, max(40, height // 3)).T)
    return ink


def skew_angle(image: Image.Image) -> float:
    """The rotation (degrees, counter-clockwise) that makes the text lines of ``image`` level: the one whose
    row profile of ink is sharpest (rules and grid lines run with the text, so they are kept here)."""
    mask = Image.fromarray((ink_mask(image, rules=True) * 255).astype(np.uint8))
    best, sharpest = 0.0, -1.0
    for angle in np.arange(-MAX_SKEW, MAX_SKEW + 1e-9, SKEW_STEP):
        profile = np.asarray(mask.rotate(float(angle), resample=Image.NEAREST), dtype=np.float32).mean(axis=1)
        sharpness = float((profile ** 2).sum())
        if sharpness > sharpest + 1e-6 * abs(sharpness):
            best, sharpest = float(angle), sharpness
    return best


def level(image: Image.Image, angle: float) -> Image.Image:
    """``image`` rotated by ``angle`` degrees, the corners it uncovers filled with its median colour."""
    rgb = image.convert("RGB")
    if not angle:
        return rgb
    fill = tuple(int(v) for v in np.median(np.asarray(rgb).reshape(-1, 3), axis=0))
    return rgb.rotate(angle, resample=Image.BICUBIC, fillcolor=fill)


def text_span(ink: np.ndarray, top: int, bottom: int) -> tuple[int, int]:
    """The columns ``[left, right)`` that a text line's strokes span in rows ``top:bottom`` of ``ink``: where a
    window as wide as the line is high holds at least ``TEXT_DENSITY`` of the ink of the line's densest window.
    Dotted and squared paper leave specks all along a row; a line of handwriting holds many times that ink."""
    counts = ink[top:bottom].sum(axis=0).astype(np.float64)
    window = max(3, bottom - top)
    density = np.convolve(counts, np.ones(window), mode="same")
    text = np.flatnonzero(density >= TEXT_DENSITY * density.max()) if density.max() > 0 else np.arange(len(counts))
    return int(text[0]), int(text[-1]) + 1


def line_bands(image: Image.Image) -> list[LineBand]:
    """The text lines of a level ``image`` (see ``level``), top to bottom (empty when it shows no ink), each with
    the columns its text spans (``text_span``)."""
    ink = ink_mask(image)
    unclipped = ink.copy()
    height, width = ink.shape
    # a sheet's edges and the desk past them stay at the border; the corpus's text, as most text, keeps a margin
    margin_y, margin_x = max(2, height * BORDER // 100), max(2, width * BORDER // 100)
    ink[:margin_y], ink[-margin_y:], ink[:, :margin_x], ink[:, -margin_x:] = False, False, False, False
    profile = ink.mean(axis=1)
    if not profile.any():
        return []
    # runs of rows with any ink that somewhere hold a fifth of a text row's ink (a short line holds less than a
    # long one, so the run is found by its core and extends to its faintest rows): specks and slivers hold less
    core = max(MIN_ROW_INK, 0.2 * float(np.percentile(profile[profile > 0], 90)))
    runs, start = [], None
    for y, on in enumerate([*(profile > MIN_ROW_INK).tolist(), False]):
        if on and start is None:
            start = y
        elif not on and start is not None:
            if y - start >= 3 and profile[start:y].max() > core:
                runs.append([start, y])
            start = None
    # a run many times taller than the others is a figure (a chart's plot, a drawing), not a line of text: it is
    # no line to read, and left in it sets the typical height and glues the lines around it into itself
    # (the median of the runs at least half as tall as the smallest training line: the rows of dotted paper's
    # dots make runs of a few pixels)
    heights = [bottom - top for top, bottom in runs if bottom - top >= TEXT_HEIGHT[0] / 2]
    if heights:
        tallest = FIGURE_HEIGHT * float(np.median(heights))
        runs = [run for run in runs if run[1] - run[0] <= tallest]
    if not runs:
        return []

    def mass(run) -> float:
        return float(profile[run[0]:run[1]].sum())

    def typical_height(bands) -> float:
        """The median height of the bands that hold a quarter of the heaviest one's ink or more."""
        most = max(mass(band) for band in bands)
        return float(np.median([band[1] - band[0] for band in bands if mass(band) >= 0.25 * most]))

    typical = typical_height(runs)
    merged = [runs[0]]
    for top, bottom in runs[1:]:
        if top - merged[-1][1] < 0.25 * typical:       # the parts of one line: jamo, punctuation
            merged[-1][1] = bottom
        else:
            merged.append([top, bottom])
    typical, most = typical_height(merged), max(mass(band) for band in merged)
    return [LineBand(top, bottom, *text_span(unclipped, top, bottom)) for top, bottom in merged
            if bottom - top >= 0.4 * typical and mass([top, bottom]) >= 0.05 * most]


def _measure(image: Image.Image) -> tuple[float, list[LineBand], Image.Image | None]:
    """``find_lines``'s answer, and ``image`` levelled where it was measured at full size (None where a shrunk
    copy was measured), so the lines can be cut without levelling it again."""
    scale = min(1.0, ANALYSIS_SIDE / max(image.size))
    if scale == 1.0:
        angle = skew_angle(image)
        levelled = level(image, angle)
        return angle, line_bands(levelled), levelled
    small = resized(image.convert("RGB"), scale)
    angle = skew_angle(small)
    bands = [LineBand(int(band.top / scale), min(image.height, int(np.ceil(band.bottom / scale))),
                      int(band.left / scale), min(image.width, int(np.ceil(band.right / scale))))
             for band in line_bands(level(small, angle))]
    return angle, bands, None


def find_lines(image: Image.Image) -> tuple[float, list[LineBand]]:
    """``image``'s skew (``skew_angle``) and its text lines once levelled by it (``line_bands``), in its pixels.

    An image longer than ``ANALYSIS_SIDE`` is measured on a copy shrunk to that length, and the bands scaled
    back: the same answer for a page photographed at any resolution, in a fraction of a second.
    """
    angle, bands, _ = _measure(image)
    return angle, bands


def reading_scale(band: LineBand) -> float:
    """How much to resize a line so the reading head sees its text at a size it learnt on: 1 within the training
    lines' range of heights, else to their median (a page photographed at 4x read at CER 0.59 against 0.32)."""
    low, median, high = TEXT_HEIGHT
    return 1.0 if low <= band.height <= high else median / max(1, band.height)


def resized(image: Image.Image, scale: float) -> Image.Image:
    if scale == 1.0:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.BOX if scale < 1 else Image.BICUBIC)


def _line_crops(levelled: Image.Image, bands: list[LineBand], whole: bool = False) -> list[Image.Image]:
    """``line_images`` of a page already levelled; with ``whole`` (an image of one line, not levelled), the image
    keeps its size and only the paper beside the text is painted."""
    page = page_blur(levelled)
    out = []
    for band in bands:
        pad = max(4, band.height)
        # the text and a margin of two line heights on either side, about what the training lines have (median
        # 1.7 on the left; with one, the head missed first letters). The margin is painted with the page past
        # half a line height from the text: the head read the specks of dotted paper there as full stops.
        text_right = levelled.width if band.right is None else band.right
        margin, kept = round(SIDE_MARGIN * pad), round(KEPT_MARGIN * pad)
        if whole:
            box, keep_rows = (0, 0, levelled.width, levelled.height), (0, levelled.height)
        else:
            box = (max(0, band.left - margin), max(0, band.top - pad),
                   min(levelled.width, text_right + margin), min(levelled.height, band.bottom + pad))
            keep_rows = (max(0, band.top - 2), min(levelled.height, band.bottom + 2))
        left, top, right, _ = box
        crop = levelled.crop(box)
        outside = Image.new("L", crop.size, 255)
        outside.paste(0, (max(0, band.left - kept) - left, keep_rows[0] - top,
                          min(right, text_right + kept) - left, keep_rows[1] - top))
        crop.paste(page.crop(box), (0, 0), outside)
        out.append(resized(crop, reading_scale(band)))
    return out


def line_images(image: Image.Image) -> list[Image.Image]:
    """Each text line of ``image``, top to bottom, as an image of its own laid out as a single-line image is:
    the page levelled first, the line in the middle of a band about three times its height and its text
    (``LineBand.left``/``right``) between margins of two line heights, the neighbouring lines' ink and the
    paper's specks in those margins painted over with the page, resized as ``reading_scale`` says."""
    angle, bands, levelled = _measure(image)
    return _line_crops(levelled or level(image, angle), bands)


def reading_lines(image: Image.Image) -> list[Image.Image]:
    """What a head that reads one line at a time reads of ``image``, its lines measured once: a page of several
    lines as ``line_images``; an image of one line whole and as it is (the reading stage reads single lines so),
    but for the paper beside its text painted with the page, resized as ``reading_scale`` says; an image with no
    line found as it is."""
    angle, bands, levelled = _measure(image)
    if len(bands) >= 2:
        return _line_crops(levelled or level(image, angle), bands)
    # one line: read as the training lines were, the image whole and not levelled, the paper beside it painted
    return _line_crops(image.convert("RGB"), bands, whole=True) if bands else [image]
