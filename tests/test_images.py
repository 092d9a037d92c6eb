import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import EpsImagePlugin, Image, ImageFile, PngImagePlugin

from ko_hypervl.processing.images import DEFAULT_MAX_PIXELS, ImageInputError, load_image


def png_bytes(image: Image.Image, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", **kwargs)
    return buf.getvalue()


def noise(h=64, w=64) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- sources and types -------------------------------------------------------------------------


def test_every_source_kind_gives_the_same_rgb_pixels(tmp_path):
    arr = noise(8, 12)
    data = png_bytes(Image.fromarray(arr))
    path = write(tmp_path, "x.png", data)
    with open(path, "rb") as fp:
        from_file_object = load_image(fp)
    sources = [str(path), path, data, bytearray(data), memoryview(data), io.BytesIO(data), Image.fromarray(arr), arr]
    for img in [from_file_object] + [load_image(s) for s in sources]:
        assert isinstance(img, Image.Image) and img.mode == "RGB" and img.size == (12, 8)
        assert np.array_equal(np.asarray(img), arr)


def test_result_is_loaded_and_a_new_image(tmp_path):
    original = Image.new("RGB", (4, 4), (1, 2, 3))
    result = load_image(original)
    assert result is not original
    result.putpixel((0, 0), (9, 9, 9))
    assert original.getpixel((0, 0)) == (1, 2, 3)
    path = write(tmp_path, "a.png", png_bytes(original))
    from_file = load_image(path)
    path.unlink()  # pixels must already be in memory, not read lazily from the file
    assert from_file.getpixel((3, 3)) == (1, 2, 3)


@pytest.mark.parametrize("bad, type_name", [(3, "int"), (None, "NoneType"), ([1, 2], "list"), (True, "bool"), (1.5, "float")])
def test_wrong_type_is_type_error_naming_the_type(bad, type_name):
    with pytest.raises(TypeError, match=type_name):
        load_image(bad)


def test_text_mode_file_is_type_error(tmp_path):
    path = write(tmp_path, "a.png", png_bytes(Image.new("RGB", (4, 4))))
    with open(path) as fp, pytest.raises(TypeError, match="binary mode"):
        load_image(fp)
    with pytest.raises(TypeError, match="binary mode"):
        load_image(io.StringIO("abc"))


# --- missing and unreadable files ----------------------------------------------------------------


def test_missing_path_is_file_not_found_naming_the_path(tmp_path):
    missing = tmp_path / "nope.png"
    for source in (missing, str(missing)):
        with pytest.raises(FileNotFoundError, match="nope.png"):
            load_image(source)


def test_directory_is_refused(tmp_path):
    with pytest.raises(ImageInputError, match="directory"):
        load_image(tmp_path)


def truncated(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(noise()).save(buf, fmt)
    data = buf.getvalue()
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    "name, data",
    [
        ("notes.txt", "안녕하세요, this is text\n".encode()),
        ("doc.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<<>>\n%%EOF\n"),
        ("empty.png", b""),
        ("cut.png", truncated("PNG")),
        ("cut.jpg", truncated("JPEG")),
        ("header_only.png", truncated("PNG")[:40]),
    ],
)
def test_non_image_files_are_refused_naming_the_file(tmp_path, name, data):
    path = write(tmp_path, name, data)
    with pytest.raises(ImageInputError, match="not a readable image") as info:
        load_image(path)
    assert name in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__  # raised `from None`


def test_truncated_images_stay_errors_for_every_source():
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # importing the module must not flip PIL's global
    data = truncated("PNG")
    for source in (data, io.BytesIO(data)):
        with pytest.raises(ImageInputError, match="truncated"):
            load_image(source)
    with pytest.raises(ImageInputError, match="<PIL image>"):
        load_image(Image.open(io.BytesIO(data)))  # a lazily opened PIL image is decoded here too


def test_bytes_that_are_not_an_image():
    for data in (b"", b"hello"):
        with pytest.raises(ImageInputError, match=r"<bytes> is not a readable image \(unknown or unsupported format\)"):
            load_image(data)


def test_eps_is_never_handed_to_ghostscript(tmp_path, monkeypatch):
    def ghostscript(*args, **kwargs):
        raise AssertionError("Ghostscript must not run on user input")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", ghostscript)
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n%%EndComments\nshowpage\n%%EOF\n"
    with pytest.raises(ImageInputError, match="not a readable image"):
        load_image(write(tmp_path, "x.eps", eps))


# --- size limits ---------------------------------------------------------------------------------


def test_decompression_bomb_is_refused_from_the_header(tmp_path, monkeypatch):
    data = png_bytes(Image.new("1", (8000, 6000)), optimize=True)
    assert len(data) < 100_000  # tiny on disk, 48 megapixels once decoded
    path = write(tmp_path, "bomb.png", data)

    def no_decoding(self):
        raise AssertionError("pixels were decoded before the size check")

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", no_decoding)
    for source in (path, data):
        with pytest.raises(ImageInputError, match="48,000,000 pixels, over the limit of 40,000,000"):
            load_image(source)
    assert DEFAULT_MAX_PIXELS == 40_000_000


def test_max_pixels_can_be_lowered_and_applies_to_every_source():
    img = Image.new("RGB", (100, 100))
    assert load_image(img, max_pixels=10_000).size == (100, 100)  # the limit itself is allowed
    for source in (img, png_bytes(img), np.zeros((100, 100, 3), np.uint8)):
        with pytest.raises(ImageInputError, match="10,000 pixels, over the limit of 9,999"):
            load_image(source, max_pixels=9_999)


@pytest.mark.parametrize("pil_limit", [2_000, 1_000])  # 2,500 pixels: PIL's warning, then PIL's error
def test_pil_decompression_bomb_guard_becomes_image_input_error(monkeypatch, pil_limit):
    data = png_bytes(Image.new("RGB", (50, 50)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", pil_limit)
    filters = list(warnings.filters)
    with pytest.raises(ImageInputError, match="too large") as info:
        load_image(data)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert warnings.filters == filters


def test_pil_global_limit_is_left_alone():
    before = Image.MAX_IMAGE_PIXELS
    load_image(Image.new("RGB", (4, 4)))
    assert Image.MAX_IMAGE_PIXELS == before


@pytest.mark.parametrize("size", [(1, 1), (0, 0), (1, 50), (50, 1)])
def test_too_small_is_refused_with_its_size(size):
    w, h = size
    for source in (Image.new("RGB", size), np.zeros((h, w, 3), np.uint8)):
        with pytest.raises(ImageInputError, match=f"is {w}x{h} pixels"):
            load_image(source)
    if w and h:
        with pytest.raises(ImageInputError, match=f"is {w}x{h} pixels"):
            load_image(png_bytes(Image.new("RGB", size)))


def test_min_side():
    assert load_image(Image.new("RGB", (2, 2))).size == (2, 2)
    with pytest.raises(ImageInputError, match="at least 10"):
        load_image(Image.new("RGB", (20, 5)), min_side=10)
    assert load_image(Image.new("RGB", (1, 1)), min_side=1).size == (1, 1)


# --- modes ---------------------------------------------------------------------------------------


def pixels(img: Image.Image) -> list:
    return [img.getpixel((x, 0)) for x in range(img.width)]


def test_cmyk(tmp_path):
    cmyk = Image.new("CMYK", (2, 2), (0, 0, 0, 0))
    cmyk.putpixel((1, 0), (0, 0, 0, 255))
    cmyk.putpixel((0, 1), (255, 0, 0, 0))
    tiff = tmp_path / "cmyk.tif"
    cmyk.save(tiff)
    for source in (cmyk, tiff):
        img = load_image(source)
        assert img.mode == "RGB"
        assert img.getpixel((0, 0)) == (255, 255, 255)
        assert img.getpixel((1, 0)) == (0, 0, 0)
        assert img.getpixel((0, 1)) == (0, 255, 255)


def test_rgba_is_composited_over_white(tmp_path):
    rgba = Image.new("RGBA", (3, 2), (0, 0, 0, 0))
    rgba.putpixel((1, 0), (255, 0, 0, 255))
    rgba.putpixel((2, 0), (0, 0, 0, 128))
    path = write(tmp_path, "rgba.png", png_bytes(rgba))
    for source in (rgba, path, np.asarray(rgba)):
        img = load_image(source)
        assert pixels(img)[:2] == [(255, 255, 255), (255, 0, 0)]
        assert pixels(img)[2] in {(127, 127, 127), (128, 128, 128)}  # half-transparent black on white


def test_la_and_pa_are_composited_over_white():
    la = Image.new("LA", (2, 2), (0, 0))
    la.putpixel((1, 0), (40, 255))
    assert pixels(load_image(la)) == [(255, 255, 255), (40, 40, 40)]
    pa = Image.new("PA", (2, 2), (0, 0))
    pa.putpalette([10, 20, 30] * 256)
    pa.putpixel((1, 0), (0, 255))
    assert pixels(load_image(pa)) == [(255, 255, 255), (10, 20, 30)]


def palette_image(transparency=None) -> Image.Image:
    img = Image.new("P", (2, 2), 0)
    img.putpalette([200, 10, 10, 10, 200, 10] + [0, 0, 0] * 254)
    img.putpixel((1, 0), 1)
    if transparency is not None:
        img.info["transparency"] = transparency
    return img


def test_palette_with_and_without_transparency(tmp_path):
    plain = palette_image()
    assert pixels(load_image(plain)) == [(200, 10, 10), (10, 200, 10)]
    assert pixels(load_image(png_bytes(plain))) == [(200, 10, 10), (10, 200, 10)]
    clear = palette_image(transparency=0)  # black would be wrong: documents are on white paper
    assert pixels(load_image(clear)) == [(255, 255, 255), (10, 200, 10)]
    path = tmp_path / "t.gif"
    clear.save(path, transparency=0)
    assert pixels(load_image(path)) == [(255, 255, 255), (10, 200, 10)]


def test_grey_and_bilevel():
    assert pixels(load_image(Image.new("L", (2, 2), 77))) == [(77, 77, 77)] * 2
    bilevel = Image.new("1", (2, 2), 0)
    bilevel.putpixel((1, 0), 1)
    assert pixels(load_image(png_bytes(bilevel))) == [(0, 0, 0), (255, 255, 255)]


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    arr = np.array([[0, 32768, 65535, 256], [1000, 2000, 3000, 4000]], np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(arr).save(path)
    with Image.open(path) as raw:
        assert raw.mode.startswith("I")  # really the 16-bit path
    assert pixels(load_image(path)) == [(0, 0, 0), (128, 128, 128), (255, 255, 255), (1, 1, 1)]


def test_32_bit_integer_image():
    img = Image.fromarray(np.array([[0, 32768, 65535], [0, 0, 0]], np.int32))
    assert img.mode == "I"
    assert pixels(load_image(img)) == [(0, 0, 0), (128, 128, 128), (255, 255, 255)]
    wide = Image.fromarray(np.array([[-100, 0, 100], [0, 0, 0]], np.int32))  # outside 16 bits: by its range
    assert pixels(load_image(wide)) == [(0, 0, 0), (128, 128, 128), (255, 255, 255)]


def test_float_image():
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0], [0, 0, 0]], np.float32))
    assert unit.mode == "F"
    assert pixels(load_image(unit)) == [(0, 0, 0), (128, 128, 128), (255, 255, 255)]
    wide = Image.fromarray(np.array([[0.0, 5.0, 10.0], [0, 0, 0]], np.float32))
    assert pixels(load_image(wide)) == [(0, 0, 0), (128, 128, 128), (255, 255, 255)]
    with pytest.raises(ImageInputError, match="NaN"):
        load_image(Image.fromarray(np.array([[0.0, np.nan], [0, 0]], np.float32)))


def test_animated_gif_and_multi_frame_tiff_give_the_first_frame(tmp_path):
    frames = [Image.new("RGB", (4, 4), c) for c in [(255, 0, 0), (0, 0, 255)]]
    gif, tif = tmp_path / "anim.gif", tmp_path / "pages.tif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100)
    frames[0].save(tif, save_all=True, append_images=frames[1:])
    with Image.open(gif) as check:
        assert check.n_frames == 2
    assert load_image(gif).getpixel((1, 1)) == (255, 0, 0)
    assert load_image(tif).getpixel((1, 1)) == (255, 0, 0)


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (80, 40), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 40, 40))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to display
    path = tmp_path / "phone.jpg"
    img.save(path, exif=exif, quality=95)
    with Image.open(path) as raw:
        assert raw.size == (80, 40) and raw.getexif()[0x0112] == 6
    upright = load_image(path)
    assert upright.size == (40, 80)
    top, bottom = np.asarray(upright)[10, 20].astype(int), np.asarray(upright)[70, 20].astype(int)
    assert top[0] > 200 and top[2] < 50  # the left (red) half is now on top
    assert bottom[2] > 200 and bottom[0] < 50


# --- numpy arrays --------------------------------------------------------------------------------


def test_numpy_uint8_shapes():
    assert pixels(load_image(np.full((2, 3), 9, np.uint8))) == [(9, 9, 9)] * 3
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[0, 1] = (1, 2, 3)
    assert pixels(load_image(rgb))[1] == (1, 2, 3)
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[0, 1] = (1, 2, 3, 255)
    assert pixels(load_image(rgba))[:2] == [(255, 255, 255), (1, 2, 3)]
    assert load_image(noise(10, 20)[:, ::2]).size == (10, 10)  # non-contiguous views are fine


def test_numpy_uint16_and_float_are_scaled():
    deep = np.array([[0, 32768, 65535], [0, 0, 0]], np.uint16)
    assert pixels(load_image(deep)) == [(0, 0, 0), (128, 128, 128), (255, 255, 255)]
    unit = np.array([[0.0, 0.5, 1.0], [0, 0, 0]])
    assert pixels(load_image(unit)) == [(0, 0, 0), (128, 128, 128), (255, 255, 255)]
    colour = np.zeros((2, 2, 3), np.float32)
    colour[0, 0] = (1.0, 0.0, 0.25)
    assert load_image(colour).getpixel((0, 0)) == (255, 0, 64)


@pytest.mark.parametrize(
    "arr, message",
    [
        (np.zeros(5, np.uint8), "shape"),
        (np.zeros((2, 2, 2, 3), np.uint8), "shape"),
        (np.zeros((4, 4, 2), np.uint8), "shape"),
        (np.array([[0.0, np.nan], [0.0, 0.0]]), "NaN"),
        (np.array([[0.0, np.inf], [0.0, 0.0]]), "NaN or infinite"),
        (np.array([[0.0, 255.0], [0.0, 0.0]]), r"in \[0, 1\]"),
        (np.zeros((4, 4), np.int64), "dtype int64"),
        (np.zeros((4, 4), bool), "dtype bool"),
    ],
)
def test_bad_numpy_arrays_are_refused(arr, message):
    with pytest.raises(ImageInputError, match=message):
        load_image(arr)
