"""Tiling arithmetic, the processor's token expansion and the image processor's crops."""

import math

import pytest
import torch
from PIL import Image

from ko_hypervl.processing import KoHyperVLImageProcessor, full_resolution, image_prompt, plan_tiles
from ko_hypervl.tokenization import specials


@pytest.mark.parametrize("size, grid", [((224, 224), (1, 1)), ((225, 224), (1, 2)), ((800, 500), (3, 4)),
                                        ((10, 3000), (8, 1))])
def test_grid_is_the_ceiling_of_size_over_tile(size, grid):
    plan = plan_tiles(*size, tile_size=224, tokens_per_tile=64, max_tiles=64)
    assert (plan.rows, plan.cols) == grid
    assert plan.visual_tokens == (plan.num_tiles + (plan.num_tiles > 1)) * 64


def test_full_resolution_keeps_small_images_and_caps_large_ones():
    assert full_resolution(800, 500, 224, 16) == (800, 500)
    w, h = full_resolution(4000, 3000, 224, 16)
    assert math.ceil(w / 224) * math.ceil(h / 224) <= 16
    assert abs(w / h - 4 / 3) < 0.01
    assert w >= 4 * 224 - 1  # the best grid for 4:3 under 16 tiles is 4×3
    w, h = full_resolution(100, 30000, 224, 64)  # a very tall strip: at most 8 rows
    assert math.ceil(h / 224) <= 8


@pytest.mark.parametrize("scale", [0.25, 0.5, 0.75, 1.0])
def test_scale_resizes_the_full_resolution(scale):
    plan = plan_tiles(1600, 1200, tile_size=224, tokens_per_tile=16, max_tiles=64, scale=scale)
    assert plan.resized_width == round(plan.full_width * scale)
    assert plan.cols == math.ceil(plan.resized_width / 224) and plan.rows == math.ceil(plan.resized_height / 224)


def test_bad_tiling_arguments():
    with pytest.raises(ValueError, match="scale"):
        plan_tiles(100, 100, tile_size=224, tokens_per_tile=4, max_tiles=4, scale=0)
    with pytest.raises(ValueError, match="positive"):
        plan_tiles(0, 100, tile_size=224, tokens_per_tile=4, max_tiles=4)
    with pytest.raises(ValueError, match="max_tiles"):
        plan_tiles(100, 100, tile_size=224, tokens_per_tile=4, max_tiles=0)


def test_image_prompt_has_one_marker_per_tile_and_the_right_token_count():
    plan = plan_tiles(500, 300, tile_size=224, tokens_per_tile=4, max_tiles=16)
    prompt = image_prompt(plan)
    assert prompt.count(specials.IMAGE) == plan.visual_tokens == (2 * 3 + 1) * 4
    assert specials.tile_token(2, 3) in prompt and specials.tile_token(3, 1) not in prompt
    single = image_prompt(plan_tiles(100, 80, tile_size=224, tokens_per_tile=4, max_tiles=16))
    assert single == specials.IMAGE_START + specials.GLOBAL_IMAGE + specials.IMAGE * 4 + specials.IMAGE_END


def test_crops_are_the_padded_image_cut_in_order():
    processor = KoHyperVLImageProcessor(tile_sizes={"large": 4, "small": 4}, tokens_per_tile={"large": 1, "small": 1},
                                        image_mean=(0, 0, 0), image_std=(1, 1, 1))
    image = Image.new("RGB", (6, 3), (255, 255, 255))
    image.putpixel((5, 2), (0, 0, 0))  # in tile (row 1, col 2) at (x=1, y=2)
    out = processor(image)
    assert out["pixel_values"].shape == (3, 3, 4, 4)  # 1×2 tiles + the global thumbnail
    assert out["image_grid"].tolist() == [[1, 2]]
    tile = out["pixel_values"][1]
    assert tile[:, 2, 1].tolist() == [0, 0, 0]
    assert torch.all(tile[:, 3, :] == 1)  # the padding row is white
    assert out["pixel_values"][0].min() == 1  # the first tile is all white


def test_a_branch_image_scale_multiplies_the_vrc_scale():
    processor = KoHyperVLImageProcessor(tile_sizes={"large": 56, "small": 56}, branch_scales={"small": 0.5},
                                        max_tiles=16)
    image = Image.new("RGB", (224, 224))
    assert processor.plan(image, "large", 0.5).resized_width == processor.plan(image, "small").resized_width == 112
    small = processor.plan(image, "small", 0.5)
    assert (small.scale, small.resized_width, small.num_tiles) == (0.25, 56, 1)
    assert processor(image, branch="small")["pixel_values"].shape == (5, 3, 56, 56)   # 2×2 tiles + thumbnail
    for bad in ({"small": 0.0}, {"small": 1.5}, {"medium": 0.5}):
        with pytest.raises(ValueError, match="branch_scales"):
            KoHyperVLImageProcessor(branch_scales=bad)
    with pytest.raises(ValueError, match="scale"):
        processor.plan(image, "small", 2.0)   # 2 × 0.5 would pass the tiling check; the VRC scale itself is wrong


def test_vrc_inputs_are_a_letterboxed_thumbnail_and_the_full_size():
    processor = KoHyperVLImageProcessor(vrc_image_size=32, max_tiles=4)
    out = processor.vrc_inputs([Image.new("RGB", (2000, 500), "black")])
    assert out["vrc_pixel_values"].shape == (1, 3, 32, 32)
    assert out["vrc_pixel_values"][0, :, 0, 0].tolist() == [-1, -1, -1]   # the image (black)
    assert out["vrc_pixel_values"][0, :, 31, 0].tolist() == [1, 1, 1]     # the letterbox (white)
    width, height = out["vrc_image_sizes"][0].tolist()
    assert math.ceil(width / 224) * math.ceil(height / 224) <= 4
