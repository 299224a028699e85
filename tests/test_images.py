"""Getting images in: conversions with stated rules, refusals with clear messages."""
import numpy as np
import pytest
import torch
from PIL import Image

from g2s_lite.images import check_image, load_image, to_size


def test_rgb_file_round_trip(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "face.png")
    image = load_image(tmp_path / "face.png", 64)
    assert image.shape == (1, 3, 64, 64)
    assert torch.allclose(image[0].permute(1, 2, 0), torch.from_numpy(rgb) / 127.5 - 1, atol=1e-6)


def test_grey_is_repeated_and_rgba_composited_on_white():
    grey = load_image(Image.fromarray(np.full((32, 32), 64, np.uint8), "L"), 32)
    assert torch.allclose(grey, torch.full((1, 3, 32, 32), 64 / 127.5 - 1))
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., 0] = 255  # red
    rgba[:, :16, 3] = 255  # left half opaque, right half transparent
    image = load_image(Image.fromarray(rgba, "RGBA"), 32)
    assert torch.allclose(image[0, :, :, :16], torch.tensor([1.0, -1.0, -1.0])[:, None, None]
                          .expand(3, 32, 16))
    assert torch.allclose(image[0, :, :, 16:], torch.ones(3, 32, 16))  # white


def test_non_square_is_centre_cropped_then_resized():
    wide = np.zeros((40, 80, 3), np.uint8)
    wide[:, 20:60] = 255  # the centre square is white, the sides black
    image = load_image(Image.fromarray(wide), 20)
    assert image.shape == (1, 3, 20, 20)
    assert torch.allclose(image, torch.ones_like(image), atol=1e-2)


@pytest.mark.parametrize("image, message", [
    (torch.zeros(1, 64, 64), "3 colour channels"),
    (torch.zeros(4, 64, 64), "3 colour channels"),
    (torch.zeros(2, 3, 64, 64), "1×3×H×W"),
    (torch.zeros(3, 32, 32), "must be 64×64"),
    (torch.full((3, 64, 64), 200.0), "8-bit"),
    (torch.full((3, 64, 64), float("nan")), "NaN"),
    ("nowhere.png", "no image file"),
    (42, "path, a PIL image or a tensor"),
])
def test_bad_inputs_are_refused_clearly(image, message):
    with pytest.raises((ValueError, TypeError, FileNotFoundError), match=message):
        load_image(image, 64)


def test_unreadable_file(tmp_path):
    (tmp_path / "x.png").write_text("not an image")
    with pytest.raises(ValueError, match="not an image"):
        load_image(tmp_path / "x.png", 64)


def test_check_image_and_to_size():
    assert check_image(torch.zeros(3, 8, 8)).shape == (1, 3, 8, 8)
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    assert torch.allclose(to_size(x, 2), torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]]))
    assert to_size(x, 4) is x and to_size(x, 8).shape == (1, 1, 8, 8)
