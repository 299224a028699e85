"""Real photographs (Chapter 9): the face is found and framed, crops round-trip, results paste
back, the out-of-reach warning, and the command line on a real portrait."""

import numpy as np
import pytest
import torch
from PIL import Image

from g2s_lite import photos
from g2s_lite.__main__ import main

from conftest import tiny_preset

PORTRAIT = photos.book_photo("astronaut.jpg")  # Eileen Collins (NASA, public domain), 512×512
# Where her face is (checked by eye): forehead to chin, cheek to cheek; the flag is on the
# left of the photo (x < 130) and the uniform below y = 260.
FACE = (180, 70, 270, 180)


def test_the_face_of_the_portrait_is_found_and_the_crop_holds_it_not_the_flag_or_uniform():
    for category in ("synface", "face"):
        prep = photos.prepare(PORTRAIT, 64, category)
        x0, y0, x1, y1 = prep.face
        assert x0 <= FACE[0] + 15 and x1 >= FACE[2] - 15 and y0 <= FACE[1] + 20
        c = prep.crop
        assert c[2] - c[0] == c[3] - c[1]  # square
        assert c[0] <= x0 and c[1] <= y0 and c[2] >= x1 and c[3] >= y1  # holds the face
        assert c[0] >= 130 and c[3] <= 260  # not the flag, not the uniform
        assert prep.image.shape == (1, 3, 64, 64) and prep.image.abs().max() <= 1


def test_square_box_frames_moves_inside_and_shrinks_to_fit():
    fit = photos.Framing(scale=2.0, shift=0.25)
    # room everywhere: side 2·100, centre 25 px below the box's centre
    assert photos.square_box((1000, 1000), [400, 400, 500, 500], fit) == [350, 375, 550, 575]
    # at the top-left corner: moved inside, same side
    assert photos.square_box((1000, 1000), [0, 0, 100, 100], fit) == [0, 0, 200, 200]
    # larger than the photo: shrunk to its short side
    assert photos.square_box((300, 150), [100, 20, 200, 120], fit) == [75, 0, 225, 150]
    assert photos.centre_box((600, 400)) == [100, 0, 500, 400]


def test_no_detect_and_categories_without_a_detector_use_the_centre_square(tmp_path):
    wide = tmp_path / "wide.png"
    Image.new("RGB", (300, 200), (10, 200, 30)).save(wide)
    for prep in (photos.prepare(PORTRAIT, 64, "face", detect_face=False),
                 photos.prepare(wide, 64, "car")):
        assert prep.face is None and prep.crop == photos.centre_box(prep.photo.size)
    # a photo without a face falls back to the centre square too
    assert photos.prepare(wide, 64, "face").crop == [50, 0, 250, 200]


def test_pasting_the_crop_back_gives_the_photo_and_a_mask_keeps_the_rest():
    prep = photos.prepare(PORTRAIT, 128, "face")
    back = photos.paste(prep.photo, photos.prepare(PORTRAIT, 128, "face").image, prep.crop)
    before = torch.from_numpy(np.asarray(prep.photo, dtype=np.float32))
    after = torch.from_numpy(np.asarray(back, dtype=np.float32))
    assert (after - before).abs().mean() < 3  # only resampling blur inside the box
    black = -torch.ones(1, 3, 128, 128)
    none = photos.paste(prep.photo, black, prep.crop, mask=torch.zeros(1, 1, 128, 128))
    assert np.array_equal(np.asarray(none), np.asarray(prep.photo))
    full = photos.paste(prep.photo, black, prep.crop)
    x0, y0, x1, y1 = prep.crop
    assert full.getpixel(((x0 + x1) // 2, (y0 + y1) // 2)) == (0, 0, 0)
    assert full.getpixel((x0 - 1, y0)) == prep.photo.getpixel((x0 - 1, y0))


def test_crop_of_reads_a_dict_a_file_and_an_object(tmp_path):
    torch.save({"crop": torch.tensor([1, 2, 3, 4])}, tmp_path / "factors.pt")
    assert photos.crop_of(tmp_path / "factors.pt") == [1, 2, 3, 4]
    assert photos.crop_of({"depth": torch.zeros(1)}) is None

    class Rec:
        crop = [5, 6, 7, 8]
    assert photos.crop_of(Rec()) == [5, 6, 7, 8]


def test_the_warning_appears_only_far_beyond_the_gans_own_errors():
    own = torch.tensor([0.05, 0.1])
    assert photos.reach_warning(0.1 * photos.REACH_FACTOR, own, "synface64", "face") is None
    line = photos.reach_warning(0.3, own, "synface64", "face")
    assert line.startswith("warning:") and "celeba128" in line and "\n" not in line
    assert "--weights" in photos.reach_warning(0.3, own, "car512", "car")


# ----------------------------------------------------------------------------- the command line
@pytest.fixture()
def tiny_cli(monkeypatch):
    """The CLI's synface64 preset cut to a few steps (the projection keeps its quick
    schedule, which the out-of-reach check measures)."""
    from g2s_lite.paper import PRESETS, get_preset

    monkeypatch.setitem(PRESETS, "synface64",
                        tiny_preset(project=get_preset("synface64", quick=True).project))


def test_a_portrait_through_the_cli_face_found_warning_printed_files_written(
        tmp_path, capsys, tiny_cli, one_thread):
    out = tmp_path / "out"
    assert main(["reconstruct", str(PORTRAIT), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr()
    assert "face found at" in printed.out
    warnings = [line for line in printed.err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "celeba128" in warnings[0]
    for name in ("input.png", "depth.png", "normal.png", "mesh.obj", "rotation.gif",
                 "factors.pt"):
        assert (out / name).stat().st_size > 0
    crop = photos.crop_of(out / "factors.pt")
    assert crop == photos.prepare(PORTRAIT, 64, "synface").crop


def test_bad_inputs_end_in_one_error_line_and_exit_2_before_any_work(tmp_path, capsys,
                                                                     monkeypatch):
    from g2s_lite import hub

    def no_work(*args, **kwargs):
        raise AssertionError("work started before the inputs were checked")
    monkeypatch.setattr(hub, "load", no_work)
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    out = tmp_path / "out"
    cases = {
        "no image file": [str(tmp_path / "missing.jpg"), "--out", str(out)],
        "not an image PIL can read": [str(text), "--out", str(out)],
        "unknown --weights": [str(PORTRAIT), "--out", str(out), "--weights", "nothing"],
        "is a file": [str(PORTRAIT), "--out", str(text)],
        "--mask": [str(PORTRAIT), "--out", str(out), "--mask", str(tmp_path / "none.png")],
        "--released": [str(PORTRAIT), "--out", str(out), "--released", "nothing"],
        # the parsing net finds cars and cats only: a face is refused before any download
        "give a mask file": [str(PORTRAIT), "--out", str(out), "--mask", "auto"],
    }
    for what, argv in cases.items():
        assert main(["reconstruct", *argv]) == 2, what
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:") and what in err[0], (what, err)


def test_the_celeba_framing_keeps_its_place_at_the_border_and_repeats_the_edge(tmp_path):
    """A face at the photo's left edge: the CelebA framing (Unsup3d's crops, cut with
    replicated borders) keeps the face where the data have it, centred, and fills what lies
    left of the photo with the photo's first column; pasting back changes only the photo's
    own pixels."""
    edge = tmp_path / "edge.png"
    Image.open(PORTRAIT).crop((175, 0, 512, 512)).save(edge)  # the face box starts at x 7
    prep = photos.prepare(edge, 128, "face")
    x0, y0, x1, y1 = prep.face
    c = prep.crop
    assert c[0] < 0 and c[2] - c[0] == c[3] - c[1]
    assert abs((c[0] + c[2]) / 2 - (x0 + x1) / 2) <= 1  # centred on the face, not moved
    pixels = np.asarray(prep.photo)
    square = photos.cut(pixels, c)
    assert (square[:, :-c[0]] == pixels[c[1]:c[3], :1]).all()  # the first column, repeated
    assert (square[:, -c[0]:] == pixels[c[1]:c[3], :c[2]]).all()  # then the photo itself
    back = photos.paste(prep.photo, prep.image, c)
    assert back.size == prep.photo.size
    # the SynFace framing still moves the square inside the photo
    assert photos.prepare(edge, 64, "synface").crop[0] == 0


def test_an_opencv_without_haar_cascades_is_named_with_its_fix(tmp_path, capsys, monkeypatch):
    """OpenCV 5 dropped the Haar cascades: one clear line, not an AttributeError."""
    import sys
    import types

    fake = types.ModuleType("cv2")
    fake.__version__ = "5.0.0"
    monkeypatch.setitem(sys.modules, "cv2", fake)
    with pytest.raises(ImportError, match="5.0.0.*opencv-python-headless<5"):
        photos.detect(Image.open(PORTRAIT))
    assert main(["reconstruct", str(PORTRAIT), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "--no-detect" in err[0]
