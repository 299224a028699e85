"""Chapter 8's edits: the identity edits give the reconstruction back, a light written about
the image's axes lights the same side of the picture, each allowed ``axes`` gives its own edit
and others are refused, the GAN route runs, exported meshes load back, and bad input is
refused with a message."""
import math

import numpy as np
import pytest
import torch

from g2s_lite import edit
from g2s_lite.render import Renderer, make_view


@pytest.fixture(scope="module")
def rec(gan, one_thread):
    """A reconstruction of one SynFace with a few steps of each step (plumbing, not quality)."""
    from conftest import tiny_preset
    from g2s_lite.method import reconstruct
    from g2s_lite.synth import SynFaces

    G, D = gan
    image = SynFaces(64).sample(1, seed=3)["image"]
    return reconstruct(image, G, D, preset=tiny_preset(), progress=False)


def test_no_edit_gives_the_reconstruction_back(rec):
    assert torch.equal(edit.rotate(rec), rec.reconstruction)
    assert torch.equal(edit.relight(rec, rec.light, axes="own"), rec.reconstruction)
    # the own light written in the image's frame, taken back to the canonical frame
    assert torch.allclose(edit.relight(rec, edit.image_light(rec)), rec.reconstruction,
                          atol=1e-5)


def test_rotation_about_its_own_axes_adds_to_the_views_angles(rec):
    """Turning by 20° about the reconstruction's own axes equals Φ at the view with 20° more
    yaw."""
    r = Renderer(64)
    view = rec.view.clone()
    view[:, 1] += math.radians(20)
    view[:, 0] -= math.radians(10)
    expected, _ = r.render(rec.depth_canon, rec.albedo, rec.light, view)
    assert torch.allclose(edit.rotate(rec, 20, -10, axes="own"), expected)
    assert not torch.allclose(edit.rotate(rec, 20), rec.reconstruction, atol=1e-2)


def test_rotation_in_the_images_frame_turns_the_seen_points_about_the_camera_axes():
    """Every point the edited view places is the point the old view placed, turned by
    Ry(yaw)·Rx(pitch) about the rotation centre (a view with pitch, yaw, roll and a shift)."""
    r = Renderer(16)
    view = torch.tensor([[0.2, -0.4, 0.15, 0.01, -0.02, 0.0]])
    points = r.points(torch.full((1, 16, 16), 0.95))
    turn = edit.rotation_matrix(torch.tensor([[math.radians(-10.0), math.radians(25.0), 0.0]]))
    centre = torch.tensor([0.0, 0.0, r.rot_center_depth])
    expected = (r.transform(points, view) - centre) @ turn[0].T + centre
    assert torch.allclose(r.transform(points, edit.edit_view(view, 25.0, -10.0)), expected,
                          atol=1e-5)


def test_relight_keeps_the_reconstructions_strengths(rec):
    light = torch.tensor([[0.9, 0.05, -0.5, 0.2]])
    lit = edit.edit_light(rec, light, axes="own")
    assert torch.equal(lit[:, :2], rec.light[:, :2]) and torch.equal(lit[:, 2:], light[:, 2:])


def test_a_light_about_the_images_axes_lights_the_same_side_of_the_picture():
    """A wall facing the camera, seen turned by 30°: a light from the image's left must give
    the turned wall the brightness a frontal wall turned by nothing would get from the same
    light turned with it (analytic: the cosine between the wall's normal and the light)."""
    view = make_view(yaw=30.0)
    light = torch.tensor([[0.0, 1.0, -0.4, 0.1]])
    canon = edit.canonical_light(light, view)
    r = Renderer(8)
    normal_cam = torch.tensor([-math.sin(math.radians(30)), 0.0, -math.cos(math.radians(30))])
    travel = torch.nn.functional.normalize(torch.tensor([-0.4, 0.1, 1.0]), dim=0)
    expected = max(0.0, -(normal_cam @ travel).item())
    shading = r.shading(r.normals(torch.ones(1, 8, 8)), canon)
    assert torch.allclose(shading, torch.full_like(shading, expected), atol=1e-4)


@pytest.fixture(scope="module")
def turned(rec):
    """The reconstruction seen turned, pitched and rolled: about the image's axes and about
    its own, the same edit then differs."""
    from dataclasses import replace

    return replace(rec, view=torch.tensor([[0.25, 0.4, 0.3, 0.0, 0.0, 0.0]]))


def test_each_allowed_axes_gives_its_own_turn_and_light(turned):
    turns = {a: edit.rotate(turned, 30, axes=a) for a in edit.AXES}
    lights = {a: edit.relight(turned, torch.tensor([[0.5, 0.5, 0.6, -0.2]]), axes=a)
              for a in edit.AXES}
    for images in (turns, lights):
        assert set(images) == {"image", "own"}
        assert (images["image"] - images["own"]).abs().max() > 0.05
    # about the image's axes is the default
    assert torch.equal(edit.rotate(turned, 30), turns["image"])
    assert torch.equal(edit.relight(turned, torch.tensor([[0.5, 0.5, 0.6, -0.2]])),
                       lights["image"])


@pytest.mark.parametrize("axes", ["canonical", "frame", "view", "Image", ""])
def test_axes_other_than_image_and_own_are_refused(turned, axes):
    light = torch.tensor([[0.5, 0.5, 0.6, -0.2]])
    calls = (lambda: edit.rotate(turned, 30, axes=axes),
             lambda: edit.relight(turned, light, axes=axes),
             lambda: edit.edit_view(turned.view, 30.0, axes=axes),
             lambda: edit.edit_light(turned, light, axes=axes))
    for call in calls:
        with pytest.raises(ValueError, match="axes must be 'image' .* or 'own'"):
            call()


def test_grids_and_gan_route_shapes(rec, gan):
    G, _ = gan
    grid = edit.pitch_yaw_grid(rec, yaws=(-20, 0, 20), pitches=(-10, 10))
    assert grid.shape == (2, 3, 3, 64, 64)
    assert torch.equal(grid[1, 0], edit.rotate(rec, -20, 10)[0])
    frames = edit.yaw_frames(rec, 3, route="gan", G=G)
    assert frames.shape == (3, 3, 64, 64) and frames.abs().max() <= 1
    lit = edit.relight_strip(rec, 4, route="gan", G=G)
    assert lit.shape == (4, 3, 64, 64) and torch.isfinite(lit).all()


def test_bad_input_is_refused(rec, gan):
    G, _ = gan
    with pytest.raises(ValueError, match="beyond"):
        edit.rotate(rec, yaw=75)
    with pytest.raises(ValueError, match="beyond"):
        edit.rotate(rec, pitch=-61)
    with pytest.raises(ValueError, match="B×4"):
        edit.relight(rec, torch.tensor([0.5, 0.5, 0.1, 0.1]))
    with pytest.raises(ValueError, match="generator"):
        edit.rotate(rec, 10, route="gan")
    from dataclasses import replace
    with pytest.raises(ValueError, match="encoder"):
        edit.rotate(replace(rec, encoder=None), 10, route="gan", G=G)
    with pytest.raises(ValueError, match="route"):
        edit.rotate(rec, 10, route="nerf")


def test_exported_meshes_load_back(rec, tmp_path):
    trimesh = pytest.importorskip("trimesh")
    from g2s_lite.export import save_edits

    paths = save_edits(rec, tmp_path, frames=3)
    obj = trimesh.load(paths["textured"], process=False)
    assert obj.vertices.shape == (64 * 64, 3) and obj.faces.shape == (2 * 63 * 63, 3)
    assert obj.visual.material.image.size == (64, 64)
    # the texture is the albedo, pixel for pixel
    texture = np.asarray(obj.visual.material.image.convert("RGB"), dtype=np.float32) / 255
    albedo = ((rec.albedo[0].permute(1, 2, 0) + 1) / 2).numpy()
    assert np.abs(texture - albedo).max() <= 1 / 255 + 1e-6
    scene = trimesh.load(paths["glb"])
    (mesh,) = scene.geometry.values()
    assert mesh.vertices.shape == (64 * 64, 3)
    assert mesh.visual.material.baseColorTexture.size == (64, 64)
    # the mesh's points are the renderer's (up to the flip of y and z)
    points = Renderer(64).points(rec.depth_canon)[0].reshape(-1, 3) * torch.tensor([1., -1, -1])
    assert np.allclose(obj.vertices, points.numpy(), atol=1e-5)
    assert {"grid", "relight", "gif_mesh"} <= set(paths) and "gif_gan" not in paths


def test_cli_writes_the_edits(tmp_path, monkeypatch, gan):
    from PIL import Image

    from conftest import tiny_preset
    from g2s_lite import paper
    from g2s_lite.__main__ import main
    from g2s_lite.synth import SynFaces
    from g2s_lite.viz import to_image, to_uint8

    monkeypatch.setitem(paper.PRESETS, "synface64", tiny_preset())
    face = SynFaces(64).sample(1, seed=5)["image"]
    Image.fromarray(to_uint8(to_image(face))).save(tmp_path / "face.png")
    out = tmp_path / "out"
    assert main(["reconstruct", str(tmp_path / "face.png"), "--out", str(out), "--quick",
                 "--no-progress", "--edits", "--save-nets"]) == 0
    names = {p.name for p in out.iterdir()} | {p.name for p in (out / "textured").iterdir()}
    assert names >= {"mesh.glb", "grid.png", "relight.png", "rotation_mesh.gif",
                     "rotation_gan.gif", "mesh.obj", "mesh.mtl", "albedo.png"}
    # with --save-nets the folder edits again later, on the GAN route too
    from g2s_lite.export import load_reconstruction

    back = load_reconstruction(out, gan[0])
    assert back.nets is not None and edit.rotate(back, 20, route="gan", G=gan[0]).shape == (
        1, 3, 64, 64)


def test_chapter_8_checks_tell_right_from_wrong(rec, tmp_path):
    import json

    from g2s_lite.exercises import ch08, check
    from g2s_lite.render import Renderer

    a, b = rec.light[0, :2].tolist()
    assert check("8.1", (a / ch08.ALBEDO_SCALE, b / ch08.ALBEDO_SCALE), rec=rec)
    assert not check("8.1", (a, b), rec=rec)
    # 8.2 against the package's own conversion (the check works it out by hand)
    light = torch.tensor([[0.5, 0.5, *ch08.LIGHT_82]])
    dx, dy = edit.canonical_light(light, make_view(yaw=ch08.YAW_82))[0, 2:].tolist()
    assert check("8.2", (dx, dy)) and not check("8.2", ch08.LIGHT_82)
    r = Renderer(64)
    covered = r.valid_mask(r.warp_depth(rec.depth_canon, edit.edit_view(rec.view, 45.0)))
    assert check("8.3", 1 - covered.mean().item(), rec=rec)
    assert not check("8.3", 0.5 + 1 - covered.mean().item(), rec=rec)
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"summary": {"yaw±30": {"input": {"l1": 0.1}, "gan": {"l1": 0.05},
                                                       "n": 3}}}))
    assert check("8.4", "gan", results=path) and not check("8.4", "input", results=path)
