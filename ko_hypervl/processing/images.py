"""The single place where user images enter the model: anything image-like in, upright 8-bit RGB out.

:func:`load_image` accepts a path, raw bytes, a binary file object, a PIL image or a numpy array and
returns a fully decoded RGB :class:`PIL.Image.Image`, so the rest of the pipeline never has to think
about modes, orientation or broken files. Why each step exists:

* Size is read from the header and checked *before* any pixel is decoded (``Image.open`` is lazy):
  a file of a few kilobytes can declare billions of pixels (a decompression bomb) and exhaust memory
  when decoded. PIL's own bomb warning/error becomes the same :class:`ImageInputError`. PIL's global
  ``Image.MAX_IMAGE_PIXELS`` is left alone because the whole process shares it, which also means a
  ``max_pixels`` above it (about 89M pixels by default) gains nothing.
* Images with a side under ``min_side`` are refused here, with their size in the message, instead of
  failing later in resizing or patching with an obscure shape error.
* Unreadable files (text, PDF, empty, truncated) raise an error naming the file rather than PIL's bare
  "cannot identify image file". Truncated files are errors: this relies on PIL's default
  ``ImageFile.LOAD_TRUNCATED_IMAGES = False``, so a half-downloaded scan is not read with a grey tail.
* EPS is never opened: PIL decodes it by running Ghostscript on the file, not a thing to do with uploads.
* EXIF orientation is applied: phone cameras store photos sideways plus a rotation tag, and sideways
  Korean text is far harder to read.
* Transparency is composited over white, not black: transparent document scans and screenshots are
  meant to be seen on white paper, and PIL's plain RGB conversion would turn transparent areas black,
  often with black text on them.
* 16-bit, 32-bit integer and float pixels are scaled by their value range, never clipped: clipping a
  16-bit image to 0..255 makes nearly every pixel 255 (a white page).
* Animated GIFs and multi-frame TIFFs give their first frame (the one ``Image.open`` lands on); a PIL
  image passed in is used as it is, on whatever frame the caller left it.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import warnings
from typing import Any, Iterator

import numpy as np
from PIL import Image, ImageOps

__all__ = ["DEFAULT_MAX_PIXELS", "ImageInputError", "load_image"]

DEFAULT_MAX_PIXELS = 40_000_000
_WHITE = (255, 255, 255)
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa"}
_BLOCKED_FORMATS = {"EPS"}  # decoded by shelling out to Ghostscript
# What PIL's decoders raise for malformed data; UnidentifiedImageError is an OSError.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError)
_BOMB_ERRORS = (Image.DecompressionBombError, Image.DecompressionBombWarning)


class ImageInputError(ValueError):
    """The input cannot be used as an image; the message says what was wrong and what to do."""


def load_image(source: Any, *, max_pixels: int = DEFAULT_MAX_PIXELS, min_side: int = 2) -> Image.Image:
    """Return ``source`` as a new, fully loaded RGB PIL image with EXIF orientation applied.

    ``source`` may be a path (``str`` or ``os.PathLike``), raw bytes, a binary file object, a PIL image
    or a numpy array of shape (H, W), (H, W, 3) or (H, W, 4) with dtype uint8, uint16 (0..65535 is
    scaled to 0..255) or float (values in [0, 1]). Alpha is composited over white. Animated GIFs and
    multi-frame TIFFs give their first frame; a PIL image is used on its current frame.

    Raises ``FileNotFoundError`` for a missing path, ``TypeError`` for an unsupported source type and
    :class:`ImageInputError` for anything that is not a usable image: unreadable or truncated data,
    more than ``max_pixels`` pixels, or a side shorter than ``min_side``.
    """
    if isinstance(source, Image.Image):
        with _decoding("<PIL image>"):
            return _finish(source, "<PIL image>", max_pixels, min_side)
    if isinstance(source, np.ndarray):
        image = _from_array(source, max_pixels, min_side)
        with _decoding("<numpy array>"):
            return _finish(image, "<numpy array>", max_pixels, min_side)
    if isinstance(source, (str, os.PathLike)):
        path = os.fsdecode(source)
        if not os.path.exists(path):
            hint = " (URLs are not downloaded; fetch the file first)" if "://" in path else ""
            raise FileNotFoundError(errno.ENOENT, f"image file not found{hint} (이미지 파일 없음)", path)
        if os.path.isdir(path):
            raise ImageInputError(
                f"{path!r} is a directory, not an image file; pass one image file. (폴더가 아닌 이미지 파일을 주세요)"
            )
        # Opened here rather than by PIL so that a PermissionError stays a PermissionError.
        with open(path, "rb") as fp:
            return _decode(fp, repr(path), max_pixels, min_side)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _decode(io.BytesIO(bytes(source)), "<bytes>", max_pixels, min_side)
    if isinstance(source, io.TextIOBase):
        raise TypeError("load_image() got a text-mode file; open images in binary mode ('rb'). (바이너리 모드로 여세요)")
    if hasattr(source, "read"):
        return _decode(source, repr(getattr(source, "name", "<file object>")), max_pixels, min_side)
    raise TypeError(
        f"load_image() got {type(source).__name__}; expected a path, bytes, a binary file object, "
        "a PIL image or a numpy array. (지원하지 않는 입력 형식)"
    )


@contextlib.contextmanager
def _decoding(name: str) -> Iterator[None]:
    """Turn PIL's many decode failures into one ImageInputError naming the input."""
    with warnings.catch_warnings():
        # A warning is not a refusal: without this, an over-limit image would still be decoded.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            yield
        except ImageInputError:
            raise
        except _BOMB_ERRORS as exc:
            raise ImageInputError(
                f"{name} is too large: {exc} Downscale the image before loading it. (이미지가 너무 큼)"
            ) from None
        except _DECODE_ERRORS as exc:
            # PIL's own message for an unknown format only names a file object; say it plainly instead.
            detail = "unknown or unsupported format" if isinstance(exc, Image.UnidentifiedImageError) else exc
            raise ImageInputError(
                f"{name} is not a readable image ({detail}); "
                "check that it is a complete PNG, JPEG, WebP, GIF, BMP or TIFF file. (읽을 수 없는 이미지)"
            ) from None


def _decode(fp: Any, name: str, max_pixels: int, min_side: int) -> Image.Image:
    Image.init()  # registers every plugin so that the list below is complete
    formats = [f for f in Image.OPEN if f not in _BLOCKED_FORMATS]
    with _decoding(name):
        return _finish(Image.open(fp, formats=formats), name, max_pixels, min_side)


def _finish(image: Image.Image, name: str, max_pixels: int, min_side: int) -> Image.Image:
    _check_size(image.width, image.height, name, max_pixels, min_side)  # header only, nothing decoded yet
    image.load()
    # Always a new image (a copy when there is no rotation), so the caller's image is never modified.
    image = ImageOps.exif_transpose(image)
    if image.mode.startswith("I") or image.mode == "F":
        image = Image.fromarray(_scale_to_uint8(np.asarray(image), name, user_array=False))
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")  # also turns a palette or tRNS transparent colour into alpha
        image = Image.new("RGB", rgba.size, _WHITE)
        image.paste(rgba, mask=rgba.getchannel("A"))
        return image
    return image.convert("RGB")


def _check_size(width: int, height: int, name: str, max_pixels: int, min_side: int) -> None:
    if width * height > max_pixels:
        raise ImageInputError(
            f"{name} is {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,} "
            "(a possible decompression bomb); downscale it or pass a larger max_pixels. (이미지가 너무 큼)"
        )
    if min(width, height) < min_side:
        raise ImageInputError(
            f"{name} is {width}x{height} pixels; both sides must be at least {min_side}. (이미지가 너무 작음)"
        )


def _from_array(arr: np.ndarray, max_pixels: int, min_side: int) -> Image.Image:
    name = "<numpy array>"
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise ImageInputError(
            f"{name} has shape {arr.shape}; expected (H, W), (H, W, 3) or (H, W, 4). (배열 모양이 이미지가 아님)"
        )
    _check_size(arr.shape[1], arr.shape[0], name, max_pixels, min_side)
    return Image.fromarray(np.ascontiguousarray(_scale_to_uint8(arr, name, user_array=True)))


def _scale_to_uint8(arr: np.ndarray, name: str, *, user_array: bool) -> np.ndarray:
    """Map pixel values to 0..255 by their range: uint16 (and 'I' images within 0..65535) by 0..65535,
    floats by [0, 1]. Out-of-range floats are refused for arrays (the caller can rescale them) but
    min-max scaled for decoded 'F' images, as are 'I' images outside 0..65535."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise ImageInputError(f"{name} contains NaN or infinite values. (NaN/무한대 값 포함)")
        lo, hi = float(arr.min()), float(arr.max())
        if 0.0 <= lo and hi <= 1.0:
            return _rescale(arr, 0.0, 1.0)
        if user_array:
            raise ImageInputError(
                f"{name} is a float array with values in [{lo:g}, {hi:g}]; float images must be in [0, 1]. "
                "Divide by 255 or pass a uint8 array. (실수 배열은 0~1 범위여야 함)"
            )
        return _rescale(arr, lo, hi)
    if arr.dtype == np.uint16 or (not user_array and arr.dtype.kind in "ui"):
        lo, hi = int(arr.min()), int(arr.max())
        if 0 <= lo and hi <= 65535:
            return _rescale(arr, 0.0, 65535.0)
        return _rescale(arr, lo, hi)
    raise ImageInputError(
        f"{name} has dtype {arr.dtype}; expected uint8, uint16 or float in [0, 1]. "
        "Convert with arr.astype(np.uint8) if the values are already 0..255. (지원하지 않는 자료형)"
    )


def _rescale(arr: np.ndarray, lo: float, hi: float) -> np.ndarray:
    if hi <= lo:  # a flat image has no range to stretch
        return np.zeros(arr.shape, np.uint8)
    scaled = (arr.astype(np.float32) - np.float32(lo)) * np.float32(255.0 / (hi - lo))
    return np.rint(scaled, out=scaled).clip(0, 255).astype(np.uint8)
