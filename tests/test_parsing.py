"""Foreground masks (Chapter 9): the parsing net's pixels of a class become the mask, its
weights are never downloaded offline, and mask files are cut and resized like the photo."""
import urllib.error

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from g2s_lite import hub, parsing, runtime
from g2s_lite.parsing import PARSED, foreground_mask, read_mask, segmenter


class Rectangle(nn.Module):
    """A parsing net whose answer is known: class ``index`` wins in rows [r0, r1) and columns
    [c0, c1) of its input, given as fractions of the input's side; background elsewhere."""

    def __init__(self, index, r0, r1, c0, c1):
        super().__init__()
        self.index, self.box, self.seen = index, (r0, r1, c0, c1), None

    def forward(self, x):
        self.seen = x
        b, _, h, w = x.shape
        r0, r1, c0, c1 = self.box
        scores = torch.zeros(b, 21, h, w)
        scores[:, 0] = 1.0
        scores[:, self.index, round(r0 * h):round(r1 * h), round(c0 * w):round(c1 * w)] = 2.0
        return {"out": scores}


def test_the_mask_is_the_rectangle_where_the_class_wins_resized_to_the_image():
    # 520 px at the net, 64 px back: rows 130–390 of 520 are rows 16–48 of 64 exactly
    net = Rectangle(PARSED["car"], 0.25, 0.75, 0.5, 1.0)
    image = torch.rand(2, 3, 64, 64) * 2 - 1
    mask = foreground_mask(image, "car", model=net)
    expected = torch.zeros(2, 1, 64, 64)
    expected[:, :, 16:48, 32:] = 1
    assert net.seen.shape == (2, 3, 520, 520)
    assert torch.equal(mask, expected)
    with pytest.raises(ValueError, match="no cat found in image 0 of the batch; give a mask"):
        foreground_mask(image, "cat", model=net)
    with pytest.raises(ValueError, match="no cat found in the image"):
        foreground_mask(image[:1], "cat", model=net)


def test_the_net_sees_the_image_normalised_as_its_weights_were_trained():
    net = Rectangle(PARSED["cat"], 0.0, 1.0, 0.0, 1.0)
    grey = torch.zeros(1, 3, 32, 32)  # 0 in [−1, 1] is 0.5 in [0, 1]
    assert torch.equal(foreground_mask(grey, "cat", model=net, resolution=40),
                       torch.ones(1, 1, 32, 32))
    imagenet_mean, imagenet_std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    assert net.seen.shape == (1, 3, 40, 40)
    for c in range(3):
        assert torch.allclose(net.seen[0, c], torch.full((40, 40), (0.5 - imagenet_mean[c])
                                                         / imagenet_std[c]), atol=1e-5)


def test_categories_without_a_voc_class_and_bad_images_are_refused():
    net = Rectangle(PARSED["car"], 0.0, 1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="finds car, cat, not 'church'.*mask file"):
        foreground_mask(torch.zeros(1, 3, 8, 8), "church", model=net)
    with pytest.raises(ValueError, match=r"\[−1, 1\]"):
        foreground_mask(torch.full((1, 3, 8, 8), 255.0), "car", model=net)
    with pytest.raises(ValueError, match="B×3×S×S"):
        foreground_mask(torch.zeros(3, 8, 8), "car", model=net)


def test_the_torchvision_net_with_random_weights_gives_a_binary_mask_of_the_image_size(
        one_thread, monkeypatch):
    model = segmenter(weights=None)
    assert not model.training
    torch.manual_seed(0)
    image = torch.rand(2, 3, 24, 24) * 2 - 1
    scores = model(parsing.VOC_WEIGHTS.transforms(resize_size=32)((image + 1) / 2))["out"]
    assert scores.shape == (2, 21, 32, 32)
    # random weights find no car: ask for a class they do find in both images, and for one
    # they find nowhere
    classes = scores.argmax(1)
    everywhere = [k for k in range(21) if all((c == k).sum() > 20 for c in classes)]
    nowhere = [k for k in range(21) if not (classes == k).any()]
    monkeypatch.setitem(PARSED, "thing", everywhere[0])
    monkeypatch.setitem(PARSED, "nothing", nowhere[0])
    mask = foreground_mask(image, "thing", model=model, resolution=32)
    assert mask.shape == (2, 1, 24, 24) and mask.dtype == torch.float32
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    with pytest.raises(ValueError, match="no nothing found"):
        foreground_mask(image, "nothing", model=model, resolution=32)


def _no_downloads(monkeypatch, tmp_path):
    """An empty torch hub cache and any attempt to download an error; the environment's
    switch is on, which a library function must not read (only an entry point does)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv(runtime.DOWNLOADS_ENV, "1")

    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")
    monkeypatch.setattr("torchvision.models._api.load_state_dict_from_url", refuse)
    monkeypatch.setattr("urllib.request.urlopen", refuse)


def test_offline_without_cached_weights_the_error_says_what_to_do_and_nothing_is_fetched(
        monkeypatch, tmp_path):
    _no_downloads(monkeypatch, tmp_path)
    with pytest.raises(hub.WeightsUnavailable) as caught:
        segmenter()
    message = str(caught.value)
    assert "deeplabv3_resnet50_coco-cd0a2569.pth" in message
    assert "Colab" in message and "G2S_ALLOW_DOWNLOADS=1" in message and "--mask" in message
    assert isinstance(caught.value, RuntimeError) and "\n" not in message
    with pytest.raises(hub.WeightsUnavailable):
        foreground_mask(torch.zeros(1, 3, 8, 8), "car")  # no model given: builds one
    assert not any(tmp_path.rglob("*.pth"))


def test_a_failed_download_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv(runtime.DOWNLOADS_ENV, raising=False)  # the argument decides alone
    tried = []

    def offline(*args, **kwargs):
        tried.append(args)
        raise urllib.error.URLError("no network")
    monkeypatch.setattr("torchvision.models._api.load_state_dict_from_url", offline)
    with pytest.raises(hub.WeightsUnavailable, match="could not download.*no network.*--mask"):
        segmenter(downloads=True)
    with pytest.raises(hub.WeightsUnavailable, match="could not download"):
        foreground_mask(torch.zeros(1, 3, 8, 8), "car", downloads=True)
    assert len(tried) == 2


# ----------------------------------------------------------------------------- mask files
def _mask_file(path, size, box, mode="L"):
    """A black picture of ``size = (width, height)`` with a white box ``[x0, y0, x1, y1)``."""
    array = np.zeros(size[::-1], dtype=np.uint8)
    x0, y0, x1, y1 = box
    array[y0:y1, x0:x1] = 255
    Image.fromarray(array).convert(mode).save(path)
    return path


def test_a_mask_file_is_cut_with_the_crop_box_and_resized(tmp_path):
    # photo 300×200, white box x 130–190, y 40–100; crop [100, 10, 220, 130] (120 px) → 40:
    # one pixel of the result covers 3×3 of the photo, so the box is x 30–90 → 10–30 and
    # y 30–90 → 10–30 in the result
    path = _mask_file(tmp_path / "mask.png", (300, 200), (130, 40, 190, 100))
    mask = read_mask(path, [100, 10, 220, 130], 40, photo_size=(300, 200))
    expected = torch.zeros(1, 1, 40, 40)
    expected[..., 10:30, 10:30] = 1
    assert torch.equal(mask, expected)
    # shifted by one photo pixel: x 131–191 covers 2/3 of result column 10 (kept) and 1/3 of
    # column 30 (dropped): a pixel is object when more than half of it is
    path = _mask_file(tmp_path / "shifted.png", (300, 200), (131, 40, 191, 100), mode="RGB")
    assert torch.equal(read_mask(path, [100, 10, 220, 130], 40), expected)
    # two photo pixels: now only 1/3 of column 10 and 2/3 of column 30
    path = _mask_file(tmp_path / "shifted2.png", (300, 200), (132, 40, 192, 100))
    moved = torch.zeros(1, 1, 40, 40)
    moved[..., 10:30, 11:31] = 1
    assert torch.equal(read_mask(path, [100, 10, 220, 130], 40), moved)


def test_grey_levels_are_cut_at_half_and_transparency_is_read_as_the_mask(tmp_path):
    array = np.zeros((4, 4), dtype=np.uint8)
    array[:, :2] = 140  # just above half: object
    array[:, 2:] = 120  # just below: background
    Image.fromarray(array).save(tmp_path / "grey.png")
    expected = torch.tensor([[1.0, 1.0, 0.0, 0.0]] * 4)[None, None]
    assert torch.equal(read_mask(tmp_path / "grey.png", [0, 0, 4, 4], 4), expected)
    cutout = np.zeros((4, 4, 4), dtype=np.uint8)  # a black object on a transparent ground
    cutout[:, :2, 3] = 255
    Image.fromarray(cutout, "RGBA").save(tmp_path / "cutout.png")
    assert torch.equal(read_mask(tmp_path / "cutout.png", [0, 0, 4, 4], 4), expected)


def test_bad_mask_files_are_refused_with_what_to_do(tmp_path):
    path = _mask_file(tmp_path / "mask.png", (300, 200), (130, 40, 190, 100))
    with pytest.raises(ValueError, match="is 300×200 px but the photo is 320×240 px"):
        read_mask(path, [0, 0, 200, 200], 64, photo_size=(320, 240))
    with pytest.raises(ValueError, match="does not lie inside the mask"):
        read_mask(path, [150, 0, 350, 200], 64)
    with pytest.raises(ValueError, match="no white .* inside the crop box"):
        read_mask(path, [0, 0, 100, 100], 64)
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match="not an image PIL can read"):
        read_mask(tmp_path / "notes.txt", [0, 0, 10, 10], 8)
    with pytest.raises(FileNotFoundError, match="no mask file"):
        read_mask(tmp_path / "missing.png", [0, 0, 10, 10], 8)


def test_the_command_line_refuses_a_mask_of_another_size_in_one_error_line(tmp_path, capsys):
    from g2s_lite.__main__ import main

    photo = tmp_path / "photo.png"
    Image.new("RGB", (120, 80), (90, 120, 150)).save(photo)
    mask = _mask_file(tmp_path / "mask.png", (100, 80), (20, 20, 60, 60))
    argv = ["reconstruct", str(photo), "--out", str(tmp_path / "out"), "--no-detect",
            "--mask", str(mask), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --mask") and "100×80" in err[0] \
        and "120×80" in err[0], err
