"""A reconstruction on disk (export.save_factors, the command line's factors.pt, the faces
Chapter 8's measurement keeps) comes back as it was: its factors, nets, encoder, photo crop
and GAN crop, so that its edits on both routes are the original's; files in the layouts
written before (kept faces, factors.pt without nets) still load."""
from dataclasses import replace

import pytest
import torch

from conftest import tiny_preset
from g2s_lite import edit
from g2s_lite.export import SAVED, load_reconstruction, save_factors
from g2s_lite.nets import NET_NAMES

#: A framed preset: the image shows the centre half of G's (as cat128 shows 170/256 of it).
FRAMED = tiny_preset(crop=128)
PHOTO_BOX = [3, 5, 131, 133]


@pytest.fixture(scope="module")
def rec(gan, one_thread):
    from g2s_lite.method import reconstruct
    from g2s_lite.synth import SynFaces

    G, D = gan
    image = SynFaces(64).sample(1, seed=4)["image"]
    return reconstruct(image, G, D, preset=FRAMED, progress=False, crop=PHOTO_BOX)


def _outputs(nets, image):
    with torch.no_grad():
        return [getattr(nets, name)(image) for name in NET_NAMES]


def _same_reconstruction(back, rec, G):
    for name in SAVED:
        assert torch.equal(getattr(back, name), getattr(rec, name)), name
    for a, b in zip(_outputs(back.nets, rec.image), _outputs(rec.nets, rec.image)):
        assert torch.equal(a, b)
    assert torch.equal(edit.rotate(back, 25, -10), edit.rotate(rec, 25, -10))
    assert torch.equal(edit.rotate(back, 25, route="gan", G=G),
                       edit.rotate(rec, 25, route="gan", G=G))


def test_a_framed_reconstruction_comes_back_with_its_crops(rec, gan, tmp_path):
    G, _ = gan
    assert rec.gan_crop == 0.5 and rec.crop == PHOTO_BOX
    path = save_factors(rec, tmp_path / "face.pt", index=3)
    back = load_reconstruction(path, G)
    assert back.gan_crop == 0.5 and back.crop == PHOTO_BOX
    _same_reconstruction(back, rec, G)
    # the GAN crop matters: taken at the whole of G's image, the GAN route draws another face
    whole = edit.rotate(replace(back, gan_crop=1.0), 25, route="gan", G=G)
    assert (whole - edit.rotate(rec, 25, route="gan", G=G)).abs().max() > 0.1
    # the file's entries load as plain tensors (the command line's factors.pt)
    blob = torch.load(path, weights_only=True)
    assert blob["depth"].shape == (1, 64, 64) and blob["meta"] == {"index": 3}
    assert blob["nets"]["image_size"] == 64 and blob["encoder"]["layout"] == "book"
    # a folder stands for its factors.pt; without G there is no encoder, and the GAN route
    # says what it lacks
    save_factors(rec, tmp_path / "out" / "factors.pt")
    alone = load_reconstruction(tmp_path / "out")
    assert alone.encoder is None and alone.gan_crop == 0.5
    with pytest.raises(ValueError, match="export.load_reconstruction"):
        edit.rotate(alone, 10, route="gan", G=G)


def test_a_face_kept_in_the_earlier_layout_still_loads(rec, gan, tmp_path):
    """The layout ``python -m g2s_lite.edit keep`` wrote before: factors apart, the nets'
    state dicts by name, the encoder's bare state dict; size, width and crop from the
    preset."""
    G, _ = gan
    old = {"factors": {k: getattr(rec, k).detach().cpu() for k in SAVED},
           "nets": {k: getattr(rec.nets, k).state_dict() for k in NET_NAMES},
           "encoder": rec.encoder.state_dict(), "timings": rec.timings,
           "meta": {"index": 0, "seed": 31337, "preset": FRAMED.name}}
    torch.save(old, tmp_path / "face_000.pt")
    back = load_reconstruction(tmp_path / "face_000.pt", G, FRAMED)
    assert back.gan_crop == 0.5 and back.crop is None and back.timings == rec.timings
    _same_reconstruction(back, rec, G)


def test_an_earlier_factors_file_loads_its_factors(rec, gan, tmp_path):
    """``factors.pt`` held the tensors alone (and a photo's crop box)."""
    G, _ = gan
    torch.save({**{k: getattr(rec, k).detach().cpu() for k in SAVED},
                "crop": torch.tensor(PHOTO_BOX)}, tmp_path / "factors.pt")
    back = load_reconstruction(tmp_path / "factors.pt", G)
    assert back.nets is None and back.encoder is None and back.crop == PHOTO_BOX
    assert back.gan_crop == 1.0  # the preset's (synface64 by default): the file did not say
    assert torch.equal(edit.rotate(back, -20), edit.rotate(rec, -20))
    with pytest.raises(ValueError, match="encoder"):
        edit.rotate(back, -20, route="gan", G=G)


def test_nets_and_encoder_in_the_released_layout_round_trip(rec, gan, tmp_path):
    from g2s_lite.released import offset_encoder, paper_encoder, paper_nets

    G, _ = gan
    with torch.random.fork_rng():
        torch.manual_seed(1)
        released = replace(rec, nets=paper_nets(64, view_mean=torch.full((6,), 0.1)),
                           encoder=offset_encoder(paper_encoder(64, G.style_dim), G, 2))
    back = load_reconstruction(save_factors(released, tmp_path / "r.pt"), G)
    assert type(back.nets.view).__name__ == "ReleasedViewNet"
    _same_reconstruction(back, released, G)
    assert back.encoder.start == released.encoder.start


def test_other_files_are_refused(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="holds no reconstruction"):
        load_reconstruction(tmp_path / "other.pt")
