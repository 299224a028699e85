"""SynFaces: deterministic, varied, and self-consistent ground truth rendered through Φ."""
import math

import pytest
import torch

from g2s_lite.paper import SYNFACE_LIGHTS
from g2s_lite.synth import SYNFACE_BASE_LIGHT, SYNFACE_VIEWS, SynFaces, sample_face_params


@pytest.fixture(scope="module")
def world():
    return SynFaces(64)


@pytest.fixture(scope="module")
def batch(world):
    return world.sample(12, seed=7)


def test_shapes_and_ranges(world, batch):
    n, s = 12, 64
    assert batch["image"].shape == (n, 3, s, s) and batch["albedo"].shape == (n, 3, s, s)
    assert batch["depth"].shape == (n, s, s) and batch["depth_canon"].shape == (n, s, s)
    assert batch["normal"].shape == (n, s, s, 3)
    assert batch["mask"].shape == (n, 1, s, s) and batch["view"].shape == (n, 6)
    assert batch["light"].shape == (n, 4)
    assert batch["image"].min() >= -1 and batch["image"].max() <= 1
    r = world.renderer
    assert batch["depth_canon"].min() >= r.min_depth and batch["depth_canon"].max() <= r.max_depth
    # every face is seen, and is a sizeable part of the picture
    frac = batch["mask"].flatten(1).mean(1)
    assert (frac > 0.15).all() and (frac < 0.8).all()


def test_views_and_lights_follow_the_world_ranges(batch):
    v, l = batch["view"], batch["light"]
    assert (v[:, 0].abs() <= math.radians(SYNFACE_VIEWS.pitch) + 1e-6).all()
    assert (v[:, 1].abs() <= math.radians(SYNFACE_VIEWS.yaw) + 1e-6).all()
    assert (v[:, 2].abs() <= math.radians(SYNFACE_VIEWS.roll) + 1e-6).all()
    assert (v[:, 3:5].abs() <= SYNFACE_VIEWS.tx + 1e-9).all()
    r = l[:, 1] - SYNFACE_BASE_LIGHT[1]  # the recipe's diffuse change
    assert ((r >= SYNFACE_LIGHTS.diffuse[0] - 1e-6) & (r <= SYNFACE_LIGHTS.diffuse[1] + 1e-6)).all()
    assert torch.allclose(l[:, 0], SYNFACE_BASE_LIGHT[0] + SYNFACE_LIGHTS.alpha * r, atol=1e-6)
    assert ((l[:, 2] >= -0.9) & (l[:, 2] <= 0.9) & (l[:, 3] >= -0.3) & (l[:, 3] <= 0.8)).all()


def test_ground_truth_is_self_consistent(world, batch):
    r = world.renderer
    assert torch.allclose(batch["depth"], r.warp_depth(batch["depth_canon"], batch["view"]))
    assert torch.allclose(batch["normal"], r.normals(batch["depth"]))
    image, valid = r.render(batch["depth_canon"], batch["albedo"], batch["light"],
                            batch["view"], background=batch["background"])
    assert torch.allclose(batch["image"], image, atol=1e-5)
    shaded = r.shade(batch["albedo"], r.normals(batch["depth_canon"]), batch["light"])
    assert torch.allclose(batch["canon_image"], shaded)
    # the foreground is seen and inside the valid region, with depth in front of the wall
    m = batch["mask"][:, 0] > 0
    assert torch.all(valid[:, 0][m] == 1)
    assert batch["depth"][m].max() < r.max_depth


def test_identity_view_gives_the_canonical_face(world):
    d, a, m = world.canonical([sample_face_params(torch.Generator().manual_seed(1))])
    out = world.render(d, a, torch.tensor([[0.4, 0.5, 0.2, 0.1]]), torch.zeros(1, 6), m)
    assert torch.allclose(out["depth"], d, atol=1e-6)
    assert (out["image"] - out["canon_image"]).abs().max() < 1e-4
    assert torch.equal(out["mask"], m)


def test_deterministic_for_a_seed_and_different_across_seeds(world, batch):
    again = world.sample(12, seed=7)
    for key in ("image", "depth", "view", "light"):
        assert torch.equal(batch[key], again[key])
    other = world.sample(12, seed=8)
    assert not torch.allclose(batch["image"], other["image"])
    # face i does not depend on how many faces are drawn
    part = world.sample(3, seed=7, start=4)
    assert torch.equal(part["image"], batch["image"][4:7])


def test_faces_vary_like_faces(batch):
    m = batch["mask_canon"][:, 0] > 0
    # head proportions: the width of the head differs from face to face
    widths = m.float().amax(1).sum(1)
    assert widths.std() > 1.5
    # relief: nose tip / deepest point varies
    relief = torch.stack([(b[mk].max() - b[mk].min()) for b, mk in zip(batch["depth_canon"], m)])
    assert relief.std() > 0.002
    # skin tones differ: mean colour of the face centre
    centre = batch["albedo"][:, :, 28:36, 28:36].mean((2, 3))
    assert centre.std(0).mean() > 0.05
    # and the faces stand out of the wall by a plausible amount
    assert (relief > 0.06).all() and (relief < 0.16).all()


def test_faces_are_nearly_symmetric_in_canonical_view(batch):
    d = batch["depth_canon"]
    # faces are centred within ±0.03 of the width, so the mirror error stays small
    err = (d - d.flip(-1)).abs().mean((1, 2))
    assert (err < 0.01).all()


def test_128_pixels(world):
    big = SynFaces(128).sample(2, seed=7)
    small = world.sample(2, seed=7)
    assert big["image"].shape == (2, 3, 128, 128)
    down = torch.nn.functional.avg_pool2d(big["depth_canon"][:, None], 2)[:, 0]
    # the same face at both sizes (up to resampling)
    assert (down - small["depth_canon"]).abs().mean() < 0.005
    assert torch.equal(big["view"], small["view"])


def test_bad_arguments():
    with pytest.raises(ValueError, match="image_size"):
        SynFaces(8)
    with pytest.raises(ValueError, match="at least 1"):
        SynFaces(64).sample(0)
